//! Chapter 8: surviving a crash, and resuming.
//!
//! The queue lives in an SQLite database instead of in memory. Each job is claimed in the
//! database before it starts and marked done, with its result, in the same transaction that
//! records the result. Kill the process at any moment; run it again, and it resumes where the
//! last run stopped, re-running only the jobs that were in flight.
//! Run it with `cargo run --bin ch08_resume -- --db jobs.db`; `--help` lists the options.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use tokio::task::JoinSet;
use tokio::time::Instant;

const CONSUMERS: usize = 4;
const JOB_TIME: Duration = Duration::from_millis(100);
/// Written into the database, so that a file made by something else is never mistaken for ours.
const SCHEMA_VERSION: i64 = 8;

// ANCHOR: schema
/// Opens the database, creating the schema in a new one, and refuses anything else.
fn open(path: &Path) -> Result<Connection, String> {
    let error = |what: &str, error: rusqlite::Error| format!("{}: {what}: {error}", path.display());
    let db = Connection::open(path).map_err(|e| error("cannot open", e))?;
    // rusqlite waits up to 5 s for a locked database by default; a database locked by another
    // run should be refused at once instead (see `locking_mode` below).
    db.busy_timeout(Duration::ZERO)
        .map_err(|e| error("cannot configure", e))?;
    // Reading the schema version reads the file's header: a file that is not a database
    // fails here, before anything is written to it.
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(|e| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy) => error("in use by another run", e),
            _ => error("not an SQLite database", e),
        })?;
    let tables: i64 = db
        .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
        .map_err(|e| error("cannot read", e))?;
    if version != SCHEMA_VERSION && !(version == 0 && tables == 0) {
        return Err(format!(
            "{}: an SQLite database, but not one of this chapter's; refusing to touch it",
            path.display()
        ));
    }
    // Write-ahead logging: a commit is one append to the log. `synchronous = NORMAL` keeps
    // every commit through a crash of the process (what this chapter is about); surviving a
    // power cut as well needs `FULL`. `locking_mode = EXCLUSIVE` keeps the database locked
    // while this run has it open: `recover` assumes that no other run is working on it.
    db.execute_batch(
        "PRAGMA locking_mode = EXCLUSIVE;
         PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;",
    )
    .map_err(|e| error("cannot lock it for this run (is another run using it?)", e))?;
    if version == SCHEMA_VERSION {
        return Ok(db);
    }
    db.execute_batch(&format!(
        "BEGIN;
         CREATE TABLE IF NOT EXISTS jobs (
             number   INTEGER PRIMARY KEY,
             state    TEXT NOT NULL CHECK (state IN ('pending', 'running', 'done')),
             attempts INTEGER NOT NULL DEFAULT 0
         );
         CREATE TABLE IF NOT EXISTS results (
             number INTEGER PRIMARY KEY REFERENCES jobs (number),
             value  INTEGER NOT NULL
         );
         PRAGMA user_version = {SCHEMA_VERSION};
         COMMIT;"
    ))
    .map_err(|e| error("cannot set up", e))?;
    Ok(db)
}
// ANCHOR_END: schema

// ANCHOR: queue
/// The queue, in the database. Every method is one short transaction.
struct Queue(Mutex<Connection>);

impl Queue {
    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while the lock was held would have rolled its transaction back: the
        // connection is still usable.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds jobs `0..count`, unless they are there already: running twice adds nothing.
    fn fill(&self, count: u32) -> rusqlite::Result<()> {
        let mut db = self.db();
        let tx = db.transaction()?;
        for number in 0..count {
            tx.execute(
                "INSERT OR IGNORE INTO jobs (number, state) VALUES (?1, 'pending')",
                params![number],
            )?;
        }
        tx.commit()
    }

    /// Jobs still marked running were in flight when the last run died: they go back to
    /// pending, to be run again. Returns how many.
    fn recover(&self) -> rusqlite::Result<usize> {
        self.db().execute(
            "UPDATE jobs SET state = 'pending' WHERE state = 'running'",
            [],
        )
    }

    /// Claims the next pending job, and records the claim before the work starts: the
    /// write-ahead step. A crash from here on leaves the job marked running.
    fn claim(&self) -> rusqlite::Result<Option<u32>> {
        self.db()
            .query_row(
                "UPDATE jobs SET state = 'running', attempts = attempts + 1
                 WHERE number = (SELECT number FROM jobs WHERE state = 'pending'
                                 ORDER BY number LIMIT 1)
                 RETURNING number",
                [],
                |row| row.get(0),
            )
            .optional()
    }

    /// Records a job's result and marks it done, in one transaction: both happen, or neither.
    fn complete(&self, number: u32, value: i64) -> rusqlite::Result<()> {
        let mut db = self.db();
        let tx = db.transaction()?;
        tx.execute(
            "INSERT INTO results (number, value) VALUES (?1, ?2)",
            params![number, value],
        )?;
        tx.execute(
            "UPDATE jobs SET state = 'done' WHERE number = ?1",
            params![number],
        )?;
        tx.commit()
    }

    /// `(completed, pending)`: jobs done, and jobs not done yet.
    fn status(&self) -> rusqlite::Result<(i64, i64)> {
        self.db().query_row(
            "SELECT count(*) FILTER (WHERE state = 'done'),
                    count(*) FILTER (WHERE state != 'done') FROM jobs",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
    }
}
// ANCHOR_END: queue

// ANCHOR: consumer
/// The work itself: slow, and deterministic, so a job run twice gives the same result.
async fn work(number: u32) -> i64 {
    tokio::time::sleep(JOB_TIME).await;
    i64::from(number) * i64::from(number)
}

/// Runs one database call on tokio's blocking pool: SQLite's calls block, and must not
/// stall the runtime's threads (chapter 10 says why).
async fn blocking<T: Send + 'static>(
    queue: &Arc<Queue>,
    call: impl FnOnce(&Queue) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, String> {
    let queue = Arc::clone(queue);
    match tokio::task::spawn_blocking(move || call(&queue)).await {
        Ok(result) => result.map_err(|error| format!("database: {error}")),
        Err(error) => Err(format!("database task: {error}")),
    }
}

async fn consumer(queue: Arc<Queue>) -> Result<u32, String> {
    let mut completed = 0;
    while let Some(number) = blocking(&queue, Queue::claim).await? {
        let value = work(number).await;
        blocking(&queue, move |queue| queue.complete(number, value)).await?;
        // `writeln!`, not `println!`: with the output piped into `head`, say, `println!` would
        // panic once the pipe closes. The progress is in the database; the line is a courtesy.
        let _ = writeln!(
            std::io::stdout(),
            "processed task with task_number={number} result={value}"
        );
        completed += 1;
    }
    Ok(completed)
}
// ANCHOR_END: consumer

// ANCHOR: run
async fn run(db: Connection, jobs: u32) -> Result<(), String> {
    let queue = Arc::new(Queue(Mutex::new(db)));
    blocking(&queue, move |queue| queue.fill(jobs)).await?;
    let interrupted = blocking(&queue, Queue::recover).await?;
    let (completed, pending) = blocking(&queue, Queue::status).await?;
    let _ = writeln!(
        std::io::stdout(),
        "resuming: completed={completed} pending={pending} interrupted={interrupted}"
    );

    let _timer = Timer::start();
    let mut consumers = JoinSet::new();
    for _ in 0..CONSUMERS {
        consumers.spawn(consumer(Arc::clone(&queue)));
    }
    let mut first_error = None;
    while let Some(finished) = consumers.join_next().await {
        let outcome = finished
            .map_err(|error| format!("consumer: {error}"))
            .and_then(|r| r);
        if let Err(error) = outcome {
            first_error.get_or_insert(error);
        }
    }
    if let Some(error) = first_error {
        return Err(error);
    }
    let (completed, pending) = blocking(&queue, Queue::status).await?;
    let _ = writeln!(std::io::stdout(), "completed={completed} pending={pending}");
    Ok(())
}
// ANCHOR_END: run

/// Prints how long it lived when it is dropped, like the article's `timer()` context manager.
struct Timer(Instant);

impl Timer {
    fn start() -> Timer {
        Timer(Instant::now())
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        let seconds = self.0.elapsed().as_secs_f64();
        let _ = writeln!(std::io::stdout(), "elapsed time: {seconds:.2} seconds");
    }
}

const USAGE: &str = "\
Usage: ch08_resume [--db PATH] [--jobs N] [--status]

Runs N jobs of 0.1 s on 4 consumers, keeping the queue in an SQLite database. Killed at any
point and run again with the same database, it resumes: jobs done stay done, and only the
jobs that were in flight run again.

Options:
  --db PATH   the database file, created if missing (default: ch08_resume.db);
              :memory: keeps it in memory, to try the program without a file
  --jobs N    how many jobs the queue holds, from 1 to 100000 (default: 100); jobs already
              in the database are kept
  --status    print `completed=N pending=M` and exit, changing nothing
  -h, --help  print this help

Exit status: 0 when every job is done; 1 for a database error during the run; 2 for a bad
command line or a database file that cannot be used (not SQLite, or not this chapter's).
";

struct Options {
    db: PathBuf,
    jobs: u32,
    status: bool,
}

/// Reads the command line: `Ok(None)` asks for the help, `Err` carries the message for a bad one.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut options = Options {
        db: PathBuf::from("ch08_resume.db"),
        jobs: 100,
        status: false,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--db" => options.db = args.next().ok_or("--db needs a file path")?.into(),
            "--jobs" => {
                let value = args.next().ok_or("--jobs needs a value")?;
                options.jobs = match value.parse() {
                    Ok(n @ 1..=100_000) => n,
                    _ => return Err(format!("--jobs: expected 1 to 100000, got {value:?}")),
                };
            }
            "--status" => options.status = true,
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    Ok(Some(options))
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if options.status && !options.db.is_file() {
        eprintln!("error: {}: no such database", options.db.display());
        return ExitCode::from(2);
    }
    let db = match open(&options.db) {
        Ok(db) => db,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    if options.status {
        return match Queue(Mutex::new(db)).status() {
            Ok((completed, pending)) => {
                println!("completed={completed} pending={pending}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: {}: {error}", options.db.display());
                ExitCode::FAILURE
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the tokio runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(db, options.jobs)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
