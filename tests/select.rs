//! Chapter 7 on the real binary: a cancel-unsafe branch loses a message; the fixed one loses none.
//!
//! The expected-output files pin every line; these tests check what the lessons claim, so that
//! an output regenerated from a broken program (`UPDATE_EXPECTED=1`) cannot pass for a good one.
//! All of them run on the paused clock, where the lessons are deterministic.

use std::process::Output;

use crate::common::{binary, constant_in, run_measuring_cpu};

/// Runs one lesson on the paused clock and returns its output; it must succeed.
fn lesson(name: &str) -> Output {
    let args = ["--clock", "paused", "--lesson", name];
    let (output, _) = run_measuring_cpu(&binary("ch07_select"), &args);
    assert!(
        output.status.success(),
        "ch07_select {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The counts of the `items:` line: `items: sent=10 received=7 lost=3 missing=[3, 6, 9]`.
struct Counts {
    sent: u32,
    received: u32,
    lost: u32,
    missing: Vec<u32>,
}

fn counts(stdout: &str) -> Counts {
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix("items: "))
        .unwrap_or_else(|| panic!("no items line in {stdout}"));
    let field = |name: &str| -> &str {
        line.split_whitespace()
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("no {name} in {line:?}"))
    };
    let number = |name: &str| -> u32 {
        field(name)
            .parse()
            .unwrap_or_else(|_| panic!("{name} is not a number in {line:?}"))
    };
    let missing = line
        .split_once("missing=[")
        .and_then(|(_, rest)| rest.strip_suffix(']'))
        .unwrap_or_else(|| panic!("no missing list in {line:?}"));
    let missing = missing
        .split(", ")
        .filter(|item| !item.is_empty())
        .map(|item| item.parse().expect("an item number"))
        .collect();
    Counts {
        sent: number("sent"),
        received: number("received"),
        lost: number("lost"),
        missing,
    }
}

/// The `N` of `const NAME: Duration = Duration::from_secs(N);` in the chapter's source.
fn seconds_constant(name: &str) -> u64 {
    let value = constant_in("ch07_select", name);
    value
        .strip_prefix("Duration::from_secs(")
        .and_then(|seconds| seconds.strip_suffix(')'))
        .and_then(|seconds| seconds.parse().ok())
        .unwrap_or_else(|| panic!("{name} is not in whole seconds: {value}"))
}

#[test]
fn a_send_in_select_loses_items_and_reserve_loses_none() {
    let lossy = lesson("lossy-send");
    let lossy_stdout = String::from_utf8_lossy(&lossy.stdout);
    let lossy = counts(&lossy_stdout);
    let fixed = lesson("reserve");
    let fixed_stdout = String::from_utf8_lossy(&fixed.stdout);
    let fixed = counts(&fixed_stdout);

    for (name, run) in [("lossy-send", &lossy), ("reserve", &fixed)] {
        assert_eq!(
            run.sent,
            run.received + run.lost,
            "{name}: every item sent is received or lost"
        );
        assert_eq!(
            run.missing.len() as u32,
            run.lost,
            "{name}: lost items named"
        );
        assert!(
            run.missing.iter().all(|&item| item < run.sent),
            "{name}: only items sent can go missing"
        );
    }
    assert_eq!(lossy.sent, fixed.sent, "both producers send the same items");
    assert!(lossy.lost > 0, "the lossy producer lost nothing");
    assert_eq!(fixed.lost, 0, "reserve lost items: {:?}", fixed.missing);

    // Both producers count alike (the items handed over before the one in hand): their first
    // progress lines, before any item is lost, are the same.
    let first_progress = |stdout: &str| {
        stdout
            .lines()
            .find(|line| line.contains(": progress: "))
            .map(str::to_string)
    };
    assert_eq!(
        first_progress(&lossy_stdout),
        first_progress(&fixed_stdout),
        "the two producers' progress lines count different things"
    );

    // The item is lost exactly when the progress branch wins while `send` waits for room.
    let progress = lossy_stdout.matches(": progress: ").count() as u32;
    assert_eq!(
        progress, lossy.lost,
        "one item lost per progress line:\n{lossy_stdout}"
    );
}

#[test]
fn a_deadline_pinned_once_fires_on_time_and_one_made_each_turn_never_does() {
    let output = lesson("pinned");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let (remade, pinned) = stdout
        .split_once("one sleep, pinned before the loop:")
        .unwrap_or_else(|| panic!("no pinned part in {stdout}"));
    assert!(
        !remade.contains(": deadline"),
        "a sleep made each turn fired:\n{remade}"
    );
    assert!(
        remade.contains("no more messages"),
        "the loop with a new sleep each turn did not run to the last message:\n{remade}"
    );
    let fired = format!("{}.0 s: deadline", seconds_constant("COLLECT_FOR"));
    assert!(
        pinned.lines().any(|line| line == fired),
        "the pinned deadline did not print {fired:?}:\n{pinned}"
    );
    assert!(
        !pinned.contains("no more messages"),
        "the pinned deadline let the loop run to the end:\n{pinned}"
    );
}

#[test]
fn one_deadline_bounds_every_retry_and_fresh_timeouts_do_not() {
    let output = lesson("deadline");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let budget = seconds_constant("BUDGET");
    let per_attempt = seconds_constant("ATTEMPT_TIMEOUT");
    let gave_up: Vec<&str> = stdout
        .lines()
        .filter(|line| line.contains(": gave up"))
        .collect();
    assert_eq!(gave_up.len(), 2, "two ways, two ends:\n{stdout}");
    // Fresh timeouts: every attempt gets its full timeout, the caller's budget regardless.
    let fresh_end = per_attempt * 3;
    assert!(
        fresh_end > budget && gave_up[0].starts_with(&format!("{fresh_end}.0 s: ")),
        "fresh timeouts should end at {fresh_end} s: {}",
        gave_up[0]
    );
    assert!(
        gave_up[1].starts_with(&format!("{budget}.0 s: ")),
        "one deadline should end at the budget, {budget} s: {}",
        gave_up[1]
    );
}

#[test]
fn siblings_are_cancelled_and_a_childs_panic_reaches_the_top_once() {
    let output = lesson("fail-fast");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // try_join! and the JoinSet each drop the two siblings of the failing task.
    let dropped = stdout.matches("dropped mid-way").count();
    assert_eq!(dropped, 4, "siblings cancelled:\n{stdout}");
    assert!(
        stdout.contains("the parent panicked with its child's payload: task 4 hit a bug"),
        "the parent did not re-raise the child's panic:\n{stdout}"
    );
    // `resume_unwind` does not call the panic hook: the message is printed once, by the child.
    assert_eq!(
        stderr.matches("task 4 hit a bug").count(),
        1,
        "the panic was reported other than once:\n{stderr}"
    );
}
