//! Chapter 10 on the real binary: killed with SIGKILL at several points, then run to the end,
//! every job's result is recorded exactly once, and no more jobs ran twice than were in flight
//! at the kills. A job that crashes the program every time ends as a dead letter after
//! `MAX_ATTEMPTS`, reported, and charges no other job more than one attempt. The claim finds
//! the next job through the index of pending jobs. A file that is not this chapter's sound
//! database is refused, and left as it was. Of two runs started together, exactly one runs.
//! A closed output ends a run like a crash, and the next run resumes.
//!
//! The tests read the database through the program (`--status`, `--results`): the test binary
//! has no SQLite of its own.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::common::{HANG, binary, read, root, tempfile_path};

const JOBS: u32 = 100;
const CONSUMERS: u32 = 4;
/// The program's cap on a job's attempts.
const MAX_ATTEMPTS: u64 = 3;

/// A database path of its own for each test, removed with SQLite's side files at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        Scratch(tempfile_path("ch10_resume").with_extension("db"))
    }

    fn side_file(&self, suffix: &str) -> PathBuf {
        PathBuf::from(format!("{}{suffix}", self.0.display()))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(self.side_file(suffix));
        }
    }
}

fn resume(db: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(binary("ch10_resume"));
    command
        .arg("--db")
        .arg(db)
        .args(extra)
        .current_dir(root())
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Waits for a run to end (see `common::finish`).
fn finish(child: Child) -> Output {
    crate::common::finish(child, "ch10_resume")
}

fn run(db: &Path, extra: &[&str]) -> Output {
    finish(resume(db, extra).spawn().expect("ch10_resume starts"))
}

/// Runs it, asserts that it succeeded, and returns its output.
fn succeeds(db: &Path, extra: &[&str]) -> String {
    let output = run(db, extra);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{extra:?}: {stderr}");
    assert_eq!(stderr, "", "{extra:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The `interrupted=N` a run reports when it starts.
fn interrupted(first_line: &str) -> u32 {
    let value = first_line.rsplit("interrupted=").next().unwrap_or_default();
    value
        .parse()
        .unwrap_or_else(|_| panic!("no interrupted=N in {first_line:?}"))
}

/// Reads `--results`: `(number, attempts)` for each result, checked to be the job's own.
fn results(db: &Path) -> Vec<(u64, u64)> {
    let stdout = succeeds(db, &["--results"]);
    let mut found = Vec::new();
    for line in stdout.lines() {
        let fields: Vec<u64> = line
            .split(' ')
            .map(|field| {
                let (_, value) = field.split_once('=').expect("name=value");
                value.parse().expect("a number")
            })
            .collect();
        let [number, result, tries] = fields[..] else {
            panic!("not a result line: {line:?}")
        };
        assert_eq!(
            result,
            number * number,
            "{line:?}: not the job's own result"
        );
        found.push((number, tries));
    }
    found
}

/// Checks that there is exactly one result per job `0..jobs`, each the job's own, and returns
/// the sum of the attempts.
fn check_results(db: &Path, jobs: u32) -> u32 {
    let found = results(db);
    let numbers: Vec<u64> = found.iter().map(|&(number, _)| number).collect();
    let expected: Vec<u64> = (0..u64::from(jobs)).collect();
    assert_eq!(numbers, expected, "one result per job, each once");
    let attempts: u64 = found.iter().map(|&(_, tries)| tries).sum();
    u32::try_from(attempts).expect("a few attempts")
}

/// Starts a run, waits until it has opened the database (its `resuming:` line) and re-run
/// the jobs the last kill interrupted (they run first, one at a time: one `processed` line
/// each), lets it work `at` more, then kills it with SIGKILL. Returns what it printed.
/// Waiting for those lines, not counting from the start, keeps a busy machine's slow start
/// from making a kill land before the run has done anything: no job is in flight at two kills.
fn kill_mid_run(db: &Path, at: Duration) -> String {
    let mut child = resume(db, &[]).spawn().expect("it starts");
    let stdout = child.stdout.take().expect("a pipe");
    let (sender, lines) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let mut printed: Vec<String> = Vec::new();
    let mut wanted = 1; // the `resuming:` line, then one line per job re-run
    while printed.len() < wanted {
        let Ok(line) = lines.recv_timeout(HANG) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no line after {printed:?} in {HANG:?}, or the run ended: killed");
        };
        if printed.is_empty() {
            assert!(line.starts_with("resuming: "), "{line}");
            wanted += interrupted(&line) as usize;
        } else {
            assert!(line.starts_with("processed "), "{line}");
        }
        printed.push(line);
    }
    std::thread::sleep(at);
    child.kill().expect("SIGKILL"); // on Unix, `kill` is SIGKILL: no chance to clean up
    let output = finish(child);
    assert_eq!(output.status.signal(), Some(9), "it ended before the kill");
    reader.join().expect("the reader does not panic");
    printed.extend(lines.try_iter());
    printed.join("\n")
}

#[test]
fn killed_six_times_every_job_is_recorded_exactly_once() {
    let db = Scratch::new();
    // Six kills, each after the interrupted jobs have run again. Four consumers do at most
    // four jobs every 0.1 s between them: at most 80 jobs in the 1.7 s these add up to,
    // with the 20 the kills can interrupt. Each kill lands mid-run, and the last run has work.
    let kill_points = [0.25, 0.3, 0.25, 0.35, 0.25, 0.3];
    let mut reported_interrupted = 0;
    for at in kill_points {
        let stdout = kill_mid_run(&db.0, Duration::from_secs_f64(at));
        reported_interrupted += interrupted(stdout.lines().next().unwrap_or_default());
    }
    let stdout = succeeds(&db.0, &[]);
    reported_interrupted += interrupted(stdout.lines().next().unwrap_or_default());
    assert!(
        stdout.contains(&format!("\ncompleted={JOBS} pending=0 dead=0\n")),
        "{stdout}"
    );
    assert_eq!(
        succeeds(&db.0, &["--status"]),
        format!("completed={JOBS} pending=0 dead=0\n")
    );

    // No job was in flight at two kills (`kill_mid_run`): none ran more than twice.
    for (number, tries) in results(&db.0) {
        assert!(tries <= 2, "job {number}: {tries} attempts");
    }
    let reruns = check_results(&db.0, JOBS) - JOBS;
    let kills = kill_points.len() as u32;
    // Every kill lands after the `resuming:` line, so the reports count every job in flight
    // at a kill; one job per consumer per kill is the upper bound.
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

/// Runs it on `db` with each of `args`, and asserts a one-line refusal containing `reason`,
/// with exit status 2, and the file's bytes as they were.
fn assert_refused(db: &Path, reason: &str) {
    let before = std::fs::read(db).ok();
    for args in [&[][..], &["--status"], &["--results"]] {
        let output = run(db, args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(reason),
            "{args:?}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?} printed on stdout");
        assert_eq!(std::fs::read(db).ok(), before, "{args:?} changed the file");
    }
}

#[test]
fn files_that_are_not_its_database_are_refused_and_untouched() {
    let text = Scratch::new();
    std::fs::write(&text.0, "these are my notes, not a database\n").expect("written");
    assert_refused(&text.0, "not an SQLite database");

    // Another program's database: one table, `invoices`, in SQLite's default rollback
    // journal mode. Made once with the sqlite3 shell:
    //   sqlite3 tests/fixtures/foreign.db "PRAGMA page_size = 512;
    //     CREATE TABLE invoices (id INTEGER PRIMARY KEY, total INTEGER NOT NULL);
    //     INSERT INTO invoices VALUES (1, 100);"
    // Switching it to WAL, as the chapter does its own, would change its header.
    let foreign = Scratch::new();
    std::fs::copy(root().join("tests/fixtures/foreign.db"), &foreign.0).expect("copied");
    assert_refused(
        &foreign.0,
        "an SQLite database, but not one of this chapter's",
    );
    assert!(!foreign.side_file("-wal").exists(), "a WAL beside it");

    // An empty file is a new database for a run, but holds nothing to report.
    let empty = Scratch::new();
    std::fs::write(&empty.0, "").expect("written");
    for args in [&["--status"][..], &["--results"]] {
        let output = run(&empty.0, args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("it holds no jobs"), "{args:?}: {stderr}");
        let length = std::fs::metadata(&empty.0).expect("still there").len();
        assert_eq!(length, 0, "{args:?} wrote into the empty file");
    }
    succeeds(&empty.0, &["--jobs", "4"]);
    assert_eq!(
        succeeds(&empty.0, &["--status"]),
        "completed=4 pending=0 dead=0\n"
    );

    let missing = Scratch::new();
    for args in [&["--status"][..], &["--results"]] {
        let output = run(&missing.0, args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("no such database"), "{args:?}: {stderr}");
        assert!(!missing.0.exists(), "{args:?} created a database");
    }
}

#[test]
fn a_database_with_its_version_but_other_tables_is_refused_and_untouched() {
    // Two databases that carry the chapter's version number, 9, in their header, as any
    // program may write it. Made once with the sqlite3 shell, in SQLite's default rollback
    // journal mode (switching one to WAL would change its header):
    //   sqlite3 tests/fixtures/version-only.db "PRAGMA page_size = 512;
    //     PRAGMA user_version = 9;"
    //   sqlite3 tests/fixtures/other-columns.db "PRAGMA page_size = 512;
    //     CREATE TABLE jobs (number INTEGER PRIMARY KEY, state TEXT NOT NULL,
    //                        attempts INTEGER NOT NULL DEFAULT 0);
    //     CREATE TABLE results (number INTEGER PRIMARY KEY, result INTEGER NOT NULL);
    //     PRAGMA user_version = 9;"
    // The second has the chapter's two tables, but `result` where the chapter has `value`,
    // and no index.
    for fixture in ["version-only.db", "other-columns.db"] {
        let copy = Scratch::new();
        std::fs::copy(root().join("tests/fixtures").join(fixture), &copy.0).expect("copied");
        assert_refused(&copy.0, "an SQLite database, but not one of this chapter's");
        assert!(
            !copy.side_file("-wal").exists(),
            "{fixture}: a WAL beside it"
        );
    }
}

#[test]
fn a_database_of_the_previous_schema_is_refused_and_untouched() {
    // A database as the chapter's previous version left it, schema 8: no `dead` state, no
    // index, a job still marked running. Made once with the sqlite3 shell:
    //   sqlite3 tests/fixtures/schema-8.db "PRAGMA page_size = 512;
    //     CREATE TABLE jobs (number INTEGER PRIMARY KEY, state TEXT NOT NULL
    //       CHECK (state IN ('pending', 'running', 'done')),
    //       attempts INTEGER NOT NULL DEFAULT 0);
    //     CREATE TABLE results (number INTEGER PRIMARY KEY REFERENCES jobs (number),
    //       value INTEGER NOT NULL);
    //     INSERT INTO jobs VALUES (0, 'done', 1), (1, 'running', 1), (2, 'pending', 0);
    //     INSERT INTO results VALUES (0, 0);
    //     PRAGMA user_version = 8;"
    let copy = Scratch::new();
    std::fs::copy(root().join("tests/fixtures/schema-8.db"), &copy.0).expect("copied");
    assert_refused(&copy.0, "schema version 8, older than this program's 9");
    assert!(!copy.side_file("-wal").exists(), "a WAL beside it");
}

/// True when the tests run as root, whom file permissions do not stop.
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

/// A folder of its own, removed at the end, with whatever is in it.
struct Folder(PathBuf);

impl Drop for Folder {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o755));
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_folder_it_cannot_write_is_refused_before_any_work() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |mode| std::fs::Permissions::from_mode(mode);
    let folder = Folder(tempfile_path("ch10_resume-folder"));
    std::fs::create_dir(&folder.0).expect("a folder");
    let db = folder.0.join("jobs.db");
    succeeds(&db, &["--jobs", "4"]);
    // The run's last connection copied its log into the file and deleted both side files:
    // any reader now has to create them again.
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", db.display()));
        assert!(!side.exists(), "the run left {}", side.display());
    }
    let empty = folder.0.join("empty.db");
    std::fs::write(&empty, "").expect("written");
    let missing = folder.0.join("missing.db");
    // Both files writable by anyone; the folder writable by no one but root, who owns it.
    // Root's writes are not stopped by permissions, so as root the program runs as `nobody`,
    // as tests/failures.rs does; as anyone else, the folder is made read-only to its owner.
    std::fs::set_permissions(&db, mode(0o666)).expect("chmod");
    std::fs::set_permissions(&empty, mode(0o666)).expect("chmod");
    let as_root = is_root();
    std::fs::set_permissions(&folder.0, mode(if as_root { 0o755 } else { 0o555 })).expect("chmod");

    let sound = std::fs::read(&db).expect("the database");
    let not_writable = format!("its folder, {}, is not writable", folder.0.display());
    let cases: [(&Path, &[&str], &str); 6] = [
        (&db, &[], &not_writable),
        (&db, &["--status"], &not_writable),
        (&db, &["--results"], &not_writable),
        (&db, &["--jobs", "8"], &not_writable),
        (&empty, &[], &not_writable),
        (&missing, &[], "cannot create: Permission denied"),
    ];
    for (path, args, reason) in cases {
        let mut command = Command::new(if as_root { "setpriv" } else { "env" });
        if as_root {
            command.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
        }
        command
            .arg(binary("ch10_resume"))
            .arg("--db")
            .arg(path)
            .args(args)
            .current_dir(root())
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let output = finish(command.spawn().expect("ch10_resume starts"));
        let stderr = String::from_utf8_lossy(&output.stderr);
        let case = format!("{} {args:?}", path.display());
        assert_eq!(output.status.code(), Some(2), "{case}: {stderr}");
        assert!(
            stderr.starts_with(&format!("error: {}: ", path.display())) && stderr.contains(reason),
            "{case}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{case}: {stderr}");
        assert!(output.stdout.is_empty(), "{case}: printed on stdout");
    }
    // Nothing was written: the database is as it was, the empty file still empty, and no
    // file appeared in the folder.
    assert_eq!(
        std::fs::read(&db).expect("the database"),
        sound,
        "the database changed"
    );
    assert_eq!(std::fs::metadata(&empty).expect("still there").len(), 0);
    let mut names: Vec<String> = std::fs::read_dir(&folder.0)
        .expect("the folder can be listed")
        .map(|entry| {
            entry
                .expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    assert_eq!(names, ["empty.db", "jobs.db"]);
}

#[test]
fn a_damaged_database_is_refused_and_untouched() {
    let db = Scratch::new();
    succeeds(&db.0, &["--jobs", "8"]);
    // The last connection to close copies the log into the file and deletes it: the whole
    // database is in the one file.
    assert!(!db.side_file("-wal").exists(), "the run left its log");
    let sound = std::fs::read(&db.0).expect("the database");
    // SQLite's header: the page size at offset 16, big-endian (100 KiB pages and more are
    // not used here).
    let page_size = usize::from(u16::from_be_bytes([sound[16], sound[17]]));
    let pages = sound.len() / page_size;
    // A table's leaf page (type 13) with rows on it, past the first page (SQLite's header and
    // schema): the jobs' or the results', as the file happens to lay them out.
    let cell_count = |at: usize| u16::from_be_bytes([sound[at + 3], sound[at + 4]]);
    let leaf = (1..pages)
        .map(|page| page * page_size)
        .find(|&at| sound[at] == 13 && cell_count(at) > 3)
        .unwrap_or_else(|| panic!("no table's leaf with rows in {pages} pages"));

    // Two kinds of damage: a page of garbage, which SQLite itself reports when it reads the
    // page, and a page whose header undercounts its rows, which plain queries do not notice:
    // they silently skip rows (a wrong `--status`, then jobs added twice).
    let mut garbage = sound.clone();
    garbage[leaf..leaf + page_size].fill(0x5a);
    let mut undercounted = sound.clone();
    let cells = leaf + 3; // the count of cells, two bytes into the page header
    let count = cell_count(leaf);
    undercounted[cells..cells + 2].copy_from_slice(&(count - 3).to_be_bytes());

    for damaged in [garbage, undercounted] {
        std::fs::write(&db.0, damaged).expect("written");
        assert_refused(&db.0, "damaged");
    }
}

/// Of two runs started together, exactly one runs; the other is refused at once with one line
/// and status 2. `resumed`: all five rounds on one database that a killed run left behind
/// (jobs still marked running, a log not yet copied into the file), each round adding jobs to
/// what the rounds before did; otherwise each round on a new file.
fn two_runs_together(resumed: bool) {
    let mut shared = Scratch::new();
    let mut jobs = 0;
    if resumed {
        jobs = 40;
        let mut child = resume(&shared.0, &["--jobs", "40"])
            .spawn()
            .expect("it starts");
        // Killed once it has set up the database (its `resuming:` line) and started work, not
        // at a time counted from its start: a busy machine's slow start would otherwise leave
        // an empty file behind, not a run interrupted mid-way.
        let mut output = BufReader::new(child.stdout.take().expect("a pipe"));
        let mut first = String::new();
        output.read_line(&mut first).expect("a line");
        assert!(first.starts_with("resuming: "), "{first}");
        std::thread::sleep(Duration::from_millis(300));
        child.kill().expect("SIGKILL");
        finish(child);
        drop(output);
    }
    // Every job runs once, and those the killed run left in flight once more.
    let mut interrupted_in_all = 0;
    let mut rounds = 0;
    let mut inconclusive = 0;
    while rounds < 5 {
        if !resumed {
            shared = Scratch::new();
            jobs = 0;
        }
        // 40 jobs more: a second of work for the winner, ample time for the other, started a
        // moment later, to find the database taken.
        jobs += 40;
        let db = &shared.0;
        let arg = jobs.to_string();
        let first = resume(db, &["--jobs", &arg]).spawn().expect("it starts");
        let second = resume(db, &["--jobs", &arg]).spawn().expect("it starts");
        // A reader beside them: `--status` takes no lock and waits for no one.
        let status = resumed.then(|| resume(db, &["--status"]).spawn().expect("it starts"));
        let outputs = [finish(first), finish(second)];
        if let Some(status) = status {
            let output = finish(status);
            let stdout = String::from_utf8_lossy(&output.stdout);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(output.status.success(), "--status beside a run: {stderr}");
            assert!(stdout.starts_with("completed="), "{stdout}");
        }
        let stderr: Vec<_> = outputs
            .iter()
            .map(|output| String::from_utf8_lossy(&output.stderr).into_owned())
            .collect();
        let succeeded: Vec<_> = outputs.iter().map(|o| o.status.success()).collect();
        for output in outputs.iter().filter(|output| output.status.success()) {
            let stdout = String::from_utf8_lossy(&output.stdout);
            interrupted_in_all += interrupted(stdout.lines().next().unwrap_or_default());
        }
        let done = format!("completed={jobs} pending=0 dead=0\n");
        if succeeded == [true, true] {
            // Both ran: that is right only if one started after the other had finished
            // (the machine was too busy to start them together), found no job left, and did
            // nothing. Such a round proves nothing, and is done again.
            let found_all_done = outputs.iter().any(|output| {
                let stdout = String::from_utf8_lossy(&output.stdout);
                stdout.starts_with(&format!("resuming: completed={jobs} pending=0 "))
            });
            assert!(found_all_done, "both runs worked at once: {stderr:?}");
            inconclusive += 1;
            assert!(inconclusive < 10, "the two runs never overlapped");
            continue;
        }
        let (winner, loser) = match succeeded[..] {
            [true, false] => (&outputs[0], &outputs[1]),
            [false, true] => (&outputs[1], &outputs[0]),
            _ => panic!("round {rounds}: both refused: {stderr:?}"),
        };
        let winner_stdout = String::from_utf8_lossy(&winner.stdout);
        assert!(winner_stdout.contains(&done), "{winner_stdout}");
        assert!(winner.stderr.is_empty(), "{stderr:?}");
        let refusal = String::from_utf8_lossy(&loser.stderr);
        assert_eq!(loser.status.code(), Some(2), "{refusal}");
        assert_eq!(
            refusal,
            format!(
                "error: {}: another run is using this database; try again when it ends\n",
                db.display()
            )
        );
        assert!(loser.stdout.is_empty(), "the refused run printed");
        rounds += 1;
    }
    let attempts = check_results(&shared.0, jobs);
    assert_eq!(attempts, jobs + interrupted_in_all, "a job ran twice");
}

#[test]
fn of_two_runs_started_together_on_a_new_database_exactly_one_runs() {
    two_runs_together(false);
}

#[test]
fn of_two_runs_started_together_on_a_resumed_database_exactly_one_runs() {
    two_runs_together(true);
}

#[test]
fn a_closed_output_ends_the_run_like_a_crash_and_the_next_resumes() {
    let db = Scratch::new();
    let mut child = resume(&db.0, &["--jobs", "20"]).spawn().expect("it starts");
    let stdout = child.stdout.take().expect("a pipe");
    let mut first = String::new();
    BufReader::new(stdout)
        .read_line(&mut first)
        .expect("a line");
    assert!(first.starts_with("resuming: "), "{first}");
    // The reading end is dropped here, as `| head -1` would: the next line cannot be written,
    // and the program ends, quietly, with the status a shell gives a closed pipe.
    let output = finish(child);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(141), "{stderr}");
    assert_eq!(stderr, "");

    let stdout = succeeds(&db.0, &["--jobs", "20"]);
    assert!(
        stdout.contains("\ncompleted=20 pending=0 dead=0\n"),
        "{stdout}"
    );
    let attempts = check_results(&db.0, 20);
    // It ended at the first line after the pipe closed: with at most one job per consumer
    // in flight, which the next run did again.
    assert!(attempts <= 20 + CONSUMERS, "{attempts} attempts");
}

/// A run with job `poison` poisoned, under `sh` with core dumps off: the job aborts the
/// program, and an abort may write a core file (into the project, with the usual settings).
fn poisoned_run(db: &Path, jobs: &str, poison: &str) -> Output {
    let mut command = Command::new("sh");
    command
        .args(["-c", "ulimit -c 0 && exec \"$0\" \"$@\""])
        .arg(binary("ch10_resume"))
        .arg("--db")
        .arg(db)
        .args(["--jobs", jobs, "--poison", poison])
        .current_dir(root())
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    finish(command.spawn().expect("sh starts"))
}

#[test]
fn a_job_that_crashes_every_run_ends_as_a_dead_letter_and_charges_no_other() {
    let db = Scratch::new();
    let (jobs, poison) = (12, 5);
    let (jobs_arg, poison_arg) = (jobs.to_string(), poison.to_string());
    // Each of its attempts aborts the program (SIGABRT, signal 6): once among other jobs in
    // flight, then alone, as the first job a run re-runs, until it has had its three.
    let mut firsts = Vec::new();
    for attempt in 1..=MAX_ATTEMPTS {
        let output = poisoned_run(&db.0, &jobs_arg, &poison_arg);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert_eq!(
            output.status.signal(),
            Some(6),
            "attempt {attempt}: {stdout}"
        );
        firsts.push(stdout.lines().next().unwrap_or_default().to_owned());
    }
    // The third crash found it alone in flight: the second run had re-run it first.
    assert!(firsts[2].ends_with(" dead=0 interrupted=1"), "{firsts:?}");

    // The next run sets it aside, does the rest, reports it, and fails; and so does every
    // run after that: a dead letter is kept and reported, never dropped, never run again.
    let letter = format!("dead letter: task_number={poison} attempts={MAX_ATTEMPTS}\n");
    let summary = format!("completed={} pending=0 dead=1\n{letter}", jobs - 1);
    for run in ["the run that sets it aside", "a run after that"] {
        let output = poisoned_run(&db.0, &jobs_arg, &poison_arg);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{run}: {stderr}");
        assert!(stdout.contains(&format!("\n{summary}")), "{run}: {stdout}");
        assert_eq!(
            stderr,
            "error: jobs set aside as dead letters: 1, each in flight at 3 crashes; \
             --status lists them\n",
            "{run}"
        );
    }
    assert_eq!(succeeds(&db.0, &["--status"]), summary);

    // Every other job has its result, and none was charged for the poison's crashes more
    // than once: in flight beside it at its first crash, never at the two after.
    let found = results(&db.0);
    let numbers: Vec<u64> = found.iter().map(|&(number, _)| number).collect();
    let expected: Vec<u64> = (0..jobs).filter(|&number| number != poison).collect();
    assert_eq!(numbers, expected);
    for (number, tries) in found {
        assert!(tries <= 2, "job {number}: {tries} attempts");
    }
}

#[test]
fn the_claim_finds_the_next_job_in_the_index_as_the_page_shows() {
    // The page's run: 40 jobs, all done, then `--explain` on the database.
    let db = Scratch::new();
    succeeds(&db.0, &["--jobs", "40"]);
    let stdout = succeeds(&db.0, &["--explain"]);
    let lines: Vec<&str> = stdout.lines().collect();
    let [with, without] = lines[..] else {
        panic!("not two lines: {stdout}")
    };
    // With the index of pending jobs, SQLite reads that index, empty, and no row of the
    // table; without it, it scans the table from the first job to the last.
    assert!(
        with.starts_with("next job, with the index: SCAN jobs USING ")
            && with.contains("INDEX pending_jobs")
            && with.ends_with("(full-scan steps: 0)"),
        "{with}"
    );
    assert_eq!(
        without,
        "next job, without it: SCAN jobs (full-scan steps: 39)"
    );
    // The page includes this file: what `--explain` prints there is what it printed here.
    let shown = "tests/expected/ch10_resume.explain.log";
    if std::env::var_os("UPDATE_EXPECTED").is_some() {
        std::fs::write(root().join(shown), &stdout).expect("the file is writable");
    }
    assert_eq!(read(shown.as_ref()), stdout);
}
