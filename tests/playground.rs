//! The book's Run button sends a chapter's whole file to the Rust Playground. These tests
//! build each chapter that has a Run button the way the playground does, as a lone file in a
//! crate named `playground` with nothing but the crates the playground offers, and run it as
//! the playground would: with no arguments, so on tokio's paused clock where the chapter has
//! one, within the Run button's budget of processor time.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use io_bound_tokio::{
    CHAPTERS, Chapter, PLAYGROUND_CRATES, elapsed_line, normalize, playground_rustc, split_elapsed,
};
use pretty_assertions::assert_eq;

use crate::chapters::PAUSED_CPU_LIMIT;
use crate::common::{chapters_build, read, root, run_measuring_cpu};

/// The crates a chapter's package lists in its `[dependencies]`.
fn dependencies(chapter: &Chapter) -> Vec<String> {
    let manifest = read(
        &Path::new("code/packages")
            .join(chapter.name())
            .join("Cargo.toml"),
    );
    manifest
        .lines()
        .skip_while(|line| line.trim() != "[dependencies]")
        .skip(1)
        .take_while(|line| !line.starts_with('['))
        .filter_map(|line| {
            // `tokio.workspace = true`: the version and features are the workspace's.
            let (name, _) = line.split_once('=')?;
            Some(name.trim().trim_end_matches(".workspace").to_string())
        })
        .filter(|name| !name.is_empty() && !name.starts_with('#'))
        .collect()
}

#[test]
fn chapters_with_a_run_button_use_only_the_playground_crates() {
    for chapter in CHAPTERS.iter().filter(|chapter| chapter.playground) {
        let dependencies = dependencies(chapter);
        assert!(
            dependencies.iter().any(|name| name == "tokio"),
            "{}: no tokio in {dependencies:?}",
            chapter.name()
        );
        for name in &dependencies {
            assert!(
                PLAYGROUND_CRATES.contains(&name.as_str()),
                "{} uses {name}, which the playground lacks",
                chapter.name()
            );
        }
    }
}

/// `--extern name=path` for each of the playground's crates that the chapters use, as built
/// for this test run: the chapters' build reports where cargo put them, so these are the very
/// rlibs the chapters were built with, and nothing is built again.
pub(crate) fn externs() -> &'static [(String, PathBuf)] {
    static EXTERNS: OnceLock<Vec<(String, PathBuf)>> = OnceLock::new();
    EXTERNS.get_or_init(|| {
        let messages = chapters_build();
        // Only the playground's crates: a chapter that uses anything else fails to compile.
        let wanted: Vec<&str> = CHAPTERS
            .iter()
            .filter(|chapter| chapter.playground)
            .flat_map(dependencies)
            .filter_map(|name| {
                PLAYGROUND_CRATES
                    .iter()
                    .copied()
                    .find(|known| *known == name)
            })
            .collect();
        let mut wanted = wanted;
        wanted.sort();
        wanted.dedup();
        io_bound_tokio::rlibs(messages, &wanted).unwrap_or_else(|error| panic!("{error}"))
    })
}

/// Compiles one file as a lone crate named `playground`, against the chapters' dependencies as
/// already built (no second build of tokio), into `out_dir` under the tests' temporary folder,
/// and returns the program's path. `Err`: what the compiler said.
pub fn try_compile_standalone(source: &Path, out_dir: &str) -> Result<PathBuf, String> {
    let name = source.file_stem().expect("a file name").to_string_lossy();
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(out_dir);
    std::fs::create_dir_all(&out_dir).expect("the temporary directory can be made");
    let program = out_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let output = playground_rustc(source, &program, externs())
        .current_dir(root())
        .output()
        .expect("rustc runs");
    if output.status.success() {
        Ok(program)
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// `try_compile_standalone`, for a file that must compile.
pub fn compile_standalone(source: &Path, out_dir: &str) -> PathBuf {
    try_compile_standalone(source, out_dir).unwrap_or_else(|error| {
        panic!(
            "{} does not compile on its own as the playground's crate:\n{error}",
            source.display()
        )
    })
}

#[test]
fn every_chapter_runs_in_the_playground_on_the_paused_clock() {
    std::thread::scope(|scope| {
        for chapter in CHAPTERS.iter().filter(|chapter| chapter.playground) {
            scope.spawn(move || {
                let name = chapter.name();
                let program = compile_standalone(&chapter.source(), "playground");
                let (output, cpu) = run_measuring_cpu(&program, &[]);
                let stdout = String::from_utf8_lossy(&output.stdout);
                let stderr = String::from_utf8_lossy(&output.stderr);
                assert!(output.status.success(), "{name} failed: {stderr}");
                assert!(
                    cpu <= PAUSED_CPU_LIMIT,
                    "{name} used {cpu:?} of processor time: over the Run button's budget"
                );

                let run = &chapter.runs[0];
                let (lines, seconds) = split_elapsed(&stdout).expect("ends with the elapsed time");
                let expected = read(&run.expected_path());
                let (expected, _) = split_elapsed(&expected).expect("a valid expected file");
                if chapter.paused_clock {
                    // On the paused clock, exactly what the paused-clock test expects.
                    assert!(
                        stderr.contains("clock is paused"),
                        "{name}: no note: {stderr}"
                    );
                    assert_eq!(elapsed_line(seconds), elapsed_line(run.elapsed_seconds));
                    assert_eq!(lines, expected);
                } else {
                    // Short enough for the real clock, within the same bounds as locally.
                    let bounds = run.lower_bound()..=run.upper_bound();
                    assert!(bounds.contains(&seconds), "{name}: {seconds} s");
                    assert_eq!(
                        normalize(&lines, run.order),
                        normalize(&expected, run.order)
                    );
                }
            });
        }
    });
}
