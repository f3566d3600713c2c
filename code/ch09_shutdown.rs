//! Chapter 9: graceful shutdown.
//!
//! Chapter 4's pipeline (smaller: 40 jobs of 1 s, 4 consumers), made to stop cleanly. On
//! Ctrl-C or SIGTERM it stops taking new work, gives the jobs in flight a grace period to
//! finish, cancels those still running when it ends, and reports what was and was not done.
//! A second Ctrl-C exits at once. Losing its output (a closed pipe, a full disk) stops it the
//! same graceful way.
//! Run it with `cargo run --bin ch09_shutdown`; `--help` lists the options.

use std::collections::BTreeSet;
use std::fmt::Arguments;
use std::io::Write;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const JOBS: u32 = 40;
const CONSUMERS: usize = 4;
const JOB_TIME: Duration = Duration::from_secs(1);

// ANCHOR: signals
/// Which signal asked us to stop.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Signal {
    Interrupt,
    Terminate,
}

impl Signal {
    fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }

    /// The status to exit with after this signal: 128 plus its number, what a shell shows for
    /// a process the signal killed. It is an exit all the same, and a parent can tell: dying of
    /// the signal would take restoring its default action, an `unsafe` call (see the page).
    fn exit_status(self) -> u8 {
        match self {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
        }
    }
}

/// Ctrl-C (SIGINT) and, on Unix, SIGTERM, which is what `kill`, systemd and Kubernetes send to
/// ask a process to stop. Creating the streams installs the handlers: from then on, those
/// signals no longer end the process by themselves, and one that arrives while nobody awaits
/// its stream is kept until somebody does. Kept, not counted: tokio records *that* a signal
/// came, so several that arrive before the stream is next polled come out of it as one.
#[cfg(unix)]
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    /// Installs the handlers. tokio's `signal` installs a signal's handler, then subscribes the
    /// new stream to it: a signal that comes in between, a few instructions later, is caught
    /// but can be handed out before the stream listens, and is then lost. That moment is
    /// tokio's to close, not ours: its runtime may deliver a signal on another thread at any
    /// time.
    fn listen() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.interrupt.recv() => Signal::Interrupt,
            _ = self.terminate.recv() => Signal::Terminate,
        }
    }
}

/// Elsewhere, Ctrl-C only. `ctrl_c()` installs its handler when it is first polled, not here.
#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn listen() -> std::io::Result<Signals> {
        Ok(Signals)
    }

    async fn next(&mut self) -> Signal {
        match tokio::signal::ctrl_c().await {
            Ok(()) => Signal::Interrupt,
            Err(_) => std::future::pending().await,
        }
    }
}

/// The signal that asked for the stop, and when it came.
#[derive(Clone, Copy)]
struct Stop {
    signal: Signal,
    at: Instant,
}

/// The first signal asks for a graceful stop; a second one means: now. It is handed signals
/// already listened for (see `main`): a task runs only when the runtime gets round to it.
/// Its acknowledgements are notes for the user at the terminal, written with `writeln!` and
/// the error ignored: a stderr that cannot take them (`2>/dev/full`) must not stop the stop.
async fn watch_signals(
    mut signals: Signals,
    stop: CancellationToken,
    first: Arc<Mutex<Option<Stop>>>,
) {
    let signal = signals.next().await;
    let at = Instant::now();
    *first.lock().unwrap_or_else(PoisonError::into_inner) = Some(Stop { signal, at });
    let _ = writeln!(
        std::io::stderr(),
        "{}: finishing the jobs in flight; again to exit at once",
        signal.name()
    );
    stop.cancel();
    let signal = signals.next().await;
    let _ = writeln!(std::io::stderr(), "{}: exiting at once", signal.name());
    std::process::exit(signal.exit_status().into());
}
// ANCHOR_END: signals

// ANCHOR: output
/// Standard output, which can go away under a running program. `ch09_shutdown | tee log`
/// then Ctrl-C: the terminal sends SIGINT to `tee` as well, which dies of it, and from then
/// on every write to the pipe fails. `println!` panics when a write fails: each consumer
/// would die with a panic trace on its next line, in the middle of the grace period (or, with
/// the panic hook at the bottom of this file, the whole process at the first one), and the
/// report would be lost. So the lines are written with `writeln!`, whose error is a value.
/// The first error is kept and stdout is not written to again. It also stops the run, the way
/// a signal does: results that nobody can read are not worth more work, and the jobs in flight
/// still get their grace period. The report then goes to stderr, which is still the terminal.
struct Output {
    /// The first error writing to stdout.
    failed: OnceLock<std::io::Error>,
    /// Cancelled on that first error.
    stop: CancellationToken,
}

impl Output {
    fn new(stop: CancellationToken) -> Output {
        Output {
            failed: OnceLock::new(),
            stop,
        }
    }

    /// A line on stdout; once stdout has failed, none.
    fn line(&self, line: Arguments) {
        self.write_stdout(line);
    }

    /// A line of the report: on stdout, or on stderr once stdout has failed.
    fn report(&self, line: Arguments) {
        if !self.write_stdout(line) {
            // Should stderr be gone as well, nobody is left to tell: the exit status says it.
            let _ = writeln!(std::io::stderr(), "{line}");
        }
    }

    /// Writes a line on stdout unless it has failed before; says whether it was written.
    fn write_stdout(&self, line: Arguments) -> bool {
        if self.failed.get().is_some() {
            return false;
        }
        match writeln!(std::io::stdout().lock(), "{line}") {
            Ok(()) => true,
            Err(error) => {
                // Only the first error is kept: `set` refuses the others.
                let _ = self.failed.set(error);
                self.stop.cancel();
                false
            }
        }
    }

    /// The first error writing to stdout, if there was one.
    fn failure(&self) -> Option<&std::io::Error> {
        self.failed.get()
    }
}
// ANCHOR_END: output

// ANCHOR: consumer
/// What happened to each job, filled in by the consumers as it happens.
#[derive(Default)]
struct Ledger {
    /// Taken from the queue: a job is recorded here before its work starts.
    taken: BTreeSet<u32>,
    done: BTreeSet<u32>,
    cancelled: BTreeSet<u32>,
}

/// Takes jobs until the queue is closed or a stop is asked for. A job in progress when the
/// stop comes is finished, unless `abort` fires first.
async fn consumer(
    jobs: Arc<tokio::sync::Mutex<mpsc::Receiver<u32>>>,
    stop: CancellationToken,
    abort: CancellationToken,
    ledger: Arc<Mutex<Ledger>>,
    output: Arc<Output>,
) {
    loop {
        // `biased`: check the stop before taking a job, so that no job is taken after it.
        let next = tokio::select! {
            biased;
            _ = stop.cancelled() => None,
            next = async { jobs.lock().await.recv().await } => next,
        };
        let Some(number) = next else { return };
        ledger
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .taken
            .insert(number);
        let finished = tokio::select! {
            _ = abort.cancelled() => false,
            _ = tokio::time::sleep(JOB_TIME) => true,
        };
        let mut ledger = ledger.lock().unwrap_or_else(PoisonError::into_inner);
        if finished {
            // Done, whether or not its line can still be printed: the report counts it.
            ledger.done.insert(number);
            output.line(format_args!(
                "processed task with task_number={number} time_to_execute_in_seconds=1 behavior=normal-sleep"
            ));
        } else {
            ledger.cancelled.insert(number);
        }
    }
}
// ANCHOR_END: consumer

// ANCHOR: run
/// The pipeline, stopped by the first of `signals` (listened for since `main`'s first lines)
/// or by its output failing.
async fn run(signals: Signals, grace: Duration) -> ExitCode {
    let started = Instant::now();
    let stop = CancellationToken::new();
    let abort = CancellationToken::new();
    let output = Arc::new(Output::new(stop.clone()));
    let first_signal = Arc::new(Mutex::new(None));
    tokio::spawn(watch_signals(
        signals,
        stop.clone(),
        Arc::clone(&first_signal),
    ));

    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let (sender, receiver) = mpsc::channel(CONSUMERS);
    let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
    // A `TaskTracker` waits for the tasks it spawned, like a `JoinSet` that keeps no results.
    let tracker = TaskTracker::new();
    let producer_stop = stop.clone();
    tracker.spawn(async move {
        for number in 0..JOBS {
            tokio::select! {
                _ = producer_stop.cancelled() => return,
                sent = sender.send(number) => if sent.is_err() { return },
            }
        }
    });
    for _ in 0..CONSUMERS {
        let (jobs, ledger) = (Arc::clone(&receiver), Arc::clone(&ledger));
        let output = Arc::clone(&output);
        tracker.spawn(consumer(jobs, stop.clone(), abort.clone(), ledger, output));
    }
    drop(receiver);
    // Lets `wait` complete once every task has ended. It forbids nothing: a task spawned after
    // it would be waited for too. None is: every task is spawned above.
    tracker.close();

    tokio::select! {
        _ = tracker.wait() => {}
        _ = stop.cancelled() => {
            // Stopping: the grace period for the jobs in flight, then cancel what remains.
            if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
                abort.cancel();
                tracker.wait().await;
            }
        }
    }
    let first_signal = *first_signal.lock().unwrap_or_else(PoisonError::into_inner);
    report(&ledger, first_signal, started, &output)
}
// ANCHOR_END: run

// ANCHOR: report
/// Says what was done and what was not, and chooses the exit status.
fn report(
    ledger: &Mutex<Ledger>,
    stop: Option<Stop>,
    started: Instant,
    output: &Output,
) -> ExitCode {
    let ledger = ledger.lock().unwrap_or_else(PoisonError::into_inner);
    let not_started: BTreeSet<u32> = (0..JOBS).filter(|n| !ledger.taken.contains(n)).collect();
    // Taken, but neither done nor cancelled: only a consumer that panicked mid-job leaves one.
    let lost: BTreeSet<u32> = ledger
        .taken
        .iter()
        .filter(|n| !ledger.done.contains(n) && !ledger.cancelled.contains(n))
        .copied()
        .collect();
    let elapsed = started.elapsed().as_secs_f64();
    let Some(Stop { signal, at }) = stop else {
        if output.failure().is_none() {
            if !lost.is_empty() {
                output.line(format_args!(
                    "lost (a consumer failed mid-job): {}",
                    ranges(&lost)
                ));
            }
            output.line(format_args!("all {} jobs done", ledger.done.len()));
            output.line(format_args!("elapsed time: {elapsed:.2} seconds"));
        }
        // No signal, but the output may have failed: then it was that failure that stopped
        // the run (or it failed just now, on these last lines).
        return match output.failure() {
            None => ExitCode::SUCCESS,
            Some(error) => output_failed(error),
        };
    };
    // A closed pipe says nothing the user does not know; any other failure is news.
    if let Some(error) = output.failure()
        && error.kind() != std::io::ErrorKind::BrokenPipe
    {
        output.report(format_args!("error: cannot write the output: {error}"));
    }
    if !lost.is_empty() {
        output.report(format_args!(
            "lost (a consumer failed mid-job): {}",
            ranges(&lost)
        ));
    }
    // When the signal came, so that the grace it started can be seen: it ended `grace` later.
    output.report(format_args!(
        "stopped by {} at {:.2} seconds: done={} cancelled={} not_started={}",
        signal.name(),
        at.saturating_duration_since(started).as_secs_f64(),
        ledger.done.len(),
        ledger.cancelled.len(),
        not_started.len()
    ));
    output.report(format_args!("cancelled: {}", ranges(&ledger.cancelled)));
    output.report(format_args!("not started: {}", ranges(&not_started)));
    output.report(format_args!("elapsed time: {elapsed:.2} seconds"));
    ExitCode::from(signal.exit_status())
}

/// The end of a run that its own output stopped. A closed pipe is how a reader says it has
/// read enough (`| head`): quiet, with the status a shell reports for SIGPIPE. Anything else
/// (a full disk) is one line on stderr and status 1.
fn output_failed(error: &std::io::Error) -> ExitCode {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        return ExitCode::from(141);
    }
    let _ = writeln!(std::io::stderr(), "error: cannot write the output: {error}");
    ExitCode::FAILURE
}

/// `0-3,7,9-12`: a set of job numbers, short.
fn ranges(numbers: &BTreeSet<u32>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut numbers = numbers.iter().copied().peekable();
    while let Some(start) = numbers.next() {
        let mut end = start;
        while numbers.peek() == Some(&(end + 1)) {
            end += 1;
            numbers.next();
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join(",")
    }
}
// ANCHOR_END: report

/// Runs 40 jobs of 1 s on 4 consumers, and stops gracefully on Ctrl-C (SIGINT) or SIGTERM: it
/// takes no new job, gives the jobs in flight a grace period, cancels those still running after
/// it, and reports what was and was not done. A second signal exits at once.
///
/// Exit status: 0 when every job is done; after a signal, 128 plus its number, 130 for SIGINT
/// and 143 for SIGTERM, whether the stop was graceful or not; 141 when its output is a closed
/// pipe; 1 when it cannot write its output or listen for signals; 2 for a bad command line.
#[derive(clap::Parser)]
#[command(name = "ch09_shutdown", version)]
struct Options {
    /// How long the jobs in flight may take to finish after a signal, in seconds, from 0 to 60.
    #[arg(long, value_name = "SECONDS", default_value_t = Seconds(Duration::from_secs(3)),
          value_parser = |value: &str| seconds_between(value, 0.0, 60.0).map(Seconds))]
    grace: Seconds,
}

/// A `Duration` that clap can show as a default: `[default: 3]`.
#[derive(Clone, Copy)]
struct Seconds(Duration);

impl std::fmt::Display for Seconds {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{}", self.0.as_secs_f64())
    }
}

/// A number of seconds from `min` to `max`, for clap: `--grace 2.5`. Written so that NaN and
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

// ANCHOR: main
/// The runtime, and in it the signal handlers. `signal` must be called inside a runtime: it is
/// the runtime's driver that hands each signal to the streams.
fn listen_for_signals() -> Result<(tokio::runtime::Runtime, Signals), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the tokio runtime: {error}"))?;
    let signals = {
        let _inside = runtime.enter();
        Signals::listen().map_err(|error| format!("cannot listen for signals: {error}"))?
    };
    Ok((runtime, signals))
}

fn main() -> ExitCode {
    exit_cleanly_when_the_environment_fails();
    // Listen first, before reading the command line and before any work: until the handlers
    // are installed, SIGINT and SIGTERM end the process the default way, at once, with no
    // report. The process starting, then the runtime being built in this call, is the only
    // time a signal can still do that.
    let listening = listen_for_signals();
    // A bad command line still ends here, with one line of error and exit status 2.
    let options = read_options();
    match listening {
        Ok((runtime, signals)) => runtime.block_on(run(signals, options.grace.0)),
        Err(message) => {
            let _ = writeln!(std::io::stderr(), "error: {message}");
            ExitCode::FAILURE
        }
    }
}
// ANCHOR_END: main
