//! The words around the code: the README's chapter table and the figures in the prose must
//! agree with the catalogue and the programs, so that no number is only typed.

use std::collections::BTreeSet;
use std::path::Path;

use io_bound_tokio::{CAPSTONE, CHAPTERS, EXERCISES, elapsed_line};
use pretty_assertions::assert_eq;
use regex::Regex;

use crate::common::{files, read, root};

/// A page's title: its first `# ` heading.
pub(crate) fn title(page: &str) -> &str {
    page.lines()
        .find_map(|line| line.strip_prefix("# "))
        .unwrap_or_default()
}

#[test]
fn the_readme_chapter_table_matches_the_catalogue() {
    let readme = read(Path::new("README.md"));
    let row = Regex::new(r"^\| \d+\. ").expect("a valid regex");
    let rows: Vec<&str> = readme.lines().filter(|line| row.is_match(line)).collect();
    let mut expected: Vec<String> = CHAPTERS
        .iter()
        .map(|chapter| {
            let page = read(&chapter.page());
            let seconds = elapsed_line(chapter.runs[0].elapsed_seconds);
            let seconds = seconds
                .trim_start_matches("elapsed time: ")
                .replace(" seconds", " s");
            format!(
                "| {}. {} | `{}` | {} | {seconds} |",
                chapter.number,
                title(&page),
                chapter.name(),
                chapter.teaches
            )
        })
        .collect();
    // Part III has two binaries and no elapsed time of its own: it is tested end to end.
    let binaries: Vec<String> = CAPSTONE
        .binaries
        .iter()
        .map(|name| format!("`{name}`"))
        .collect();
    expected.push(format!(
        "| {}. {} | {} | {} | end to end |",
        CAPSTONE.number,
        title(&read(&CAPSTONE.page())),
        binaries.join(", "),
        CAPSTONE.teaches
    ));
    assert_eq!(rows, expected);
}

/// Every program of the book, the chapters' and Part III's: where the prose's figures may come from.
fn programs() -> Vec<String> {
    let mut sources: Vec<String> = CHAPTERS
        .iter()
        .map(|chapter| read(&chapter.source()))
        .collect();
    for folder in CAPSTONE.source_folders() {
        for file in files(&folder.to_string_lossy(), "rs") {
            sources.push(read(&file));
        }
    }
    // The workshop's exercises: each one's starter, with its checks, and its solution.
    for exercise in EXERCISES {
        sources.push(read(&exercise.starter()));
        sources.push(read(&exercise.solution()));
    }
    sources.push(read(Path::new("code/exercises/preflight.rs")));
    sources
}

/// Text outside fenced code blocks: what the prose says, not what it includes.
fn prose(page: &str) -> String {
    let mut inside = false;
    let mut text = String::new();
    for line in page.lines() {
        if line.trim_start().starts_with("```") {
            inside = !inside;
        } else if !inside {
            text.push_str(line);
            text.push('\n');
        }
    }
    text
}

/// Every number of seconds the programs sleep for or wait at most, and every time a run takes.
fn known_seconds() -> BTreeSet<String> {
    let literal = Regex::new(r"from_secs(?:_f64)?\((\d+(?:\.\d+)?)\)").expect("a valid regex");
    let mut known: BTreeSet<String> = BTreeSet::new();
    for chapter in CHAPTERS {
        for run in chapter.runs {
            known.insert(format!("{}", run.elapsed_seconds));
            // The options a run is made with count too: `--timeout 2`.
            for pair in run.args.windows(2) {
                if pair[0] == "--timeout" {
                    known.insert(pair[1].to_string());
                }
            }
        }
    }
    for source in programs() {
        for found in literal.captures_iter(&source) {
            known.insert(found[1].to_string());
        }
    }
    known
}

/// Every number in an exercise's starter, its solution, and what its solution prints
/// (`tests/expected/exercise.SLUG.txt`, which the workshop's tests compare with the program).
fn exercise_figures(exercise: &io_bound_tokio::Exercise) -> BTreeSet<String> {
    let number = Regex::new(r"\d+(?:\.\d+)?").expect("a valid regex");
    let mut texts = vec![read(&exercise.starter()), read(&exercise.solution())];
    if root().join(exercise.expected()).is_file() {
        texts.push(read(&exercise.expected()));
    }
    texts
        .iter()
        .flat_map(|text| {
            number
                .find_iter(text)
                .map(|found| found.as_str().to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every match of `pattern`'s first group in the programs.
fn known_literals(pattern: &str) -> BTreeSet<String> {
    let literal = Regex::new(pattern).expect("a valid regex");
    programs()
        .iter()
        .flat_map(|source| {
            literal
                .captures_iter(source)
                .map(|found| found[1].to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every integer literal in the programs: counts of tasks, consumers, queue slots.
fn known_counts() -> BTreeSet<String> {
    known_literals(r"\b(\d+)\b")
}

#[test]
fn every_time_and_count_in_the_prose_comes_from_the_programs() {
    let seconds = Regex::new(r"(\d+(?:\.\d+)?) (?:s|seconds?)\b").expect("a valid regex");
    let millis = Regex::new(r"(\d+) (?:ms|milliseconds?)\b").expect("a valid regex");
    let counts = Regex::new(r"\b(\d+) (?:tasks|consumers|more)\b").expect("a valid regex");
    let (known_seconds, known_counts) = (known_seconds(), known_counts());
    let known_millis = known_literals(r"from_millis\((\d+)\)");
    let mut pages = vec![Path::new("README.md").to_path_buf()];
    pages.extend(
        ["chapters", "chapters/exercises", "chapters/workshop"]
            .into_iter()
            .flat_map(|folder| files(folder, "md"))
            // The benchmark's table is itself a measurement file, written by the program.
            .filter(|path| !path.to_string_lossy().ends_with(".table.md")),
    );
    let mut unknown = Vec::new();
    let mut checked = 0;
    for page in pages {
        let text = prose(&read(&page));
        // An exercise's page may also quote its own program and what its solution prints.
        let own = EXERCISES
            .iter()
            .find(|exercise| page.ends_with(exercise.page()))
            .map(exercise_figures)
            .unwrap_or_default();
        for found in seconds.captures_iter(&text) {
            checked += 1;
            // Compared as numbers: the prose may write 2.50 s where the catalogue has 2.5.
            let value: f64 = found[1].parse().expect("digits parse");
            let known = known_seconds
                .iter()
                .chain(&own)
                .any(|figure| figure.parse::<f64>().is_ok_and(|known| known == value));
            if !known {
                unknown.push(format!("{}: {:?}", page.display(), &found[0]));
            }
        }
        for found in millis.captures_iter(&text) {
            checked += 1;
            if !known_millis.contains(&found[1]) {
                unknown.push(format!("{}: {:?}", page.display(), &found[0]));
            }
        }
        for found in counts.captures_iter(&text) {
            checked += 1;
            if !known_counts.contains(&found[1]) {
                unknown.push(format!("{}: {:?}", page.display(), &found[0]));
            }
        }
    }
    assert!(
        checked > 10,
        "only {checked} figures found: is the scan right?"
    );
    assert!(
        unknown.is_empty(),
        "figures no program or run backs:\n{}",
        unknown.join("\n")
    );
}

#[test]
fn every_rust_cell_of_the_phrasebook_comes_from_a_compiled_file() {
    let page = read(Path::new("chapters/appendix_phrasebook.md"));
    let include = Regex::new(r"`\{\{#include \.\./tests/pass/phrasebook\.rs:\w+\}\}`")
        .expect("a valid regex");
    let rows: Vec<&str> = page
        .lines()
        .filter(|line| line.starts_with("| `") || line.starts_with("| a "))
        .collect();
    assert!(rows.len() > 15, "only {} rows found", rows.len());
    for row in rows {
        let cells: Vec<&str> = row.split(" | ").collect();
        let rust = cells
            .get(1)
            .unwrap_or_else(|| panic!("a row without a Rust cell: {row}"));
        let without_includes = include.replace_all(rust, "");
        assert!(
            !without_includes.contains('`'),
            "typed code in the phrasebook: {rust}"
        );
        assert!(
            include.is_match(rust),
            "no included code in the phrasebook row: {row}"
        );
    }
}

#[test]
fn every_compile_fail_case_is_taught_in_a_chapter_and_in_the_gallery() {
    let cases: Vec<String> = files("tests/ui", "rs")
        .iter()
        .map(|path| {
            path.file_name()
                .expect("a file")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert!(cases.len() >= 6, "only {} compile-fail cases", cases.len());
    let gallery = read(Path::new("chapters/appendix_mistakes.md"));
    let chapters: Vec<String> = CHAPTERS
        .iter()
        .map(|chapter| read(&chapter.page()))
        .collect();
    for case in cases {
        let stderr = case.replace(".rs", ".stderr");
        for (text, place) in [(&gallery, "the gallery".to_string())]
            .into_iter()
            .chain([(&chapters.concat(), "a chapter".to_string())])
        {
            assert!(
                text.contains(&format!("tests/ui/{case}}}}}")),
                "{case} is not in {place}"
            );
            assert!(
                text.contains(&format!("tests/ui/{stderr}}}}}")),
                "{stderr} is not in {place}"
            );
        }
    }
}

/// The most lines a listing on a page may show. A longer one is a wall a reader skims: split
/// it at its seams, with prose between the parts.
const MAX_LISTING_LINES: usize = 80;

/// Listings that were longer than that before the limit was set, each at its length then: they
/// may shrink, never grow. `(page, anchor, lines)`.
const LONG_LISTINGS: &[(&str, &str, usize)] = &[
    ("ch05_unreliable", "consumer", 81),
    ("ch09_shutdown", "signals", 107),
    ("ch09_shutdown", "report", 95),
    ("ch10_resume", "schema", 150),
    ("ch10_resume", "queue", 131),
    ("ch11_observability", "logging", 112),
    ("ch13_million", "patterns", 131),
];

/// The lines a reader sees of `anchor` in `source`: those between its markers, less the
/// markers of other anchors and the lines mdBook hides (`# ` in a Rust block).
fn visible_lines(source: &str, anchor: &str) -> Option<usize> {
    let start = format!("ANCHOR: {anchor}");
    let end = format!("ANCHOR_END: {anchor}");
    let mut lines = source.lines();
    lines.find(|line| line.trim_end().ends_with(&start))?;
    let mut count = 0;
    for line in lines {
        if line.trim_end().ends_with(&end) {
            return Some(count);
        }
        let trimmed = line.trim_start();
        if !trimmed.contains("ANCHOR") && !trimmed.starts_with("# ") && trimmed != "#" {
            count += 1;
        }
    }
    None
}

#[test]
fn no_listing_is_longer_than_a_reader_reads() {
    let include = Regex::new(r"\{\{#(?:rustdoc_include|include) ([^:}]+\.rs):(\w+)\}\}")
        .expect("a valid regex");
    let mut too_long = Vec::new();
    let mut checked = 0;
    for page in files("chapters", "md") {
        let stem = page
            .file_stem()
            .expect("a file")
            .to_string_lossy()
            .into_owned();
        let text = read(&page);
        for found in include.captures_iter(&text) {
            let source = read(&Path::new("chapters").join(&found[1]));
            let anchor = &found[2];
            let Some(lines) = visible_lines(&source, anchor) else {
                continue; // a missing anchor is `book::every_include_names...`'s to report
            };
            checked += 1;
            let allowed = LONG_LISTINGS
                .iter()
                .find(|(long_page, long_anchor, _)| *long_page == stem && *long_anchor == anchor)
                .map_or(MAX_LISTING_LINES, |(_, _, lines)| *lines);
            if lines > allowed {
                too_long.push(format!(
                    "{stem}: {anchor} shows {lines} lines, at most {allowed}"
                ));
            }
        }
    }
    assert!(
        checked > 50,
        "only {checked} listings found: is the scan right?"
    );
    assert!(
        too_long.is_empty(),
        "listings too long:\n{}",
        too_long.join("\n")
    );
}

#[test]
fn a_link_to_a_chapter_names_its_number() {
    // `[12](ch12_blocking.md)`, `[chapter 9](ch09_shutdown.md#signals)`, `chapter [3](ch03_...)`.
    let link = Regex::new(r"(?i)\[(?:chapters? )?(\d+)\]\(ch(\d\d)_").expect("a valid regex");
    let mut wrong = Vec::new();
    let mut checked = 0;
    let mut pages = files("chapters", "md");
    pages.push(Path::new("README.md").to_path_buf());
    for page in pages {
        let text = read(&page);
        for found in link.captures_iter(&text) {
            checked += 1;
            let (said, target): (u32, u32) = (
                found[1].parse().expect("digits"),
                found[2].parse().expect("digits"),
            );
            if said != target {
                wrong.push(format!("{}: {}", page.display(), &found[0]));
            }
        }
    }
    assert!(
        checked > 10,
        "only {checked} links found: is the scan right?"
    );
    assert!(
        wrong.is_empty(),
        "links whose text names another chapter:\n{}",
        wrong.join("\n")
    );
}
