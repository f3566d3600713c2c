//! Chapter 12: blocking work inside async code.
//!
//! Runs the same jobs three ways on a single-threaded runtime: blocking the thread with
//! `std::thread::sleep`, waiting with `tokio::time::sleep`, and blocking on tokio's blocking
//! pool with `spawn_blocking`. The first takes the sum of the jobs; the other two, one job.
//! Run it with `cargo run --bin ch12_blocking`; `--help` lists the options.

use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

/// How long each job works: long enough to measure, short enough to run often.
const WORK: Duration = Duration::from_millis(200);

// ANCHOR: jobs
/// What a job can fail with: here, only a blocking job whose thread could not run it.
type JobResult = Result<(), tokio::task::JoinError>;

/// Blocks the thread it runs on: while it sleeps, nothing else on that thread can run.
async fn blocking_job() -> JobResult {
    std::thread::sleep(WORK);
    Ok(())
}

/// Waits without blocking: `.await` hands the thread back to the runtime meanwhile.
async fn waiting_job() -> JobResult {
    tokio::time::sleep(WORK).await;
    Ok(())
}

/// Blocks, but on a thread of tokio's blocking pool, not on one of the runtime's own.
async fn offloaded_job() -> JobResult {
    tokio::task::spawn_blocking(|| std::thread::sleep(WORK)).await
}
// ANCHOR_END: jobs

// ANCHOR: measure
/// Spawns `tasks` jobs at once, waits for all of them, prints how long that took, and returns
/// how many failed.
async fn measure<F, Job>(label: &str, tasks: u32, job: F) -> u32
where
    F: Fn() -> Job,
    Job: Future<Output = JobResult> + Send + 'static,
{
    let started = Instant::now();
    let mut jobs = JoinSet::new();
    for _ in 0..tasks {
        jobs.spawn(job());
    }
    let mut failed = 0;
    while let Some(finished) = jobs.join_next().await {
        // The outer `Err`: the job's own task panicked; the inner one: the job failed.
        if let Err(error) = finished.and_then(|result| result) {
            eprintln!("a job failed: {error}");
            failed += 1;
        }
    }
    let took = started.elapsed().as_secs_f64();
    let each = WORK.as_secs_f64();
    println!("{label}: tasks={tasks} each={each}s took={took:.2}s");
    failed
}

/// Runs the three ways one after another, and returns how many jobs failed in all.
async fn run(tasks: u32) -> u32 {
    let _timer = Timer::start();
    measure("std::thread::sleep in async tasks", tasks, blocking_job).await
        + measure("tokio::time::sleep in async tasks", tasks, waiting_job).await
        + measure("spawn_blocking(std::thread::sleep)", tasks, offloaded_job).await
}
// ANCHOR_END: measure

/// Prints how long it lived when it is dropped, like the article's `timer()` context manager.
struct Timer(Instant);

impl Timer {
    fn start() -> Timer {
        Timer(Instant::now())
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        println!(
            "elapsed time: {:.2} seconds",
            self.0.elapsed().as_secs_f64()
        );
    }
}

/// Runs N jobs of 0.2 s at once on a single-threaded tokio runtime, three ways: blocking with
/// std::thread::sleep, waiting with tokio::time::sleep, and blocking inside spawn_blocking.
/// It always runs on the real clock: tokio's paused clock cannot see a thread that blocks.
#[derive(clap::Parser)]
#[command(name = "ch12_blocking", version)]
struct Options {
    /// How many jobs each way, from 1 to 20.
    #[arg(long, value_name = "N", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=20))]
    tasks: u32,
}

/// Ends the program with one line on stderr and status 1, instead of a panic trace, when the
/// operating system takes away what it cannot run without: `println!` panics when its output
/// is gone (a full disk), and tokio when the OS refuses it a thread. Such a panic's message
/// ends with the OS's error, `(os error N)`. A closed pipe (EPIPE, 32 on Linux, macOS and the
/// BSDs: the reader went away, as `| head` does) ends it quietly, with the status 141 a shell
/// reports for SIGPIPE. Any other panic is a bug, and is reported as usual.
fn exit_cleanly_when_the_environment_fails() {
    use std::io::Write;
    let report_a_bug = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map_or("", String::as_str);
        if !message.ends_with(')') || !message.contains("(os error ") {
            return report_a_bug(info);
        }
        if message.ends_with("(os error 32)") {
            std::process::exit(141);
        }
        let message = message
            .replace("failed printing to stdout", "cannot write the output")
            .replace(
                "OS can't spawn worker thread",
                "tokio cannot start a thread",
            );
        let _ = writeln!(std::io::stderr(), "error: {message}");
        // At once, from whichever thread: no destructor may print into the broken output.
        std::process::exit(1);
    }));
}

/// Reads the command line. clap prints `--help` and `--version` and exits with status 0; a
/// mistake gets clap's message on one line of stderr (its first paragraph, which names the
/// argument and the values allowed) and exit status 2, before any work starts.
fn read_options() -> Options {
    <Options as clap::Parser>::try_parse().unwrap_or_else(|error| {
        if !error.use_stderr() {
            error.exit();
        }
        let message = error.render().to_string();
        let first: Vec<&str> = message
            .lines()
            .take_while(|line| !line.is_empty())
            .collect();
        let first: Vec<&str> = first.iter().map(|line| line.trim()).collect();
        eprintln!("{} (see --help)", first.join(" "));
        std::process::exit(2);
    })
}

// ANCHOR: main
fn main() -> ExitCode {
    exit_cleanly_when_the_environment_fails();
    // A bad command line ends here, with one line of error and exit status 2.
    let options = read_options();
    // One thread for all the async tasks, as in asyncio: the blocking case shows at its worst.
    // (`spawn_blocking` still has its own pool of threads.)
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        // A job that failed was reported as it failed; the exit status says so too.
        Ok(runtime) => match runtime.block_on(run(options.tasks)) {
            0 => ExitCode::SUCCESS,
            _ => ExitCode::FAILURE,
        },
        Err(error) => {
            eprintln!("error: cannot start the tokio runtime: {error}");
            ExitCode::FAILURE
        }
    }
}
// ANCHOR_END: main
