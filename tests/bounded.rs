//! Chapter 6 on the real binary: the `buffer_unordered` trap, shown happening and fixed.
//!
//! Every run here is on tokio's paused clock, where the schedule, and so the output, is exact:
//! what these tests assert is the shape of the concurrency (how many jobs were in flight, how
//! often each job ran, which jobs timed out), not a duration. The real-clock runs are the
//! catalogue's, in `chapters.rs`.

use std::collections::BTreeMap;

use io_bound_tokio::{chapter, task_number};

use crate::common::{binary, read, run};

/// Runs chapter 6 on the paused clock with `--with method`, and returns what it printed.
fn paused(method: &str) -> String {
    let (output, _) = run(
        &binary("ch06_bounded"),
        &["--clock", "paused", "--with", method],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "--with {method} failed: {stderr}");
    assert!(
        !stderr.contains("a job failed"),
        "--with {method}: a job failed: {stderr}"
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// How many times each task number appears in the output's lines.
fn runs_per_job(stdout: &str) -> BTreeMap<u32, usize> {
    let mut counts = BTreeMap::new();
    for number in stdout.lines().filter_map(task_number) {
        *counts.entry(number).or_insert(0) += 1;
    }
    counts
}

/// Asserts that jobs `0..count` each appear exactly once, and no other.
fn each_exactly_once(what: &str, stdout: &str, count: u32) {
    let counts = runs_per_job(stdout);
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "{what}: jobs not run once: {twice:?}");
    let numbers: Vec<u32> = counts.into_keys().collect();
    assert_eq!(
        numbers,
        (0..count).collect::<Vec<_>>(),
        "{what}: not every job ran"
    );
}

/// The value of `const NAME: TYPE = VALUE;` in chapter 6's program, so that the tests and the
/// program cannot drift apart.
fn constant(name: &str) -> u32 {
    let source = read(&chapter("ch06_bounded").expect("in the catalogue").source());
    let start = format!("const {name}: ");
    let line = source
        .lines()
        .find(|line| line.starts_with(&start))
        .unwrap_or_else(|| panic!("ch06 has no {name}"));
    line.split(" = ")
        .nth(1)
        .and_then(|value| value.strip_suffix(';'))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("not a number: {line}"))
}

#[test]
fn every_bound_keeps_fifty_in_flight_and_runs_each_job_once() {
    let (jobs, most) = (constant("TASKS_TO_PROCESS"), constant("MOST_IN_FLIGHT"));
    for method in ["semaphore", "buffer-unordered", "for-each-concurrent"] {
        let stdout = paused(method);
        each_exactly_once(method, &stdout, jobs);
        let in_flight: u32 = stdout
            .lines()
            .find_map(|line| line.strip_prefix("most in flight: "))
            .and_then(|figure| figure.parse().ok())
            .unwrap_or_else(|| panic!("{method}: no 'most in flight' line"));
        // Never more than the bound; and the bound reached, or the jobs ran less concurrently
        // than they could have.
        assert_eq!(in_flight, most, "{method}: most jobs in flight at once");
    }
}

/// One line of the trap's output: `task_number=N round_trips=R service_time_in_seconds=S: ...`.
struct Outcome {
    round_trips: u32,
    service_seconds: f64,
    /// `Some(seconds)` for a job that timed out after that many seconds.
    timed_out_after: Option<f64>,
}

fn outcomes(stdout: &str) -> Vec<Outcome> {
    let field = |line: &str, name: &str| -> String {
        line.split_whitespace()
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
            .map(|value| value.trim_end_matches(':').to_string())
            .unwrap_or_else(|| panic!("no {name} in {line:?}"))
    };
    stdout
        .lines()
        .filter(|line| line.starts_with("task_number="))
        .map(|line| {
            let timed_out_after = line.split_once(": timed out after ").map(|(_, rest)| {
                rest.trim_end_matches(" s")
                    .parse()
                    .unwrap_or_else(|_| panic!("not seconds: {line:?}"))
            });
            assert!(
                timed_out_after.is_some() || line.ends_with(": completed"),
                "neither completed nor timed out: {line:?}"
            );
            Outcome {
                round_trips: field(line, "round_trips").parse().expect("a count"),
                service_seconds: field(line, "service_time_in_seconds")
                    .parse()
                    .expect("seconds"),
                timed_out_after,
            }
        })
        .collect()
}

/// The `jobs: completed=N timed_out=M` line, checked against the lines above it.
fn tally(what: &str, stdout: &str, outcomes: &[Outcome]) -> (usize, usize) {
    let timed_out = outcomes
        .iter()
        .filter(|outcome| outcome.timed_out_after.is_some())
        .count();
    let completed = outcomes.len() - timed_out;
    let summary = format!("jobs: completed={completed} timed_out={timed_out}");
    assert!(
        stdout.lines().any(|line| line == summary),
        "{what}: no {summary:?} in:\n{stdout}"
    );
    (completed, timed_out)
}

#[test]
fn buffer_unordered_times_out_jobs_the_service_would_have_served_in_time() {
    let stdout = paused("trap");
    each_exactly_once("trap", &stdout, constant("TRAP_JOBS"));
    let outcomes = outcomes(&stdout);
    let (_, timed_out) = tally("trap", &stdout, &outcomes);
    assert!(timed_out >= 1, "the trap caught no job:\n{stdout}");
    for outcome in &outcomes {
        if let Some(timeout) = outcome.timed_out_after {
            // The service was not the cause: the job needed less than its timeout.
            assert!(
                outcome.service_seconds < timeout,
                "a job that needed {} s timed out after {timeout} s: no trap, a slow job",
                outcome.service_seconds
            );
            // A job of one round trip is a single sleep: the timeout polls it before
            // looking at its deadline, so a late poll finds it done. Only jobs that need
            // polling between their steps can be stalled.
            assert!(
                outcome.round_trips > 1,
                "a job of a single round trip timed out:\n{stdout}"
            );
        }
    }
}

#[test]
fn spawning_each_job_lets_every_job_finish_in_time() {
    let stdout = paused("trap-fixed");
    each_exactly_once("trap-fixed", &stdout, constant("TRAP_JOBS"));
    let outcomes = outcomes(&stdout);
    let (completed, timed_out) = tally("trap-fixed", &stdout, &outcomes);
    assert_eq!(timed_out, 0, "the fix let jobs time out:\n{stdout}");
    assert_eq!(completed, outcomes.len());
}
