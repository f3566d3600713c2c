//! The mistakes the compiler refuses, with its exact words, and their fixes.
//!
//! `tests/ui/*.rs` must fail to compile with the message in the `.stderr` file beside each.
//! Those messages belong to one compiler: `tests/ui/rustc-version.txt` names it. With another
//! rustc the snapshots are skipped, and the test says so on the terminal, rather than fail
//! for a reworded message. `TRYBUILD=overwrite cargo test compile_fail` rewrites them.
//!
//! `tests/pass/*.rs`, the fixes and the phrasebook's code, must compile and run.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use crate::common::{files, read, run};
use crate::playground::compile_standalone;

/// `rustc 1.95.0` from `rustc 1.95.0 (59807616e 2026-04-14)`.
fn release(version: &str) -> String {
    version
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The compiler the snapshots quote (`tests/ui/rustc-version.txt`), and the one running now.
pub(crate) fn compilers() -> (String, String) {
    let recorded = release(&read(Path::new("tests/ui/rustc-version.txt")));
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let output = Command::new(rustc)
        .arg("--version")
        .output()
        .expect("rustc runs");
    (recorded, release(&String::from_utf8_lossy(&output.stdout)))
}

#[test]
fn compile_fail_lessons_match_the_compilers_words() {
    let (recorded, current) = compilers();
    if current != recorded {
        // Straight to the terminal: libtest hides what a passing test prints with `eprintln!`.
        let _ = writeln!(
            std::io::stderr(),
            "\nui::compile_fail_lessons: SKIPPED. The compile-fail snapshots in tests/ui quote \
             {recorded}; this is {current}, whose messages may be worded differently. \
             Refresh them with `TRYBUILD=overwrite cargo test compile_fail` and review the diff.\n"
        );
        return;
    }
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}

#[test]
fn every_fix_compiles_and_runs() {
    let sources = files("tests/pass", "rs");
    assert!(
        sources.len() >= 4,
        "only {} programs in tests/pass",
        sources.len()
    );
    std::thread::scope(|scope| {
        for source in &sources {
            scope.spawn(move || {
                let program = compile_standalone(source, "pass");
                let (output, _) = run(&program, &[]);
                assert!(
                    output.status.success(),
                    "{} failed: {}",
                    source.display(),
                    String::from_utf8_lossy(&output.stderr)
                );
            });
        }
    });
}
