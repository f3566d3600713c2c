//! Chapter 7 on the real binary: signals sent at several points of the run. Each time, the
//! process must exit within the grace period plus a second, with the documented status, and
//! report every job exactly once: done, cancelled or not started.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{binary, root};

const JOBS: u32 = 40;

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

struct Stopped {
    status: Option<i32>,
    after_signal: Duration,
    stdout: String,
}

/// Starts the chapter, sends `signals` at the given times after the start, and waits for it.
fn stop_at(args: &[&str], signals: &[(f64, &str)]) -> Stopped {
    let child = Command::new(binary("ch07_shutdown"))
        .args(args)
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ch07_shutdown starts");
    let started = Instant::now();
    let mut last_signal = started;
    for (at, signal) in signals {
        std::thread::sleep(Duration::from_secs_f64(*at).saturating_sub(started.elapsed()));
        let sent = Command::new("kill")
            .args(["-s", signal, &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -s {signal} failed");
        last_signal = Instant::now();
    }
    let output = child.wait_with_output().expect("ch07_shutdown ends");
    Stopped {
        status: output.status.code(),
        after_signal: last_signal.elapsed(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
    }
}

/// Checks the report against the lines printed for finished jobs; returns the cancelled jobs.
fn check_report(stdout: &str, signal: &str) -> BTreeSet<u32> {
    let done: BTreeSet<u32> = stdout
        .lines()
        .filter_map(io_bound_tokio::task_number)
        .collect();
    let field = |prefix: &str| {
        let line = stdout.lines().find(|line| line.starts_with(prefix));
        line.unwrap_or_else(|| panic!("no {prefix:?} line in {stdout}"))[prefix.len()..].to_string()
    };
    let cancelled = parse_ranges(&field("cancelled: "));
    let not_started = parse_ranges(&field("not started: "));
    let summary = field(&format!("stopped by {signal}: "));
    assert_eq!(
        summary,
        format!(
            "done={} cancelled={} not_started={}",
            done.len(),
            cancelled.len(),
            not_started.len()
        ),
    );
    assert!(done.is_disjoint(&cancelled), "done and cancelled: {stdout}");
    assert!(
        done.is_disjoint(&not_started),
        "done and not started: {stdout}"
    );
    assert!(
        cancelled.is_disjoint(&not_started),
        "cancelled and not started: {stdout}"
    );
    assert!(!stdout.contains("lost"), "a job was lost: {stdout}");
    let all: BTreeSet<u32> = done
        .iter()
        .chain(&cancelled)
        .chain(&not_started)
        .copied()
        .collect();
    assert_eq!(
        all,
        (0..JOBS).collect(),
        "some job is missing from the report"
    );
    cancelled
}

#[test]
fn sigint_during_a_wave_lets_it_finish_within_the_grace() {
    let stopped = stop_at(&[], &[(0.5, "INT")]);
    assert_eq!(stopped.status, Some(130));
    assert!(
        stopped.after_signal < Duration::from_secs(3 + 1),
        "{:?}",
        stopped.after_signal
    );
    let cancelled = check_report(&stopped.stdout, "SIGINT");
    assert!(
        cancelled.is_empty(),
        "a 3 s grace cancelled jobs of 1 s: {cancelled:?}"
    );
}

#[test]
fn sigint_with_a_short_grace_cancels_the_jobs_in_flight() {
    let stopped = stop_at(&["--grace", "0.5"], &[(2.3, "INT")]);
    assert_eq!(stopped.status, Some(130));
    assert!(
        stopped.after_signal < Duration::from_secs_f64(0.5 + 1.0),
        "{:?}",
        stopped.after_signal
    );
    let cancelled = check_report(&stopped.stdout, "SIGINT");
    assert_eq!(cancelled.len(), 4, "the wave in flight: {}", stopped.stdout);
}

#[test]
fn sigint_with_no_grace_stops_at_once() {
    let stopped = stop_at(&["--grace", "0"], &[(3.5, "INT")]);
    assert_eq!(stopped.status, Some(130));
    assert!(
        stopped.after_signal < Duration::from_secs(1),
        "{:?}",
        stopped.after_signal
    );
    let cancelled = check_report(&stopped.stdout, "SIGINT");
    assert_eq!(cancelled.len(), 4, "the wave in flight: {}", stopped.stdout);
}

#[test]
fn sigterm_stops_gracefully_with_its_own_status() {
    let stopped = stop_at(&["--grace", "2"], &[(1.5, "TERM")]);
    assert_eq!(stopped.status, Some(143));
    assert!(
        stopped.after_signal < Duration::from_secs(2 + 1),
        "{:?}",
        stopped.after_signal
    );
    check_report(&stopped.stdout, "SIGTERM");
}

#[test]
fn a_second_sigint_exits_at_once() {
    let stopped = stop_at(&["--grace", "30"], &[(1.2, "INT"), (1.4, "INT")]);
    assert_eq!(stopped.status, Some(130));
    assert!(
        stopped.after_signal < Duration::from_secs(1),
        "{:?}",
        stopped.after_signal
    );
    // Had the second signal been missed, the wave would have finished and been reported.
    assert!(!stopped.stdout.contains("stopped by"), "{}", stopped.stdout);
}
