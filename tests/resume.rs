//! Chapter 8 on the real binary: killed with SIGKILL at several points, then run to the end,
//! every job's result is recorded exactly once, and no more jobs ran twice than were in flight
//! at the kills. A file that is not this chapter's database is refused, and left untouched.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use rusqlite::Connection;

use crate::common::{binary, root};

const JOBS: i64 = 100;
const CONSUMERS: i64 = 4;

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("resume");
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    let path = dir.join(name);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    path
}

fn resume(db: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(binary("ch08_resume"));
    command.arg("--db").arg(db).args(extra).current_dir(root());
    command
}

/// The `interrupted=N` a run reports when it starts.
fn interrupted(stdout: &str) -> i64 {
    let line = stdout.lines().next().unwrap_or_default();
    let value = line.rsplit("interrupted=").next().unwrap_or_default();
    value
        .parse()
        .unwrap_or_else(|_| panic!("no interrupted=N in {line:?}"))
}

#[test]
fn killed_six_times_every_job_is_recorded_exactly_once() {
    let db = scratch("killed.db");
    // Six kills whose sum (2.2 s) stays under the 2.5 s of work: each lands mid-run.
    let kill_points = [0.3, 0.4, 0.35, 0.45, 0.3, 0.4];
    let mut reported_interrupted = 0;
    for at in kill_points {
        let mut child = resume(&db, &[])
            .stdout(Stdio::piped())
            .spawn()
            .expect("it starts");
        std::thread::sleep(Duration::from_secs_f64(at));
        child.kill().expect("SIGKILL"); // on Unix, `kill` is SIGKILL: no chance to clean up
        let output = child.wait_with_output().expect("it ends");
        let stdout = String::from_utf8_lossy(&output.stdout);
        if let Some(first) = stdout.lines().next() {
            reported_interrupted += interrupted(first);
        }
    }
    let last = resume(&db, &[]).output().expect("it runs to the end");
    assert!(
        last.status.success(),
        "{}",
        String::from_utf8_lossy(&last.stderr)
    );
    let stdout = String::from_utf8_lossy(&last.stdout);
    reported_interrupted += interrupted(&stdout);
    assert!(
        stdout.contains(&format!("completed={JOBS} pending=0")),
        "{stdout}"
    );

    let status = resume(&db, &["--status"]).output().expect("--status runs");
    assert_eq!(
        String::from_utf8_lossy(&status.stdout),
        format!("completed={JOBS} pending=0\n")
    );

    let db = Connection::open(&db).expect("the database opens");
    let (results, wrong, attempts): (i64, i64, i64) = db
        .query_row(
            "SELECT (SELECT count(*) FROM results),
                    (SELECT count(*) FROM results WHERE value != number * number),
                    (SELECT sum(attempts) FROM jobs)",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .expect("the queries run");
    assert_eq!(results, JOBS, "one result per job");
    assert_eq!(wrong, 0, "every result is the job's own");
    let reruns = attempts - JOBS;
    let kills = kill_points.len() as i64;
    // A kill between `recover` and the `resuming:` line would hide some from the reports, so
    // the reports give a lower bound; one job per consumer per kill is the upper one.
    assert!(
        reruns >= reported_interrupted,
        "{reruns} re-runs, {reported_interrupted} reported"
    );
    assert!(
        reruns <= kills * CONSUMERS,
        "{reruns} re-runs for {kills} kills"
    );
    assert!(
        reruns >= 1,
        "no kill caught a job in flight: is the test still testing?"
    );
}

fn assert_refused(db: &Path, reason: &str) {
    let before = std::fs::read(db).ok();
    let output = resume(db, &[]).output().expect("it runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with("error: ") && stderr.contains(reason),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(std::fs::read(db).ok(), before, "the file was changed");
}

#[test]
fn files_that_are_not_its_database_are_refused_and_untouched() {
    let text = scratch("notes.txt");
    std::fs::write(&text, "these are my notes, not a database\n").expect("written");
    assert_refused(&text, "not an SQLite database");

    let foreign = scratch("foreign.db");
    Connection::open(&foreign)
        .and_then(|db| db.execute_batch("CREATE TABLE invoices (id INTEGER PRIMARY KEY);"))
        .expect("a foreign database");
    assert_refused(&foreign, "not one of this chapter's");

    let folder = scratch("folder.db");
    std::fs::create_dir_all(&folder).expect("a folder");
    assert_refused(&folder, "cannot open");

    let missing = scratch("missing.db");
    let output = resume(&missing, &["--status"]).output().expect("it runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(!missing.exists(), "--status created a database");
}

#[test]
fn a_second_run_on_the_same_database_is_refused() {
    let db = scratch("shared.db");
    let mut first = resume(&db, &["--jobs", "30"])
        .stdout(Stdio::null())
        .spawn()
        .expect("the first run starts");
    std::thread::sleep(Duration::from_millis(300));
    let second = resume(&db, &[]).output().expect("the second run runs");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("in use by another run"), "{stderr}");
    assert!(first.wait().expect("the first run ends").success());
}

#[test]
fn a_reader_that_stops_reading_does_not_crash_the_run() {
    use std::io::{BufRead, BufReader};
    let db = scratch("piped.db");
    let mut child = resume(&db, &["--jobs", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("it starts");
    let stdout = child.stdout.take().expect("a pipe");
    let mut first = String::new();
    BufReader::new(stdout)
        .read_line(&mut first)
        .expect("a line");
    // The reading end is dropped here, as `| head -1` would: every later write fails.
    let output = child.wait_with_output().expect("it ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let status = resume(&db, &["--status"]).output().expect("--status runs");
    assert_eq!(
        String::from_utf8_lossy(&status.stdout),
        "completed=20 pending=0\n"
    );
}
