//! The workshop: its exercises (every starter fails its checks, every solution passes them, the
//! code an exercise hands out is its chapter's), the learner's command, the schedule page, the
//! speaker notes and the predict-then-run prompts.
//!
//! `UPDATE_EXPECTED=1 cargo test --test book workshop::` rewrites the schedule's table from the
//! catalogue.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use io_bound_tokio::{
    BREAK_LATE_BY_AT_MOST, BREAKS, CAPSTONE, CHAPTERS, CLOSING_MINUTES, DAY_STARTS_AT, EXERCISES,
    Exercise, OPENING_MINUTES, Order, Segment, normalize,
};
use pretty_assertions::assert_eq;

use crate::chapters::PAUSED_CPU_LIMIT;
use crate::common::{binary, files, finish, read, root, run_measuring_cpu, tempfile_path};
use crate::playground::try_compile_standalone;

/// The line that opens a block an exercise takes from its chapter, and the one that closes it.
const FROM: &str = "// ── From chapter ";
const END: &str = "// ── End of chapter ";

#[test]
fn there_are_ten_exercises_or_more_each_with_its_files() {
    assert!(EXERCISES.len() >= 10, "{} exercises", EXERCISES.len());
    for exercise in EXERCISES {
        for file in [exercise.starter(), exercise.solution(), exercise.page()] {
            assert!(root().join(&file).is_file(), "no {}", file.display());
        }
        let starter = read(&exercise.starter());
        assert!(
            starter.contains("// ANCHOR: exercise") && starter.contains("// ANCHOR_END: exercise"),
            "{}: no exercise anchor",
            exercise.slug
        );
        let chapter_exists = CHAPTERS.iter().any(|c| c.number == exercise.chapter)
            || CAPSTONE.number == exercise.chapter;
        assert!(
            chapter_exists,
            "{}: no chapter {}",
            exercise.slug, exercise.chapter
        );
    }
}

/// The whole program of an exercise's solution: its starter, with the solution's part in place.
fn solved(exercise: &Exercise) -> String {
    io_bound_tokio::solved(&read(&exercise.starter()), &read(&exercise.solution()))
        .unwrap_or_else(|error| panic!("{}: {error}", exercise.slug))
}

#[test]
fn a_solution_is_only_the_learners_part_and_differs_from_the_starter() {
    for exercise in EXERCISES {
        let solution = read(&exercise.solution());
        let before_the_anchor = solution
            .lines()
            .take_while(|line| !line.contains("ANCHOR: exercise"))
            .all(|line| line.is_empty() || line.starts_with("// "));
        let after_the_anchor = solution
            .lines()
            .skip_while(|line| !line.contains("ANCHOR_END: exercise"))
            .skip(1)
            .all(str::is_empty);
        assert!(
            before_the_anchor && after_the_anchor,
            "{}: the solution holds more than the learner's part",
            exercise.slug
        );
        assert_ne!(
            solved(exercise),
            read(&exercise.starter()),
            "{}: the starter is solved",
            exercise.slug
        );
    }
}

#[test]
fn the_code_an_exercise_gives_is_its_chapters_code() {
    let mut blocks = 0;
    for exercise in EXERCISES {
        let starter = read(&exercise.starter());
        let mut lines = starter.lines();
        while let Some(line) = lines.next() {
            let Some(rest) = line.strip_prefix(FROM) else {
                continue;
            };
            // `// ── From chapter 4 (code/ch04_queue.rs), as it is there. ──`
            let number: u8 = rest
                .split_whitespace()
                .next()
                .and_then(|number| number.parse().ok())
                .unwrap_or_else(|| panic!("{}: no chapter number in {line}", exercise.slug));
            assert_eq!(number, exercise.chapter, "{}: {line}", exercise.slug);
            let source = rest
                .split_once('(')
                .and_then(|(_, rest)| rest.split_once(')'))
                .map(|(path, _)| path)
                .unwrap_or_else(|| panic!("{}: no (code/FILE) in {line}", exercise.slug));
            let block: Vec<&str> = lines.by_ref().take_while(|l| !l.starts_with(END)).collect();
            let block = block.join("\n");
            assert!(
                !block.trim().is_empty(),
                "{}: an empty block",
                exercise.slug
            );
            let chapter = read(Path::new(source));
            assert!(
                chapter.contains(&block),
                "{}: this block is not in {source} as it is there:\n{block}",
                exercise.slug
            );
            blocks += 1;
        }
    }
    assert!(
        blocks >= EXERCISES.len() / 2,
        "only {blocks} blocks come from chapters"
    );
}

#[test]
fn every_starter_fails_its_checks_and_says_what_to_fix() {
    // One at a time: a dozen compilers at once would starve the real-clock runs beside them.
    for exercise in EXERCISES.iter().filter(|exercise| exercise.playground) {
        let slug = exercise.slug;
        let compiled = try_compile_standalone(&exercise.starter(), "exercises-starter");
        let said = match (compiled, exercise.starter_compiles) {
            (Err(error), false) => error,
            (Err(error), true) => panic!("{slug}: the starter does not compile:\n{error}"),
            (Ok(_), false) => panic!("{slug}: the starter compiles, and should not"),
            (Ok(program), true) => {
                let (output, _) = run_measuring_cpu(&program, &[]);
                assert!(!output.status.success(), "{slug}: the starter passes");
                let stdout = String::from_utf8_lossy(&output.stdout);
                assert!(
                    stdout.lines().any(|line| line.starts_with("✗ ")),
                    "{slug}: the starter fails without a ✗ line: {stdout}"
                );
                format!("{stdout}{}", String::from_utf8_lossy(&output.stderr))
            }
        };
        assert!(
            said.contains(exercise.starter_says),
            "{slug}: the starter's failure does not say {:?}:\n{said}",
            exercise.starter_says
        );
    }
}

/// The compiler's words for a starter that does not compile, as the learner sees them (their
/// copy is `workshop/SLUG.rs`): the page shows them from `tests/expected/exercise.SLUG.stderr`.
/// Like the snapshots in `tests/ui`, they belong to the compiler `tests/ui/rustc-version.txt`
/// names; with another, the comparison is skipped and says so.
#[test]
fn a_starter_that_does_not_compile_shows_the_compilers_words() {
    let (recorded, current) = crate::ui::compilers();
    for exercise in EXERCISES
        .iter()
        .filter(|exercise| !exercise.starter_compiles)
    {
        let dir = tempfile_path("learner");
        std::fs::create_dir_all(dir.join("workshop")).expect("the folder can be made");
        let copy = exercise.learner_copy();
        std::fs::copy(root().join(exercise.starter()), dir.join(&copy)).expect("a copy");
        let output = io_bound_tokio::playground_rustc(
            &copy,
            &dir.join("program"),
            crate::playground::externs(),
        )
        .current_dir(&dir)
        .output()
        .expect("rustc runs");
        std::fs::remove_dir_all(&dir).expect("the folder can be removed");
        assert!(
            !output.status.success(),
            "{}: the starter compiles",
            exercise.slug
        );
        let said = String::from_utf8_lossy(&output.stderr);
        let snapshot = PathBuf::from(format!("tests/expected/exercise.{}.stderr", exercise.slug));
        if std::env::var_os("UPDATE_EXPECTED").is_some() {
            std::fs::write(root().join(&snapshot), said.as_bytes()).expect("a snapshot");
        }
        if current != recorded {
            let _ = writeln!(
                std::io::stderr(),
                "\nworkshop: the snapshot {} quotes {recorded}; this is {current}: SKIPPED.\n",
                snapshot.display()
            );
            continue;
        }
        assert_eq!(
            said,
            read(&snapshot),
            "`UPDATE_EXPECTED=1` rewrites {}",
            snapshot.display()
        );
        let page = read(&exercise.page());
        assert!(
            page.contains(&format!("{{{{#include ../../{}}}}}", snapshot.display())),
            "{}: the page does not show what the compiler says",
            exercise.slug
        );
    }
}

#[test]
fn every_solution_passes_within_the_run_buttons_budget() {
    // One at a time: a dozen compilers at once would starve the real-clock runs beside them.
    for exercise in EXERCISES.iter().filter(|exercise| exercise.playground) {
        let slug = exercise.slug;
        let source = tempfile_path(&format!("{slug}-solved.rs"));
        std::fs::write(&source, solved(exercise)).expect("the program can be written");
        let program = try_compile_standalone(&source, "exercises-solution")
            .unwrap_or_else(|error| panic!("{slug}: the solution does not compile:\n{error}"));
        let (output, cpu) = run_measuring_cpu(&program, &[]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.ends_with("All checks pass.\n"),
            "{slug}: the solution fails:\n{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            cpu <= PAUSED_CPU_LIMIT,
            "{slug}: the solution used {cpu:?} of processor time: over the Run button's budget"
        );
        // What it prints, pinned: the figures its page quotes come from this file.
        let expected = exercise.expected();
        if std::env::var_os("UPDATE_EXPECTED").is_some() {
            std::fs::write(root().join(&expected), stdout.as_bytes()).expect("written");
        }
        // On the real clock, the figures are measurements: the words must match.
        let order = if exercise.paused_clock {
            Order::Exact
        } else {
            Order::NumbersVary
        };
        let lines: Vec<&str> = stdout.lines().collect();
        let pinned = read(&expected);
        let pinned: Vec<&str> = pinned.lines().collect();
        assert_eq!(
            normalize(&lines, order),
            normalize(&pinned, order),
            "{slug}: the solution's output is not {}; `UPDATE_EXPECTED=1` rewrites it",
            expected.display()
        );
    }
}

/// Runs the learner's command, `exercise ARGS`, as a learner would (through the binary cargo
/// built), with copies in a folder of its own.
fn exercise_command(args: &[&str]) -> std::process::Output {
    let child = Command::new(binary("exercise"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the checker starts");
    finish(child, &format!("exercise {args:?}"))
}

#[test]
fn the_exercises_without_a_run_button_are_checked_by_the_learners_command() {
    for exercise in EXERCISES.iter().filter(|exercise| !exercise.playground) {
        let starter = exercise_command(&[exercise.slug, "--starter"]);
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&starter.stdout),
            String::from_utf8_lossy(&starter.stderr)
        );
        assert_eq!(starter.status.code(), Some(1), "{}: {said}", exercise.slug);
        assert!(
            said.contains(exercise.starter_says),
            "{}: {said}",
            exercise.slug
        );
        let solution = exercise_command(&[exercise.slug, "--solution"]);
        let stdout = String::from_utf8_lossy(&solution.stdout);
        assert!(
            solution.status.success() && stdout.ends_with("All checks pass.\n"),
            "{}: the solution fails:\n{stdout}{}",
            exercise.slug,
            String::from_utf8_lossy(&solution.stderr)
        );
    }
}

#[test]
fn the_learners_command_copies_the_starter_then_checks_the_copy() {
    let dir = tempfile_path("workshop");
    let dir_arg = dir.to_string_lossy().into_owned();
    let exercise = io_bound_tokio::exercise("consumers").expect("in the catalogue");
    let first = exercise_command(&["consumers", "--dir", &dir_arg]);
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert_eq!(first.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.starts_with("Your copy of the exercise is "),
        "{stdout}"
    );
    let copy = dir.join("consumers.rs");
    assert_eq!(read(&copy), read(&exercise.starter()));
    assert!(
        String::from_utf8_lossy(&first.stderr).contains(&exercise.command()),
        "the failure does not repeat the command"
    );

    // The learner's work is checked, not the starter: a solved copy passes.
    std::fs::write(&copy, solved(exercise)).expect("the copy can be written");
    let checked = exercise_command(&["consumers", "--dir", &dir_arg]);
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stdout)
    );

    // `--reset` starts again, and keeps the learner's work beside the new copy.
    let reset = exercise_command(&["consumers", "--dir", &dir_arg, "--reset"]);
    assert_eq!(reset.status.code(), Some(1));
    assert_eq!(read(&copy), read(&exercise.starter()));
    assert_eq!(read(&dir.join("consumers.rs.old")), solved(exercise));
    std::fs::remove_dir_all(&dir).expect("the folder can be removed");
}

#[test]
fn the_learners_command_refuses_bad_input_with_one_line_and_status_2() {
    for args in [
        &["nosuch"][..],
        &[],
        &["consumers", "--starter", "--solution"],
        &["consumers", "--speed", "fast"],
    ] {
        let output = exercise_command(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.lines().count() == 1,
            "{args:?}: not one line: {stderr}"
        );
        assert!(output.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn the_preflight_checks_both_clocks() {
    let output = exercise_command(&["preflight"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for check in [
        "✓ rustc 1.",
        "✓ the crates of the capstone exercise",
        "✓ the paused clock",
        "✓ the real clock",
        "Ready for the workshop.",
    ] {
        assert!(stdout.contains(check), "no {check:?} in {stdout}");
    }
}

#[test]
fn every_exercise_page_shows_its_command_its_starter_and_its_solution() {
    for exercise in EXERCISES {
        let page = read(&exercise.page());
        let slug = exercise.slug;
        assert!(
            page.contains(&format!("```console\n{}\n```", exercise.command())),
            "{slug}: the page does not print `{}`",
            exercise.command()
        );
        let fence = if exercise.playground {
            "```rust,editable\n"
        } else {
            "```rust,noplayground\n"
        };
        assert!(
            page.contains(&format!(
                "{fence}{{{{#include ../../{}}}}}\n```",
                exercise.starter().display()
            )),
            "{slug}: the page does not include the whole starter in a {fence:?} block"
        );
        assert!(
            page.contains(&format!(
                "{{{{#include ../../{}:exercise}}}}",
                exercise.solution().display()
            )),
            "{slug}: the page does not show the solution's part"
        );
        let chapter = if exercise.chapter == CAPSTONE.number {
            CAPSTONE.page()
        } else {
            CHAPTERS
                .iter()
                .find(|chapter| chapter.number == exercise.chapter)
                .expect("checked above")
                .page()
        };
        let link = format!("(exercises/{slug}.md)");
        assert!(
            read(&chapter).contains(&link),
            "{} does not link to its exercise {slug}",
            chapter.display()
        );
    }
}

#[test]
fn the_exercises_are_formatted() {
    let mut sources: Vec<PathBuf> = files("code/exercises", "rs");
    sources.extend(files("code/exercises/solutions", "rs"));
    let output = Command::new("rustfmt")
        .args(["--check", "--edition", "2024"])
        .args(&sources)
        .current_dir(root())
        .output()
        .expect("rustfmt runs");
    assert!(
        output.status.success(),
        "run `rustfmt --edition 2024` on the exercises:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

/// `HH:MM`, from minutes after midnight.
fn clock(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// The schedule's table, from the catalogue: one table a day, a row a chapter, with breaks
/// taken at the first segment's end past their times.
fn schedule() -> String {
    let mut out = String::new();
    for (day, title) in [(1, "Day one: the workshop"), (2, "Day two: the extras")] {
        let start = DAY_STARTS_AT.0 * 60 + DAY_STARTS_AT.1;
        let mut now = start;
        let mut breaks = BREAKS.iter().peekable();
        out.push_str(&format!(
            "### {title}\n\n| time | segment | talk | exercises | debrief |\n|---|---|---|---|---|\n"
        ));
        out.push_str(&format!(
            "| {} | Opening: the [preflight](setup.md#the-preflight), the plan | {OPENING_MINUTES} | | |\n",
            clock(now)
        ));
        now += OPENING_MINUTES;
        let mut segments: Vec<(u8, String, Segment)> = CHAPTERS
            .iter()
            .map(|chapter| {
                let title = crate::docs::title(&read(&chapter.page())).to_string();
                (
                    chapter.number,
                    format!("[{title}](../{}.md)", chapter.name()),
                    chapter.workshop,
                )
            })
            .collect();
        let capstone = crate::docs::title(&read(&CAPSTONE.page())).to_string();
        segments.push((
            CAPSTONE.number,
            format!("[{capstone}](../{}.md)", CAPSTONE.name()),
            CAPSTONE.workshop,
        ));
        let mut total = (0, 0, 0);
        let segments: Vec<(u8, String, Segment)> = segments
            .into_iter()
            .filter(|(_, _, s)| s.day == day)
            .collect();
        let last = segments.len().saturating_sub(1);
        for (index, (number, link, segment)) in segments.into_iter().enumerate() {
            let exercises: Vec<&Exercise> = EXERCISES
                .iter()
                .filter(|exercise| exercise.chapter == number)
                .collect();
            let minutes: u16 = exercises.iter().map(|exercise| exercise.minutes).sum();
            let length = segment.talk + minutes + segment.debrief;
            // A break before this segment, if it would run on too long past the break's time.
            if let Some(((hour, minute), pause, name)) = breaks.peek()
                && now + length > hour * 60 + minute + BREAK_LATE_BY_AT_MOST
                && index > 0
            {
                out.push_str(&format!("| {} | *{name}* | | | |\n", clock(now)));
                now += pause;
                breaks.next();
            }
            let names: Vec<String> = exercises
                .iter()
                .map(|exercise| format!("[{}](../exercises/{}.md)", exercise.title, exercise.slug))
                .collect();
            let exercise_cell = if exercises.is_empty() {
                String::new()
            } else {
                format!("{minutes}: {}", names.join(", "))
            };
            out.push_str(&format!(
                "| {} | {number}. {link} | {} | {exercise_cell} | {} |\n",
                clock(now),
                segment.talk,
                segment.debrief
            ));
            now += length;
            total = (
                total.0 + segment.talk,
                total.1 + minutes,
                total.2 + segment.debrief,
            );
            // Or after it, once its end has reached the break's time; none before the closing.
            if let Some(((hour, minute), pause, name)) = breaks.peek()
                && now >= hour * 60 + minute
                && index < last
            {
                out.push_str(&format!("| {} | *{name}* | | | |\n", clock(now)));
                now += pause;
                breaks.next();
            }
        }
        out.push_str(&format!(
            "| {} | Closing: questions, what to read next | {CLOSING_MINUTES} | | |\n",
            clock(now)
        ));
        now += CLOSING_MINUTES;
        out.push_str(&format!(
            "| {} | *End* | {} | {} | {} |\n\n",
            clock(now),
            total.0 + OPENING_MINUTES + CLOSING_MINUTES,
            total.1,
            total.2
        ));
    }
    out
}

/// The exercises' table: each with its chapter and its clock.
fn exercises_table() -> String {
    EXERCISES
        .iter()
        .map(|exercise| {
            let (title, page) = if exercise.chapter == CAPSTONE.number {
                (
                    crate::docs::title(&read(&CAPSTONE.page())).to_string(),
                    CAPSTONE.name(),
                )
            } else {
                let chapter = CHAPTERS
                    .iter()
                    .find(|chapter| chapter.number == exercise.chapter)
                    .expect("every exercise has its chapter");
                (
                    crate::docs::title(&read(&chapter.page())).to_string(),
                    chapter.name(),
                )
            };
            let clock = if exercise.paused_clock {
                "paused"
            } else {
                "real"
            };
            format!(
                "| [{}](../exercises/{}.md) | {}. [{title}](../{page}.md) | {clock} |\n",
                exercise.title, exercise.slug, exercise.chapter
            )
        })
        .collect()
}

#[test]
fn the_exercises_page_and_the_summary_list_every_exercise() {
    let path = Path::new("chapters/workshop/exercises.table.md");
    let expected = exercises_table();
    if std::env::var_os("UPDATE_EXPECTED").is_some() {
        std::fs::write(root().join(path), &expected).expect("the table can be written");
    }
    assert_eq!(
        read(path),
        expected,
        "`UPDATE_EXPECTED=1 cargo test --test book workshop::` rewrites it"
    );
    let summary = read(Path::new("chapters/SUMMARY.md"));
    for exercise in EXERCISES {
        assert!(
            summary.contains(&format!(
                "[{}](exercises/{}.md)",
                exercise.title, exercise.slug
            )),
            "{} is not in SUMMARY.md",
            exercise.slug
        );
    }
}

#[test]
fn the_schedule_page_is_the_catalogues() {
    let path = Path::new("chapters/workshop/schedule.table.md");
    let expected = schedule();
    if std::env::var_os("UPDATE_EXPECTED").is_some() {
        std::fs::write(root().join(path), &expected).expect("the table can be written");
    }
    assert_eq!(
        read(path),
        expected,
        "the schedule's table is not the catalogue's: `UPDATE_EXPECTED=1 cargo test --test book workshop::` rewrites it"
    );
    let page = read(Path::new("chapters/workshop/schedule.md"));
    assert!(
        page.contains("{{#include schedule.table.md}}"),
        "the page does not show the table"
    );
    // Every exercise is on a day.
    for exercise in EXERCISES {
        assert!(expected.contains(&format!("(../exercises/{}.md)", exercise.slug)));
    }
}

/// Every chapter's page, Part III's and the introduction.
fn chapter_pages() -> Vec<PathBuf> {
    let mut pages: Vec<PathBuf> = CHAPTERS.iter().map(|chapter| chapter.page()).collect();
    pages.push(CAPSTONE.page());
    pages.push(PathBuf::from("chapters/introduction.md"));
    pages
}

#[test]
fn every_chapter_page_has_speaker_notes() {
    for page in chapter_pages() {
        let text = read(&page);
        let opened = text.matches("<details class=\"speaker-notes\">").count();
        assert!(opened > 0, "{}: no speaker notes", page.display());
        assert!(
            text.matches("<summary>Speaker notes</summary>").count() == opened,
            "{}: a speaker-notes block without its summary",
            page.display()
        );
    }
}

#[test]
fn every_prediction_is_answered_from_a_tested_file() {
    let mut prompts = 0;
    for page in files("chapters", "md") {
        let text = read(&page);
        for block in text.split("<details class=\"predict\">").skip(1) {
            prompts += 1;
            let answer = block.split("</details>").next().unwrap_or_default();
            assert!(
                answer.contains("<summary>Predict, then run: "),
                "{}: a prediction without its question",
                page.display()
            );
            assert!(
                answer.contains("{{#include ../tests/expected/"),
                "{}: a prediction whose answer is not included from tests/expected/:\n{answer}",
                page.display()
            );
        }
    }
    assert!(prompts >= 6, "only {prompts} predict-then-run prompts");
}
