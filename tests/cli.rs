//! Every chapter's command line, parsed by clap: `--help` and `--version` work, and every
//! command line in the chapter's table of refused ones (`tests/refused/`), plus those every
//! chapter refuses, gets one line of error and exit status 2: never a panic, never a run.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::process::Command;

use io_bound_tokio::CHAPTERS;

use crate::common::{binary, files, read, root, run};

#[test]
fn help_and_version_are_printed_and_succeed() {
    for chapter in CHAPTERS {
        let name = chapter.name();
        for flag in ["--help", "-h"] {
            let (output, _) = run(&binary(&name), &[flag]);
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(output.status.success(), "{name} {flag} failed");
            assert!(
                stdout.contains(&format!("\nUsage: {name} [OPTIONS]\n")),
                "{name}: {stdout}"
            );
            assert_eq!(
                stdout.contains("--clock <CLOCK>"),
                chapter.paused_clock,
                "{name}: does --help describe --clock? {stdout}"
            );
            assert!(output.stderr.is_empty(), "{name} {flag} wrote to stderr");
        }
        let (output, _) = run(&binary(&name), &["--version"]);
        assert!(output.status.success(), "{name} --version failed");
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            format!("{name} {}\n", env!("CARGO_PKG_VERSION"))
        );
    }
}

/// Command lines every chapter refuses, and words the error must contain.
const REFUSED_BY_ALL: &[(&[&str], &str)] = &[
    (
        &["--frobnicate"],
        "unexpected argument '--frobnicate' found",
    ),
    (&["extra"], "unexpected argument 'extra' found"),
    (&["--help=yes"], "unexpected value 'yes' for '--help' found"),
];

/// Command lines every chapter with a paused clock refuses.
const REFUSED_WITH_A_CLOCK: &[(&[&str], &str)] = &[
    (&["--clock"], "a value is required for '--clock <CLOCK>'"),
    (
        &["--clock", "sideways"],
        "invalid value 'sideways' for '--clock <CLOCK>'",
    ),
    (
        &["--clock", "Paused"],
        "invalid value 'Paused' for '--clock <CLOCK>'",
    ),
];

/// A chapter's own table: `(arguments, words of the error)`, one per line of its file.
fn table(name: &str) -> Vec<(Vec<String>, String)> {
    let text = read(format!("tests/refused/{name}.txt").as_ref());
    let lines = text.lines().filter(|line| !line.starts_with('#'));
    lines
        .map(|line| {
            let (args, reason) = line
                .split_once(" => ")
                .unwrap_or_else(|| panic!("{name}.txt: no ` => ` in {line:?}"));
            let args = args.split(' ').map(|arg| {
                if arg == "''" {
                    String::new()
                } else {
                    arg.to_string()
                }
            });
            (args.collect(), reason.to_string())
        })
        .collect()
}

pub(crate) fn assert_refused(name: &str, args: &[OsString], reason: &str) {
    let output = Command::new(binary(name))
        .args(args)
        .current_dir(root())
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap_or_else(|error| panic!("cannot run {name}: {error}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{name} {args:?}: {stderr}");
    assert!(
        stderr.starts_with("error: ") && stderr.lines().count() == 1,
        "{name} {args:?}: not one line of error: {stderr}"
    );
    assert!(
        stderr.contains(reason),
        "{name} {args:?}: no {reason:?} in {stderr}"
    );
    assert!(
        !stderr.contains("panicked"),
        "{name} {args:?} panicked: {stderr}"
    );
    assert!(
        output.stdout.is_empty(),
        "{name} {args:?} printed on stdout"
    );
}

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

#[test]
fn bad_command_lines_are_refused_with_status_2() {
    for chapter in CHAPTERS {
        let name = chapter.name();
        for (args, reason) in REFUSED_BY_ALL {
            assert_refused(&name, &os(args), reason);
        }
        // Not UTF-8: the byte 0xFF alone, as a shell passes `$'\xff'`.
        let invalid = OsString::from_vec(vec![0xff]);
        assert_refused(&name, &[invalid], "unexpected argument");
        if chapter.paused_clock {
            for (args, reason) in REFUSED_WITH_A_CLOCK {
                assert_refused(&name, &os(args), reason);
            }
        }
        let own = table(&name);
        assert!(!own.is_empty(), "tests/refused/{name}.txt refuses nothing");
        for (args, reason) in own {
            assert_refused(
                &name,
                &args.iter().map(OsString::from).collect::<Vec<_>>(),
                &reason,
            );
        }
    }
}

#[test]
fn every_refused_table_belongs_to_a_chapter() {
    let tables: Vec<String> = files("tests/refused", "txt")
        .iter()
        .map(|path| {
            path.file_stem()
                .expect("a file")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let chapters: Vec<String> = CHAPTERS.iter().map(|chapter| chapter.name()).collect();
    assert_eq!(tables, chapters);
}
