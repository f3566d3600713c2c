//! Chapter 9's logs, on the real binary: every JSON line parses, the report agrees with the
//! logged events, RUST_LOG filters, and no terminal escape code reaches a pipe.

use std::collections::BTreeMap;
use std::process::Command;

use crate::common::{binary, root};

fn run_with(args: &[&str], rust_log: Option<&str>) -> (String, String) {
    let mut command = Command::new(binary("ch09_observability"));
    command
        .args(args)
        .current_dir(root())
        .env_remove("RUST_LOG");
    if let Some(filter) = rust_log {
        command.env("RUST_LOG", filter);
    }
    let output = command.output().expect("ch09_observability runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !stderr.contains('\u{1b}'),
        "escape codes reached a pipe: {stderr:?}"
    );
    assert!(
        !stdout.contains('\u{1b}'),
        "escape codes reached a pipe: {stdout:?}"
    );
    (stdout, stderr)
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

#[test]
fn json_logs_parse_and_agree_with_the_report() {
    let (stdout, stderr) = run_with(&["--log-format", "json", "--clock", "paused"], None);
    // The last attempt's outcome for each task.
    let mut outcomes: BTreeMap<u64, (u64, String)> = BTreeMap::new();
    let mut lines = 0;
    for line in stderr.lines().filter(|line| !line.starts_with("note:")) {
        lines += 1;
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: {line:?}"));
        assert_eq!(event["fields"]["message"], "task finished", "{line}");
        let number = event["span"]["task_number"]
            .as_u64()
            .expect("a task number");
        let attempt = event["span"]["attempt"].as_u64().expect("an attempt");
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
    let (stdout, warnings) = run_with(&["--clock", "paused"], Some("warn"));
    let failures: usize = report_line(&stdout, "failures:")
        .values()
        .map(|count| count.parse::<usize>().expect("a count"))
        .sum();
    let warned = warnings
        .lines()
        .filter(|line| line.contains("WARN"))
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
    let (_, nothing) = run_with(&["--clock", "paused"], Some("error"));
    assert!(
        !nothing.contains("task finished"),
        "RUST_LOG=error logged: {nothing}"
    );
}

#[test]
fn a_bad_rust_log_is_refused_clearly() {
    let output = Command::new(binary("ch09_observability"))
        .env("RUST_LOG", "ch09=[")
        .output()
        .expect("ch09_observability runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("error: RUST_LOG="), "{stderr}");
}
