//! Chapter 5: unreliable tasks.
//!
//! One consumer runs four tasks: one that works, one that is stuck, one that fails with an
//! error it declares, and one that panics. A timeout bounds each attempt; every failure is
//! reported; a timeout may be retried, with a fresh attempt.
//! Run it with `cargo run --bin ch05_unreliable`; `--help` lists the options.

use std::fmt;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

// ANCHOR: task
/// A stand-in for one piece of I/O work (a request, a query): it waits, then reports.
///
/// `task_number` is a `u32` and the time a `Duration`, so neither can be negative:
/// the types enforce what the article's annotations only describe.
async fn normal_task(task_number: u32, time_to_execute: Duration) {
    tokio::time::sleep(time_to_execute).await;
    println!(
        "processed task with task_number={task_number} time_to_execute_in_seconds={} behavior=normal-sleep",
        time_to_execute.as_secs_f64()
    );
}
// ANCHOR_END: task

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

const QUEUE_BOUND: usize = 10;

// ANCHOR: tasks
/// How a task behaves when it runs: the article's four cases.
#[derive(Debug, Clone, Copy)]
enum Behavior {
    /// Sleeps, then reports: 1 s for the normal task, 1000 s for the stuck one.
    Sleep(Duration),
    /// Fails with an error its signature declares (the article's `ValueError`).
    ExpectedError,
    /// Panics: a bug nobody planned for (the article's `ZeroDivisionError`).
    Panic,
}

/// The description of one task: what the queue carries, and what a retry starts again from.
#[derive(Debug, Clone, Copy)]
struct Task {
    number: u32,
    behavior: Behavior,
}

/// The errors a task declares. Its callers must handle them: the compiler checks.
#[derive(Debug)]
enum TaskError {
    InvalidInput { task_number: u32 },
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::InvalidInput { task_number } => {
                write!(f, "invalid input for task {task_number}")
            }
        }
    }
}

/// One attempt at a task: a new future, built from the description, each time it is called.
async fn run_task(task: Task) -> Result<(), TaskError> {
    match task.behavior {
        Behavior::Sleep(time_to_execute) => {
            normal_task(task.number, time_to_execute).await;
            Ok(())
        }
        Behavior::ExpectedError => Err(TaskError::InvalidInput {
            task_number: task.number,
        }),
        Behavior::Panic => panic!("did not expect that?"),
    }
}
// ANCHOR_END: tasks

// ANCHOR: attempt
/// How one attempt ended.
enum Outcome {
    Done,
    TimedOut,
    Failed(TaskError),
    Panicked(String),
    /// Only a runtime that shuts down cancels an attempt here. Reported all the same.
    Cancelled,
}

/// Runs one attempt on a tokio task of its own, so that a panic stays inside that task,
/// and gives up on it after `limit`.
async fn attempt(task: Task, limit: Duration) -> Outcome {
    // The timeout runs inside the spawned task, around the work itself. When it expires, the
    // task ends, dropping the `Timeout` and the work's future inside it: that cancels it. A timeout
    // around the `JoinHandle` instead would only drop the handle, and dropping a handle
    // detaches a task without stopping it: the stuck work would go on in the background.
    let handle = tokio::spawn(tokio::time::timeout(limit, run_task(task)));
    // Three layers of `Result`, outermost first: did the spawned task finish (or panic)?
    // Did the work beat the timeout? Did the work succeed?
    match handle.await {
        Ok(Ok(Ok(()))) => Outcome::Done,
        Ok(Ok(Err(error))) => Outcome::Failed(error),
        Ok(Err(_elapsed)) => Outcome::TimedOut,
        Err(join_error) => match join_error.try_into_panic() {
            Ok(payload) => Outcome::Panicked(panic_message(payload.as_ref())),
            Err(_cancelled) => Outcome::Cancelled,
        },
    }
}

/// The text a panic was raised with. A panic can carry a value of any type (`dyn Any`);
/// `panic!` with a literal carries a `&str`, with a formatted message a `String`.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text.to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_string()
    }
}
// ANCHOR_END: attempt

// ANCHOR: consumer
/// How hard the consumer tries: the time each attempt gets, and how many attempts a task gets.
#[derive(Clone, Copy)]
struct Policy {
    timeout: Duration,
    attempts: u32,
}

impl Outcome {
    /// A call that hung may go through next time. Invalid input will be as invalid, and a panic
    /// is a bug: running it again would only hide it.
    fn is_worth_retrying(&self) -> bool {
        matches!(self, Outcome::TimedOut)
    }
}

/// Prints what one attempt came to, and what happens next.
fn report(task: Task, attempt_number: u32, policy: Policy, outcome: &Outcome, retry: bool) {
    let n = task.number;
    let tries = format!("attempt={attempt_number}/{}", policy.attempts);
    let then = if retry { "retry" } else { "give-up" };
    match outcome {
        // `normal_task` has printed its own line.
        Outcome::Done => {}
        Outcome::TimedOut => {
            let limit = policy.timeout.as_secs_f64();
            println!(
                "timed out task with task_number={n} {tries} timeout_in_seconds={limit} then={then}"
            );
        }
        Outcome::Failed(error) => {
            println!("failed task with task_number={n} {tries} error=\"{error}\" then={then}");
        }
        Outcome::Panicked(message) => {
            println!("panicked task with task_number={n} {tries} panic=\"{message}\" then={then}");
        }
        Outcome::Cancelled => println!("cancelled task with task_number={n} {tries} then={then}"),
    }
}

/// How many tasks ended each way, for the summary line.
#[derive(Default)]
struct Tally {
    processed: u32,
    timed_out: u32,
    failed: u32,
    panicked: u32,
    cancelled: u32,
}

impl Tally {
    fn count(&mut self, last: &Outcome) {
        let counter = match last {
            Outcome::Done => &mut self.processed,
            Outcome::TimedOut => &mut self.timed_out,
            Outcome::Failed(_) => &mut self.failed,
            Outcome::Panicked(_) => &mut self.panicked,
            Outcome::Cancelled => &mut self.cancelled,
        };
        *counter += 1;
    }
}

/// Takes tasks until the queue closes. No task can stop it: each ends in a line of output.
async fn consumer(mut queue: mpsc::Receiver<Task>, policy: Policy) -> Tally {
    let mut tally = Tally::default();
    while let Some(task) = queue.recv().await {
        let mut attempt_number = 1;
        let last = loop {
            // A fresh future, made from the description, for every attempt.
            let outcome = attempt(task, policy.timeout).await;
            let retry = outcome.is_worth_retrying() && attempt_number < policy.attempts;
            report(task, attempt_number, policy, &outcome, retry);
            if !retry {
                break outcome;
            }
            attempt_number += 1;
        };
        tally.count(&last);
    }
    tally
}
// ANCHOR_END: consumer

// ANCHOR: producer
async fn producer(queue: mpsc::Sender<Task>) {
    let tasks = [
        Behavior::Sleep(Duration::from_secs(1)),
        Behavior::Sleep(Duration::from_secs(1000)), // stuck
        Behavior::ExpectedError,
        Behavior::Panic,
    ];
    for (number, behavior) in (0..).zip(tasks) {
        if queue.send(Task { number, behavior }).await.is_err() {
            return;
        }
    }
    println!("all tasks sent, closing the queue");
}
// ANCHOR_END: producer

// ANCHOR: main
async fn run(policy: Policy) {
    let _timer = Timer::start();
    // Bounded, as every queue should be. The article's queue here has no bound; with four tasks
    // it makes no difference, with a producer faster than its consumer it is a memory leak.
    let (sender, receiver) = mpsc::channel(QUEUE_BOUND);
    let consumer = tokio::spawn(consumer(receiver, policy));
    producer(sender).await;
    match consumer.await {
        Ok(tally) => println!(
            "summary: processed={} timed_out={} failed={} panicked={} cancelled={}",
            tally.processed, tally.timed_out, tally.failed, tally.panicked, tally.cancelled
        ),
        // The consumer catches every task's panic; it can still panic itself if printing fails
        // (standard output closed, say). Then there is nobody left to report to but stderr.
        Err(error) => eprintln!("the consumer failed: {error}"),
    }
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

/// Runs four unreliable tasks through one consumer, then prints the elapsed time.
#[derive(clap::Parser)]
#[command(name = "ch05_unreliable", version)]
struct Options {
    /// How long one attempt may take, in seconds, from 0.001 to 3600.
    #[arg(long, value_name = "SECONDS", default_value = "10",
          value_parser = |value: &str| seconds_between(value, 0.001, 3600.0))]
    timeout: Duration,
    /// Attempts per task, from 1 to 10. Only a timeout is retried: an expected error or a
    /// panic would fail again.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=10))]
    attempts: u32,
    /// Which clock the sleeps follow.
    #[arg(long, value_enum, default_value_t = default_clock())]
    clock: Clock,
}

/// A number of seconds from `min` to `max`, for clap: `--timeout 2.5`. Written so that NaN and
/// infinities are refused too.
fn seconds_between(value: &str, min: f64, max: f64) -> Result<Duration, String> {
    let seconds: f64 = value
        .parse()
        .map_err(|_| format!("expected a number of seconds, got {value:?}"))?;
    if !(min..=max).contains(&seconds) {
        return Err(format!("expected {min} to {max} seconds, got {value}"));
    }
    Ok(Duration::from_secs_f64(seconds))
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
    // ANCHOR: block_on
    match runtime(options.clock) {
        Ok(runtime) => {
            runtime.block_on(run(Policy {
                timeout: options.timeout,
                attempts: options.attempts,
            }));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: cannot start the tokio runtime: {error}");
            ExitCode::FAILURE
        }
    }
    // ANCHOR_END: block_on
}
