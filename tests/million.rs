//! Chapter 13 is a benchmark, run by hand (see the README). Here it runs with a few thousand
//! jobs only, each pattern and work in its own process as the benchmark does, to check that
//! every pattern runs every job exactly once (the program fails otherwise) and reports its
//! figures in the documented shape; and it is stopped, refused and cut off from its output,
//! to check that it leaves no child running, wastes no run, and prints no panic.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{binary, root, run, tempfile_path};

#[test]
fn every_pattern_runs_every_job_exactly_once() {
    let (output, _) = run(&binary("ch13_million"), &["--items", "3000"]);
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
    for work in ["zero", "sleep1ms", "paced"] {
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
            // The physics: the last paced job's slot is 2999 / 50 = 59 ms after the start, and
            // 50 consumers doing 3000 sleeps of 1 ms each do 60 of them one after another.
            let least = match (work, pattern) {
                ("paced", _) => 0.059,
                ("sleep1ms", "join_all" | "spawn") => 0.001,
                ("sleep1ms", _) => 0.060,
                _ => 0.0,
            };
            assert!(seconds >= least, "faster than its waits allow: {line}");
            assert!(fields[4].starts_with("peak_rss_mb="), "{line}");
        }
    }
}

/// Runs `ch13_million --compare` from `folder` with `PATH` set to `path`, and checks that it
/// was refused before any measurement: status 2, and one line on stderr, with `reason`. The
/// comparison reports each measurement on stderr as it goes, so a single line means none ran.
fn assert_compare_refused(folder: &std::path::Path, path: &std::ffi::OsStr, reason: &str) {
    let output = Command::new(binary("ch13_million"))
        .arg("--compare")
        .current_dir(folder)
        .env("PATH", path)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("ch13_million runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(output.stdout.is_empty(), "printed on stdout");
    assert_eq!(stderr.lines().count(), 1, "more than the refusal: {stderr}");
    assert!(stderr.starts_with("error: --compare: "), "{stderr}");
    assert!(stderr.contains(reason), "no {reason:?} in {stderr}");
}

#[test]
fn compare_without_python_is_refused_before_the_work() {
    // A PATH with nothing on it: no python3 to be found.
    let empty = tempfile_path("no-python");
    std::fs::create_dir(&empty).expect("a temporary folder");
    assert_compare_refused(
        root(),
        empty.as_os_str(),
        "cannot run python3 (No such file or directory (os error 2)): it needs python3, 3.9 or \
         later, on the PATH",
    );
    std::fs::remove_dir(&empty).expect("the temporary folder can be removed");
}

#[test]
fn compare_without_its_output_folder_is_refused_before_the_work() {
    // Run from an empty folder: no chapters/ to write the table and the plot in. The folder is
    // checked first, so this needs no python3.
    let empty = tempfile_path("no-chapters");
    std::fs::create_dir(&empty).expect("a temporary folder");
    let path = std::env::var_os("PATH").unwrap_or_default();
    assert_compare_refused(
        &empty,
        &path,
        "cannot write in chapters/ (No such file or directory (os error 2)); run it from the \
         project's root",
    );
    std::fs::remove_dir(&empty).expect("the temporary folder can be removed");
}

/// The processes whose parent is `parent`, from Linux's /proc.
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            // `pid (command) state ppid ...`: the command may hold spaces and parentheses,
            // so the fields are counted after its last `)`.
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                    == Some(parent)
            })
        })
        .collect()
}

/// Polls `done` every 10 ms for at most `limit`; whether it came true.
fn within(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    done()
}

/// Sends `signal` to `pid`: a process, or with a `-` before it, a process group.
fn kill(signal: &str, pid: &str) {
    let sent = Command::new("kill")
        .args(["-s", signal, "--", pid])
        .status()
        .expect("kill runs");
    assert!(sent.success(), "kill -s {signal} -- {pid} failed");
}

/// Kills the program if the test ends while it runs, so that no failure leaves it behind.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Where a test sends its signal.
#[derive(Clone, Copy, PartialEq)]
enum Target {
    /// The parent alone, as `kill PID` does.
    Parent,
    /// The parent's whole process group, as a terminal's Ctrl-C does.
    Group,
    /// The parent's children alone: what the parent cannot have asked for.
    Children,
}

/// The process group of process `pid`, from Linux's /proc.
fn process_group_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (command) state ppid pgrp ...`, counted after the command's last `)`.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(2)?
        .parse()
        .ok()
}

/// Starts a run whose second child measures two million 1 ms sleeps through 50 consumers (at
/// least 40 s), sends `signal` to `target` while that child runs, and checks that the parent
/// exits with `status`, says it was stopped, and leaves no child behind.
fn stopping_the_parent_stops_its_child(signal: &str, target: Target, status: i32) {
    use std::os::unix::process::CommandExt as _;
    let mut command = Command::new(binary("ch13_million"));
    command
        .args(["--items", "2000000", "--pattern", "queue", "--work", "all"])
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if target == Target::Group {
        // A group of its own, whose number is the parent's: as a shell starts a command
        // typed at the terminal, and so that the signal reaches no one else.
        command.process_group(0);
    }
    let mut parent = Running(command.spawn().expect("ch13_million starts"));
    let pid = parent.0.id();
    // The first line is printed once the first child (no work: well under a second in a debug
    // build) has ended; the second child, the long one, starts right after.
    let stdout = parent.0.stdout.take().expect("stdout is piped");
    let (sender, first_line) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = sender.send(line);
    });
    let line = first_line
        .recv_timeout(Duration::from_secs(60))
        .expect("the first measurement within 60 s");
    assert!(line.starts_with("pattern=queue work=zero "), "{line:?}");
    let mut children = Leftovers(Vec::new());
    // The long child, once it runs its own program: until then (between fork and exec) it is
    // still a copy of its parent, in its parent's process group.
    let measuring = |child: &u32| {
        std::fs::read(format!("/proc/{child}/cmdline"))
            .is_ok_and(|line| line.windows(8).any(|word| word == b"sleep1ms"))
    };
    assert!(
        within(Duration::from_secs(30), || {
            children.0 = children_of(pid);
            !children.0.is_empty() && children.0.iter().all(measuring)
        }),
        "no child measuring sleep1ms: {:?}",
        children.0
    );
    match target {
        Target::Parent => kill(signal, &pid.to_string()),
        Target::Group => {
            // The terminal's Ctrl-C reaches its foreground process group only: a child in a
            // group of its own does not die of it before its parent has seen it.
            for &child in &children.0 {
                assert_ne!(
                    process_group_of(child),
                    Some(pid),
                    "child {child} in its group"
                );
            }
            kill(signal, &format!("-{pid}"));
        }
        Target::Children => {
            for &child in &children.0 {
                kill(signal, &child.to_string());
            }
        }
    }
    let mut exited = None;
    assert!(
        within(Duration::from_secs(30), || {
            exited = parent.0.try_wait().ok().flatten();
            exited.is_some()
        }),
        "still running 30 s after {signal}"
    );
    // The parent waited for its child before it exited, so the child is gone already; the
    // few seconds allow for a child left as a zombie, which the system reaps on its own.
    for &child in &children.0 {
        assert!(
            within(Duration::from_secs(5), || {
                !std::path::Path::new(&format!("/proc/{child}")).exists()
            }),
            "child {child} still alive after SIG{signal}"
        );
    }
    // Only now: a child left alive would hold the stderr it shares with its parent open.
    let mut stderr = String::new();
    let pipe = parent.0.stderr.as_mut().expect("stderr is piped");
    pipe.read_to_string(&mut stderr).expect("its stderr");
    let code = exited.and_then(|status| status.code());
    assert_eq!(code, Some(status), "{stderr}");
    assert_eq!(
        stderr,
        format!("SIG{signal}: stopped, and the measurement in progress with it\n")
    );
}

/// Whether a process `pid` runs ch13_million: not one that has ended, nor one that has since
/// been given the same number.
fn is_ch11(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|line| line.windows(12).any(|word| word == b"ch13_million"))
}

/// Child processes that a failing test kills, so that no failure leaves one behind.
struct Leftovers(Vec<u32>);

impl Drop for Leftovers {
    fn drop(&mut self) {
        for &pid in &self.0 {
            if is_ch11(pid) {
                let _ = Command::new("kill")
                    .args(["-s", "KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

#[test]
fn sigterm_stops_the_parent_and_its_child() {
    stopping_the_parent_stops_its_child("TERM", Target::Parent, 143);
}

#[test]
fn sigint_stops_the_parent_and_its_child() {
    stopping_the_parent_stops_its_child("INT", Target::Parent, 130);
}

#[test]
fn ctrl_c_to_the_whole_process_group_stops_the_run_with_status_130() {
    stopping_the_parent_stops_its_child("INT", Target::Group, 130);
}

#[test]
fn a_child_killed_by_sigterm_stops_the_run_as_sigterm_does() {
    // As `pkill ch13_million` does, which signals parent and children alike: whichever end
    // the parent notices first, the run stops the same way.
    stopping_the_parent_stops_its_child("TERM", Target::Children, 143);
}

/// The processes whose environment holds `marker`, from Linux's /proc: a run's children, even
/// once their parent has gone and they belong to another.
fn processes_marked(marker: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|environ| {
                environ
                    .windows(marker.len())
                    .any(|w| w == marker.as_bytes())
            })
        })
        .collect()
}

/// The processes of a run, marked in their environment, that a failing test kills, so that
/// no failure leaves one behind.
struct Marked(String);

impl Drop for Marked {
    fn drop(&mut self) {
        for pid in processes_marked(&self.0) {
            let _ = Command::new("kill")
                .args(["-s", "KILL", &pid.to_string()])
                .status();
        }
    }
}

/// Whether process `pid` catches both SIGINT and SIGTERM: bits 1 and 14 of the `SigCgt` mask
/// in /proc/PID/status (signal N is bit N - 1).
fn catches_sigint_and_sigterm(pid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & 0x4002 == 0x4002)
}

/// Starts ch13_million with `args` from `folder`, with `PATH` set to `path`, in a process group
/// of its own; calls `ready` with its pid until it says the moment has come; sends SIGINT to
/// the whole group, as Ctrl-C does; and checks that the run stopped with status 130 and its
/// one line, leaving no process of its own behind.
fn ctrl_c_when(
    args: &[&str],
    folder: &std::path::Path,
    path: &std::ffi::OsStr,
    mut ready: impl FnMut(u32) -> bool,
) {
    use std::os::unix::process::CommandExt as _;
    // Every process the run starts inherits this: it finds them all, whoever their parent.
    let marker = Marked(format!(
        "CH11_MILLION_TEST_RUN={}",
        tempfile_path("run").display()
    ));
    let (name, value) = marker.0.split_once('=').expect("NAME=VALUE");
    let mut parent = Running(
        Command::new(binary("ch13_million"))
            .args(args)
            .current_dir(folder)
            .env("PATH", path)
            .env(name, value)
            .env_remove("RUST_BACKTRACE")
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ch13_million starts"),
    );
    let pid = parent.0.id();
    assert!(
        within(Duration::from_secs(30), || ready(pid)),
        "not ready within 30 s"
    );
    kill("INT", &format!("-{pid}"));
    let mut exited = None;
    assert!(
        within(Duration::from_secs(30), || {
            exited = parent.0.try_wait().ok().flatten();
            exited.is_some()
        }),
        "still running 30 s after SIGINT"
    );
    // The run has ended: what still holds the marker a few seconds on was left behind (a
    // zombie waiting to be reaped shows no environment).
    let mut left = Vec::new();
    assert!(
        within(Duration::from_secs(5), || {
            left = processes_marked(&marker.0);
            left.is_empty()
        }),
        "left running: {left:?}"
    );
    let mut stderr = String::new();
    let pipe = parent.0.stderr.as_mut().expect("stderr is piped");
    pipe.read_to_string(&mut stderr).expect("its stderr");
    assert_eq!(
        exited.and_then(|status| status.code()),
        Some(130),
        "{stderr}"
    );
    assert_eq!(
        stderr,
        "SIGINT: stopped, and the measurement in progress with it\n"
    );
}

#[test]
fn ctrl_c_as_soon_as_the_program_listens_stops_it_cleanly() {
    // The earliest moment the program can promise anything: once it catches both signals.
    // Before that (its first millisecond or so), it ends as any program does, on its own.
    let path = std::env::var_os("PATH").unwrap_or_default();
    ctrl_c_when(
        &["--items", "2000000", "--pattern", "queue", "--work", "all"],
        root(),
        &path,
        catches_sigint_and_sigterm,
    );
}

#[test]
fn compare_listens_for_ctrl_c_before_it_checks_python() {
    // A folder with what --compare checks: chapters/ to write in, and a twin for a fake
    // python3 that says when it has started, then waits to be stopped.
    let folder = tempfile_path("compare-stopped");
    std::fs::create_dir_all(folder.join("chapters")).expect("a temporary folder");
    std::fs::create_dir_all(folder.join("code")).expect("a temporary folder");
    std::fs::write(folder.join("code/ch13_million.py"), "").expect("a twin");
    let fake = folder.join("bin");
    std::fs::create_dir(&fake).expect("a folder for the fake python3");
    let started = folder.join("python3-started");
    let script = format!("#!/bin/sh\n: > '{}'\nexec sleep 60\n", started.display());
    let python3 = fake.join("python3");
    std::fs::write(&python3, script).expect("a fake python3");
    let mut mode = std::fs::metadata(&python3)
        .expect("it exists")
        .permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut mode, 0o755);
    std::fs::set_permissions(&python3, mode).expect("it can be made executable");
    let path = std::env::join_paths(std::iter::once(fake.clone()).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("a PATH");
    ctrl_c_when(&["--compare"], &folder, &path, |pid| {
        // Once python3 runs, the program is checking it: it must listen already. The fake
        // python3 then waits to be stopped by the same Ctrl-C.
        started.exists() && {
            assert!(catches_sigint_and_sigterm(pid), "checks before it listens");
            true
        }
    });
    std::fs::remove_dir_all(&folder).expect("the temporary folder can be removed");
}

/// Runs ch13_million with `stdout` as its output; its status and stderr.
fn with_output(args: &[&str], stdout: impl Into<Stdio>) -> (Option<i32>, String) {
    let output = Command::new(binary("ch13_million"))
        .args(args)
        .current_dir(root())
        .env_remove("RUST_BACKTRACE")
        .stdout(stdout)
        .stderr(Stdio::piped())
        .output()
        .expect("ch13_million runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), stderr)
}

/// A pipe whose reader has already gone: every write to it fails with EPIPE.
fn closed_pipe() -> std::io::PipeWriter {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    writer
}

#[test]
fn a_measurement_whose_reader_is_gone_ends_quietly() {
    // What each child runs: its stdout is a pipe to the parent, which may be gone.
    let one = ["--items", "1000", "--pattern", "queue", "--work", "zero"];
    let (status, stderr) = with_output(&one, closed_pipe());
    assert_eq!((status, stderr.as_str()), (Some(141), ""));
    // The parent, whose own stdout is closed after its first child.
    let (status, stderr) = with_output(&["--items", "1000"], closed_pipe());
    assert_eq!((status, stderr.as_str()), (Some(141), ""));
}

#[test]
fn a_full_disk_is_one_line_and_status_1() {
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full")
    };
    let expected = "error: cannot write the output: No space left on device (os error 28)\n";
    let one = ["--items", "1000", "--pattern", "queue", "--work", "zero"];
    assert_eq!(with_output(&one, full()), (Some(1), expected.to_string()));
    assert_eq!(
        with_output(&["--items", "1000"], full()),
        (Some(1), expected.to_string())
    );
}
