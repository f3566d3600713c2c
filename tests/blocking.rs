//! Chapter 12's two measurements, on the real binary: blocking calls inside async tasks on one
//! thread add up (N jobs take N times as long), while awaiting or `spawn_blocking` overlap
//! them (N jobs take as long as one).

use crate::common::{binary, run};

/// The seconds a line of ch12's output reports after `took=`.
fn took(stdout: &str, label: &str) -> f64 {
    let line = stdout
        .lines()
        .find(|line| line.starts_with(label))
        .unwrap_or_else(|| panic!("no line for {label:?} in {stdout}"));
    let seconds = line
        .rsplit("took=")
        .next()
        .and_then(|s| s.strip_suffix('s'));
    seconds
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no took=S in {line:?}"))
}

#[test]
fn blocking_adds_up_and_awaiting_overlaps() {
    let tasks = 8;
    let (output, _) = run(&binary("ch12_blocking"), &["--tasks", "8"]);
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let job = 0.2;
    let serial = tasks as f64 * job;
    let blocked = took(&stdout, "std::thread::sleep");
    assert!(
        (serial..=serial * 1.05 + 0.5).contains(&blocked),
        "{tasks} blocking jobs took {blocked} s, not about {serial} s"
    );
    for label in ["tokio::time::sleep", "spawn_blocking"] {
        let overlapped = took(&stdout, label);
        assert!(
            (job..=job * 1.05 + 0.5).contains(&overlapped),
            "{label}: {tasks} jobs took {overlapped} s, not about {job} s"
        );
    }
}
