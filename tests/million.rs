//! Chapter 11 is a benchmark, run by hand (see the README). Here it runs with a few thousand
//! jobs only, each pattern and work in its own process as the benchmark does, to check that
//! every pattern runs every job exactly once (the program fails otherwise) and reports its
//! figures in the documented shape.

use crate::common::{binary, run};

#[test]
fn every_pattern_runs_every_job_exactly_once() {
    let (output, _) = run(&binary("ch11_million"), &["--items", "3000"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let patterns = [
        "join_all",
        "spawn",
        "queue",
        "buffer_unordered",
        "joinset_semaphore",
    ];
    for work in ["zero", "sleep1ms"] {
        for pattern in patterns {
            let prefix = format!("pattern={pattern} work={work} items=3000 seconds=");
            let line = stdout
                .lines()
                .find(|line| line.starts_with(&prefix))
                .unwrap_or_else(|| panic!("no line for {pattern} {work} in:\n{stdout}"));
            let fields: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(fields.len(), 5, "{line}");
            let seconds: f64 = fields[3]["seconds=".len()..].parse().expect("seconds");
            assert!(seconds > 0.0, "{line}");
            assert!(fields[4].starts_with("peak_rss_mb="), "{line}");
        }
    }
}
