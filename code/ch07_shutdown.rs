//! Chapter 7: graceful shutdown.
//!
//! Chapter 4's pipeline (smaller: 40 jobs of 1 s, 4 consumers), made to stop cleanly. On
//! Ctrl-C or SIGTERM it stops taking new work, gives the jobs in flight a grace period to
//! finish, cancels those still running when it ends, and reports what was and was not done.
//! A second Ctrl-C exits at once.
//! Run it with `cargo run --bin ch07_shutdown`; `--help` lists the options.

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
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

    /// The exit status of a process stopped by this signal, by the shell's convention:
    /// 128 plus the signal's number.
    fn exit_status(self) -> u8 {
        match self {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
        }
    }
}

/// Ctrl-C (SIGINT) and, on Unix, SIGTERM, which is what `kill`, systemd and Kubernetes send to
/// ask a process to stop. Listening is set up once: from then on, those signals no longer end
/// the process by themselves, and none that arrives is missed, however close together.
#[cfg(unix)]
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
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

/// The first signal asks for a graceful stop; a second one means: now.
async fn watch_signals(stop: CancellationToken, first: Arc<Mutex<Option<Signal>>>) {
    let mut signals = match Signals::listen() {
        Ok(signals) => signals,
        Err(error) => {
            eprintln!("warning: cannot listen for signals ({error}); they will stop it at once");
            return;
        }
    };
    let signal = signals.next().await;
    *first.lock().unwrap_or_else(PoisonError::into_inner) = Some(signal);
    eprintln!(
        "{}: finishing the jobs in flight; again to exit at once",
        signal.name()
    );
    stop.cancel();
    let signal = signals.next().await;
    eprintln!("{}: exiting at once", signal.name());
    std::process::exit(signal.exit_status().into());
}
// ANCHOR_END: signals

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
            println!(
                "processed task with task_number={number} time_to_execute_in_seconds=1 behavior=normal-sleep"
            );
            ledger.done.insert(number);
        } else {
            ledger.cancelled.insert(number);
        }
    }
}
// ANCHOR_END: consumer

// ANCHOR: run
async fn run(grace: Duration) -> ExitCode {
    let _timer = Timer::start();
    let stop = CancellationToken::new();
    let abort = CancellationToken::new();
    let signal = Arc::new(Mutex::new(None));
    tokio::spawn(watch_signals(stop.clone(), Arc::clone(&signal)));

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
        tracker.spawn(consumer(jobs, stop.clone(), abort.clone(), ledger));
    }
    drop(receiver);
    tracker.close(); // no more tasks will be added: `wait` can return once they are all done

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
    report(
        &ledger,
        *signal.lock().unwrap_or_else(PoisonError::into_inner),
    )
}
// ANCHOR_END: run

// ANCHOR: report
/// Says what was done and what was not, and chooses the exit status.
fn report(ledger: &Mutex<Ledger>, signal: Option<Signal>) -> ExitCode {
    let ledger = ledger.lock().unwrap_or_else(PoisonError::into_inner);
    let not_started: BTreeSet<u32> = (0..JOBS).filter(|n| !ledger.taken.contains(n)).collect();
    // Taken, but neither done nor cancelled: only a consumer that panicked mid-job leaves one.
    let lost: BTreeSet<u32> = ledger
        .taken
        .iter()
        .filter(|n| !ledger.done.contains(n) && !ledger.cancelled.contains(n))
        .copied()
        .collect();
    if !lost.is_empty() {
        println!("lost (a consumer failed mid-job): {}", ranges(&lost));
    }
    let Some(signal) = signal else {
        println!("all {} jobs done", ledger.done.len());
        return ExitCode::SUCCESS;
    };
    println!(
        "stopped by {}: done={} cancelled={} not_started={}",
        signal.name(),
        ledger.done.len(),
        ledger.cancelled.len(),
        not_started.len()
    );
    println!("cancelled: {}", ranges(&ledger.cancelled));
    println!("not started: {}", ranges(&not_started));
    ExitCode::from(signal.exit_status())
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
Usage: ch07_shutdown [--grace SECONDS]

Runs 40 jobs of 1 s on 4 consumers. On Ctrl-C (SIGINT) or SIGTERM, it takes no new job, gives
the jobs in flight a grace period, cancels those still running after it, and reports what was
and was not done. A second signal exits at once.

Options:
  --grace SECONDS  how long the jobs in flight may take to finish after a signal,
                   from 0 to 60 (default: 3)
  -h, --help       print this help

Exit status: 0 when every job is done; after a signal, 128 plus its number: 130 for SIGINT,
143 for SIGTERM, whether the stop was graceful or not; 2 for a bad command line.
";

/// Reads the command line: `Ok(None)` asks for the help, `Err` carries the message for a bad one.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Duration>, String> {
    let mut grace = Duration::from_secs(3);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--grace" => {
                let value = args.next().ok_or("--grace needs a value in seconds")?;
                let seconds: f64 = value
                    .parse()
                    .map_err(|_| format!("--grace: expected a number of seconds, got {value:?}"))?;
                // Written so that NaN fails too.
                if !(0.0..=60.0).contains(&seconds) {
                    return Err(format!("--grace: expected 0 to 60 seconds, got {value}"));
                }
                grace = Duration::from_secs_f64(seconds);
            }
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    Ok(Some(grace))
}

fn main() -> ExitCode {
    let grace = match parse_args(std::env::args().skip(1)) {
        Ok(Some(grace)) => grace,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(run(grace)),
        Err(error) => {
            eprintln!("error: cannot start the tokio runtime: {error}");
            ExitCode::FAILURE
        }
    }
}
