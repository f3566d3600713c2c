//! Chapter 6 on the real binary: the `buffer_unordered` trap, shown happening and fixed.
//!
//! Every run here is on tokio's paused clock, where the schedule, and so the output, is exact:
//! what these tests assert is the shape of the concurrency (how many jobs were in flight, how
//! often each job ran, which jobs timed out), not a duration. The real-clock runs are the
//! catalogue's, in `chapters.rs`.

use std::collections::BTreeMap;

use io_bound_tokio::task_number;

use crate::common::{binary, constant_in, read, run, tempfile_path};

/// Runs chapter 6 on the paused clock with `--with method`, and returns what it printed.
fn paused(method: &str) -> String {
    paused_with(&["--with", method])
}

/// Runs chapter 6 on the paused clock with `args`, and returns what it printed.
fn paused_with(args: &[&str]) -> String {
    let all: Vec<&str> = ["--clock", "paused"].iter().chain(args).copied().collect();
    let (output, _) = run(&binary("ch06_bounded"), &all);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{args:?} failed: {stderr}");
    assert!(
        !stderr.contains("a job failed"),
        "{args:?}: a job failed: {stderr}"
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
    each_of_exactly_once(what, stdout, &(0..count).collect::<Vec<_>>());
}

/// Asserts that the jobs `numbers` (in increasing order) each appear exactly once, and no other.
fn each_of_exactly_once(what: &str, stdout: &str, numbers: &[u32]) {
    let counts = runs_per_job(stdout);
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "{what}: jobs not run once: {twice:?}");
    let ran: Vec<u32> = counts.into_keys().collect();
    assert_eq!(ran, numbers, "{what}: not every job ran, or others did");
}

/// The figure of the `most in flight: N` line.
fn most_in_flight(what: &str, stdout: &str) -> u32 {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("most in flight: "))
        .and_then(|figure| figure.parse().ok())
        .unwrap_or_else(|| panic!("{what}: no 'most in flight' line"))
}

/// The value of `const NAME: TYPE = VALUE;` in chapter 6's program, so that the tests and the
/// program cannot drift apart.
fn constant(name: &str) -> u32 {
    let value = constant_in("ch06_bounded", name);
    value
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a number: {value}"))
}

#[test]
fn every_bound_keeps_fifty_in_flight_and_runs_each_job_once() {
    let (jobs, most) = (constant("TASKS_TO_PROCESS"), constant("MOST_IN_FLIGHT"));
    for method in ["semaphore", "buffer-unordered", "for-each-concurrent"] {
        let stdout = paused(method);
        each_exactly_once(method, &stdout, jobs);
        // Never more than the bound; and the bound reached, or the jobs ran less concurrently
        // than they could have.
        assert_eq!(
            most_in_flight(method, &stdout),
            most,
            "{method}: most jobs in flight at once"
        );
    }
}

/// The file of job numbers the catalogue's `--from` run reads.
const JOB_FILE: &str = "tests/fixtures/ch06_bounded.jobs.txt";

#[test]
fn the_semaphore_runs_each_job_of_a_file_once_fifty_at_a_time() {
    let numbers: Vec<u32> = read(JOB_FILE.as_ref())
        .lines()
        .map(|line| line.trim().parse().expect("a job number"))
        .collect();
    let mut sorted = numbers.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), numbers.len(), "{JOB_FILE} repeats a job");
    // More jobs than the bound, or the bound would not be reached.
    let most = constant("MOST_IN_FLIGHT");
    assert!(numbers.len() > most as usize, "{JOB_FILE} is too short");
    let stdout = paused_with(&["--from", JOB_FILE]);
    each_of_exactly_once("--from", &stdout, &sorted);
    assert_eq!(most_in_flight("--from", &stdout), most);
}

/// A temporary file that is removed when dropped.
struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn a_malformed_line_stops_the_jobs_where_the_loop_reaches_it() {
    // Two waves of jobs, a line that is no number, then more jobs that must never run.
    let before = 2 * constant("MOST_IN_FLIGHT");
    let mut text: String = (0..before).map(|number| format!("{number}\n")).collect();
    text.push_str("not a number\n");
    text.extend((before + 1..before + 100).map(|number| format!("{number}\n")));
    let file = TempFile(tempfile_path("ch06-jobs"));
    std::fs::write(&file.0, text).expect("the job file can be written");
    let path = file.0.to_string_lossy().into_owned();
    let (output, _) = run(
        &binary("ch06_bounded"),
        &["--clock", "paused", "--from", &path],
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // The paused clock's note, then one line of error that names the file and the line.
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|line| !line.starts_with("note: "))
        .collect();
    let line = before + 1;
    assert_eq!(
        errors,
        [format!(
            "error: {path}: line {line}: \"not a number\" is not a job number: invalid digit found in string"
        )]
    );
    // The jobs before the bad line ran, once each, and none after it.
    each_exactly_once("a malformed line", &stdout, before);
    // Read lazily: the loop reached the bad line only when the first wave was done and the
    // second had started, a second in, and then waited for the second wave, a second more.
    // Had the file been read whole before the first job, the error would have come at once.
    assert!(
        stdout.ends_with("elapsed time: 2.00 seconds\n"),
        "not the lazy schedule: {stdout}"
    );
}
