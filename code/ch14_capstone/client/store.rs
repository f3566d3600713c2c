// ANCHOR: open
//! The run's progress, in SQLite, as chapter 10 keeps it: a file that survives a crash, locked
//! for one run at a time, checked to be this program's before anything is written, and in
//! write-ahead-log mode so that a commit is one append. `queue.rs` has what a run does with it.

use std::fs::{File, TryLockError};
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use rusqlite::{Connection, OpenFlags};

/// Written into the database, so that a file made by something else is never mistaken for ours.
const SCHEMA_VERSION: i64 = 1;

/// One row an item, numbered by its line in the source (`seq`), which is the order of sending.
/// `claimed` is the write-ahead step: an item is marked claimed, and committed, before its first
/// request. A crash leaves it claimed, and the next run sends it again. The partial index lists
/// the pending items only, so that finding the next ones never reads the finished ones.
const TABLES: &str = "
    CREATE TABLE items (
        seq     INTEGER PRIMARY KEY,
        id      TEXT NOT NULL UNIQUE,
        payload TEXT NOT NULL,
        state   TEXT NOT NULL CHECK (state IN ('pending', 'claimed', 'done', 'dead')),
        claims  INTEGER NOT NULL DEFAULT 0,
        reason  TEXT
    );
    CREATE INDEX pending_items ON items (seq) WHERE state = 'pending';";

/// The database, shared by the run's tasks; each method in `queue.rs` is one transaction.
pub struct Store {
    db: Mutex<Connection>,
    /// This run's lock on the file. Declared after `db`, so dropped after it: closing any
    /// descriptor of the file drops the process's POSIX locks on it, SQLite's own included.
    _lock: File,
}

impl Store {
    /// Locks the file for this run, checks what it holds, and opens it, creating the schema in
    /// a new file. Every refusal is bad input: the caller exits with status 2.
    pub fn open(path: &Path) -> Result<Store, String> {
        let name = path.display();
        let lock = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|error| format!("--db {name}: {error}"))?;
        // The operating system's lock, released when the process ends however it ends.
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(format!("--db {name}: another run is using this database"));
            }
            Err(TryLockError::Error(error)) => return Err(format!("--db {name}: {error}")),
        }
        let db = check(path).map_err(|why| format!("--db {name}: {why}"))?;
        Ok(Store {
            db: Mutex::new(db),
            _lock: lock,
        })
    }

    pub fn db(&self) -> MutexGuard<'_, Connection> {
        // A panic while the mutex was held rolled its transaction back: the connection is sound.
        self.db.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
// ANCHOR_END: open

// ANCHOR: check
/// Refuses a file that is neither empty nor one of this program's databases, reading it
/// read-only first, so that another program's file is left as it was.
fn check(path: &Path) -> Result<Connection, String> {
    let fresh = {
        let db = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|error| error.to_string())?;
        // Reading the version reads the file's header: a file that is not SQLite fails here.
        let version: i64 = db
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(|error| format!("not this program's database ({error})"))?;
        let tables: i64 = db
            .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
            .map_err(|error| error.to_string())?;
        match (version, tables) {
            (0, 0) => true,
            (SCHEMA_VERSION, _) if layout(&db)? == our_layout()? => false,
            _ => return Err("an SQLite database, but not this program's; not touching it".into()),
        }
    };
    let db = Connection::open(path).map_err(|error| error.to_string())?;
    // WAL: a commit is an append to the log. `NORMAL`: a crash of the process loses nothing
    // committed; a power cut may lose the last commits, whose items are then sent again.
    db.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
        .map_err(|error| error.to_string())?;
    if fresh {
        let create = format!("BEGIN; {TABLES} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;");
        db.execute_batch(&create)
            .map_err(|error| error.to_string())?;
    }
    Ok(db)
}

/// Each table and index, by kind and name, with the statement that made it.
type Layout = Vec<(String, String, Option<String>)>;

fn layout(db: &Connection) -> Result<Layout, String> {
    let read = || -> rusqlite::Result<Layout> {
        let mut query = db.prepare("SELECT type, name, sql FROM sqlite_schema ORDER BY 1, 2")?;
        let rows = query.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
        rows.collect()
    };
    read().map_err(|error| error.to_string())
}

/// The layout `TABLES` makes, in a database in memory: the check cannot drift from the schema.
fn our_layout() -> Result<Layout, String> {
    let db = Connection::open_in_memory().map_err(|error| error.to_string())?;
    db.execute_batch(TABLES)
        .map_err(|error| error.to_string())?;
    layout(&db)
}
// ANCHOR_END: check
