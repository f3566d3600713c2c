//! The book itself: it builds, and every `{{#include}}` in it resolves.
//!
//! mdBook builds happily past a missing include file (it leaves the directive's raw text on
//! the page) and past a missing anchor (an empty code block, and not a word logged), so both
//! are checked here.

use std::path::{Path, PathBuf};

use io_bound_tokio::{CAPSTONE, CHAPTERS};
use mdbook_driver::MDBook;
use mdbook_driver::book::BookItem;
use mdbook_driver::builtin_renderers::MarkdownRenderer;

use crate::common::{files, read, root};

/// Every `{{#include ...}}`-like directive of a page: its whole text and its target.
fn directives(page: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = page;
    while let Some(start) = rest.find("{{#") {
        let after = &rest[start..];
        let Some(end) = after.find("}}") else { break };
        let directive = &after[..end + 2];
        let mut words = directive[3..end].split_whitespace();
        if let (Some(kind), Some(target)) = (words.next(), words.next())
            && matches!(kind, "include" | "rustdoc_include" | "playground")
        {
            found.push((directive.to_string(), target.to_string()));
        }
        rest = &after[end + 2..];
    }
    found
}

#[test]
fn every_include_names_a_file_and_an_anchor_that_exist() {
    let mut broken = Vec::new();
    let mut count = 0;
    for page in files("chapters", "md") {
        let text = std::fs::read_to_string(&page).expect("a readable page");
        // A directive alone on its line pastes a block of text: outside a fenced code block,
        // mdBook would render the program as markdown.
        let mut fenced = false;
        for line in text.lines() {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
            } else if line.trim_start().starts_with("{{#") && !fenced && !line.contains(".md}}") {
                // A markdown file included as markdown is the one exception.
                broken.push(format!(
                    "{}: {line}: not inside a fenced code block",
                    page.display()
                ));
            }
        }
        for (directive, target) in directives(&text) {
            count += 1;
            let (file, selector) = target.split_once(':').unwrap_or((&target, ""));
            let file = page.parent().expect("a page has a folder").join(file);
            let Ok(included) = std::fs::read_to_string(&file) else {
                broken.push(format!(
                    "{}: {directive}: no file {}",
                    page.display(),
                    file.display()
                ));
                continue;
            };
            let is_anchor =
                !selector.is_empty() && !selector.chars().all(|c| c.is_ascii_digit() || c == ':');
            if is_anchor
                && !(included.contains(&format!("ANCHOR: {selector}\n"))
                    && included.contains(&format!("ANCHOR_END: {selector}\n")))
            {
                broken.push(format!(
                    "{}: {directive}: no anchor {selector}",
                    page.display()
                ));
            }
        }
    }
    assert!(broken.is_empty(), "broken includes:\n{}", broken.join("\n"));
    assert!(
        count > 10,
        "only {count} includes found: is the scan right?"
    );
}

#[test]
fn every_chapter_has_its_page_in_the_summary() {
    let summary = read(Path::new("chapters/SUMMARY.md"));
    for chapter in CHAPTERS {
        let file = format!("({}.md)", chapter.name());
        assert!(summary.contains(&file), "SUMMARY.md does not list {file}");
        assert!(
            root().join(chapter.page()).is_file(),
            "no page {}",
            chapter.page().display()
        );
        let page = read(&chapter.page());
        assert!(
            page.contains(&format!("../code/{}.rs", chapter.name())),
            "{} does not include its program",
            chapter.page().display()
        );
    }
    let file = format!("({}.md)", CAPSTONE.name());
    assert!(summary.contains(&file), "SUMMARY.md does not list {file}");
    let page = read(&CAPSTONE.page());
    for folder in CAPSTONE.source_folders() {
        for source in files(&folder.to_string_lossy(), "rs") {
            let name = source
                .strip_prefix(root())
                .unwrap_or(&source)
                .display()
                .to_string();
            assert!(
                page.contains(&format!("../{name}")),
                "{} does not include {name}",
                CAPSTONE.page().display()
            );
        }
    }
}

#[test]
fn the_book_builds_with_no_directive_left_unresolved() {
    let mut book = MDBook::load(root()).expect("the book loads");
    // Preprocess as mdBook does before rendering, then look at what a reader would get.
    let (processed, _) = book
        .preprocess_book(&MarkdownRenderer::new())
        .expect("the preprocessors run");
    let mut chapters = 0;
    for item in processed.iter() {
        if let BookItem::Chapter(chapter) = item {
            chapters += 1;
            assert!(
                !chapter.content.contains("{{#"),
                "{}: a directive was left as raw text (a missing file?)",
                chapter.name
            );
            assert!(
                !chapter.content.contains("```rust\n```")
                    && !chapter.content.contains("```text\n```"),
                "{}: an empty code block (a missing anchor?)",
                chapter.name
            );
        }
    }
    assert!(
        chapters > CHAPTERS.len(),
        "the book has only {chapters} pages"
    );

    // And the HTML renders, into a folder of its own.
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("book");
    book.config.build.build_dir = out.clone();
    book.build().expect("the book renders");
    let names = CHAPTERS.iter().map(|chapter| chapter.name());
    for name in names.chain([CAPSTONE.name()]) {
        let html = out.join(format!("{name}.html"));
        assert!(html.is_file(), "no {}", html.display());
    }
}

#[test]
fn run_buttons_are_off_exactly_where_the_playground_cannot_run_the_chapter() {
    for chapter in CHAPTERS {
        let page = read(&chapter.page());
        let runnable = page.lines().filter(|line| line.trim() == "```rust").count();
        let off = page
            .lines()
            .filter(|line| line.trim() == "```rust,noplayground")
            .count();
        if chapter.playground {
            assert_eq!(off, 0, "{}: a Run button turned off", chapter.name());
            assert!(runnable > 0, "{}: no runnable listing", chapter.name());
        } else {
            assert_eq!(
                runnable,
                0,
                "{}: a Run button that cannot work",
                chapter.name()
            );
            assert!(off > 0, "{}: no listing", chapter.name());
            assert!(
                page.contains("no Run button"),
                "{}: says not how to run it",
                chapter.name()
            );
        }
    }
}
