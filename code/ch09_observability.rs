//! Chapter 9: seeing what the pipeline does.
//!
//! 200 jobs on 20 consumers, some slow, some failing. Each attempt at a job is a `tracing` span
//! with its job number and attempt; its end is an event with the outcome and duration. Logs
//! are readable by default, JSON lines with `--log-format json`, filtered by `RUST_LOG`. A
//! progress bar shows on a terminal, and nowhere else. The run ends with a report: throughput,
//! latency percentiles and failures by kind.
//! Run it with `cargo run --bin ch09_observability`; `--help` lists the options.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{Instrument, info, info_span, warn};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

const JOBS: u32 = 200;
const CONSUMERS: usize = 20;
const TIMEOUT: Duration = Duration::from_millis(300);
const ATTEMPTS: u32 = 2;

// ANCHOR: jobs
/// Why a job failed, as the logs and the report name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Failure {
    InvalidInput,
    Timeout,
}

impl Failure {
    fn name(self) -> &'static str {
        match self {
            Failure::InvalidInput => "invalid_input",
            Failure::Timeout => "timeout",
        }
    }
}

/// The work: a latency between 20 and 200 ms that depends on the job, an invalid input for
/// every 17th job, and a call that hangs for every 23rd.
async fn work(number: u32) -> Result<(), Failure> {
    if number % 17 == 16 {
        return Err(Failure::InvalidInput);
    }
    let millis = if number % 23 == 22 {
        5_000
    } else {
        20 + (number * 37) % 181
    };
    tokio::time::sleep(Duration::from_millis(millis.into())).await;
    Ok(())
}
// ANCHOR_END: jobs

// ANCHOR: attempt
/// One attempt, inside a span that names the job and the attempt: every event logged while
/// it runs carries both, and its end is logged with its outcome and duration.
async fn attempt(number: u32, attempt: u32) -> Result<(), Failure> {
    let span = info_span!("task", task_number = number, attempt);
    async move {
        let started = Instant::now();
        let outcome = match tokio::time::timeout(TIMEOUT, work(number)).await {
            Ok(result) => result,
            Err(_elapsed) => Err(Failure::Timeout),
        };
        let duration_ms = started.elapsed().as_millis() as u64;
        match outcome {
            Ok(()) => info!(outcome = "done", duration_ms, "task finished"),
            Err(failure) => warn!(outcome = failure.name(), duration_ms, "task finished"),
        }
        outcome
    }
    .instrument(span)
    .await
}

/// What the report needs from each job.
struct Finished {
    duration: Duration,
    outcome: Result<(), Failure>,
}

/// Takes jobs until the queue closes; a timeout is retried once, an invalid input never.
async fn consumer(
    jobs: Arc<tokio::sync::Mutex<mpsc::Receiver<u32>>>,
    progress: ProgressBar,
) -> Vec<Finished> {
    let mut finished = Vec::new();
    loop {
        // Not `while let Some(number) = jobs.lock().await.recv().await`: a temporary in a
        // `while let` lives until the end of the loop's body, and the lock with it, so the
        // consumers would take turns. A `let` statement drops it at its semicolon.
        let Some(number) = jobs.lock().await.recv().await else {
            break;
        };
        let started = Instant::now();
        let mut outcome = attempt(number, 1).await;
        for retry in 2..=ATTEMPTS {
            if outcome != Err(Failure::Timeout) {
                break;
            }
            outcome = attempt(number, retry).await;
        }
        finished.push(Finished {
            duration: started.elapsed(),
            outcome,
        });
        progress.inc(1);
    }
    finished
}
// ANCHOR_END: attempt

// ANCHOR: report
/// The value below which `share` of the sorted `values` fall (nearest rank).
fn percentile(sorted: &[Duration], share: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (share * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn report(finished: &[Finished], elapsed: Duration) {
    let done = finished.iter().filter(|job| job.outcome.is_ok()).count();
    let mut failures: BTreeMap<&str, usize> = BTreeMap::new();
    for job in finished {
        if let Err(failure) = job.outcome {
            *failures.entry(failure.name()).or_default() += 1;
        }
    }
    // The latency of the jobs that succeeded: a failure's latency is another figure, and the
    // failures that return at once would make the service look faster than it is.
    let mut durations: Vec<Duration> = finished
        .iter()
        .filter(|job| job.outcome.is_ok())
        .map(|job| job.duration)
        .collect();
    durations.sort();
    let seconds = elapsed.as_secs_f64();
    println!(
        "report: tasks={} done={done} failed={} elapsed={seconds:.2}s throughput={:.1}/s",
        finished.len(),
        finished.len() - done,
        finished.len() as f64 / seconds,
    );
    println!(
        "latency: p50={:.3}s p95={:.3}s p99={:.3}s",
        percentile(&durations, 0.50).as_secs_f64(),
        percentile(&durations, 0.95).as_secs_f64(),
        percentile(&durations, 0.99).as_secs_f64(),
    );
    let failures: Vec<String> = failures
        .iter()
        .map(|(kind, n)| format!("{kind}={n}"))
        .collect();
    println!("failures: {}", failures.join(" "));
}
// ANCHOR_END: report

// ANCHOR: run
async fn run(progress: ProgressBar) {
    let _timer = Timer::start();
    let started = Instant::now();
    let (sender, receiver) = mpsc::channel(CONSUMERS * 2);
    let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
    let mut consumers = JoinSet::new();
    for _ in 0..CONSUMERS {
        consumers.spawn(consumer(Arc::clone(&receiver), progress.clone()));
    }
    drop(receiver);
    for number in 0..JOBS {
        if sender.send(number).await.is_err() {
            break;
        }
    }
    drop(sender);
    let mut finished = Vec::new();
    while let Some(result) = consumers.join_next().await {
        match result {
            Ok(jobs) => finished.extend(jobs),
            Err(error) => tracing::error!(%error, "a consumer failed"),
        }
    }
    progress.finish_and_clear();
    report(&finished, started.elapsed());
}
// ANCHOR_END: run

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

// ANCHOR: logging
/// Where the logs go: standard error, with the progress bar lifted out of the way while a line
/// is written, so that the two never garble each other.
#[derive(Clone)]
struct LogWriter(ProgressBar);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.suspend(|| std::io::stderr().write_all(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// How the logs are written.
#[derive(Clone, Copy, PartialEq)]
enum LogFormat {
    Readable,
    Json,
}

/// Sets up logging and the progress bar. `RUST_LOG` chooses what is logged (`info` when unset);
/// the bar, and colours, only appear when standard error is a terminal.
fn observe(format: LogFormat) -> Result<ProgressBar, String> {
    let terminal = std::io::stderr().is_terminal();
    let progress = if terminal {
        let bar = ProgressBar::with_draw_target(Some(JOBS.into()), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{bar:40} {pos}/{len} jobs, {per_sec}, eta {eta}")
            .map_err(|error| format!("progress bar template: {error}"))?;
        bar.with_style(style)
    } else {
        ProgressBar::hidden()
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => EnvFilter::try_new(&directives)
            .map_err(|error| format!("RUST_LOG={directives:?}: {error}"))?,
        _ => EnvFilter::new("info"),
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(LogWriter(progress.clone()))
        .with_ansi(terminal);
    let installed = match format {
        LogFormat::Readable => logs.compact().try_init(),
        LogFormat::Json => logs
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    installed.map_err(|error| format!("cannot set up logging: {error}"))?;
    Ok(progress)
}
// ANCHOR_END: logging

/// Which clock tokio's timers follow: the real one, or tokio's paused clock, on which a sleep
/// completes at once and the time it would have taken is added to a virtual clock.
#[derive(Clone, Copy, PartialEq)]
enum Clock {
    Real,
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
            eprintln!(
                "note: tokio's clock is paused: sleeps take no real time, elapsed is virtual"
            );
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .start_paused(true)
                .build()
        }
    }
}

const USAGE: &str = "\
Usage: ch09_observability [--log-format readable|json] [--clock real|paused]

Runs 200 jobs on 20 consumers, some slow and some failing, logging each attempt to standard
error and printing a report (throughput, latency percentiles, failures by kind) at the end.
RUST_LOG filters the logs, as in RUST_LOG=warn or RUST_LOG=ch09_observability=debug (default:
info). A progress bar shows while standard error is a terminal.

Options:
  --log-format readable|json  readable: one line per event (the default);
                              json: one JSON object per line, for a log pipeline
  --clock real|paused         real: wait for real (the default);
                              paused: run on tokio's paused clock (instant, virtual time)
  -h, --help                  print this help
";

/// Reads the command line: `Ok(None)` asks for the help, `Err` carries the message for a bad one.
fn parse_args(
    mut args: impl Iterator<Item = String>,
) -> Result<Option<(LogFormat, Clock)>, String> {
    let mut format = LogFormat::Readable;
    let mut clock = default_clock();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--log-format" => {
                format = match args.next().as_deref() {
                    Some("readable") => LogFormat::Readable,
                    Some("json") => LogFormat::Json,
                    Some(other) => {
                        return Err(format!(
                            "--log-format: expected readable or json, got {other:?}"
                        ));
                    }
                    None => return Err("--log-format needs a value: readable or json".into()),
                }
            }
            "--clock" => {
                clock = match args.next().as_deref() {
                    Some("real") => Clock::Real,
                    Some("paused") => Clock::Paused,
                    Some(other) => {
                        return Err(format!("--clock: expected real or paused, got {other:?}"));
                    }
                    None => return Err("--clock needs a value: real or paused".into()),
                }
            }
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    Ok(Some((format, clock)))
}

fn main() -> ExitCode {
    let (format, clock) = match parse_args(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let progress = match observe(format) {
        Ok(progress) => progress,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    match runtime(clock) {
        Ok(runtime) => {
            runtime.block_on(run(progress));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: cannot start the tokio runtime: {error}");
            ExitCode::FAILURE
        }
    }
}
