//! Every run in the catalogue, twice: on the real clock, where the elapsed time must lie
//! within its bounds, and on tokio's paused clock, where it must be exact and cheap (see
//! `main.rs` for the rules on time in these tests).
//!
//! `UPDATE_EXPECTED=1 cargo test clock` rewrites the expected-output files from the paused
//! runs (from real runs, for the chapters that have no paused clock). It never touches an expected time: those live in the catalogue (`src/lib.rs`),
//! and a file whose elapsed line disagrees with it still fails.

use std::time::Duration;

use io_bound_tokio::{
    CHAPTERS, EXERCISES, MAX_REJECTED, MIN_GOODPUT, Run, Targets, chapter, elapsed_line, normalize,
    split_elapsed, summary_figures,
};
use pretty_assertions::assert_eq;

use crate::common::{binary, constant_in, files, read, root, run_measuring_cpu};

/// The most processor time a paused-clock run may use. The book's Run button sends a chapter
/// to the Rust Playground, which compiles and runs it in a debug build, and mdBook gives up
/// after 6 s, compilation included: the run itself gets a second. These tests run the same
/// debug build.
pub const PAUSED_CPU_LIMIT: Duration = Duration::from_secs(1);

fn the_run(name: &str, index: usize) -> &'static Run {
    &the_chapter(name).runs[index]
}

fn the_chapter(name: &str) -> &'static io_bound_tokio::Chapter {
    chapter(name).unwrap_or_else(|| panic!("{name} is not in the catalogue"))
}

/// The expected output, checked against the catalogue's elapsed time: exactly, when it comes
/// from the paused clock; within the real clock's bounds, for chapters that have no paused
/// clock, whose expected output is a real run.
fn expected_lines(run: &Run, paused: bool) -> Vec<String> {
    let text = read(&run.expected_path());
    let (lines, seconds) = split_elapsed(&text)
        .unwrap_or_else(|error| panic!("{}: {error}", run.expected_path().display()));
    if paused {
        assert_eq!(
            elapsed_line(seconds),
            elapsed_line(run.elapsed_seconds),
            "{} and the catalogue disagree on the elapsed time",
            run.expected_path().display()
        );
    } else {
        assert!(
            (run.lower_bound()..=run.upper_bound()).contains(&seconds),
            "{} reports {seconds} s, outside the catalogue's bounds",
            run.expected_path().display()
        );
    }
    lines.into_iter().map(String::from).collect()
}

/// The goodput and rejection rate a paused-clock run reports, checked against its targets.
/// On the real clock they depend on how busy the machine is: chapter 8's benchmark measures
/// them there, and the real-clock test checks only what holds under any load (`accounted`).
fn check_targets(name: &str, run: &Run, stdout: &str) {
    if run.targets == Targets::None {
        return;
    }
    let figures = summary_figures(stdout).unwrap_or_else(|| panic!("{name}: no summary line"));
    let figure = |wanted: &str| {
        figures
            .iter()
            .find(|(name, _)| name == wanted)
            .map(|(_, value)| *value)
            .unwrap_or_else(|| panic!("{name}: no {wanted} in the summary"))
    };
    let (goodput, rejected) = (figure("goodput"), figure("rejected"));
    let met = goodput >= MIN_GOODPUT && rejected <= MAX_REJECTED;
    assert_eq!(
        met,
        run.targets == Targets::Met,
        "{name} {:?}: goodput={goodput} rejected={rejected}, targets {MIN_GOODPUT} and {MAX_REJECTED}",
        run.args
    );
}

/// What a run of chapter 8 must show on any clock and under any load: it ends with its summary
/// line, and every attempt is accounted for: completed, rejected, or cut short at the service
/// when the run ended, never more of those than the service admits at once.
fn accounted(name: &str, stdout: &str) {
    assert!(
        summary_figures(stdout).is_some_and(|figures| figures.len() >= 3),
        "{name}: no summary line in {stdout}"
    );
    let jobs = stdout
        .lines()
        .find_map(|line| line.strip_prefix("jobs: "))
        .unwrap_or_else(|| panic!("{name}: no jobs line in {stdout}"));
    let figure = |wanted: &str| -> u64 {
        jobs.split_whitespace()
            .find_map(|pair| pair.strip_prefix(wanted)?.strip_prefix('='))
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("{name}: no {wanted} in {jobs:?}"))
    };
    let (attempts, completed) = (figure("attempts"), figure("completed"));
    let (rejected, cut_short) = (figure("rejected"), figure("cut_short"));
    assert!(completed > 0, "{name}: nothing completed: {jobs}");
    assert_eq!(
        attempts,
        completed + rejected + cut_short,
        "{name}: attempts unaccounted for: {jobs}"
    );
    let most_in_flight = service_most_in_flight();
    assert!(
        cut_short as f64 <= most_in_flight,
        "{name}: more cut short than the {most_in_flight} the service admits at once: {jobs}"
    );
}

/// Chapter 8's service refuses requests past `OVERLOAD_FACTOR` times its `FULL_CAPACITY`:
/// read from the program, so that the two cannot drift apart.
fn service_most_in_flight() -> f64 {
    let constant = |name: &str| -> f64 {
        let value = constant_in("ch08_adaptive", name);
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name} is not a number: {value}"))
    };
    constant("FULL_CAPACITY") * constant("OVERLOAD_FACTOR")
}

fn check_real(name: &str, index: usize) {
    let run = the_run(name, index);
    let (output, _) = crate::common::run(&binary(name), run.args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{name} {:?} failed: {stderr}",
        run.args
    );
    match run.stderr {
        None => assert_eq!(stderr, "", "{name} {:?} wrote to stderr", run.args),
        Some(text) => assert!(
            stderr.contains(text),
            "{name}: stderr lacks {text:?}: {stderr}"
        ),
    }

    let (lines, seconds) = split_elapsed(&stdout).unwrap_or_else(|error| panic!("{name}: {error}"));
    let (low, high) = (run.lower_bound(), run.upper_bound());
    assert!(
        (low..=high).contains(&seconds),
        "{name} {:?} reported {seconds:.2} s, outside [{low:.2}, {high:.2}]",
        run.args
    );

    if run.targets != Targets::None {
        accounted(name, &stdout);
    }
    let paused = the_chapter(name).paused_clock;
    if !paused && std::env::var_os("UPDATE_EXPECTED").is_some() {
        // No paused clock to draw the expected output from: a real run is the reference.
        std::fs::write(root().join(run.expected_path()), stdout.as_bytes())
            .expect("the expected-output file is writable");
    }
    let expected = expected_lines(run, paused);
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    assert_eq!(
        normalize(&lines, run.order),
        normalize(&expected, run.order),
        "{name} {:?} printed other lines than {} (allowed reordering: {:?})",
        run.args,
        run.expected,
        run.order
    );
}

fn check_paused(name: &str, index: usize) {
    let run = the_run(name, index);
    let mut args = vec!["--clock", "paused"];
    args.extend(run.args);
    let (output, cpu) = run_measuring_cpu(&binary(name), &args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{name} {args:?} failed: {stderr}");
    assert!(
        stderr.contains("clock is paused"),
        "{name}: no note on stderr: {stderr}"
    );
    assert!(
        cpu <= PAUSED_CPU_LIMIT,
        "{name} {args:?} used {cpu:?} of processor time on the paused clock"
    );

    if std::env::var_os("UPDATE_EXPECTED").is_some() {
        std::fs::write(root().join(run.expected_path()), stdout.as_bytes())
            .expect("the expected-output file is writable");
    }

    let (lines, seconds) = split_elapsed(&stdout).unwrap_or_else(|error| panic!("{name}: {error}"));
    assert_eq!(
        elapsed_line(seconds),
        elapsed_line(run.elapsed_seconds),
        "{name} {args:?}: on the paused clock the elapsed time is exactly the sleeps"
    );
    check_targets(name, run, &stdout);
    if run.targets != Targets::None {
        accounted(name, &stdout);
    }
    // The paused clock runs on one thread, and the same program on it prints the same output,
    // line for line: compare it exactly, whatever the real clock's runs may vary in.
    let expected = expected_lines(run, true);
    assert_eq!(lines, expected);
}

/// `$value`, in a place where the macro below must mention `$marker` to repeat it.
macro_rules! marked {
    ($marker:ident, $value:expr) => {
        $value
    };
}

/// One test per run on the real clock, and, for the runs marked `paused`, one on the paused
/// clock, named after the run.
macro_rules! runs {
    ($($test:ident = $name:literal, $index:literal $(, $paused:ident)?;)*) => {
        mod real_clock {
            $(#[test] fn $test() { super::check_real($name, $index) })*
        }
        mod paused_clock {
            $($(
                #[test]
                fn $test() {
                    super::check_paused(marked!($paused, $name), $index)
                }
            )?)*
        }
        const TESTED: &[(&str, usize)] = &[$(($name, $index)),*];
        const TESTED_PAUSED: &[(&str, usize)] = &[$($((marked!($paused, $name), $index),)?)*];
    };
}

runs! {
    ch01_one_task = "ch01_one_task", 0, paused;
    ch02_five_tasks = "ch02_five_tasks", 0, paused;
    ch03_gather = "ch03_gather", 0, paused;
    ch03_gather_join = "ch03_gather", 1, paused;
    ch03_gather_join_set = "ch03_gather", 2, paused;
    ch04_queue = "ch04_queue", 0, paused;
    ch04_queue_pill = "ch04_queue", 1, paused;
    ch05_unreliable = "ch05_unreliable", 0, paused;
    ch05_unreliable_retries = "ch05_unreliable", 1, paused;
    ch06_bounded = "ch06_bounded", 0, paused;
    ch06_bounded_buffer_unordered = "ch06_bounded", 1, paused;
    ch06_bounded_for_each_concurrent = "ch06_bounded", 2, paused;
    ch06_bounded_trap = "ch06_bounded", 3, paused;
    ch06_bounded_trap_fixed = "ch06_bounded", 4, paused;
    ch06_bounded_from = "ch06_bounded", 5, paused;
    ch07_select = "ch07_select", 0, paused;
    ch07_select_lossy_send = "ch07_select", 1, paused;
    ch07_select_reserve = "ch07_select", 2, paused;
    ch07_select_pinned = "ch07_select", 3, paused;
    ch07_select_biased = "ch07_select", 4, paused;
    ch07_select_deadline = "ch07_select", 5, paused;
    ch07_select_fail_fast = "ch07_select", 6, paused;
    ch08_adaptive = "ch08_adaptive", 0, paused;
    ch08_adaptive_queue = "ch08_adaptive", 1, paused;
    ch08_adaptive_limit = "ch08_adaptive", 2, paused;
    ch08_adaptive_rate = "ch08_adaptive", 3, paused;
    ch08_adaptive_backoff = "ch08_adaptive", 4, paused;
    ch08_adaptive_budget = "ch08_adaptive", 5, paused;
    ch09_shutdown = "ch09_shutdown", 0;
    ch10_resume = "ch10_resume", 0;
    ch11_observability = "ch11_observability", 0, paused;
    ch12_blocking = "ch12_blocking", 0;
    ch13_million = "ch13_million", 0;
}

fn catalogue_runs(paused_only: bool) -> Vec<(String, usize)> {
    CHAPTERS
        .iter()
        .filter(|chapter| chapter.paused_clock || !paused_only)
        .flat_map(|chapter| (0..chapter.runs.len()).map(|index| (chapter.name(), index)))
        .collect()
}

fn listed(tested: &[(&str, usize)]) -> Vec<(String, usize)> {
    tested
        .iter()
        .map(|(name, index)| (name.to_string(), *index))
        .collect()
}

#[test]
fn every_run_in_the_catalogue_has_its_tests() {
    assert_eq!(listed(TESTED), catalogue_runs(false));
    assert_eq!(listed(TESTED_PAUSED), catalogue_runs(true));
    assert!(
        CHAPTERS.iter().all(|chapter| !chapter.runs.is_empty()),
        "a chapter with no run"
    );
}

#[test]
fn every_expected_file_belongs_to_a_run() {
    let mut listed: Vec<String> = CHAPTERS
        .iter()
        .flat_map(|chapter| chapter.runs.iter().map(|run| run.expected.to_string()))
        .collect();
    // What each exercise's solution prints (tests/workshop.rs), but Part III's, whose checks
    // report a real service's faults, different on every run.
    listed.extend(
        EXERCISES
            .iter()
            .filter(|exercise| exercise.playground)
            .map(|exercise| {
                exercise
                    .expected()
                    .file_name()
                    .expect("a file")
                    .to_string_lossy()
                    .into_owned()
            }),
    );
    listed.sort();
    let on_disk: Vec<String> = files("tests/expected", "txt")
        .iter()
        .map(|path| {
            path.file_name()
                .expect("a file")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(
        on_disk, listed,
        "an expected file no run uses, or a run with none"
    );
}
