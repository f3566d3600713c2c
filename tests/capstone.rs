//! Part III end to end: the real service on a loopback port the OS picks, the real client
//! against it, and what a user would do to them: faults, quotas, SIGKILL, a restarted service,
//! Ctrl-C, bad input. Every process a test starts is killed when the test ends, however it
//! ends, and every wait is bounded (`common::HANG`).
//!
//! What is checked is what must hold on any machine under any load: every item ends done or
//! dead-lettered, the service applied each done item exactly once, a resumed run finishes the
//! work. The one bound on wall time, a stop within the grace period plus a second, is a
//! reaction time of the program's own, justified where it is written.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::{HANG, binary, finish, tempfile_path};

/// The service, started on a port the OS picks, killed when dropped.
struct Service {
    child: Child,
    port: u16,
    /// The rest of its stdout, read after it stops.
    stdout: Option<BufReader<ChildStdout>>,
}

impl Service {
    fn start(args: &[&str]) -> Service {
        Service::start_on(0, args)
    }

    /// Starts the service and waits for its first line, `listening on http://127.0.0.1:PORT`.
    fn start_on(port: u16, args: &[&str]) -> Service {
        let port_arg = port.to_string();
        let mut child = Command::new(binary("ch14_capstone_service"))
            .args(["--port", &port_arg])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the service starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let read = reader.read_line(&mut line).map(|_| line);
            let _ = sender.send((read, reader));
        });
        let Ok((Ok(line), reader)) = receiver.recv_timeout(HANG) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the service printed no address within {HANG:?}");
        };
        let port = line
            .trim()
            .strip_prefix("listening on http://127.0.0.1:")
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("not an address line: {line:?}"));
        Service {
            child,
            port,
            stdout: Some(reader),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `GET /ledger`, over a plain socket: the tests need no HTTP client of their own.
    fn ledger(&self) -> serde_json::Value {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("the service answers");
        stream
            .set_read_timeout(Some(HANG))
            .expect("a timeout can be set");
        write!(
            stream,
            "GET /ledger HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .expect("the request is sent");
        let mut answer = String::new();
        stream
            .read_to_string(&mut answer)
            .expect("the answer is read");
        let (head, body) = answer
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("no HTTP answer: {answer:?}"));
        assert!(head.starts_with("HTTP/1.1 200"), "ledger: {head}");
        serde_json::from_str(body).unwrap_or_else(|error| panic!("ledger: {error}: {body}"))
    }

    /// How many items the service has applied so far.
    fn applied(&self) -> u64 {
        self.ledger()["applied"]
            .as_u64()
            .expect("applied is a count")
    }

    /// SIGTERM, then what it printed after its address line: its ledger summary.
    fn stop(mut self) -> String {
        signal(&self.child, "TERM");
        let mut rest = String::new();
        if let Some(mut reader) = self.stdout.take() {
            let _ = reader.read_to_string(&mut rest);
        }
        let started = Instant::now();
        while self.child.try_wait().expect("can wait").is_none() {
            assert!(started.elapsed() < HANG, "the service ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(10));
        }
        rest
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(child: &Child, name: &str) {
    let sent = Command::new("kill")
        .args(["-s", name, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success(), "kill -s {name} failed");
}

/// The client, with a database of its own, killed when dropped.
struct Client {
    child: Option<Child>,
}

impl Client {
    fn start(url: &str, db: &Path, args: &[&str]) -> Client {
        let child = Command::new(binary("ch14_capstone_client"))
            .args(["--url", url, "--db"])
            .arg(db)
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the client starts");
        Client { child: Some(child) }
    }

    fn signal(&self, name: &str) {
        signal(self.child.as_ref().expect("running"), name);
    }

    fn finish(mut self) -> Output {
        finish(self.child.take().expect("running"), "the client")
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A client run to its end.
fn run_client(url: &str, db: &Path, args: &[&str]) -> Output {
    Client::start(url, db, args).finish()
}

/// Waits until `done()` holds, checking every 20 ms, or fails the test after `HANG`.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < HANG,
            "{what} did not happen within {HANG:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The figure of a report line `name=N`.
fn figure(stdout: &str, name: &str) -> u64 {
    stdout
        .split_whitespace()
        .find_map(|word| word.strip_prefix(&format!("{name}=")))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {name}= in the report:\n{stdout}"))
}

/// The ids in the client's database in one state.
fn ids_in_state(db: &Path, state: &str) -> BTreeSet<String> {
    let db = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("the client's database opens");
    let mut query = db
        .prepare("SELECT id FROM items WHERE state = ?1")
        .expect("the items table is there");
    query
        .query_map([state], |row| row.get(0))
        .expect("the query runs")
        .collect::<Result<_, _>>()
        .expect("every id is text")
}

/// The service's ledger, as the set of ids it applied; each listed once.
fn applied_ids(ledger: &serde_json::Value) -> BTreeSet<String> {
    let items = ledger["items"]
        .as_array()
        .expect("the ledger lists its items");
    let ids: BTreeSet<String> = items
        .iter()
        .map(|id| id.as_str().expect("an id is text").to_string())
        .collect();
    assert_eq!(ids.len(), items.len(), "an item applied twice");
    assert_eq!(
        ledger["applied"].as_u64(),
        Some(items.len() as u64),
        "the ledger's count disagrees with its list"
    );
    ids
}

/// `item-000000001` to `item-N`, as `--generate N` makes them.
fn generated(n: u64) -> BTreeSet<String> {
    (1..=n).map(|i| format!("item-{i:09}")).collect()
}

fn db_path(stem: &str) -> PathBuf {
    tempfile_path(&format!("{stem}.db"))
}

/// Every item of the source is done or dead, never both; the service applied exactly the
/// items the client counts as done, each once.
fn check_exactly_once(service: &Service, db: &Path, all: &BTreeSet<String>) {
    let done = ids_in_state(db, "done");
    let dead = ids_in_state(db, "dead");
    assert!(done.is_disjoint(&dead));
    let ended: BTreeSet<String> = done.union(&dead).cloned().collect();
    assert_eq!(&ended, all, "an item neither done nor dead-lettered");
    let applied = applied_ids(&service.ledger());
    assert_eq!(
        applied, done,
        "the service applied other items than the client finished"
    );
}

#[test]
fn ten_thousand_items_through_quotas_and_faults_are_each_applied_once() {
    let service = Service::start(&[
        "--quota",
        "4000",
        "--burst",
        "200",
        "--fail-rate",
        "0.05",
        "--hang-rate",
        "0.005",
        "--drop-rate",
        "0.01",
        "--lose-rate",
        "0.01",
    ]);
    let db = db_path("faults");
    let output = run_client(
        &service.url(),
        &db,
        &["--generate", "10000", "--request-timeout", "0.5"],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "status {:?}: {stderr}",
        output.status
    );
    let (done, dead) = (figure(&stdout, "done"), figure(&stdout, "dead_letters"));
    assert_eq!(done + dead, 10_000, "{stdout}");
    assert!(
        done >= 9_900,
        "faults of a few percent dead-letter almost nothing: {stdout}"
    );
    assert_eq!(output.status.code() == Some(0), dead == 0);
    for cause in ["5xx", "timeout", "connect"] {
        assert!(
            figure(&stdout, cause) > 0,
            "no {cause} retries with faults on: {stdout}"
        );
    }
    check_exactly_once(&service, &db, &generated(10_000));
    // Items applied whose answer was lost were sent again, and the service knew them.
    let duplicates = service.ledger()["duplicates"].as_u64();
    assert!(
        duplicates > Some(0),
        "no lost answer retried: {duplicates:?}"
    );
    // Stopped with SIGTERM, the service reports its ledger as its last line.
    let summary = service.stop();
    assert!(
        summary.contains(&format!("ledger: applied={done} ")),
        "no ledger summary for {done} applied: {summary:?}"
    );
}

#[test]
fn sigkill_at_six_moments_then_a_resume_loses_nothing_and_applies_nothing_twice() {
    let items = 6_000;
    let service = Service::start(&["--quota", "3000", "--burst", "100", "--fail-rate", "0.02"]);
    let db = db_path("killed");
    let generate = items.to_string();
    // Each kill lands once the service has applied another twelfth of the items more than at
    // the kill before: at moments of the work, not of the clock, whatever the machine's load.
    for moment in 1..=6 {
        let before = service.applied();
        let client = Client::start(&service.url(), &db, &["--generate", &generate]);
        wait_until("progress before a kill", || {
            service.applied() >= before + items / 12 || service.applied() == items
        });
        client.signal("KILL");
        let output = client.finish();
        assert_eq!(
            output.status.code(),
            None,
            "kill {moment}: the client was not killed"
        );
    }
    assert!(
        service.applied() < items,
        "the kills came too late to interrupt anything"
    );
    let output = run_client(&service.url(), &db, &["--generate", &generate]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    check_exactly_once(&service, &db, &generated(items));
    let ledger = service.ledger();
    assert!(
        ledger["duplicates"].as_u64() > Some(0),
        "no item in flight at a kill was sent again: the test proved nothing"
    );
}

#[test]
fn a_service_killed_and_restarted_mid_run_is_ridden_out() {
    let items: u64 = 4_000;
    let service = Service::start(&["--quota", "2000", "--burst", "100"]);
    let port = service.port;
    let db = db_path("restarted");
    let generate = items.to_string();
    let client = Client::start(&service.url(), &db, &["--generate", &generate]);
    wait_until("a third of the work", || service.applied() >= items / 3);
    let applied_before = service.applied();
    service.kill();
    // Down for a moment, as a redeploy would be: the client sees refused connections.
    std::thread::sleep(Duration::from_millis(300));
    let restarted = Service::start_on(port, &["--quota", "2000", "--burst", "100"]);
    let output = client.finish();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_eq!(figure(&stdout, "done"), items, "{stdout}");
    assert!(
        figure(&stdout, "unreachable") > 0,
        "no refused connection was waited out: {stdout}"
    );
    // The restarted service's ledger is new, and keeps nothing of the first one's (its ledger
    // lived in memory): it lists each item it applied once, and the client's database has
    // every item done.
    applied_ids(&restarted.ledger());
    assert_eq!(ids_in_state(&db, "done"), generated(items));
    assert!(
        applied_before < items,
        "the service was killed after the work was over"
    );
}

#[test]
fn sigint_stops_within_the_grace_period_and_a_rerun_finishes() {
    let items: u64 = 3_000;
    // Slow answers, so that requests are in flight when the signal lands.
    let service = Service::start(&["--latency-ms", "200", "--quota", "1000", "--burst", "50"]);
    let db = db_path("interrupted");
    let generate = items.to_string();
    let grace = 1.0;
    let client = Client::start(
        &service.url(),
        &db,
        &["--generate", &generate, "--grace", "1"],
    );
    wait_until("some progress", || service.applied() >= 100);
    client.signal("INT");
    let signalled = Instant::now();
    let output = client.finish();
    let took = signalled.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    // The grace period, plus a second: enough for a late wake-up and the final commit on a
    // busy machine, far less than the minutes the remaining work would take.
    assert!(
        took <= grace + 1.0,
        "stopped {took:.2} s after SIGINT, grace {grace} s"
    );
    assert!(
        ids_in_state(&db, "done").len() < items as usize,
        "the run was not interrupted"
    );

    let output = run_client(&service.url(), &db, &["--generate", &generate]);
    assert_eq!(output.status.code(), Some(0));
    check_exactly_once(&service, &db, &generated(items));
}

#[test]
fn bad_input_gets_one_line_and_status_2_and_a_malformed_line_a_dead_letter() {
    let service = Service::start(&[]);
    let url = service.url();
    let db = db_path("bad-input");
    let missing = tempfile_path("no-such-items");
    let folder = std::env::temp_dir();
    // Nothing listens on a port the OS just handed out and took back.
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        listener.local_addr().expect("an address").port()
    };
    let nobody = format!("http://127.0.0.1:{closed_port}");
    let cases: &[(&str, Vec<String>, &str)] = &[
        (
            "a missing items file",
            vec![url.clone(), "--items".into(), missing.display().to_string()],
            "items",
        ),
        (
            "a folder as the items file",
            vec![url.clone(), "--items".into(), folder.display().to_string()],
            "items",
        ),
        (
            "a URL that is not one",
            vec!["not a url".into(), "--generate".into(), "10".into()],
            "url",
        ),
        (
            "no service listening",
            vec![nobody, "--generate".into(), "10".into()],
            "127.0.0.1",
        ),
    ];
    for (what, args, words) in cases {
        let mut command = Command::new(binary("ch14_capstone_client"));
        command
            .arg("--url")
            .arg(&args[0])
            .args(&args[1..])
            .arg("--db")
            .arg(&db);
        let output = finish(
            command
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("starts"),
            what,
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{what}: {stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.lines().count() == 1,
            "{what}: not one line of error: {stderr}"
        );
        assert!(
            stderr.to_lowercase().contains(words),
            "{what}: no {words:?} in {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    }

    assert!(!db.exists(), "a refused run left a database behind");

    // A malformed line is a dead letter with its reason; the good lines are done.
    let items = tempfile_path("items.txt");
    std::fs::write(
        &items,
        "good-1\tfirst\nbad id!\tsecond\n\tno id\ngood-2\tthird\ngood-1\tagain\n",
    )
    .expect("the items file is written");
    let items_arg = items.display().to_string();
    let output = run_client(&url, &db_path("malformed"), &["--items", &items_arg]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert_eq!(figure(&stdout, "done"), 2, "{stdout}");
    assert_eq!(figure(&stdout, "dead_letters"), 3, "{stdout}");
    let dead: Vec<&str> = stdout
        .lines()
        .filter(|line| line.starts_with("dead: "))
        .collect();
    assert_eq!(dead.len(), 3, "{stdout}");
    // A repeated id is not dropped in silence: its line is a dead letter that says so.
    assert!(
        dead.iter()
            .any(|line| line.contains("id good-1 repeats line 1")),
        "{stdout}"
    );
    let ledger = applied_ids(&service.ledger());
    assert_eq!(
        ledger,
        ["good-1", "good-2"].map(String::from).into(),
        "{stdout}"
    );
}

#[test]
fn both_programs_answer_help() {
    for name in ["ch14_capstone_service", "ch14_capstone_client"] {
        let output = finish(
            Command::new(binary(name))
                .arg("--help")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("starts"),
            name,
        );
        assert!(output.status.success(), "{name} --help failed");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains(&format!("Usage: {name}")),
            "{name}: {stdout}"
        );
    }
}

#[test]
fn bad_command_lines_are_refused_with_status_2() {
    use std::ffi::OsString;
    let url = ["--url", "http://127.0.0.1:1", "--db", "never-created.db"];
    let refused: &[(&str, Vec<&str>, &str)] = &[
        (
            "ch14_capstone_service",
            vec!["--quota", "0"],
            "invalid value '0' for '--quota",
        ),
        (
            "ch14_capstone_service",
            vec!["--fail-rate", "2"],
            "must be from 0 to 1",
        ),
        (
            "ch14_capstone_service",
            vec!["--port", "70000"],
            "70000 is not in 0..=65535",
        ),
        (
            "ch14_capstone_service",
            vec!["--frobnicate"],
            "unexpected argument",
        ),
        (
            "ch14_capstone_client",
            vec!["--generate", "10", "--db", "x.db"],
            "--url <URL>",
        ),
        (
            "ch14_capstone_client",
            url.to_vec(),
            "<--items <FILE>|--generate <N>>",
        ),
        (
            "ch14_capstone_client",
            [&url[..], &["--generate", "0"]].concat(),
            "not in 1..",
        ),
        (
            "ch14_capstone_client",
            [&url[..], &["--generate", "5", "--items", "f"]].concat(),
            "cannot be used with",
        ),
    ];
    for (name, args, reason) in refused {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        crate::cli::assert_refused(name, &args, reason);
    }
    assert!(
        !crate::common::root().join("never-created.db").exists(),
        "a refused command line left a database behind"
    );
}

#[test]
fn dead_letters_are_sent_again_with_retry_dead_once_the_cause_is_fixed() {
    let items: u64 = 20;
    let generate = items.to_string();
    let db = db_path("retry-dead");
    // A service that fails every request: every item ends a dead letter.
    let failing = Service::start(&["--fail-rate", "1"]);
    let output = run_client(
        &failing.url(),
        &db,
        &["--generate", &generate, "--attempts", "2"],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert_eq!(figure(&stdout, "dead_letters"), items, "{stdout}");
    failing.kill();

    // Fixed: a rerun alone leaves them dead; with --retry-dead they are sent again.
    let service = Service::start(&[]);
    let output = run_client(&service.url(), &db, &["--generate", &generate]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        service.applied(),
        0,
        "a rerun sent dead letters without being asked"
    );
    let output = run_client(
        &service.url(),
        &db,
        &["--generate", &generate, "--retry-dead"],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    check_exactly_once(&service, &db, &generated(items));
}

#[test]
fn items_waiting_inside_the_client_do_not_die_of_the_deadline() {
    // A healthy service, slow to answer: the limit starts low and grows a step a round trip,
    // so most items wait for a permit far longer than their deadline. Their deadlines start
    // when they are sent, so every one of them is done.
    let service = Service::start(&[
        "--latency-ms",
        "500",
        "--capacity",
        "2000",
        "--quota",
        "1000000",
        "--burst",
        "1000000",
    ]);
    let db = db_path("slow");
    let output = run_client(
        &service.url(),
        &db,
        &[
            "--generate",
            "150",
            "--max-concurrency",
            "100",
            "--deadline",
            "2",
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert_eq!(figure(&stdout, "dead_letters"), 0, "{stdout}");
    // The wait was real: the run took longer than one deadline.
    let (_, seconds) = io_bound_tokio::split_elapsed(&stdout).expect("an elapsed line");
    assert!(
        seconds > 2.0,
        "no item waited: the test proved nothing ({seconds} s)"
    );
    check_exactly_once(&service, &db, &generated(150));
}

#[test]
fn a_rerun_with_another_items_file_is_refused_not_half_done() {
    let service = Service::start(&[]);
    let db = db_path("changed");
    let items = tempfile_path("first-items.txt");
    std::fs::write(&items, "x1\nx2\n").expect("the items file is written");
    let first = items.display().to_string();
    let output = run_client(&service.url(), &db, &["--items", &first]);
    assert_eq!(output.status.code(), Some(0));
    // A line put in front shifts every line: the database holds other items at those lines.
    let changed = tempfile_path("changed-items.txt");
    std::fs::write(&changed, "x0\nx1\nx2\n").expect("the items file is written");
    let changed = changed.display().to_string();
    let output = run_client(&service.url(), &db, &["--items", &changed]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("line 1"), "{stderr}");
    // The same file again is a plain rerun.
    let output = run_client(&service.url(), &db, &["--items", &first]);
    assert_eq!(output.status.code(), Some(0));
}
