//! Builds the book's site: `cargo run --bin site` writes the HTML into `book/`, with the mdBook
//! the tests use (0.5.4, locked in `Cargo.lock`), so that what a person builds, what the
//! deploy workflow publishes and what the tests check are the same pages.
//!
//! `--dest DIR` writes them elsewhere (the browser tests build into their own folder).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use mdbook_driver::MDBook;

/// Builds the book's HTML with mdBook 0.5.4.
#[derive(Parser)]
#[command(version)]
struct Options {
    /// Where to write the site (default: book.toml's build folder, `book/`).
    #[arg(long, value_name = "DIR")]
    dest: Option<PathBuf>,
}

fn main() -> ExitCode {
    // A bad command line ends here, with one line of error and exit status 2.
    let options = Options::try_parse().unwrap_or_else(|error| {
        if !error.use_stderr() {
            error.exit();
        }
        let message = error.render().to_string();
        let first = message
            .lines()
            .next()
            .unwrap_or("error: a bad command line");
        eprintln!("{first} (see --help)");
        std::process::exit(2);
    });
    // The book's folder, wherever cargo was run from.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..");
    let root = std::fs::canonicalize(&root).unwrap_or(root);
    match build(&root, options.dest) {
        Ok(dest) => {
            println!("the site is in {}", dest.display());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Builds the site and returns its folder.
fn build(root: &Path, dest: Option<PathBuf>) -> Result<PathBuf, String> {
    let mut book =
        MDBook::load(root).map_err(|error| format!("cannot load the book: {error:#}"))?;
    if let Some(dest) = dest {
        // Relative to the folder the command was run in, as a person expects.
        let dest = std::env::current_dir()
            .map_err(|error| format!("no current folder: {error}"))?
            .join(dest);
        book.config.build.build_dir = dest;
    }
    let dest = book.root.join(&book.config.build.build_dir);
    book.build()
        .map_err(|error| format!("cannot build the book: {error:#}"))?;
    remove_second_copies(&book, &dest)?;
    Ok(dest)
}

/// mdBook copies every file of the pages' folder (`chapters/`) to the site's root, and each
/// `additional-css` and `additional-js` file to its path from the book's root
/// (`chapters/book.css`), which is the copy the pages link to. The first copy of those files
/// is linked from nowhere: this removes it, so that the site holds each file once.
fn remove_second_copies(book: &MDBook, dest: &Path) -> Result<(), String> {
    let Some(html) = book.config.html_config() else {
        return Ok(());
    };
    let src = &book.config.book.src;
    for file in html.additional_css.iter().chain(&html.additional_js) {
        let Ok(inside) = file.strip_prefix(src) else {
            continue;
        };
        let copy = dest.join(inside);
        if copy.is_file() {
            std::fs::remove_file(&copy)
                .map_err(|error| format!("cannot remove {}: {error}", copy.display()))?;
        }
    }
    Ok(())
}
