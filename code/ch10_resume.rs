//! Chapter 10: surviving a crash, and resuming.
//!
//! The queue lives in an SQLite database instead of in memory. Each job is claimed in the
//! database before it starts and marked done, with its result, in the same transaction that
//! records the result. Kill the process at any moment; run it again, and it resumes where the
//! last run stopped, re-running only the jobs that were in flight. A job that crashes the
//! program every time it runs is set aside after `MAX_ATTEMPTS`, as a dead letter.
//! Run it with `cargo run --bin ch10_resume -- --db jobs.db`; `--help` lists the options.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};
use tokio::task::JoinSet;
use tokio::time::Instant;

const CONSUMERS: usize = 4;
const JOB_TIME: Duration = Duration::from_millis(100);
/// How many times a job may be claimed. A job still in flight when the program died that many
/// times is set aside as a dead letter instead of being run again.
const MAX_ATTEMPTS: i64 = 3;
/// Written into the database, so that a file made by something else is never mistaken for ours.
/// 9: the state `dead`, and the index of pending jobs. A database of version 8 is refused.
const SCHEMA_VERSION: i64 = 9;

// ANCHOR: lock
/// Makes this run the only one on the database file, for as long as the returned file is open.
///
/// The lock is the operating system's (`flock` on Unix), taken in one step before SQLite reads
/// anything: of two runs started together, exactly one gets it. The kernel releases it when the
/// process ends, however it ends, so a crashed run leaves no stale lock behind.
fn lock_for_this_run(path: &Path) -> Result<File, Failure> {
    // Creates the file if it is missing: an empty file is a new database to SQLite.
    let doing = if path.exists() { "open" } else { "create" };
    let file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|error| {
            Failure::Unusable(format!("{}: cannot {doing}: {error}", path.display()))
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(Failure::Unusable(format!(
            "{}: another run is using this database; try again when it ends",
            path.display()
        ))),
        Err(TryLockError::Error(error)) => Err(Failure::Failed(format!(
            "{}: cannot lock: {error}",
            path.display()
        ))),
    }
}
// ANCHOR_END: lock

// ANCHOR: schema
/// What a file holds, once `inspect` has accepted it.
#[derive(PartialEq)]
enum Contents {
    /// An empty file, or an SQLite database with nothing in it: free to use.
    Nothing,
    /// One of this chapter's databases, sound.
    Jobs,
}

/// Opens the file read-only, and refuses anything that is not empty or one of this chapter's
/// databases in good order. Read-only: whatever the file turns out to be, its bytes are left as
/// they were (beside a database in write-ahead-log mode, SQLite creates the log's two files:
/// `refusal` below).
fn inspect(path: &Path) -> Result<(Connection, Contents), Failure> {
    let unusable = |what: String| Failure::Unusable(format!("{}: {what}", path.display()));
    let refuse = |error| refusal(path, "cannot read", error);
    let db = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|error| unusable(format!("cannot open: {error}")))?;
    // Reading the schema version reads the file's header: a file that is not a database
    // fails here.
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(refuse)?;
    let tables: i64 = db
        .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
        .map_err(refuse)?;
    // The version number is one integer any program may write: the tables must be ours too.
    let contents = match (version, tables) {
        (0, 0) => Contents::Nothing,
        (SCHEMA_VERSION, _) if layout(&db).map_err(refuse)? == our_layout(path)? => Contents::Jobs,
        // An earlier version of this program wrote another schema. Its jobs could be moved
        // into this one, but a queue is cheap to start again: it is refused, untouched.
        (1.., _) if version < SCHEMA_VERSION => {
            return Err(unusable(format!(
                "schema version {version}, older than this program's {SCHEMA_VERSION} (an \
                 earlier version of this chapter made it, or another program); refusing to \
                 touch it: finish it with the program that made it, or start a new file"
            )));
        }
        _ => {
            return Err(unusable(
                "an SQLite database, but not one of this chapter's; refusing to touch it".into(),
            ));
        }
    };
    // A damaged page can make rows vanish or reappear without any error: check every page
    // first (a fraction of a second at 100,000 jobs). `(1)`: stop at the first problem.
    let verdict: String = db
        .query_row("PRAGMA integrity_check(1)", [], |row| row.get(0))
        .map_err(refuse)?;
    if verdict != "ok" {
        let problem = verdict.lines().last().unwrap_or_default().to_owned();
        return Err(unusable(format!("damaged ({problem}); refusing to use it")));
    }
    Ok((db, contents))
}

/// This chapter's tables, created in an empty database in one transaction with the version.
/// A dead letter is a job set aside after `MAX_ATTEMPTS`; the index lists the pending jobs
/// only (a *partial* index), so that finding the next one never reads the finished ones.
const TABLES: &str = "
    CREATE TABLE jobs (
        number   INTEGER PRIMARY KEY,
        state    TEXT NOT NULL CHECK (state IN ('pending', 'running', 'done', 'dead')),
        attempts INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX pending_jobs ON jobs (number) WHERE state = 'pending';
    CREATE TABLE results (
        number INTEGER PRIMARY KEY REFERENCES jobs (number),
        value  INTEGER NOT NULL
    );";

/// What a database holds: each table and index, by kind and name, with the statement that
/// made it, as SQLite keeps it (the text as written, from its name on).
type Layout = Vec<(String, String, Option<String>)>;

fn layout(db: &Connection) -> rusqlite::Result<Layout> {
    let mut query = db.prepare("SELECT type, name, sql FROM sqlite_schema ORDER BY type, name")?;
    let rows = query.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
    rows.collect()
}

/// The layout of `TABLES`, read from a database made for the purpose, in memory: the
/// comparison cannot drift from what `set_up` creates.
fn our_layout(path: &Path) -> Result<Layout, Failure> {
    let ours = Connection::open_in_memory().and_then(|db| {
        db.execute_batch(TABLES)?;
        layout(&db)
    });
    ours.map_err(|error| Failure::Failed(format!("{}: {error}", path.display())))
}

/// Why SQLite could not use the file, and so the exit status: 2 when the file or its folder
/// is unusable, 1 otherwise.
fn refusal(path: &Path, doing: &str, error: rusqlite::Error) -> Failure {
    let unusable = |what: String| Failure::Unusable(format!("{}: {what}", path.display()));
    let extended = error.sqlite_error().map(|error| error.extended_code);
    match error.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => unusable("not an SQLite database".into()),
        Some(ErrorCode::DatabaseCorrupt) => {
            unusable(format!("damaged ({error}); refusing to use it"))
        }
        // A write-ahead-logged database is read through two files beside it, `-wal` and
        // `-shm`, which SQLite creates if they are missing, for a reader too.
        _ if extended == Some(rusqlite::ffi::SQLITE_READONLY_DIRECTORY) => {
            let folder = match path.parent() {
                Some(folder) if !folder.as_os_str().is_empty() => folder,
                _ => Path::new("."),
            };
            unusable(format!(
                "its folder, {}, is not writable, and SQLite must create its two log files \
                 ({}-wal, {}-shm) there to use the database, even to read it",
                folder.display(),
                path.display(),
                path.display()
            ))
        }
        _ => Failure::Failed(format!("{}: {doing}: {error}", path.display())),
    }
}

/// Opens the database for this run, read-write, once `inspect` has accepted the file, and
/// creates the schema in an empty one.
fn open(path: &Path) -> Result<Connection, Failure> {
    // The read-only connection closes here; the run opens its own.
    let (_, contents) = inspect(path)?;
    // rusqlite waits up to 5 s for SQLite's own locks. With this run's lock held, only a
    // reader (`--status`) takes them, and only for a moment.
    let db = Connection::open(path).map_err(|error| refusal(path, "cannot open", error))?;
    set_up(db, contents).map_err(|error| refusal(path, "cannot set up", error))
}

fn set_up(db: Connection, contents: Contents) -> rusqlite::Result<Connection> {
    // Write-ahead logging: a commit is one append to the log, and a reader (`--status`)
    // never waits for the run, nor the run for it. A commit survives a crash of the process
    // whatever `synchronous` says: the operating system has the bytes. `synchronous` is about
    // power cuts and kernel crashes: with `NORMAL` the database stays sound, but the last
    // commits may be lost (those jobs run again); `FULL` keeps them, at one disk flush a commit.
    db.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;",
    )?;
    if contents == Contents::Jobs {
        return Ok(db);
    }
    db.execute_batch(&format!(
        "BEGIN; {TABLES} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
    ))?;
    Ok(db)
}
// ANCHOR_END: schema

// ANCHOR: queue
/// The queue, in the database. Every method is one short transaction.
struct Queue {
    db: Mutex<Connection>,
    /// This run's lock on the file, if it has one. Declared after `db`, so dropped after
    /// it: closing any descriptor of a file drops every POSIX lock the process holds on it,
    /// SQLite's own included, so this one must stay open until SQLite has closed the database.
    _lock: Option<File>,
}

impl Queue {
    fn new(db: Connection, lock: Option<File>) -> Queue {
        Queue {
            db: Mutex::new(db),
            _lock: lock,
        }
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while the mutex was held would have rolled its transaction back: the
        // connection is still usable.
        self.db.lock().unwrap_or_else(PoisonError::into_inner)
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

    /// Jobs still marked running were in flight when the last run died. Those claimed
    /// `MAX_ATTEMPTS` times become dead letters; the others go back to pending, to be run
    /// again. Returns the numbers of those, in order, and how many were set aside.
    fn recover(&self) -> rusqlite::Result<(Vec<u32>, usize)> {
        let mut db = self.db();
        let tx = db.transaction()?;
        let set_aside = tx.execute(
            "UPDATE jobs SET state = 'dead' WHERE state = 'running' AND attempts >= ?1",
            params![MAX_ATTEMPTS],
        )?;
        let mut again: Vec<u32> = tx
            .prepare("UPDATE jobs SET state = 'pending' WHERE state = 'running' RETURNING number")?
            .query_map([], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        again.sort_unstable();
        tx.commit()?;
        Ok((again, set_aside))
    }

    /// Claims the next pending job, and records the claim before the work starts: the
    /// write-ahead step. A crash from here on leaves the job marked running.
    fn claim(&self) -> rusqlite::Result<Option<u32>> {
        self.db()
            .query_row(
                &format!(
                    "UPDATE jobs SET state = 'running', attempts = attempts + 1
                     WHERE number = ({NEXT_PENDING}) RETURNING number"
                ),
                [],
                |row| row.get(0),
            )
            .optional()
    }

    /// Claims job `number`, if it is pending.
    fn claim_this(&self, number: u32) -> rusqlite::Result<bool> {
        let claimed = self.db().execute(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1
             WHERE number = ?1 AND state = 'pending'",
            params![number],
        )?;
        Ok(claimed == 1)
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

    /// `(completed, pending, dead)`: jobs done, jobs still to do, and dead letters.
    fn status(&self) -> rusqlite::Result<(i64, i64, i64)> {
        self.db().query_row(
            "SELECT count(*) FILTER (WHERE state = 'done'),
                    count(*) FILTER (WHERE state IN ('pending', 'running')),
                    count(*) FILTER (WHERE state = 'dead') FROM jobs",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
    }

    /// The dead letters, `(number, attempts)`: kept, never dropped, for a person to look at.
    fn dead_letters(&self) -> rusqlite::Result<Vec<(u32, i64)>> {
        let db = self.db();
        let mut query =
            db.prepare("SELECT number, attempts FROM jobs WHERE state = 'dead' ORDER BY number")?;
        let rows = query.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        rows.collect()
    }

    /// Every recorded result, `(number, value, attempts)`, in the order of the jobs.
    fn results(&self) -> rusqlite::Result<Vec<(u32, i64, i64)>> {
        let db = self.db();
        let mut query = db.prepare(
            "SELECT number, value, attempts FROM results JOIN jobs USING (number)
             ORDER BY number",
        )?;
        let rows = query.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
        rows.collect()
    }
}

/// The next job to claim: the pending one with the lowest number. The condition is the
/// index's own, `state = 'pending'`, so SQLite can read the answer from the index.
const NEXT_PENDING: &str =
    "SELECT number FROM jobs WHERE state = 'pending' ORDER BY number LIMIT 1";
// ANCHOR_END: queue

// ANCHOR: consumer
/// The work itself: slow, and deterministic, so a job run twice gives the same result.
/// `poison` names a job that crashes the program (`--poison N`, to see the cap at work).
async fn work(number: u32, poison: Option<u32>) -> i64 {
    tokio::time::sleep(JOB_TIME).await;
    if poison == Some(number) {
        // A stand-in for a bug that only this job's input reaches, of the kind no `Result`
        // and no panic handler stops (a segfault in a C library, the kernel's OOM killer):
        // `abort` ends the process at once, with every job in flight.
        std::process::abort();
    }
    i64::from(number) * i64::from(number)
}

/// Runs one database call on tokio's blocking pool: SQLite's calls block, and must not
/// stall the runtime's threads (chapter 12 says why).
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

/// Works on a job this run has claimed, and records its result.
async fn process(queue: &Arc<Queue>, number: u32, poison: Option<u32>) -> Result<(), String> {
    let value = work(number, poison).await;
    blocking(queue, move |queue| queue.complete(number, value)).await?;
    // With the output gone (`| head` closed the pipe), `println!` fails, and the hook at
    // the bottom of the file ends the program at once: a crash like any other, from
    // which the next run resumes.
    println!("processed task with task_number={number} result={value}");
    Ok(())
}

async fn consumer(queue: Arc<Queue>, poison: Option<u32>) -> Result<u32, String> {
    let mut completed = 0;
    while let Some(number) = blocking(&queue, Queue::claim).await? {
        process(&queue, number, poison).await?;
        completed += 1;
    }
    Ok(completed)
}
// ANCHOR_END: consumer

// ANCHOR: run
async fn run(queue: Queue, jobs: u32, poison: Option<u32>) -> Result<(), String> {
    let queue = Arc::new(queue);
    blocking(&queue, move |queue| queue.fill(jobs)).await?;
    let (suspects, set_aside) = blocking(&queue, Queue::recover).await?;
    let interrupted = suspects.len() + set_aside;
    let (completed, pending, dead) = blocking(&queue, Queue::status).await?;
    println!(
        "resuming: completed={completed} pending={pending} dead={dead} interrupted={interrupted}"
    );

    let _timer = Timer::start();
    // A crash ends every job in flight, and each of them was charged an attempt. One of
    // them may be what crashed the program: they run first, alone, one at a time, so that
    // if one crashes it again, no other job is in flight to be charged for it.
    for number in suspects {
        if blocking(&queue, move |queue| queue.claim_this(number)).await? {
            process(&queue, number, poison).await?;
        }
    }
    let mut consumers = JoinSet::new();
    for _ in 0..CONSUMERS {
        consumers.spawn(consumer(Arc::clone(&queue), poison));
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
    let (completed, pending, dead) = blocking(&queue, Queue::status).await?;
    println!("completed={completed} pending={pending} dead={dead}");
    let dead_letters = blocking(&queue, Queue::dead_letters).await?;
    for (number, attempts) in &dead_letters {
        println!("dead letter: task_number={number} attempts={attempts}");
    }
    // A dead letter is work not done: the run has failed, and says so in its exit status.
    if !dead_letters.is_empty() {
        return Err(format!(
            "jobs set aside as dead letters: {dead}, each in flight at {MAX_ATTEMPTS} crashes; \
             --status lists them"
        ));
    }
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
        println!(
            "elapsed time: {:.2} seconds",
            self.0.elapsed().as_secs_f64()
        );
    }
}

/// Why the program stopped before the end, and so its exit status.
enum Failure {
    /// The file cannot be used as asked: not SQLite, another program's database, damaged,
    /// missing, or held by another run. Status 2, as for a bad command line.
    Unusable(String),
    /// The database failed during the run, or jobs were set aside as dead letters: status 1.
    Failed(String),
}

/// A run: lock, open, then work. `:memory:` needs no lock: no other process can see it.
fn start(path: &Path, jobs: u32, poison: Option<u32>) -> Result<(), Failure> {
    if let Some(number) = poison.filter(|&number| number >= jobs) {
        return Err(Failure::Unusable(format!(
            "--poison {number}: no such job: --jobs {jobs} numbers them 0 to {}",
            jobs - 1
        )));
    }
    let queue = if path == Path::new(":memory:") {
        let db = Connection::open_in_memory()
            .and_then(|db| set_up(db, Contents::Nothing))
            .map_err(|error| Failure::Failed(format!("{}: {error}", path.display())))?;
        Queue::new(db, None)
    } else {
        // The lock first: until this run holds it, another may be writing.
        let lock = lock_for_this_run(path)?;
        Queue::new(open(path)?, Some(lock))
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| Failure::Failed(format!("cannot start the tokio runtime: {error}")))?;
    runtime
        .block_on(run(queue, jobs, poison))
        .map_err(Failure::Failed)
}

/// What `--status`, `--results` and `--explain` print.
#[derive(Clone, Copy)]
enum Report {
    Status,
    Results,
    Explain,
}

/// `--status`, `--results`, `--explain`: read the database, read-only, and print. No lock is
/// needed: in WAL mode a reader sees the last commit, even while a run is writing. A reader,
/// too, needs the log's two files beside the database, and SQLite creates them if missing.
fn report(path: &Path, what: Report) -> Result<(), Failure> {
    let unusable = |what: &str| Failure::Unusable(format!("{}: {what}", path.display()));
    if path == Path::new(":memory:") {
        return Err(unusable("a database in memory is gone when its run ends"));
    }
    if !path.is_file() {
        return Err(unusable("no such database"));
    }
    let (db, contents) = inspect(path)?;
    if contents == Contents::Nothing {
        return Err(unusable(
            "not one of this chapter's databases: it holds no jobs",
        ));
    }
    let queue = Queue::new(db, None);
    let failed = |error: rusqlite::Error| Failure::Failed(format!("{}: {error}", path.display()));
    match what {
        Report::Results => {
            for (number, value, attempts) in queue.results().map_err(failed)? {
                println!("task_number={number} result={value} attempts={attempts}");
            }
        }
        Report::Status => {
            let (completed, pending, dead) = queue.status().map_err(failed)?;
            println!("completed={completed} pending={pending} dead={dead}");
            for (number, attempts) in queue.dead_letters().map_err(failed)? {
                println!("dead letter: task_number={number} attempts={attempts}");
            }
        }
        Report::Explain => {
            for line in explain(&queue.db()).map_err(failed)? {
                println!("{line}");
            }
        }
    }
    Ok(())
}

/// How SQLite finds the next job to claim (`NEXT_PENDING`), as it does, and as it would
/// without the index (`NOT INDEXED` forbids it): the plan SQLite chose, and how many steps
/// from one row to the next its scan took to find the answer on this database, as SQLite
/// counts them (`SQLITE_STMTSTATUS_FULLSCAN_STEP`).
fn explain(db: &Connection) -> rusqlite::Result<Vec<String>> {
    let without = NEXT_PENDING.replacen("FROM jobs", "FROM jobs NOT INDEXED", 1);
    let mut lines = Vec::new();
    for (how, query) in [("with the index", NEXT_PENDING), ("without it", &without)] {
        let plan: Vec<String> = db
            .prepare(&format!("EXPLAIN QUERY PLAN {query}"))?
            .query_map([], |row| row.get(3))?
            .collect::<rusqlite::Result<_>>()?;
        let mut statement = db.prepare(query)?;
        statement.query([])?.next()?;
        let steps = statement.get_status(rusqlite::StatementStatus::FullscanStep);
        lines.push(format!(
            "next job, {how}: {} (full-scan steps: {steps})",
            plan.join("; ")
        ));
    }
    Ok(lines)
}

/// Runs N jobs of 0.1 s on 4 consumers, keeping the queue in an SQLite database.
///
/// Killed at any point and run again with the same database, it resumes: jobs done stay done,
/// and only the jobs that were in flight run again, alone first. A job in flight at 3 crashes
/// is set aside as a dead letter, kept and reported, never run again. One run at a time uses a
/// database.
///
/// Exit status: 0 when every job is done; 1 when the database fails during the run, or jobs
/// are dead letters; 2 for a bad command line, a database that another run is using (try
/// again when it ends), or a file that is not one of this chapter's databases in good order
/// (not SQLite, another program's, an older version's, damaged) or that SQLite cannot use
/// where it is (in a folder it cannot write); 134 when `--poison` crashed it; 141 when the
/// output is closed (`| head`): the run stops there, and the next one resumes.
#[derive(clap::Parser)]
#[command(name = "ch10_resume", version)]
struct Options {
    /// The database file, created if missing. `:memory:` keeps the queue in memory instead,
    /// to try the program without a file.
    #[arg(long, value_name = "PATH", default_value = "ch10_resume.db",
          value_parser = clap::builder::TypedValueParser::try_map(
              clap::builder::PathBufValueParser::new(), database_path))]
    db: PathBuf,
    /// How many jobs the queue holds, from 1 to 100000; jobs already in the database are kept.
    #[arg(long, value_name = "N", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    jobs: u32,
    /// Job N crashes the program (it aborts) every time it runs: a poison job, to see it set
    /// aside after 3 attempts. N must be below --jobs.
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u32).range(0..100_000))]
    poison: Option<u32>,
    /// Print `completed=N pending=M dead=D`, then each dead letter, and exit. Opens the
    /// database read-only, even while a run is using it (SQLite creates its log's two files
    /// beside it if they are missing, which takes a folder it can write).
    #[arg(long, conflicts_with_all = ["jobs", "poison", "results", "explain"])]
    status: bool,
    /// Print every recorded result, `task_number=N result=R attempts=A`, and exit. Opens the
    /// database read-only, even while a run is using it (as `--status` does).
    #[arg(long, conflicts_with_all = ["jobs", "poison", "explain"])]
    results: bool,
    /// Print how SQLite finds the next job to claim on this database, with the index of
    /// pending jobs and without it, and exit. Opens the database read-only (as `--status` does).
    #[arg(long, conflicts_with_all = ["jobs", "poison"])]
    explain: bool,
}

/// A database path, for clap: `:memory:`, a file, or a file that can be created in a folder
/// that exists. Checked before anything runs, so that a typo costs nothing.
fn database_path(path: PathBuf) -> Result<PathBuf, String> {
    if path == Path::new(":memory:") {
        return Ok(path);
    }
    match std::fs::metadata(&path) {
        Ok(found) if found.is_dir() => Err("a folder, not a file".into()),
        Ok(found) if !found.is_file() => Err("not a regular file".into()),
        Ok(_) => Ok(path),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let folder = match path.parent() {
                Some(folder) if !folder.as_os_str().is_empty() => folder,
                _ => Path::new("."),
            };
            if folder.is_dir() {
                Ok(path)
            } else {
                Err(format!("its folder, {}, does not exist", folder.display()))
            }
        }
        Err(error) => Err(error.to_string()),
    }
}

/// Ends the program with one line on stderr and status 1, instead of a panic trace, when the
/// operating system takes away what it cannot run without: `println!` panics when its output
/// is gone (a full disk), and tokio when the OS refuses it a thread. Such a panic's message
/// ends with the OS's error, `(os error N)`. A closed pipe (EPIPE, 32 on Linux, macOS and the
/// BSDs: the reader went away, as `| head` does) ends it quietly, with the status 141 a shell
/// reports for SIGPIPE. Any other panic is a bug, and is reported as usual.
fn exit_cleanly_when_the_environment_fails() {
    use std::io::Write;
    let report_a_bug = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map_or("", String::as_str);
        if !message.ends_with(')') || !message.contains("(os error ") {
            return report_a_bug(info);
        }
        if message.ends_with("(os error 32)") {
            std::process::exit(141);
        }
        let message = message
            .replace("failed printing to stdout", "cannot write the output")
            .replace(
                "OS can't spawn worker thread",
                "tokio cannot start a thread",
            );
        let _ = writeln!(std::io::stderr(), "error: {message}");
        // At once, from whichever thread: no destructor may print into the broken output.
        std::process::exit(1);
    }));
}

/// Reads the command line. clap prints `--help` and `--version` and exits with status 0; a
/// mistake gets clap's message on one line of stderr (its first paragraph, which names the
/// argument and the values allowed) and exit status 2, before any work starts.
fn read_options() -> Options {
    <Options as clap::Parser>::try_parse().unwrap_or_else(|error| {
        if !error.use_stderr() {
            error.exit();
        }
        let message = error.render().to_string();
        let first: Vec<&str> = message
            .lines()
            .take_while(|line| !line.is_empty())
            .collect();
        let first: Vec<&str> = first.iter().map(|line| line.trim()).collect();
        eprintln!("{} (see --help)", first.join(" "));
        std::process::exit(2);
    })
}

fn main() -> ExitCode {
    exit_cleanly_when_the_environment_fails();
    // A bad command line ends here, with one line of error and exit status 2.
    let options = read_options();
    let outcome = if options.status {
        report(&options.db, Report::Status)
    } else if options.results {
        report(&options.db, Report::Results)
    } else if options.explain {
        report(&options.db, Report::Explain)
    } else {
        start(&options.db, options.jobs, options.poison)
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Unusable(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Failed(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
