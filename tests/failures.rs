//! Every chapter, when its environment fails it: output to a closed pipe (`| head -1`), output
//! to a full disk (`> /dev/full`, and `2> /dev/full`, which must not stop it), and no thread
//! to spare for tokio. Each ends with no panic trace and no hang, and says so in its exit
//! status: 141 for a closed pipe (the status a shell reports for SIGPIPE), 1 with one `error:`
//! line otherwise.
//!
//! A tight memory limit (`ulimit -v`) is not tested: where it strikes first varies from run to
//! run and binary to binary (the dynamic loader, a thread's stack, a small allocation, after
//! which Rust aborts with "memory allocation of N bytes failed"), and no program can handle
//! most of those places.

use std::process::{Command, Output, Stdio};

use io_bound_tokio::{CHAPTERS, Chapter};

use crate::common::{binary, root};

/// The chapter's plain run, on the paused clock where it has one, so that it is quick.
fn quick_args(chapter: &Chapter) -> Vec<&'static str> {
    let mut args: Vec<&str> = chapter.runs[0].args.to_vec();
    if chapter.paused_clock {
        args.extend(["--clock", "paused"]);
    }
    args
}

fn run_with_stdout(name: &str, args: &[&str], stdout: Stdio) -> Output {
    Command::new(binary(name))
        .args(args)
        .current_dir(root())
        .env_remove("RUST_BACKTRACE")
        .stdout(stdout)
        .stderr(Stdio::piped())
        .output()
        .unwrap_or_else(|error| panic!("cannot run {name}: {error}"))
}

fn assert_no_panic(name: &str, what: &str, output: &Output) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("abort"),
        "{name}, {what}: a panic on stderr: {stderr}"
    );
    assert!(
        output.status.code().is_some(),
        "{name}, {what}: killed by a signal: {:?}\n{stderr}",
        output.status
    );
}

#[test]
fn a_closed_pipe_ends_every_chapter_quietly_with_status_141() {
    std::thread::scope(|scope| {
        for chapter in CHAPTERS {
            scope.spawn(move || {
                let name = chapter.name();
                // A pipe whose reading end is closed before the chapter starts, as after
                // `| head -1` has read its line: every write fails, from the first.
                let (reader, writer) = std::io::pipe().expect("a pipe");
                drop(reader);
                let output = run_with_stdout(&name, &quick_args(chapter), writer.into());
                assert_no_panic(&name, "closed pipe", &output);
                assert_eq!(
                    output.status.code(),
                    Some(141),
                    "{name}: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
            });
        }
    });
}

#[test]
fn a_full_disk_ends_every_chapter_with_one_error_line() {
    std::thread::scope(|scope| {
        for chapter in CHAPTERS {
            scope.spawn(move || {
                let name = chapter.name();
                let full = std::fs::File::create("/dev/full").expect("Linux has /dev/full");
                let output = run_with_stdout(&name, &quick_args(chapter), full.into());
                assert_no_panic(&name, "full disk", &output);
                let stderr = String::from_utf8_lossy(&output.stderr);
                assert_eq!(output.status.code(), Some(1), "{name}: {stderr}");
                assert!(
                    stderr.contains("error: cannot write the output: No space left on device"),
                    "{name}: {stderr}"
                );
            });
        }
    });
}

#[test]
fn a_full_stderr_does_not_stop_a_run() {
    std::thread::scope(|scope| {
        for chapter in CHAPTERS {
            scope.spawn(move || {
                let name = chapter.name();
                // Notes and logs go to stderr; the results, to stdout. A stderr that cannot
                // take a note must not cost the run its results.
                let full = std::fs::File::create("/dev/full").expect("Linux has /dev/full");
                let output = Command::new(binary(&name))
                    .args(quick_args(chapter))
                    .current_dir(root())
                    .env_remove("RUST_BACKTRACE")
                    .stdout(Stdio::piped())
                    .stderr(full)
                    .output()
                    .unwrap_or_else(|error| panic!("cannot run {name}: {error}"));
                let stdout = String::from_utf8_lossy(&output.stdout);
                assert!(output.status.success(), "{name}: {:?}", output.status);
                assert!(
                    stdout
                        .lines()
                        .last()
                        .is_some_and(|line| line.starts_with("elapsed time: ")),
                    "{name}: the run did not finish: {stdout}"
                );
            });
        }
    });
}

/// Runs a chapter's plain run (on the real clock, where tokio starts its worker threads) under
/// `command`, and returns its output, failing if it hangs (`common::HANG`).
fn run_limited(name: &str, chapter: &Chapter, mut command: Command) -> Output {
    let child = command
        .arg(binary(name))
        .args(chapter.runs[0].args)
        .current_dir(root())
        .env_remove("RUST_BACKTRACE")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {name} under a limit: {error}"));
    crate::common::finish(child, &format!("{name} under a limit"))
}

/// Whether this test runs as root, by the owner of its own `/proc` entry.
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

#[test]
fn no_thread_to_spare_ends_every_chapter_with_one_error_line() {
    std::thread::scope(|scope| {
        for chapter in CHAPTERS {
            scope.spawn(move || {
                let name = chapter.name();
                // At most one process or thread for the user: the program itself, and no
                // thread more (`ulimit -u 1`). Root is exempt from that limit, so as root the
                // program runs as `nobody`, who has no other process.
                let mut command = if is_root() {
                    let mut command = Command::new("setpriv");
                    command.args([
                        "--reuid=65534",
                        "--regid=65534",
                        "--clear-groups",
                        "prlimit",
                    ]);
                    command
                } else {
                    Command::new("prlimit")
                };
                command.arg("--nproc=1");
                let output = run_limited(&name, chapter, command);
                assert_no_panic(&name, "no thread to spare", &output);
                let stderr = String::from_utf8_lossy(&output.stderr);
                // A run that needs no thread besides its own may succeed (chapter 13's single
                // measurement runs on one); any other ends with the one line.
                if !output.status.success() {
                    assert_eq!(output.status.code(), Some(1), "{name}: {stderr}");
                    assert!(
                        stderr.ends_with(
                            "error: tokio cannot start a thread: \
                             Resource temporarily unavailable (os error 11)\n"
                        ),
                        "{name}: {stderr}"
                    );
                }
            });
        }
    });
}
