//! Chapter 9 on the real binary: signals sent at several points of the run. Each time, the
//! process must exit within the grace period plus a second, with the documented status, and
//! report every job exactly once: done, cancelled or not started.
//!
//! The signals are timed from what the program prints, not from its start: on a busy machine
//! a program can take a while to get going, and a signal sent "0.5 s after the start" could
//! land before its first job or after its first wave. A wave is 4 jobs of 1 s that start
//! together; its 4 lines come within a few milliseconds of each other, and the consumers take
//! the next wave's jobs as soon as they have printed.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::{binary, root};

const JOBS: u32 = 40;

/// Past this, a program that should have printed or ended is taken to hang: the test kills it
/// and fails. Not a timing check (those are below, each with its own bound): no run of this
/// chapter lasts half as long.
const HANG: Duration = Duration::from_secs(60);

/// How long after a wave's lines the jobs of the next wave are surely taken: a consumer takes
/// its next job microseconds after printing; this leaves a loaded machine's scheduler plenty
/// of time slices. The next wave still has 0.9 s to run.
const WAVE_UNDER_WAY: Duration = Duration::from_millis(100);

/// The lines of a child's output, read by a thread as they come.
struct Lines {
    receiver: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Lines {
    /// Reads `stream` line by line; after `close_after` lines, closes it, as a reader that
    /// has had enough does (`| head`, or a `tee` killed by Ctrl-C).
    fn read(stream: impl Read + Send + 'static, close_after: usize) -> Lines {
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().take(close_after) {
                let Ok(line) = line else { return };
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        Lines {
            receiver,
            seen: Vec::new(),
        }
    }

    /// Waits for the next line; `None` at the end of the stream.
    fn next(&mut self) -> Option<&str> {
        match self.receiver.recv_timeout(HANG) {
            Ok(line) => {
                self.seen.push(line);
                self.seen.last().map(String::as_str)
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => None,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("no line in {HANG:?}: {:?}", self.seen),
        }
    }

    /// Waits for a line that contains `wanted`.
    fn wait_for(&mut self, wanted: &str) {
        while let Some(line) = self.next() {
            if line.contains(wanted) {
                return;
            }
        }
        panic!("no line with {wanted:?} in {:?}", self.seen);
    }

    /// Everything read, once the stream has ended.
    fn all(&mut self) -> String {
        while self.next().is_some() {}
        self.seen.iter().map(|line| format!("{line}\n")).collect()
    }
}

/// The chapter, running.
struct Running {
    child: Child,
    stdout: Lines,
    stderr: Lines,
    last_signal: Option<Instant>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        Running::start_closing_stdout_after(args, usize::MAX)
    }

    /// Starts the chapter, its stdout a pipe whose reader closes it after `lines` lines.
    fn start_closing_stdout_after(args: &[&str], lines: usize) -> Running {
        Running::start_with(args, lines, Stdio::piped())
    }

    /// Starts the chapter with its stderr on `/dev/full`, where every write fails (ENOSPC).
    fn start_with_a_full_stderr(args: &[&str]) -> Running {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("Linux has /dev/full");
        Running::start_with(args, usize::MAX, full.into())
    }

    fn start_with(args: &[&str], close_stdout_after: usize, stderr: Stdio) -> Running {
        let mut child = Command::new(binary("ch09_shutdown"))
            .args(args)
            .current_dir(root())
            .env_remove("RUST_BACKTRACE")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("ch09_shutdown starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        // Not piped when it goes to /dev/full: then there is nothing to read.
        let stderr = match child.stderr.take() {
            Some(stderr) => Lines::read(stderr, usize::MAX),
            None => Lines::read(std::io::empty(), usize::MAX),
        };
        Running {
            child,
            stdout: Lines::read(stdout, close_stdout_after),
            stderr,
            last_signal: None,
        }
    }

    /// Waits for the first `n` lines on stdout.
    fn wait_for_lines(&mut self, n: usize) {
        while self.stdout.seen.len() < n {
            if self.stdout.next().is_none() {
                panic!("stdout ended after {:?}", self.stdout.seen);
            }
        }
    }

    fn signal(&mut self, signal: &str) {
        let sent = Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -s {signal} failed");
        self.last_signal = Some(Instant::now());
    }

    /// Waits for the end; the time is measured from the last signal to the exit.
    fn finish(mut self) -> Stopped {
        let last_signal = self.last_signal.expect("a signal was sent");
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("the child can be polled") {
                break status;
            }
            assert!(
                last_signal.elapsed() < HANG,
                "still running {HANG:?} after the signal"
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        let stopped = Stopped {
            code: status.code(),
            after_signal: last_signal.elapsed(),
            stdout: self.stdout.all(),
            stderr: self.stderr.all(),
        };
        for what in ["panicked", "abort"] {
            assert!(!stopped.stderr.contains(what), "{what}: {}", stopped.stderr);
        }
        stopped
    }
}

impl Drop for Running {
    /// A test that fails half-way leaves no process behind. After `finish`, the child has
    /// been reaped: std then sends no signal, so no other process can get this one's.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Stopped {
    /// `None` when a signal killed it.
    code: Option<i32>,
    after_signal: Duration,
    stdout: String,
    stderr: String,
}

/// `0-3,7` back into numbers.
fn parse_ranges(text: &str) -> BTreeSet<u32> {
    if text == "none" {
        return BTreeSet::new();
    }
    text.split(',')
        .flat_map(|part| {
            let (start, end) = part.split_once('-').unwrap_or((part, part));
            let number = |s: &str| s.parse::<u32>().unwrap_or_else(|_| panic!("{part:?}"));
            number(start)..=number(end)
        })
        .collect()
}

/// What a stop report says, checked for consistency: every job exactly once.
struct Report {
    done: BTreeSet<u32>,
    cancelled: BTreeSet<u32>,
    /// When the signal came, in seconds on the program's clock, as printed (to 0.01 s).
    signal_at: f64,
    /// How long the run took, on the same clock, as printed.
    elapsed: f64,
}

/// The precision of the times a report prints: two decimals, rounded.
const PRINTED: f64 = 0.005;

fn parse_report(text: &str, signal: &str) -> Report {
    let field = |prefix: &str| {
        let line = text.lines().find(|line| line.starts_with(prefix));
        line.unwrap_or_else(|| panic!("no {prefix:?} line in {text}"))[prefix.len()..].to_string()
    };
    let cancelled = parse_ranges(&field("cancelled: "));
    let not_started = parse_ranges(&field("not started: "));
    assert!(
        cancelled.is_disjoint(&not_started),
        "cancelled and not started: {text}"
    );
    assert!(
        cancelled.iter().chain(&not_started).all(|n| *n < JOBS),
        "a job that does not exist: {text}"
    );
    assert!(!text.contains("lost"), "a job was lost: {text}");
    let done: BTreeSet<u32> = (0..JOBS)
        .filter(|n| !cancelled.contains(n) && !not_started.contains(n))
        .collect();
    let stop = field(&format!("stopped by {signal} at "));
    let (signal_at, counts) = stop
        .split_once(" seconds: ")
        .unwrap_or_else(|| panic!("no time in {stop:?}"));
    assert_eq!(
        counts,
        format!(
            "done={} cancelled={} not_started={}",
            done.len(),
            cancelled.len(),
            not_started.len()
        ),
    );
    let seconds = |text: &str| {
        text.parse::<f64>()
            .unwrap_or_else(|_| panic!("not a number of seconds: {text:?}"))
    };
    let elapsed = field("elapsed time: ");
    let elapsed = elapsed
        .strip_suffix(" seconds")
        .unwrap_or_else(|| panic!("{elapsed:?}"));
    let report = Report {
        done,
        cancelled,
        signal_at: seconds(signal_at),
        elapsed: seconds(elapsed),
    };
    assert!(report.signal_at <= report.elapsed, "{text}");
    report
}

/// Checks the report on stdout against the lines printed for finished jobs.
fn check_report(stdout: &str, signal: &str) -> Report {
    let printed: BTreeSet<u32> = stdout
        .lines()
        .filter_map(io_bound_tokio::task_number)
        .collect();
    let report = parse_report(stdout, signal);
    assert_eq!(printed, report.done, "done but not printed, or the reverse");
    report
}

#[test]
fn sigint_during_a_wave_lets_it_finish_within_the_grace() {
    let mut run = Running::start(&[]);
    run.wait_for_lines(1);
    std::thread::sleep(Duration::from_millis(500));
    run.signal("INT");
    let stopped = run.finish();
    assert_eq!(stopped.code, Some(130), "{}", stopped.stderr);
    // The default grace of 3 s, and a second for the process to end: a wave has less than a
    // second left, so the exit comes well within it; only a late exit misses it.
    assert!(
        stopped.after_signal < Duration::from_secs(3 + 1),
        "{:?}",
        stopped.after_signal
    );
    let cancelled = check_report(&stopped.stdout, "SIGINT").cancelled;
    assert!(
        cancelled.is_empty(),
        "a 3 s grace cancelled jobs of 1 s: {cancelled:?}"
    );
}

/// How many runs `cancels_the_wave_in_flight` may need: one whose signal a busy machine
/// delivered too late to tell anything is run again.
const ATTEMPTS: usize = 4;

/// SIGINT early in the second wave, with a grace shorter than the wave: its 4 jobs must be
/// cancelled when the grace ends, after the whole grace, and not one of them reported done.
///
/// Whether a grace is shorter than what is left of the wave depends on when the signal
/// lands, and on a busy machine `kill` can land late. So the test does not assume it: it reads
/// it from the program's report, which says on the program's own clock when the signal came
/// and when the run ended. The second wave's jobs were taken when the first wave's ended, no
/// sooner than 1 s (a job sleeps 1 s), so none can end before 2 s: a run that ended before
/// 2 s has stopped that wave before its end, and must have cancelled all of it. A run that
/// ended later proves nothing (a late signal, or a program that does not cut the wave short):
/// it is run again, and a program that never ends one before 2 s fails.
fn cancels_the_wave_in_flight(grace: f64) {
    let mut runs = Vec::new();
    for _ in 0..ATTEMPTS {
        let mut run = Running::start(&["--grace", &grace.to_string()]);
        // The first wave's 4 lines: the second wave has begun.
        run.wait_for_lines(4);
        std::thread::sleep(WAVE_UNDER_WAY);
        run.signal("INT");
        let stopped = run.finish();
        assert_eq!(stopped.code, Some(130), "{}", stopped.stderr);
        assert!(
            stopped.after_signal < Duration::from_secs_f64(grace + 1.0),
            "{:?}",
            stopped.after_signal
        );
        let report = check_report(&stopped.stdout, "SIGINT");
        if !report.cancelled.is_empty() {
            // Cancelled, so the grace ran out: all of it was given.
            assert!(
                report.elapsed + 2.0 * PRINTED >= report.signal_at + grace,
                "cancelled before the grace of {grace} s ended: {}",
                stopped.stdout
            );
        }
        if report.elapsed + PRINTED < 2.0 {
            assert_eq!(
                report.done,
                (0..4).collect(),
                "only the first wave is done: {}",
                stopped.stdout
            );
            assert_eq!(
                report.cancelled,
                (4..8).collect(),
                "the wave in flight is cancelled: {}",
                stopped.stdout
            );
            return;
        }
        runs.push(format!(
            "signal at {} s, end at {} s",
            report.signal_at, report.elapsed
        ));
    }
    panic!("no run ended before its second wave could: {runs:?}");
}

#[test]
fn sigint_with_a_short_grace_cancels_the_jobs_in_flight() {
    cancels_the_wave_in_flight(0.5);
}

#[test]
fn sigint_with_no_grace_stops_at_once() {
    cancels_the_wave_in_flight(0.0);
}

#[test]
fn sigterm_stops_gracefully_with_its_own_status() {
    let mut run = Running::start(&["--grace", "2"]);
    run.wait_for_lines(1);
    std::thread::sleep(Duration::from_millis(500));
    run.signal("TERM");
    let stopped = run.finish();
    assert_eq!(stopped.code, Some(143), "{}", stopped.stderr);
    assert!(
        stopped.after_signal < Duration::from_secs(2 + 1),
        "{:?}",
        stopped.after_signal
    );
    check_report(&stopped.stdout, "SIGTERM");
}

#[test]
fn a_second_sigint_exits_at_once() {
    let mut run = Running::start(&["--grace", "30"]);
    run.wait_for_lines(4);
    std::thread::sleep(WAVE_UNDER_WAY);
    run.signal("INT");
    // The second signal goes once the first has been received: two that come before the
    // program next awaits its signal stream are seen as one (tokio coalesces them).
    run.stderr.wait_for("SIGINT: finishing the jobs in flight");
    run.signal("INT");
    let stopped = run.finish();
    assert_eq!(stopped.code, Some(130), "{}", stopped.stderr);
    assert!(
        stopped.after_signal < Duration::from_secs(1),
        "{:?}",
        stopped.after_signal
    );
    // Had the second signal been missed, the wave would have finished and been reported.
    assert!(!stopped.stdout.contains("stopped by"), "{}", stopped.stdout);
    assert!(
        stopped.stderr.contains("SIGINT: exiting at once"),
        "{}",
        stopped.stderr
    );
}

/// Which signals a process catches, from the kernel: the `SigCgt` mask of
/// `/proc/PID/status`, bit N-1 for signal N. `None` once the process is gone.
fn caught_signals(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mask = status
        .lines()
        .find_map(|line| line.strip_prefix("SigCgt:"))?;
    u64::from_str_radix(mask.trim(), 16).ok()
}

const SIGINT_BIT: u64 = 1 << (2 - 1);
const SIGTERM_BIT: u64 = 1 << (15 - 1);

#[test]
fn a_sigint_in_the_first_moments_is_reported_like_a_later_one() {
    let mut run = Running::start(&[]);
    // The earliest moment any program can catch a signal is when its handler is installed,
    // and the kernel shows when that is. Waiting for it, rather than for some time, makes
    // this test the same on an idle machine and a busy one. Both handlers: the program
    // creates the SIGINT stream first, and tokio subscribes a stream right after installing
    // its handler, so once the SIGTERM handler is there, SIGINT's stream surely listens.
    // No work may show before then: a job line printed while signals still kill the
    // process would mean that the work started before the program listened.
    let pid = run.child.id();
    loop {
        let printed = run.stdout.receiver.try_recv().ok();
        let caught = caught_signals(pid).unwrap_or(0);
        if caught & (SIGINT_BIT | SIGTERM_BIT) == SIGINT_BIT | SIGTERM_BIT {
            run.stdout.seen.extend(printed);
            break;
        }
        assert!(
            printed.is_none(),
            "a job line before the program listened for signals: {printed:?}"
        );
        if let Some(status) = run.child.try_wait().expect("the child can be polled") {
            panic!("it ended before it listened for signals: {status:?}");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    run.signal("INT");
    let stopped = run.finish();
    assert_eq!(stopped.code, Some(130), "{}", stopped.stderr);
    assert!(
        stopped.after_signal < Duration::from_secs(3 + 1),
        "{:?}",
        stopped.after_signal
    );
    let cancelled = check_report(&stopped.stdout, "SIGINT").cancelled;
    assert!(cancelled.is_empty(), "a 3 s grace cancelled jobs of 1 s");
}

#[test]
fn a_full_stderr_does_not_stop_a_graceful_stop() {
    // The acknowledgement of a signal is a note on stderr. A stderr that cannot take it (here
    // /dev/full, where every write fails) must not cost the jobs in flight their grace, nor
    // the report on stdout, nor the signal's exit status.
    let mut run = Running::start_with_a_full_stderr(&[]);
    run.wait_for_lines(4);
    std::thread::sleep(WAVE_UNDER_WAY);
    run.signal("INT");
    let stopped = run.finish();
    assert_eq!(stopped.code, Some(130), "{}", stopped.stdout);
    // The grace of 3 s plus a second, as above: the wave in flight ends within a second.
    assert!(
        stopped.after_signal < Duration::from_secs(3 + 1),
        "{:?}",
        stopped.after_signal
    );
    let report = check_report(&stopped.stdout, "SIGINT");
    assert!(
        report.cancelled.is_empty(),
        "the jobs in flight did not get their grace: {}",
        stopped.stdout
    );
    assert!(
        report.done.len() > 4,
        "no job finished after the signal: {}",
        stopped.stdout
    );
}

#[test]
fn a_closed_stdout_and_sigint_still_stop_gracefully_and_report_on_stderr() {
    // `ch09_shutdown | tee log`, then Ctrl-C: `tee` dies and the pipe closes, and the program
    // gets SIGINT. Here the reader closes the pipe after the first wave's 4 lines; the second
    // wave is then in flight, and its 4 lines will find the pipe closed in the middle of the
    // grace period.
    let mut run = Running::start_closing_stdout_after(&[], 4);
    run.wait_for_lines(4);
    std::thread::sleep(WAVE_UNDER_WAY);
    run.signal("INT");
    let stopped = run.finish();
    assert_eq!(stopped.code, Some(130), "{}", stopped.stderr);
    // The grace of 3 s plus a second, as above: the wave in flight ends within a second.
    assert!(
        stopped.after_signal < Duration::from_secs(3 + 1),
        "{:?}",
        stopped.after_signal
    );
    let report = parse_report(&stopped.stderr, "SIGINT");
    assert!(
        report.cancelled.is_empty(),
        "the jobs in flight did not get their grace: {}",
        stopped.stderr
    );
    assert!(
        report.done.len() > 4,
        "no job finished after the pipe closed: {}",
        stopped.stderr
    );
    assert!(
        stopped.stderr.contains("elapsed time: "),
        "{}",
        stopped.stderr
    );
    // A closed pipe is no news to the user who closed it: no error line for it.
    assert!(!stopped.stderr.contains("error"), "{}", stopped.stderr);
}
