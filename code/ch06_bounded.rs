//! Chapter 6: bounding concurrency without a queue.
//!
//! Chapter 4's 1000 jobs of 1 s, at most 50 at a time, without a queue: with a semaphore and a
//! task per job, or with a buffered stream. Then the trap of `buffer_unordered`, shown
//! happening and fixed, on a few jobs. Run it with `cargo run --bin ch06_bounded`; `--help`
//! lists the options.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::stream::{self, StreamExt};
use tokio::sync::Semaphore;
use tokio::task::{AbortHandle, JoinError, JoinSet};
use tokio::time::Instant;

// ANCHOR: parameters
const TASKS_TO_PROCESS: u32 = 1000;
/// At most this many jobs in flight: chapter 4's 50 consumers, as a number.
const MOST_IN_FLIGHT: usize = 50;
// ANCHOR_END: parameters

// ANCHOR: source
/// A description of one job, as in chapter 4: plain data, not a future.
#[derive(Debug, Clone, Copy)]
struct Task {
    number: u32,
    time_to_execute: Duration,
}

/// The work, as a lazy iterator: each description is made when the next one is asked for,
/// so the whole list never exists at once. A file's lines can be read the same way (`--from`).
fn tasks(count: u32) -> impl Iterator<Item = Task> {
    (0..count).map(|number| Task {
        number,
        time_to_execute: Duration::from_secs(1),
    })
}
// ANCHOR_END: source

// ANCHOR: task
/// Chapter 4's job, which also counts itself among the jobs in flight while it runs.
async fn normal_task(task_number: u32, time_to_execute: Duration) {
    let _counted = IN_FLIGHT.enter();
    tokio::time::sleep(time_to_execute).await;
    println!(
        "processed task with task_number={task_number} time_to_execute_in_seconds={} behavior=normal-sleep",
        time_to_execute.as_secs_f64()
    );
}
// ANCHOR_END: task

// ANCHOR: semaphore
/// A task per job, and a semaphore of `MOST_IN_FLIGHT` permits: no task runs without one.
/// The jobs come from `source`, one at a time. An `Err` from it (a malformed line) stops the
/// loop: no job starts after it, the jobs already running finish, and the error is returned.
async fn with_semaphore<E>(source: impl Iterator<Item = Result<Task, E>>) -> Result<(), E> {
    let permits = Arc::new(Semaphore::new(MOST_IN_FLIGHT));
    let mut running = JoinSet::new();
    let mut outcome = Ok(());
    for task in source {
        let task = match task {
            Ok(task) => task,
            Err(error) => {
                outcome = Err(error);
                break;
            }
        };
        // Wait for a permit *before* spawning: the loop stops here while 50 jobs run, so
        // no more than 50 jobs run, no more than a few finished tasks beyond them exist,
        // and the source is read no faster than the jobs are done.
        // `acquire_owned` fails only once the semaphore is closed, which nothing here does.
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            break;
        };
        running.spawn(async move {
            // The permit moves into the task and is dropped when the task ends, however
            // it ends: a panic unwinds through here and returns it all the same.
            let _permit = permit;
            normal_task(task.number, task.time_to_execute).await;
        });
        // Collect the tasks that have already finished, without waiting: the set then
        // holds the jobs in flight, not the results of every job so far.
        while let Some(finished) = running.try_join_next() {
            report(finished);
        }
    }
    // The source is exhausted, or failed: wait for the last jobs.
    while let Some(finished) = running.join_next().await {
        report(finished);
    }
    outcome
}

/// A task that panicked (or was aborted) is reported, not ignored.
fn report(finished: Result<(), JoinError>) {
    if let Err(error) = finished {
        eprintln!("a job failed: {error}");
    }
}
// ANCHOR_END: semaphore

// ANCHOR: buffer_unordered
/// The jobs as a stream of futures, of which `buffer_unordered` runs up to `MOST_IN_FLIGHT`
/// at once, all inside this one task, and yields their outputs as they finish.
async fn with_buffer_unordered() {
    let mut finished = stream::iter(tasks(TASKS_TO_PROCESS))
        .map(|task| normal_task(task.number, task.time_to_execute))
        .buffer_unordered(MOST_IN_FLIGHT);
    // The loop's body is empty: all the work is in the stream.
    while let Some(()) = finished.next().await {}
}
// ANCHOR_END: buffer_unordered

// ANCHOR: for_each_concurrent
/// The same bound, when nothing is done with the outputs: one call, awaited once.
async fn with_for_each_concurrent() {
    stream::iter(tasks(TASKS_TO_PROCESS))
        .for_each_concurrent(MOST_IN_FLIGHT, |task| {
            normal_task(task.number, task.time_to_execute)
        })
        .await;
}
// ANCHOR_END: for_each_concurrent

// ANCHOR: trap_parameters
const TRAP_JOBS: u32 = 9;
const TRAP_IN_FLIGHT: usize = 3;
/// How long the service takes to answer one message.
const ROUND_TRIP: Duration = Duration::from_millis(250);
/// How long the slow job's single round trip takes.
const SLOW_ROUND_TRIP: Duration = Duration::from_millis(700);
/// Each job must be done within this, twice the longest service time.
const JOB_TIMEOUT: Duration = Duration::from_secs(2);
/// What the loop does with each result: say, write it to a database.
const WRITE_TIME: Duration = Duration::from_secs(1);
// ANCHOR_END: trap_parameters

// ANCHOR: request
/// A request that takes `round_trips` exchanges with the service, one after another. Like a
/// real client's, each exchange starts only when the future is polled again after the last.
async fn request(round_trips: u32, round_trip: Duration) {
    for _ in 0..round_trips {
        tokio::time::sleep(round_trip).await;
    }
}

/// Three kinds of job in turn: chatty (four round trips), quick (one) and slow (one, longer).
/// None needs more than 1 s of the service's time.
fn service(number: u32) -> (u32, Duration) {
    match number % 3 {
        0 => (4, ROUND_TRIP),
        1 => (1, ROUND_TRIP),
        _ => (1, SLOW_ROUND_TRIP),
    }
}

#[derive(Debug, Clone, Copy)]
enum Outcome {
    Completed,
    TimedOut,
}

/// One job: its request, within `JOB_TIMEOUT` of its first poll.
async fn job(number: u32) -> (u32, Outcome) {
    let (round_trips, round_trip) = service(number);
    match tokio::time::timeout(JOB_TIMEOUT, request(round_trips, round_trip)).await {
        Ok(()) => (number, Outcome::Completed),
        Err(_elapsed) => (number, Outcome::TimedOut),
    }
}
// ANCHOR_END: request

// ANCHOR: trap
/// The jobs through `buffer_unordered`, and a loop that writes each result as it comes.
async fn trap() {
    let mut results = stream::iter(0..TRAP_JOBS)
        .map(job)
        .buffer_unordered(TRAP_IN_FLIGHT);
    let mut tally = Tally::default();
    while let Some((number, outcome)) = results.next().await {
        // While this awaits, nothing polls the jobs inside `results`: they stand still.
        write_result(number, outcome, &mut tally).await;
    }
    tally.print();
}
// ANCHOR_END: trap

// ANCHOR: trap_fixed
/// The same, but each job is a task of its own, which the runtime polls whatever the loop is
/// doing. The stream now buffers the tasks' handles: still at most three jobs exist at once.
async fn trap_fixed() {
    let mut results = stream::iter(0..TRAP_JOBS)
        .map(|number| {
            let handle = tokio::spawn(job(number));
            // Dropping a `JoinHandle` would let its task run on, detached. The guard aborts
            // the task if the stream is dropped before the job is done, as dropping a plain
            // future in the buffer would cancel it; aborting a task that is done does nothing.
            let abort = AbortOnDrop(handle.abort_handle());
            async move {
                let _abort = abort;
                handle.await
            }
        })
        .buffer_unordered(TRAP_IN_FLIGHT);
    let mut tally = Tally::default();
    while let Some(finished) = results.next().await {
        match finished {
            Ok((number, outcome)) => write_result(number, outcome, &mut tally).await,
            Err(error) => eprintln!("a job failed: {error}"),
        }
    }
    tally.print();
}

/// Aborts a task when dropped.
struct AbortOnDrop(AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
// ANCHOR_END: trap_fixed

// ANCHOR: from_file
/// The work, read from a file of job numbers, one a line, as the loop asks for the next job:
/// only a block of the file and the line being read are in memory, however long the file.
/// `BufReader` reads the blocks, a few kilobytes each, with the standard library's blocking
/// reads; `lines()` hands them out a line at a time.
fn tasks_from(file: File) -> impl Iterator<Item = Result<Task, BadLine>> {
    BufReader::new(file)
        .lines()
        .enumerate()
        .map(|(index, line)| {
            let bad = |problem: String| BadLine {
                line: index + 1,
                problem,
            };
            let text = line.map_err(|error| bad(error.to_string()))?;
            let number = text
                .trim()
                .parse()
                .map_err(|error| bad(format!("{text:?} is not a job number: {error}")))?;
            Ok(Task {
                number,
                time_to_execute: Duration::from_secs(1),
            })
        })
}

/// A line that could not be read, or is not a job number.
#[derive(Debug)]
struct BadLine {
    line: usize,
    problem: String,
}

impl fmt::Display for BadLine {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "line {}: {}", self.line, self.problem)
    }
}
// ANCHOR_END: from_file

// ANCHOR: write_result
/// Stands for the work the loop does with each result, such as storing it: it takes
/// `WRITE_TIME`, then prints the result.
async fn write_result(number: u32, outcome: Outcome, tally: &mut Tally) {
    tokio::time::sleep(WRITE_TIME).await;
    let (round_trips, round_trip) = service(number);
    let service_time = round_trip * round_trips;
    match outcome {
        Outcome::Completed => tally.completed += 1,
        Outcome::TimedOut => tally.timed_out += 1,
    }
    let outcome = match outcome {
        Outcome::Completed => "completed".to_string(),
        Outcome::TimedOut => format!("timed out after {} s", JOB_TIMEOUT.as_secs()),
    };
    println!(
        "task_number={number} round_trips={round_trips} service_time_in_seconds={}: {outcome}",
        service_time.as_secs_f64()
    );
}

#[derive(Default)]
struct Tally {
    completed: u32,
    timed_out: u32,
}

impl Tally {
    fn print(&self) {
        println!(
            "jobs: completed={} timed_out={}",
            self.completed, self.timed_out
        );
    }
}
// ANCHOR_END: write_result

// ANCHOR: in_flight
/// How many jobs run now, and the most that ever ran at once. A `static`, so that every job
/// reaches it without being handed it; atomic, so that tasks on any thread may change it.
struct InFlight {
    now: AtomicUsize,
    most: AtomicUsize,
}

static IN_FLIGHT: InFlight = InFlight {
    now: AtomicUsize::new(0),
    most: AtomicUsize::new(0),
};

impl InFlight {
    /// Counts one more job in flight, until the value returned is dropped.
    fn enter(&'static self) -> Counted {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        Counted(self)
    }
}

/// One job in flight: dropping it, however the job ends, counts it out.
struct Counted(&'static InFlight);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}
// ANCHOR_END: in_flight

// ANCHOR: timer
/// Prints how long it lived when it is dropped, like the article's `timer()` context manager:
/// `Drop` runs at the end of the scope however the scope is left, as `finally` does.
struct Timer(Instant);

impl Timer {
    fn start() -> Timer {
        // `tokio::time::Instant` is monotonic: it never jumps back when the wall clock is set.
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
// ANCHOR_END: timer

/// The ways of bounding the work, and the trap.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Method {
    /// A `Semaphore` of 50 permits and a task per job, in a `JoinSet` (the only one `--from`
    /// feeds).
    Semaphore,
    /// A stream of jobs and `buffer_unordered(50)`.
    BufferUnordered,
    /// A stream of jobs and `for_each_concurrent(50)`.
    ForEachConcurrent,
    /// A few jobs through `buffer_unordered` and a loop that is slow with each result.
    Trap,
    /// The same jobs and loop, each job spawned as a task of its own.
    TrapFixed,
}

// ANCHOR: main
async fn run(method: Method, job_file: Option<File>) -> Result<(), BadLine> {
    let _timer = Timer::start();
    match method {
        Method::Semaphore => match job_file {
            Some(file) => with_semaphore(tasks_from(file)).await?,
            // The built-in source cannot fail: `Ok` wraps each of its descriptions.
            None => with_semaphore(tasks(TASKS_TO_PROCESS).map(Ok)).await?,
        },
        // `job_file` refuses `--from` with the other methods.
        Method::BufferUnordered => with_buffer_unordered().await,
        Method::ForEachConcurrent => with_for_each_concurrent().await,
        // The trap's runs print a tally of their own, and no gauge.
        Method::Trap => {
            trap().await;
            return Ok(());
        }
        Method::TrapFixed => {
            trap_fixed().await;
            return Ok(());
        }
    }
    println!("most in flight: {}", IN_FLIGHT.most.load(Ordering::SeqCst));
    Ok(())
}
// ANCHOR_END: main

// ANCHOR: runtime
/// Which clock tokio's timers follow: the real one, or tokio's paused clock, on which a sleep
/// completes at once and the time it would have taken is added to a virtual clock.
#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
enum Clock {
    /// Wait for real.
    Real,
    /// Run on tokio's paused clock: at once, with virtual time.
    Paused,
}

/// The Rust Playground, where the book's Run button sends this file, stops a program after a
/// few seconds. It builds every program as a crate named `playground`, so there the default is
/// the paused clock; everywhere else it is the real one.
fn default_clock() -> Clock {
    if option_env!("CARGO_PKG_NAME") == Some("playground") {
        Clock::Paused
    } else {
        Clock::Real
    }
}

/// What `#[tokio::main]` would build, written out so that the clock can be chosen at run time.
fn runtime(clock: Clock) -> std::io::Result<tokio::runtime::Runtime> {
    match clock {
        // The default of `#[tokio::main]`: one worker thread per core.
        Clock::Real => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
        // The paused clock needs the single-threaded runtime.
        Clock::Paused => {
            // A note, not a result: if stderr cannot take it, the run goes on all the same.
            let _ = writeln!(
                std::io::stderr(),
                "note: tokio's clock is paused: sleeps take no real time, elapsed is virtual"
            );
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .start_paused(true)
                .build()
        }
    }
}
// ANCHOR_END: runtime

/// Runs 1000 jobs of 1 s, 50 at a time, without a queue, then prints the elapsed time.
#[derive(clap::Parser)]
#[command(name = "ch06_bounded", version)]
struct Options {
    /// How to bound the number of jobs in flight.
    #[arg(long = "with", value_enum, default_value_t = Method::Semaphore)]
    method: Method,
    /// Read the job numbers from FILE, one a line, instead of numbering 1000 jobs.
    #[arg(long, value_name = "FILE")]
    from: Option<PathBuf>,
    /// Which clock the sleeps follow.
    #[arg(long, value_enum, default_value_t = default_clock())]
    clock: Clock,
}

/// Opens the file `--from` names, before any work starts. A file that cannot be opened, or
/// `--from` with another method than the semaphore, ends the program as a bad command line
/// does: one line of error and exit status 2.
fn job_file(options: &Options) -> Option<File> {
    let path = options.from.as_ref()?;
    let refuse = |message: String| -> ! {
        eprintln!("error: {message}");
        std::process::exit(2);
    };
    if !matches!(options.method, Method::Semaphore) {
        refuse("'--from <FILE>' works only with '--with semaphore' (see --help)".to_string());
    }
    match File::open(path) {
        Ok(file) => Some(file),
        Err(error) => refuse(format!("cannot read {}: {error}", path.display())),
    }
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

fn main() -> ExitCode {
    exit_cleanly_when_the_environment_fails();
    // A bad command line ends here, with one line of error and exit status 2.
    let options = read_options();
    let job_file = job_file(&options);
    // ANCHOR: block_on
    match runtime(options.clock) {
        Ok(runtime) => match runtime.block_on(run(options.method, job_file)) {
            Ok(()) => ExitCode::SUCCESS,
            // A malformed line, found when the loop reached it: status 2, as for a bad
            // command line, since the input is at fault and not the program.
            Err(bad_line) => {
                let path = options.from.unwrap_or_default();
                eprintln!("error: {}: {bad_line}", path.display());
                ExitCode::from(2)
            }
        },
        Err(error) => {
            eprintln!("error: cannot start the tokio runtime: {error}");
            ExitCode::FAILURE
        }
    }
    // ANCHOR_END: block_on
}
