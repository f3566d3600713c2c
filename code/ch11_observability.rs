//! Chapter 11: seeing what the pipeline does.
//!
//! 200 jobs on 20 consumers, some slow, some failing. Each attempt at a job is a `tracing` span
//! with its job number and attempt; its end is an event with the outcome and duration. Logs
//! are readable by default, JSON lines with `--log-format json`, filtered by `RUST_LOG`. A
//! progress bar shows on a terminal, and nowhere else. The run ends with a report: throughput,
//! latency percentiles and failures by kind.
//! Run it with `cargo run --bin ch11_observability`; `--help` lists the options.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::level_filters::LevelFilter;
use tracing::{Instrument, info, warn, warn_span};
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
    // The span is at `warn`, the level of the most severe event inside it, because `RUST_LOG`
    // filters spans by level as it does events: an `info` span does not exist at
    // `RUST_LOG=warn`, and the warnings, the very lines kept, would lose the job's number.
    let span = warn_span!("task", task_number = number, attempt);
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
#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
enum LogFormat {
    /// One line per event, for a person.
    Readable,
    /// One JSON object per line, for a log pipeline.
    Json,
}

/// Sets up logging, filtered by `filter`, and the progress bar. The bar, and colours, only
/// appear when standard error is a terminal.
fn observe(format: LogFormat, filter: EnvFilter, clock: Clock) -> Result<ProgressBar, String> {
    let terminal = std::io::stderr().is_terminal();
    let progress = if terminal {
        let bar = ProgressBar::with_draw_target(Some(JOBS.into()), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{bar:40} {pos}/{len} jobs, {per_sec}, eta {eta}")
            .map_err(|error| format!("progress bar template: {error}"))?;
        bar.with_style(style)
    } else {
        ProgressBar::hidden()
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(LogWriter(progress.clone()))
        .with_ansi(terminal)
        // A log line that cannot be written is lost, and the run goes on: the logs are a view
        // of the run, not its result, which is the report on standard output. By default the
        // subscriber reports a failed write with `eprintln!`, on the very stderr that failed
        // (a full disk, `2>/dev/full`), and `eprintln!` panics when it cannot write: the run
        // would end with no report. Nowhere is left to say that a log was lost, so it is not.
        .log_internal_errors(false);
    // Each line starts with the date and time, in UTC. Not on the paused clock, where they would
    // say when the run was made, not when in the run a thing happened; without them, the lines
    // of a paused run are the same every time, and a test compares them with a file.
    let installed = match (format, clock) {
        (LogFormat::Readable, Clock::Real) => logs.compact().try_init(),
        (LogFormat::Readable, Clock::Paused) => logs.compact().without_time().try_init(),
        (LogFormat::Json, clock) => {
            let json = logs.json().with_current_span(true).with_span_list(false);
            match clock {
                Clock::Real => json.try_init(),
                Clock::Paused => json.without_time().try_init(),
            }
        }
    };
    installed.map_err(|error| format!("cannot set up logging: {error}"))?;
    Ok(progress)
}

/// The target of every span and event in this file: its module's path, `ch11_observability`.
const TARGET: &str = module_path!();

/// The filter `RUST_LOG` asks for; `info` when it is unset or empty. `EnvFilter` accepts many
/// mistakes that then log nothing at all, so these are refused, before the run rather than
/// after it: what `EnvFilter` cannot parse; a bare word that is neither a level nor this
/// program's target (`warning` reads as "everything under the target `warning`"); a level
/// where a target goes (`info=`); a target a letter or two away from this program's, or it
/// in capitals (`ch11_observabilty=debug`, `ch11-observability=debug`); an empty span name
/// (`[]`). Other crates' targets, such as `hyper=warn`, are left alone: they log nothing
/// here, but the same `RUST_LOG` may be meant for several programs.
fn log_filter() -> Result<EnvFilter, String> {
    let value = std::env::var_os("RUST_LOG").unwrap_or_default();
    let value = value
        .to_str()
        .ok_or_else(|| format!("RUST_LOG={value:?} is not UTF-8"))?;
    // Trimmed, because `EnvFilter` would read the space in `info, warn` as part of a target.
    let directives: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|directive| !directive.is_empty())
        .collect();
    let builder = EnvFilter::builder().with_default_directive(LevelFilter::INFO.into());
    for directive in &directives {
        // One at a time, to name the bad one. `parse` refuses what the lossy
        // `EnvFilter::from_env` would skip, with a note on standard error, and then ignore.
        if let Err(error) = builder.parse(directive) {
            return Err(format!(
                "RUST_LOG={value:?}: {directive:?} does not parse: {error}"
            ));
        }
        if let Some(mistake) = mistake_in(directive) {
            return Err(format!("RUST_LOG={value:?}: {directive:?} {mistake}"));
        }
    }
    builder
        .parse(directives.join(","))
        .map_err(|error| format!("RUST_LOG={value:?}: {error}"))
}
// ANCHOR_END: logging

/// What is wrong with a directive that `EnvFilter` parses, if it is one of the mistakes that
/// `log_filter` refuses.
fn mistake_in(directive: &str) -> Option<String> {
    // A directive is `target[span{field=value}]=level`, every part optional.
    let target = directive.split(['[', '=']).next().unwrap_or_default();
    // Not the empty word, which `LevelFilter` reads as `error`.
    let is_level = |word: &str| !word.is_empty() && word.parse::<LevelFilter>().is_ok();
    // `EnvFilter` matches a target by its start: `ch11` is this program's target too.
    let is_ours = TARGET.starts_with(target);
    if target == directive {
        // A bare word is a level, or a target whose every event is wanted.
        return (!is_level(target) && !is_ours).then(|| {
            format!(
                "is neither a level (trace, debug, info, warn, error, off) \
                 nor this program's target ({TARGET})"
            )
        });
    }
    if is_level(target) {
        return Some(format!(
            "names {target:?} as a target: a level goes alone (RUST_LOG={target}) \
             or after a target ({TARGET}={target})"
        ));
    }
    if !target.is_empty() && !is_ours && edit_distance(&target.to_lowercase(), TARGET) <= 2 {
        return Some(format!(
            "names the target {target:?}, which is not this program's ({TARGET}): a typo?"
        ));
    }
    if directive
        .split_once('[')
        .is_some_and(|(_, span)| span.starts_with(']'))
    {
        return Some("filters on a span with an empty name, and no span has one".to_string());
    }
    None
}

/// How many letters must be inserted, deleted or replaced to turn `a` into `b` (Levenshtein).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    // The last row of the classic table: `row[j]` is the distance between the part of `a`
    // read so far and `b[..j]`.
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, a_char) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &b_char) in b.iter().enumerate() {
            let replaced = diagonal + usize::from(a_char != b_char);
            diagonal = row[j + 1];
            row[j + 1] = replaced.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// Which clock tokio's timers follow: the real one, or tokio's paused clock, on which a sleep
/// completes at once and the time it would have taken is added to a virtual clock.
#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
enum Clock {
    /// Wait for real.
    Real,
    /// Run on tokio's paused clock: at once, with virtual time, and logs without the time of day.
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

/// Runs 200 jobs on 20 consumers, some slow and some failing, logging each attempt to standard
/// error and printing a report (throughput, latency percentiles, failures by kind) at the end.
#[derive(clap::Parser)]
#[command(name = "ch11_observability", version, after_help = RUST_LOG_HELP)]
struct Options {
    /// How the logs are written.
    #[arg(long, value_enum, default_value_t = LogFormat::Readable)]
    log_format: LogFormat,
    /// Which clock the sleeps follow.
    #[arg(long, value_enum, default_value_t = default_clock())]
    clock: Clock,
}

const RUST_LOG_HELP: &str = "\
RUST_LOG filters the logs, as in RUST_LOG=warn or RUST_LOG=ch11_observability=debug (default:
info). Refused: what does not parse, a bare word that is neither a level nor ch11_observability,
a level as a target (info=), a target a letter or two from ch11_observability, an empty span
name ([]). A progress bar shows while standard error is a terminal.";

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
    // A bad RUST_LOG is bad input too: refused before any work starts.
    let filter = match log_filter() {
        Ok(filter) => filter,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let progress = match observe(options.log_format, filter, options.clock) {
        Ok(progress) => progress,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
    };
    match runtime(options.clock) {
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
