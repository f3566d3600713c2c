//! Chapter 11's logs, on the real binary: every JSON line parses, the report agrees with the
//! logged events, RUST_LOG filters, every warning names its job whatever RUST_LOG keeps, a
//! mistaken RUST_LOG is refused in one line, no terminal escape code reaches a pipe, and a
//! stderr that cannot take the logs does not cost the run its report, and the log lines the
//! page shows are the ones the program writes (`UPDATE_EXPECTED=1 cargo test --test book
//! observability::` rewrites them).
//! Every run is on the paused clock, so that it takes no time worth waiting for.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStringExt;
use std::process::{Command, Output, Stdio};

use crate::common::{binary, read, root};

/// Runs the chapter with `args` and `RUST_LOG` set to `rust_log` (removed when `None`), to its
/// end (see `common::finish`).
fn run_with(args: &[&str], rust_log: Option<&OsStr>) -> Output {
    run_with_stderr(args, rust_log, Stdio::piped())
}

/// `run_with`, with standard error sent to `stderr`; when that is not a pipe, the output's
/// `stderr` is empty.
fn run_with_stderr(args: &[&str], rust_log: Option<&OsStr>, stderr: Stdio) -> Output {
    let mut command = Command::new(binary("ch11_observability"));
    command
        .args(args)
        .current_dir(root())
        .env_remove("RUST_LOG")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr);
    if let Some(filter) = rust_log {
        command.env("RUST_LOG", filter);
    }
    crate::common::finish(
        command.spawn().expect("ch11_observability starts"),
        "ch11_observability",
    )
}

/// Runs the chapter on the paused clock, asserts that it succeeded and wrote no escape code,
/// and returns its standard output and its logs (standard error, without the clock's note).
fn logs_of(args: &[&str], rust_log: Option<&str>) -> (String, String) {
    let args: Vec<&str> = args.iter().copied().chain(["--clock", "paused"]).collect();
    let output = run_with(&args, rust_log.map(OsStr::new));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "{args:?} RUST_LOG={rust_log:?}: {stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "escape codes reached a pipe: {stderr:?}"
    );
    assert!(
        !stdout.contains('\u{1b}'),
        "escape codes reached a pipe: {stdout:?}"
    );
    let logs: Vec<&str> = stderr
        .lines()
        .filter(|line| !line.starts_with("note: tokio's clock is paused"))
        .collect();
    (stdout, logs.join("\n"))
}

/// `key=value` pairs of the report's line that starts with `prefix`.
fn report_line(stdout: &str, prefix: &str) -> BTreeMap<String, String> {
    let line = stdout
        .lines()
        .find(|line| line.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line in {stdout}"));
    line.split_whitespace()
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

/// The number of failed jobs the report counts.
fn failed_jobs(stdout: &str) -> usize {
    report_line(stdout, "failures:")
        .values()
        .map(|count| count.parse::<usize>().expect("a count"))
        .sum()
}

/// One JSON log line, parsed, with what identifies its job: `(task_number, attempt)`, from
/// the event's own fields or else from its span's.
fn parse_json(line: &str) -> (serde_json::Value, (u64, u64)) {
    let event: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: {line:?}"));
    let field = |name: &str| {
        event["fields"][name]
            .as_u64()
            .or_else(|| event["span"][name].as_u64())
            .unwrap_or_else(|| panic!("no {name} in {line}"))
    };
    let job = (field("task_number"), field("attempt"));
    (event, job)
}

#[test]
fn json_logs_parse_and_agree_with_the_report() {
    let (stdout, logs) = logs_of(&["--log-format", "json"], None);
    // The last attempt's outcome for each task.
    let mut outcomes: BTreeMap<u64, (u64, String)> = BTreeMap::new();
    let mut lines = 0;
    for line in logs.lines() {
        lines += 1;
        let (event, (number, attempt)) = parse_json(line);
        assert_eq!(event["fields"]["message"], "task finished", "{line}");
        let outcome = event["fields"]["outcome"]
            .as_str()
            .expect("an outcome")
            .to_string();
        assert!(event["fields"]["duration_ms"].is_u64(), "{line}");
        let last = outcomes.entry(number).or_insert((attempt, outcome.clone()));
        if attempt >= last.0 {
            *last = (attempt, outcome);
        }
    }
    assert!(lines >= 200, "only {lines} log lines");
    let report = report_line(&stdout, "report:");
    assert_eq!(report["tasks"], outcomes.len().to_string());
    let done = outcomes
        .values()
        .filter(|(_, outcome)| outcome == "done")
        .count();
    assert_eq!(report["done"], done.to_string());
    assert_eq!(report["failed"], (outcomes.len() - done).to_string());
    let failures = report_line(&stdout, "failures:");
    for (kind, count) in &failures {
        let logged = outcomes
            .values()
            .filter(|(_, outcome)| outcome == kind)
            .count();
        assert_eq!(count, &logged.to_string(), "failures of kind {kind}");
    }
    let latency = report_line(&stdout, "latency:");
    let p = |key: &str| {
        latency[key]
            .trim_end_matches('s')
            .parse::<f64>()
            .expect("seconds")
    };
    assert!(p("p50") <= p("p95") && p("p95") <= p("p99"), "{latency:?}");
}

#[test]
fn rust_log_chooses_what_is_logged() {
    let (stdout, warnings) = logs_of(&[], Some("warn"));
    let failures = failed_jobs(&stdout);
    let warned = warnings
        .lines()
        .filter(|line| line.contains(" WARN "))
        .count();
    let logged = warnings
        .lines()
        .filter(|line| line.contains("task finished"))
        .count();
    assert!(
        warned > failures,
        "every failed attempt is a warning: {warned} for {failures}"
    );
    assert_eq!(
        warned, logged,
        "RUST_LOG=warn let other levels through:\n{warnings}"
    );
    // The readable lines name the job too.
    for line in warnings.lines() {
        assert!(
            line.contains(" task_number=") && line.contains(" attempt="),
            "a warning that does not say which job failed: {line}"
        );
    }
    let (_, nothing) = logs_of(&[], Some("error"));
    assert!(nothing.is_empty(), "RUST_LOG=error logged: {nothing}");
    // Upper case, spaces and empty directives are read as a person meant them.
    let (_, spaced) = logs_of(&[], Some(" WARN , "));
    assert_eq!(
        spaced.lines().count(),
        warned,
        "RUST_LOG=' WARN , ':\n{spaced}"
    );
    // This program's target alone enables every level of it; so does the start of it, since
    // `EnvFilter` matches a target by its start, even one a letter short of the whole.
    for all in [
        "ch11_observability",
        "ch11_observability=trace",
        "ch11",
        "ch11_observabilit=trace",
    ] {
        let (_, everything) = logs_of(&[], Some(all));
        assert!(
            everything.lines().count() > warned && everything.contains(" INFO "),
            "RUST_LOG={all}: {everything}"
        );
    }
}

#[test]
fn other_crates_targets_are_left_alone() {
    // Far from this program's target: another crate's, which logs nothing here, and not a
    // mistake to refuse, since one RUST_LOG may be set for several programs.
    let (_, nothing) = logs_of(&[], Some("hyper=warn"));
    assert!(nothing.is_empty(), "RUST_LOG=hyper=warn logged: {nothing}");
    let (stdout, warnings) = logs_of(&[], Some("warn,hyper=debug"));
    assert!(
        warnings.lines().count() > failed_jobs(&stdout),
        "RUST_LOG=warn,hyper=debug lost the warnings:\n{warnings}"
    );
}

#[test]
fn at_rust_log_warn_every_json_warning_names_its_job() {
    let (stdout, warnings) = logs_of(&["--log-format", "json"], Some("warn"));
    let mut warned = BTreeSet::new();
    for line in warnings.lines() {
        let (event, job) = parse_json(line);
        assert_eq!(event["level"], "WARN", "{line}");
        assert!(warned.insert(job), "{job:?} warned twice");
    }
    assert!(
        warned.len() > failed_jobs(&stdout),
        "every failed attempt is a warning: {} lines\n{stdout}",
        warned.len()
    );
    // The same jobs and attempts as the failures logged at the default level, where the span
    // that names them is enabled however it is written.
    let (_, everything) = logs_of(&["--log-format", "json"], None);
    let failed: BTreeSet<(u64, u64)> = everything
        .lines()
        .map(parse_json)
        .filter(|(event, _)| event["fields"]["outcome"] != "done")
        .map(|(_, job)| job)
        .collect();
    assert_eq!(warned, failed);
}

#[test]
fn a_mistaken_rust_log_is_refused_in_one_line() {
    let refused: &[(&[u8], &str)] = &[
        // Parses as a target named `warning`: nothing would be logged.
        (b"warning", "\"warning\" is neither a level"),
        (b"info,warning", "\"warning\" is neither a level"),
        (b"Warning", "\"Warning\" is neither a level"),
        // A target, but not one this program logs under, nor the start of it.
        (b"tokio", "\"tokio\" is neither a level"),
        (b"ch11_observability::jobs", "is neither a level"),
        // A level where a target goes: everything under the target `info`, which is nothing.
        (b"info=", "\"info=\" names \"info\" as a target"),
        (b"WARN=debug", "names \"WARN\" as a target"),
        (b"warn[task]=debug", "names \"warn\" as a target"),
        // This program's target, misspelt: a letter left out, a dash for an underscore (the
        // package's name), capitals, two letters swapped.
        (
            b"ch11_observabilty=debug",
            "the target \"ch11_observabilty\", which is not this program's",
        ),
        (
            b"ch11-observability=debug",
            "\"ch11-observability\", which is not",
        ),
        (
            b"CH09_OBSERVABILITY=info",
            "\"CH09_OBSERVABILITY\", which is not",
        ),
        (
            b"info,ch11_obsrevability[task]=warn",
            "\"ch11_obsrevability\", which is not",
        ),
        // A span with an empty name, which no span has.
        (b"[]", "\"[]\" filters on a span with an empty name"),
        (b"[]=trace", "a span with an empty name"),
        (b"ch11_observability[]=debug", "a span with an empty name"),
        // What `EnvFilter` itself cannot parse.
        (
            b"ch11_observability=loud",
            "\"ch11_observability=loud\" does not parse",
        ),
        (b"ch11=[", "\"ch11=[\" does not parse"),
        (b"=warn", "\"=warn\" does not parse"),
        (b"\xff", "is not UTF-8"),
    ];
    for (value, words) in refused {
        let value = OsString::from_vec(value.to_vec());
        let output = run_with(&["--clock", "paused"], Some(&value));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(2),
            "RUST_LOG={value:?}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "RUST_LOG={value:?}: {stderr}");
        assert!(stderr.starts_with("error: RUST_LOG="), "{stderr}");
        assert!(stderr.contains(words), "RUST_LOG={value:?}: {stderr}");
        assert!(output.stdout.is_empty(), "RUST_LOG={value:?} ran");
    }
}

#[test]
fn a_full_stderr_costs_the_logs_not_the_report() {
    // Every level logged, in both formats, into a standard error that takes nothing: the run
    // still succeeds, with the report it prints when its logs can be written. On the paused
    // clock the report is the same from run to run, so it can be compared whole.
    for format in ["readable", "json"] {
        let args = ["--log-format", format, "--clock", "paused"];
        let trace = Some(OsStr::new("trace"));
        let full = std::fs::File::create("/dev/full").expect("Linux has /dev/full");
        let lost = run_with_stderr(&args, trace, Stdio::from(full));
        let kept = run_with(&args, trace);
        assert!(kept.status.success(), "{args:?}: {kept:?}");
        assert!(lost.status.success(), "{args:?} 2>/dev/full: {lost:?}");
        assert_eq!(
            String::from_utf8_lossy(&lost.stdout),
            String::from_utf8_lossy(&kept.stdout),
            "{args:?}: the report under 2>/dev/full"
        );
    }
}

/// The lines of the page's log excerpts that its prose describes, by their number in the
/// expected files (from 1): the page includes them by number, so they must stay these.
const JOB_16_INVALID: usize = 1;
const JOB_22_FIRST_TIMEOUT: usize = 53;
const JOB_22_SECOND_TIMEOUT: usize = 108;

#[test]
fn the_log_lines_on_the_page_are_what_the_program_logs() {
    // On the paused clock the lines carry no time of day and come in the same order on every
    // run, so they can be compared whole. Named `.log`, not `.txt`: the chapter catalogue lists
    // the `.txt` files, each a run's standard output, and these are its standard error.
    for (format, file) in [
        ("readable", "ch11_observability.logs.readable.log"),
        ("json", "ch11_observability.logs.json.log"),
    ] {
        let (_, logs) = logs_of(&["--log-format", format], None);
        let logs = format!("{logs}\n");
        let path = std::path::Path::new("tests/expected").join(file);
        if std::env::var_os("UPDATE_EXPECTED").is_some() {
            std::fs::write(root().join(&path), &logs).expect("the expected file is writable");
        }
        let expected = read(&path);
        assert!(
            logs == expected,
            "--log-format {format} logs other lines than {}: if the change is meant, rewrite \
             it with `UPDATE_EXPECTED=1 cargo test --test book observability::` and review the \
             diff",
            path.display()
        );
        let lines: Vec<&str> = expected.lines().collect();
        let line = |number: usize| lines.get(number - 1).copied().unwrap_or_default();
        for (number, job, attempt, outcome) in [
            (JOB_16_INVALID, 16, 1, "invalid_input"),
            (JOB_22_FIRST_TIMEOUT, 22, 1, "timeout"),
            (JOB_22_SECOND_TIMEOUT, 22, 2, "timeout"),
        ] {
            let shown = line(number);
            let (says_job, says_outcome) = if format == "json" {
                let (event, logged) = parse_json(shown);
                (
                    logged == (job, attempt),
                    event["fields"]["outcome"] == outcome,
                )
            } else {
                (
                    shown.ends_with(&format!(" task_number={job} attempt={attempt}")),
                    shown.contains(&format!(" outcome=\"{outcome}\" ")),
                )
            };
            assert!(
                says_job && says_outcome,
                "line {number} of {file} is no longer job {job}'s attempt {attempt} \
                 ({outcome}), which the page says it is: {shown}"
            );
        }
    }
}
