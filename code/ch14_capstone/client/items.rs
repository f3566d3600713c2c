// ANCHOR: source
//! The items to send, read lazily (chapter 6's lesson: a million items need not be a million
//! values in memory). The source is a file, one item a line, or a generator; either way it is an
//! iterator that yields one line at a time. A malformed line is not a reason to stop the run:
//! it becomes a dead letter, kept with its reason, and the run goes on.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

/// One line of the source: its position (1, 2, ...) and what it holds.
pub struct Line {
    pub seq: i64,
    pub entry: Entry,
}

/// An item to send, or why the line cannot be one.
pub enum Entry {
    Item { id: String, payload: String },
    Malformed { reason: String },
}

/// Where the items come from: the lines of a file, or `item-000000001`... generated.
pub enum Source {
    File { lines: BufReader<File>, seq: i64 },
    Generated { next: i64, count: i64 },
}

impl Source {
    /// Opens the file now, so that a missing or unreadable one is refused before any work.
    pub fn file(path: &Path) -> Result<Source, String> {
        let file =
            File::open(path).map_err(|error| format!("--items {}: {error}", path.display()))?;
        if file.metadata().is_ok_and(|found| found.is_dir()) {
            return Err(format!("--items {}: a folder, not a file", path.display()));
        }
        Ok(Source::File {
            lines: BufReader::new(file),
            seq: 0,
        })
    }

    pub fn generated(count: i64) -> Source {
        Source::Generated { next: 1, count }
    }
}
// ANCHOR_END: source

// ANCHOR: iterator
impl Iterator for Source {
    /// A line, or the error that stopped the reading (a disk failing, say).
    type Item = std::io::Result<Line>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Source::Generated { next, count } => {
                let seq = *next;
                if seq > *count {
                    return None;
                }
                *next += 1;
                let id = format!("item-{seq:09}");
                let payload = id.clone();
                let entry = Entry::Item { id, payload };
                Some(Ok(Line { seq, entry }))
            }
            Source::File { lines, seq } => {
                // Bytes, not a `String`: a line that is not UTF-8 is a dead letter, not an error.
                let mut bytes = Vec::new();
                match lines.read_until(b'\n', &mut bytes) {
                    Ok(0) => return None,
                    Ok(_) => {}
                    Err(error) => return Some(Err(error)),
                }
                *seq += 1;
                let entry = parse(bytes);
                Some(Ok(Line { seq: *seq, entry }))
            }
        }
    }
}
// ANCHOR_END: iterator

// ANCHOR: parse
/// The longest id the service accepts.
const MAX_ID: usize = 128;

/// A line's id is its first field, up to the first tab; the payload is the whole line.
fn parse(mut bytes: Vec<u8>) -> Entry {
    while bytes
        .last()
        .is_some_and(|&byte| byte == b'\n' || byte == b'\r')
    {
        bytes.pop();
    }
    let Ok(line) = String::from_utf8(bytes) else {
        return malformed("the line is not UTF-8");
    };
    let id = line.split('\t').next().unwrap_or_default();
    if id.is_empty() {
        return malformed("empty id");
    }
    if id.len() > MAX_ID {
        return malformed("id longer than 128 characters");
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if let Some(bad) = id.chars().find(|&c| !allowed(c)) {
        return malformed(&format!(
            "id has the character {bad:?}, not one of A-Za-z0-9_-"
        ));
    }
    Entry::Item {
        id: id.to_owned(),
        payload: line,
    }
}

fn malformed(reason: &str) -> Entry {
    Entry::Malformed {
        reason: format!("malformed line: {reason}"),
    }
}
// ANCHOR_END: parse
