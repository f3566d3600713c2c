//! Chapter 10: blocking work inside async code.
//!
//! Runs the same jobs three ways on a single-threaded runtime: blocking the thread with
//! `std::thread::sleep`, waiting with `tokio::time::sleep`, and blocking on tokio's blocking
//! pool with `spawn_blocking`. The first takes the sum of the jobs; the other two, one job.
//! Run it with `cargo run --bin ch10_blocking`; `--help` lists the options.

use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

/// How long each job works: long enough to measure, short enough to run often.
const WORK: Duration = Duration::from_millis(200);

// ANCHOR: jobs
/// Blocks the thread it runs on: while it sleeps, nothing else on that thread can run.
async fn blocking_job() {
    std::thread::sleep(WORK);
}

/// Waits without blocking: `.await` hands the thread back to the runtime meanwhile.
async fn waiting_job() {
    tokio::time::sleep(WORK).await;
}

/// Blocks, but on a thread of tokio's blocking pool, not on one of the runtime's own.
async fn offloaded_job() {
    if let Err(error) = tokio::task::spawn_blocking(|| std::thread::sleep(WORK)).await {
        eprintln!("the blocking job failed: {error}");
    }
}
// ANCHOR_END: jobs

// ANCHOR: measure
/// Spawns `tasks` jobs at once, waits for all of them, and prints how long that took.
async fn measure<F, Job>(label: &str, tasks: u32, job: F)
where
    F: Fn() -> Job,
    Job: Future<Output = ()> + Send + 'static,
{
    let started = Instant::now();
    let mut jobs = JoinSet::new();
    for _ in 0..tasks {
        jobs.spawn(job());
    }
    while let Some(finished) = jobs.join_next().await {
        if let Err(error) = finished {
            eprintln!("a job failed: {error}");
        }
    }
    let took = started.elapsed().as_secs_f64();
    let each = WORK.as_secs_f64();
    println!("{label}: tasks={tasks} each={each}s took={took:.2}s");
}

async fn run(tasks: u32) {
    let _timer = Timer::start();
    measure("std::thread::sleep in async tasks", tasks, blocking_job).await;
    measure("tokio::time::sleep in async tasks", tasks, waiting_job).await;
    measure("spawn_blocking(std::thread::sleep)", tasks, offloaded_job).await;
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

const USAGE: &str = "\
Usage: ch10_blocking [--tasks N]

Runs N jobs of 0.2 s at once on a single-threaded tokio runtime, three ways: blocking with
std::thread::sleep, waiting with tokio::time::sleep, and blocking inside spawn_blocking.
It always runs on the real clock: tokio's paused clock cannot see a thread that blocks.

Options:
  --tasks N   how many jobs each way, from 1 to 20 (default: 5)
  -h, --help  print this help
";

/// Reads the command line: `Ok(None)` asks for the help, `Err` carries the message for a bad one.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<u32>, String> {
    let mut tasks = 5;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--tasks" => {
                let value = args.next().ok_or("--tasks needs a value")?;
                tasks = match value.parse() {
                    Ok(n @ 1..=20) => n,
                    _ => return Err(format!("--tasks: expected 1 to 20, got {value:?}")),
                };
            }
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    Ok(Some(tasks))
}

// ANCHOR: main
fn main() -> ExitCode {
    let tasks = match parse_args(std::env::args().skip(1)) {
        Ok(Some(tasks)) => tasks,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // One thread for all the async tasks, as in asyncio: the blocking case shows at its worst.
    // (`spawn_blocking` still has its own pool of threads.)
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => {
            runtime.block_on(run(tasks));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: cannot start the tokio runtime: {error}");
            ExitCode::FAILURE
        }
    }
}
// ANCHOR_END: main
