//! Helpers the test modules share.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The project's root, where `Cargo.toml` is.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `target/<profile>`, where cargo puts the programs it builds. The test binary itself lives
/// in `target/<profile>/deps/`.
fn profile_dir() -> PathBuf {
    let test_binary = std::env::current_exe().expect("the test binary knows its own path");
    test_binary
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps")
        .to_path_buf()
}

/// Runs cargo on this workspace, with the same target directory and profile as the running
/// tests, and returns its JSON messages. Cargo releases its lock on the target directory once
/// it has built the tests, so a test may call it; calls from tests that run side by side wait
/// for each other.
pub fn cargo_json(args: &[&str]) -> Vec<serde_json::Value> {
    let profile_dir = profile_dir();
    let target_dir = profile_dir.parent().expect("target/<profile> has a parent");
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command
        .current_dir(root())
        .args(args)
        .arg("--message-format=json")
        .arg("--target-dir")
        .arg(target_dir);
    if profile_dir.ends_with("release") {
        command.arg("--release");
    }
    let output = command.output().expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// The JSON messages of one build of every chapter, made once per test run, the first time a
/// test asks for a chapter. Each chapter is a package of its own under `code/packages/`, and
/// `cargo test` builds none of them: this does, with the features `cargo run` resolves, so it
/// reuses what `cargo run` built and builds what it did not. A chapter's heavy crates are built
/// here only if nothing built them before.
pub fn chapters_build() -> &'static [serde_json::Value] {
    static BUILD: OnceLock<Vec<serde_json::Value>> = OnceLock::new();
    BUILD.get_or_init(|| {
        let packages = std::fs::read_dir(root().join("code/packages"))
            .expect("code/packages can be listed")
            .map(|entry| entry.expect("a readable entry").file_name())
            .map(|name| name.to_string_lossy().into_owned())
            .collect::<Vec<String>>();
        let mut args = vec!["build", "--bins"];
        for package in &packages {
            args.extend(["--package", package]);
        }
        cargo_json(&args)
    })
}

/// The path of a chapter's binary, built by `chapters_build`.
pub fn binary(name: &str) -> PathBuf {
    chapters_build();
    profile_dir().join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// Past this a child is taken to hang: killed, and its test failed. It is no measurement: every
/// program these tests start ends within seconds, however busy the machine.
pub const HANG: Duration = Duration::from_secs(60);

/// Waits for a child to end, reading its piped stdout and stderr as it writes them (a full
/// pipe would stop it), and kills it and fails the test if it still runs after `HANG`. `what`
/// names the child in that failure.
pub fn finish(mut child: Child, what: &str) -> Output {
    let read_all = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                pipe.read_to_end(&mut bytes).expect("the pipe can be read");
            }
            bytes
        })
    };
    let stdout = read_all(child.stdout.take().map(|pipe| Box::new(pipe) as _));
    let stderr = read_all(child.stderr.take().map(|pipe| Box::new(pipe) as _));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("the child can be waited for") {
            break status;
        }
        if started.elapsed() > HANG {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} still ran after {HANG:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: stdout.join().expect("the reader does not panic"),
        stderr: stderr.join().expect("the reader does not panic"),
    }
}

/// Runs a program to its end, from the project's root, and returns what it printed and how
/// long it took. `RUST_BACKTRACE` is removed so that a panic's message is the same everywhere.
pub fn run(program: &Path, args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let output = Command::new(program)
        .args(args)
        .current_dir(root())
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", program.display()));
    (output, started.elapsed())
}

/// Runs a program as `run` does, and returns the processor time it used (user and system),
/// as the operating system accounted for it: what a program on the paused clock costs,
/// however busy the machine is. The wall-clock time would measure the machine instead.
///
/// The program runs under `sh`, whose `times` builtin (POSIX) prints the time its children
/// used, once the program has exited and been reaped. Its resolution is the kernel's clock
/// tick, 10 ms at most.
pub fn run_measuring_cpu(program: &Path, args: &[&str]) -> (Output, Duration) {
    let times = tempfile_path("times");
    let script = r#""$@"; status=$?; times > "$TIMES_FILE"; exit $status"#;
    let output = Command::new("sh")
        .args(["-c", script, "sh"])
        .arg(program)
        .args(args)
        .env("TIMES_FILE", &times)
        .current_dir(root())
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", program.display()));
    let report = std::fs::read_to_string(&times).expect("sh wrote its times");
    std::fs::remove_file(&times).expect("the times file can be removed");
    (output, children_cpu_time(&report))
}

/// The user and system time of the children, from what `times` prints: its second line,
/// `0m1.250000s 0m0.020000s` (dash) or `0m1.250s 0m0.020s` (bash).
fn children_cpu_time(report: &str) -> Duration {
    let line = report.lines().nth(1).expect("times prints two lines");
    line.split_whitespace()
        .map(|field| {
            let (minutes, seconds) = field
                .strip_suffix('s')
                .and_then(|field| field.split_once('m'))
                .unwrap_or_else(|| panic!("not a time: {field:?} in {report:?}"));
            let minutes: f64 = minutes.parse().expect("minutes");
            let seconds: f64 = seconds.parse().expect("seconds");
            Duration::from_secs_f64(minutes * 60.0 + seconds)
        })
        .sum()
}

/// A path, unique to this call, in the temporary directory cargo gives integration tests.
pub fn tempfile_path(stem: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let number = NEXT.fetch_add(1, Ordering::Relaxed);
    dir.join(format!("{stem}-{}-{number}", std::process::id()))
}

/// The value of `const NAME: TYPE = VALUE;` in a chapter's program, as written (`50`,
/// `Duration::from_secs(2)`): a test that reads it from the program cannot drift apart from it.
/// The line may be indented and `pub`, inside a module.
pub fn constant_in(chapter: &str, name: &str) -> String {
    let catalogued = io_bound_tokio::chapter(chapter)
        .unwrap_or_else(|| panic!("{chapter} is not in the catalogue"));
    let source = read(&catalogued.source());
    let start = format!("const {name}: ");
    let line = source
        .lines()
        .map(|line| line.trim_start().trim_start_matches("pub "))
        .find(|line| line.starts_with(&start))
        .unwrap_or_else(|| panic!("{chapter} has no {name}"));
    line.split_once(" = ")
        .and_then(|(_, value)| value.strip_suffix(';'))
        .unwrap_or_else(|| panic!("not `const {name}: TYPE = VALUE;`: {line}"))
        .to_string()
}

/// Reads a file of the project, relative to its root.
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(root().join(path))
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

/// The files in a folder of the project whose names end in `.{extension}`, sorted.
pub fn files(folder: &str, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(folder))
        .unwrap_or_else(|error| panic!("cannot list {folder}: {error}"))
        .map(|entry| entry.expect("a readable entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == extension))
        .collect();
    files.sort();
    files
}

#[test]
fn times_reports_are_read_from_both_shells() {
    let dash = "0m0.004000s 0m0.000000s\n0m1.250000s 0m0.020000s\n";
    let bash = "0m0.002s 0m0.001s\n1m1.250s 0m0.020s\n";
    assert_eq!(children_cpu_time(dash), Duration::from_millis(1270));
    assert_eq!(children_cpu_time(bash), Duration::from_millis(61_270));
}
