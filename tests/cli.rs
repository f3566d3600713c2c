//! Every chapter's command line: `--help` works, and a bad option or value gets a clear
//! error and exit status 2, never a panic.

use io_bound_tokio::CHAPTERS;

use crate::common::{binary, run};

#[test]
fn help_is_printed_and_succeeds() {
    for chapter in CHAPTERS {
        let name = chapter.name();
        for flag in ["--help", "-h"] {
            let (output, _) = run(&binary(&name), &[flag]);
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(output.status.success(), "{name} {flag} failed");
            assert!(
                stdout.starts_with(&format!("Usage: {name} ")),
                "{name}: {stdout}"
            );
            assert_eq!(
                stdout.contains("--clock real|paused"),
                chapter.paused_clock,
                "{name}: does --help describe --clock? {stdout}"
            );
            assert!(output.stderr.is_empty(), "{name} {flag} wrote to stderr");
        }
    }
}

/// Command lines every chapter refuses, and a word the error must contain.
const REFUSED_BY_ALL: &[(&[&str], &str)] = &[
    (&["--frobnicate"], "unexpected argument \"--frobnicate\""),
    (&["extra"], "unexpected argument \"extra\""),
];

/// Command lines every chapter with a paused clock refuses.
const REFUSED_WITH_A_CLOCK: &[(&[&str], &str)] = &[
    (&["--clock"], "--clock needs a value"),
    (
        &["--clock", "sideways"],
        "expected real or paused, got \"sideways\"",
    ),
];

/// Command lines one chapter refuses.
const REFUSED_BY_ONE: &[(&str, &[&str], &str)] = &[
    ("ch03_gather", &["--with"], "--with needs a value"),
    ("ch03_gather", &["--with", "gather"], "got \"gather\""),
    ("ch04_queue", &["--end"], "--end needs a value"),
    ("ch04_queue", &["--end", "never"], "got \"never\""),
    (
        "ch05_unreliable",
        &["--attempts", "0"],
        "expected 1 to 10, got \"0\"",
    ),
    ("ch05_unreliable", &["--attempts", "11"], "expected 1 to 10"),
    (
        "ch05_unreliable",
        &["--attempts", "two"],
        "expected 1 to 10",
    ),
    (
        "ch05_unreliable",
        &["--attempts"],
        "--attempts needs a value",
    ),
    (
        "ch05_unreliable",
        &["--timeout", "0"],
        "expected 0.001 to 3600 seconds",
    ),
    (
        "ch05_unreliable",
        &["--timeout", "-1"],
        "expected 0.001 to 3600 seconds",
    ),
    (
        "ch05_unreliable",
        &["--timeout", "NaN"],
        "expected 0.001 to 3600 seconds",
    ),
    (
        "ch05_unreliable",
        &["--timeout", "1e9"],
        "expected 0.001 to 3600 seconds",
    ),
    (
        "ch05_unreliable",
        &["--timeout", "soon"],
        "expected a number of seconds",
    ),
    ("ch05_unreliable", &["--timeout"], "--timeout needs a value"),
    (
        "ch07_shutdown",
        &["--grace", "-1"],
        "expected 0 to 60 seconds",
    ),
    (
        "ch07_shutdown",
        &["--grace", "61"],
        "expected 0 to 60 seconds",
    ),
    (
        "ch07_shutdown",
        &["--grace", "NaN"],
        "expected 0 to 60 seconds",
    ),
    (
        "ch07_shutdown",
        &["--grace", "soon"],
        "expected a number of seconds",
    ),
    ("ch07_shutdown", &["--grace"], "--grace needs a value"),
    ("ch08_resume", &["--jobs", "0"], "expected 1 to 100000"),
    ("ch08_resume", &["--jobs", "100001"], "expected 1 to 100000"),
    ("ch08_resume", &["--jobs", "many"], "expected 1 to 100000"),
    ("ch08_resume", &["--db"], "--db needs a file path"),
    (
        "ch09_observability",
        &["--log-format", "xml"],
        "expected readable or json, got \"xml\"",
    ),
    (
        "ch09_observability",
        &["--log-format"],
        "--log-format needs a value",
    ),
    (
        "ch06_adaptive",
        &["--mode", "lazy"],
        "expected fixed or adaptive, got \"lazy\"",
    ),
    ("ch06_adaptive", &["--mode"], "--mode needs a value"),
    ("ch06_adaptive", &["--seed", "-1"], "expected 0 to 2^64 - 1"),
    (
        "ch06_adaptive",
        &["--seed", "many"],
        "expected 0 to 2^64 - 1",
    ),
    ("ch06_adaptive", &["--seed"], "--seed needs a value"),
    (
        "ch06_adaptive",
        &["--duration", "3"],
        "expected 4 to 600 whole seconds",
    ),
    (
        "ch06_adaptive",
        &["--duration", "601"],
        "expected 4 to 600 whole seconds",
    ),
    (
        "ch06_adaptive",
        &["--duration", "1.5"],
        "expected 4 to 600 whole seconds",
    ),
    ("ch06_adaptive", &["--duration"], "--duration needs a value"),
    (
        "ch06_adaptive",
        &["--svg", "no/such/folder/run.svg"],
        "--svg: no folder no/such/folder",
    ),
    ("ch06_adaptive", &["--svg"], "--svg needs a file path"),
    ("ch10_blocking", &["--tasks", "0"], "expected 1 to 20"),
    ("ch10_blocking", &["--tasks", "21"], "expected 1 to 20"),
    ("ch10_blocking", &["--tasks"], "--tasks needs a value"),
    ("ch11_million", &["--items", "0"], "expected 1 to 10000000"),
    (
        "ch11_million",
        &["--items", "lots"],
        "expected 1 to 10000000",
    ),
    ("ch11_million", &["--pattern", "gather"], "got \"gather\""),
    (
        "ch11_million",
        &["--work", "hard"],
        "expected zero, sleep1ms or all",
    ),
    ("ch11_million", &["--work"], "--work needs a value"),
];

fn assert_refused(name: &str, args: &[&str], reason: &str) {
    let (output, _) = run(&binary(name), args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{name} {args:?}: {stderr}");
    assert!(stderr.starts_with("error: "), "{name} {args:?}: {stderr}");
    assert!(
        stderr.contains(reason),
        "{name} {args:?}: no {reason:?} in {stderr}"
    );
    assert!(
        stderr.contains(&format!("Usage: {name} ")),
        "{name} {args:?}: no usage"
    );
    assert!(
        !stderr.contains("panicked"),
        "{name} {args:?} panicked: {stderr}"
    );
    assert!(
        output.stdout.is_empty(),
        "{name} {args:?} printed on stdout"
    );
}

#[test]
fn bad_command_lines_are_refused_with_status_2() {
    for chapter in CHAPTERS {
        for (args, reason) in REFUSED_BY_ALL {
            assert_refused(&chapter.name(), args, reason);
        }
        if chapter.paused_clock {
            for (args, reason) in REFUSED_WITH_A_CLOCK {
                assert_refused(&chapter.name(), args, reason);
            }
        } else {
            assert_refused(
                &chapter.name(),
                &["--clock", "paused"],
                "unexpected argument",
            );
        }
    }
    for (name, args, reason) in REFUSED_BY_ONE {
        assert_refused(name, args, reason);
    }
}
