//! Chapter 13: a million tasks, measured.
//!
//! Pushes N jobs (a million by default) through each pattern the book teaches, with three
//! kinds of job: one that does nothing, one that sleeps for a millisecond, and one that waits
//! for its slot on a schedule (pacing). Each pattern runs in
//! a process of its own, so that its peak memory is its own. `--compare` also runs the same
//! work in Python's asyncio (code/ch13_million.py) and writes the table and the plot that the
//! chapter shows.
//! Run it with `cargo run --release --bin ch13_million`; `--help` lists the options.

use std::fmt::Write as _;
use std::future::Future;
use std::io::Read as _;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{Mutex, Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How many jobs run at once in the bounded patterns: chapter 4's 50 consumers.
const CONSUMERS: usize = 50;
const BATCH: usize = 32;

// ANCHOR: work
/// What a job does.
#[derive(Clone, Copy, PartialEq, Debug, clap::ValueEnum)]
enum Work {
    /// Nothing: the cost measured is the pattern's own.
    Zero,
    /// Sleeps for a millisecond, as the Python twin's `asyncio.sleep(0.001)` does: the cost of
    /// waiting, and of the timer.
    Sleep1ms,
    /// Waits for its slot on a schedule of 50 jobs a millisecond, the pace 50 consumers of
    /// 1 ms jobs would keep if nothing cost anything: rate pacing, not a sleep per job.
    Paced,
}

/// A job that does nothing. It returns its number, so that the caller can check that every
/// job ran exactly once.
async fn nothing(number: u64) -> u64 {
    number
}

/// A job that sleeps for a millisecond. A separate function, not a branch in `nothing`: a
/// future is as large as the most it may hold across an `.await`, and a timer is large.
async fn sleep_1ms(number: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(1)).await;
    number
}

/// A paced job: job `number` waits until `start` plus `number / 50` milliseconds. Its deadline
/// is fixed by the schedule, not by when the job happens to start, so a job that starts late
/// waits less, or not at all, and lateness never adds up from one job to the next.
async fn paced(start: Instant, number: u64) -> u64 {
    let slot = Duration::from_millis(number / CONSUMERS as u64);
    tokio::time::sleep_until(start + slot).await;
    number
}

/// What the jobs returned, folded: if every job ran exactly once, the count, the sum and the
/// sum of squares of the numbers are those of `0..items`. No list of a million results needed.
#[derive(Default, PartialEq, Debug)]
struct Tally {
    count: u64,
    sum: u128,
    sum_of_squares: u128,
}

impl Tally {
    fn add(&mut self, number: u64) {
        self.count += 1;
        self.sum += u128::from(number);
        self.sum_of_squares += u128::from(number) * u128::from(number);
    }

    fn merge(&mut self, other: Tally) {
        self.count += other.count;
        self.sum += other.sum;
        self.sum_of_squares += other.sum_of_squares;
    }

    fn of(items: u64) -> Tally {
        let n = u128::from(items);
        Tally {
            count: items,
            sum: n * n.saturating_sub(1) / 2,
            sum_of_squares: n.saturating_sub(1) * n * (2 * n).saturating_sub(1) / 6,
        }
    }
}
// ANCHOR_END: work

// ANCHOR: patterns
/// Every future created at once, all polled by one task: chapter 3's `join_all`.
async fn all_joined<Job, Fut>(items: u64, job: Job) -> Tally
where
    Job: Fn(u64) -> Fut,
    Fut: Future<Output = u64>,
{
    let mut tally = Tally::default();
    // `unconstrained`: without it, tokio's cooperative budget lets 128 timers per turn of this
    // task through, and asks to wake each timer it turned away again, so every turn polls
    // every timer still waiting: quadratic in the number of jobs (the page explains). The
    // price: while this task runs, nothing else on its thread does, however long it takes.
    let all = futures::future::join_all((0..items).map(job));
    for number in tokio::task::unconstrained(all).await {
        tally.add(number);
    }
    tally
}

/// Every job a tokio task of its own, all spawned at once.
async fn all_spawned<Job, Fut>(items: u64, job: Job) -> Tally
where
    Job: Fn(u64) -> Fut,
    Fut: Future<Output = u64> + Send + 'static,
{
    let handles: Vec<_> = (0..items).map(|number| tokio::spawn(job(number))).collect();
    let mut tally = Tally::default();
    for handle in handles {
        if let Ok(number) = handle.await {
            tally.add(number);
        }
    }
    tally
}

/// Chapter 4: a producer, a channel of 100 and 50 consumers. The producer reserves room for
/// `BATCH` jobs at a time, and each consumer takes up to `batch` jobs per turn of the lock:
/// `BATCH` for jobs that cost nothing, where the lock is the whole cost, and 1 for jobs that
/// wait, where a batch would make its jobs wait for one another (the page says why).
async fn queue<Job, Fut>(items: u64, job: Job, batch: usize) -> Tally
where
    Job: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = u64> + Send,
{
    let (sender, receiver) = mpsc::channel(CONSUMERS * 2);
    let receiver = Arc::new(Mutex::new(receiver));
    let mut consumers = JoinSet::new();
    for _ in 0..CONSUMERS {
        let receiver = Arc::clone(&receiver);
        let job = job.clone();
        consumers.spawn(async move {
            let mut tally = Tally::default();
            let mut taken = Vec::with_capacity(batch);
            loop {
                taken.clear();
                // `recv_many` waits for one job, then takes what else is there, up to `batch`.
                if receiver.lock().await.recv_many(&mut taken, batch).await == 0 {
                    return tally; // closed and empty
                }
                for &number in &taken {
                    tally.add(job(number).await);
                }
            }
        });
    }
    drop(receiver);
    // The producer reserves room for a batch at a time: one wait for up to `BATCH` sends.
    let mut next = 0;
    while next < items {
        let room = (items - next).min(BATCH as u64) as usize;
        let Ok(permits) = sender.reserve_many(room).await else {
            break; // every consumer is gone
        };
        for permit in permits {
            permit.send(next);
            next += 1;
        }
    }
    drop(sender);
    let mut tally = Tally::default();
    while let Some(consumer) = consumers.join_next().await {
        tally.merge(consumer.unwrap_or_default());
    }
    tally
}

/// A stream of jobs, at most 50 of them in progress at once, all inside one task.
async fn buffered<Job, Fut>(items: u64, job: Job) -> Tally
where
    Job: Fn(u64) -> Fut,
    Fut: Future<Output = u64>,
{
    futures::stream::iter(0..items)
        .map(job)
        .buffer_unordered(CONSUMERS)
        .fold(Tally::default(), |mut tally, number| async move {
            tally.add(number);
            tally
        })
        .await
}

/// A tokio task per job, but never more than 50 at once: a semaphore's permit per task.
async fn join_set_with_semaphore<Job, Fut>(items: u64, job: Job) -> Tally
where
    Job: Fn(u64) -> Fut,
    Fut: Future<Output = u64> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(CONSUMERS));
    let mut tasks = JoinSet::new();
    let mut tally = Tally::default();
    for number in 0..items {
        // Waits while 50 tasks hold a permit. The semaphore is never closed, so this succeeds.
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            break;
        };
        let running = job(number);
        tasks.spawn(async move {
            let number = running.await;
            drop(permit);
            number
        });
        // Collect the finished ones as we go, so the set holds only the tasks in flight.
        while let Some(finished) = tasks.try_join_next() {
            tally.add(finished.unwrap_or_default());
        }
    }
    while let Some(finished) = tasks.join_next().await {
        tally.add(finished.unwrap_or_default());
    }
    tally
}
// ANCHOR_END: patterns

/// The patterns, by the names that `--pattern` takes and that the lines print.
#[derive(Clone, Copy, PartialEq, Debug, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
enum Pattern {
    JoinAll,
    Spawn,
    Queue,
    BufferUnordered,
    JoinsetSemaphore,
}

async fn run_pattern(pattern: Pattern, items: u64, work: Work) -> Tally {
    // The paced jobs' schedule starts now, with the pattern, as the Python twin's does.
    let start = Instant::now();
    let paced = move |number| paced(start, number);
    match (pattern, work) {
        (Pattern::JoinAll, Work::Zero) => all_joined(items, nothing).await,
        (Pattern::JoinAll, Work::Sleep1ms) => all_joined(items, sleep_1ms).await,
        (Pattern::JoinAll, Work::Paced) => all_joined(items, paced).await,
        (Pattern::Spawn, Work::Zero) => all_spawned(items, nothing).await,
        (Pattern::Spawn, Work::Sleep1ms) => all_spawned(items, sleep_1ms).await,
        (Pattern::Spawn, Work::Paced) => all_spawned(items, paced).await,
        // Batches only for the jobs that cost nothing; see `queue`.
        (Pattern::Queue, Work::Zero) => queue(items, nothing, BATCH).await,
        (Pattern::Queue, Work::Sleep1ms) => queue(items, sleep_1ms, 1).await,
        (Pattern::Queue, Work::Paced) => queue(items, paced, 1).await,
        (Pattern::BufferUnordered, Work::Zero) => buffered(items, nothing).await,
        (Pattern::BufferUnordered, Work::Sleep1ms) => buffered(items, sleep_1ms).await,
        (Pattern::BufferUnordered, Work::Paced) => buffered(items, paced).await,
        (Pattern::JoinsetSemaphore, Work::Zero) => join_set_with_semaphore(items, nothing).await,
        (Pattern::JoinsetSemaphore, Work::Sleep1ms) => {
            join_set_with_semaphore(items, sleep_1ms).await
        }
        (Pattern::JoinsetSemaphore, Work::Paced) => join_set_with_semaphore(items, paced).await,
    }
}

// ANCHOR: measure
/// The peak resident memory of this process so far, in MB, where the system tells it.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Runs one pattern once, in this process, checks that every job ran exactly once, and prints
/// the figures. `Err` says what went wrong.
fn measure(pattern: Pattern, items: u64, work: Work) -> Result<(), String> {
    // One thread, as asyncio has: the comparison is of the two runtimes' overheads, and for
    // this work a second thread only adds the cost of handing tasks between threads.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the tokio runtime: {error}"))?;
    let started = std::time::Instant::now();
    let tally = runtime.block_on(run_pattern(pattern, items, work));
    let seconds = started.elapsed().as_secs_f64();
    if tally != Tally::of(items) {
        return Err(format!(
            "{pattern}: not every job ran exactly once: {tally:?}"
        ));
    }
    let rss = peak_rss_mb().map_or("n/a".to_string(), |mb| format!("{mb:.1}"));
    println!("pattern={pattern} work={work} items={items} seconds={seconds:.6} peak_rss_mb={rss}");
    Ok(())
}
// ANCHOR_END: measure

// ANCHOR: kill_on_drop
/// A child process that is killed, and waited for, if it is dropped before it has ended. The
/// future that runs a child holds it: when a signal stops this program, that future is
/// dropped, and the child goes with it instead of running on, unseen, and skewing whatever
/// is measured next.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // `try_wait` is `Ok(None)` while the child runs; once it has ended, nothing to do.
        if let Ok(None) = self.0.try_wait() {
            // Kill can only fail if the child has just ended; `wait` reaps it either way.
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
// ANCHOR_END: kill_on_drop

/// Why a run ended before the end.
enum Halt {
    /// SIGINT or SIGTERM stopped it: the signal's name and number.
    Signal(&'static str, i32),
    /// It cannot be done as asked (exit status 2): what is missing, in one line.
    Refused(String),
    /// Something failed (exit status 1): what, in one line.
    Failed(String),
}

impl From<String> for Halt {
    fn from(message: String) -> Halt {
        Halt::Failed(message)
    }
}

/// The stop a child's end means, if it died of SIGINT or SIGTERM. Such a signal was meant to
/// stop the run: `pkill ch13_million`, say, signals the parent and its children alike, and
/// whichever of the two ends the parent notices first, the run stops the same way.
fn stopped_by(status: std::process::ExitStatus) -> Option<Halt> {
    use std::os::unix::process::ExitStatusExt as _;
    use tokio::signal::unix::SignalKind;
    let number = status.signal()?;
    if number == SignalKind::interrupt().as_raw_value() {
        Some(Halt::Signal("SIGINT", number))
    } else if number == SignalKind::terminate().as_raw_value() {
        Some(Halt::Signal("SIGTERM", number))
    } else {
        None
    }
}

/// Runs a child process to its end and returns what it printed. Its stderr is this program's,
/// so that its own error, if it has one, reaches the reader as it wrote it.
async fn run_child(mut command: Command, what: &str) -> Result<String, Halt> {
    use std::os::unix::process::CommandExt as _;
    let child = command
        .stdout(Stdio::piped())
        // A process group of its own: a terminal sends Ctrl-C to its whole foreground group,
        // and the child must not die of it before this program has seen it (it would look
        // like a failed measurement). This program alone gets it, and stops the child.
        .process_group(0)
        .spawn()
        .map_err(|error| format!("cannot start {what}: {error}"))?;
    let mut child = KillOnDrop(child);
    let Some(mut stdout) = child.0.stdout.take() else {
        return Err(Halt::Failed(format!("{what}: no pipe from its stdout"))); // piped above: not reached
    };
    // std's pipes block: read this one on tokio's blocking threads, so that the task stays
    // free to be dropped meanwhile. The read ends when the child's stdout closes, as it
    // does when the child ends.
    let reading = tokio::task::spawn_blocking(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).map(|_| text)
    });
    let text = reading
        .await
        .map_err(|error| format!("reading {what}: {error}"))?
        .map_err(|error| format!("reading {what}: {error}"))?;
    // Its stdout has closed, so the child is ending: this wait is short.
    let status = child
        .0
        .wait()
        .map_err(|error| format!("waiting for {what}: {error}"))?;
    if let Some(stop) = stopped_by(status) {
        return Err(stop);
    }
    if !status.success() {
        return Err(Halt::Failed(format!("{what} failed ({status})")));
    }
    Ok(text)
}

/// Runs one pattern in a child process of this same program, and returns the line it printed.
/// The child's command line is the one a reader types to measure one pattern and one work
/// (they are then measured in that process): there is no hidden mode.
async fn measure_in_child(pattern: Pattern, items: u64, work: Work) -> Result<String, Halt> {
    let program = std::env::current_exe().map_err(|error| format!("own path: {error}"))?;
    let mut command = Command::new(program);
    command.args([
        "--pattern",
        &pattern.to_string(),
        "--work",
        &work.to_string(),
    ]);
    command.args(["--items", &items.to_string()]);
    let stdout = run_child(command, &format!("the child measuring {pattern} {work}")).await?;
    // The child's measurement: its first line (the second is its own elapsed time).
    Ok(stdout.lines().next().unwrap_or_default().to_string())
}

// ANCHOR: compare
/// One figure of a `key=value` line.
fn figure(line: &str, key: &str) -> Option<f64> {
    line.split_whitespace()
        .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
        .and_then(|value| value.parse().ok())
}

/// Runs a Python pattern in its own interpreter, and returns the line it printed.
async fn measure_python(pattern: &str, items: u64, work: Work) -> Result<String, Halt> {
    let mut command = Command::new("python3");
    command.args([TWIN, "--pattern", pattern, "--work", &work.to_string()]);
    command.args(["--items", &items.to_string()]);
    let stdout = run_child(command, &format!("python3 {TWIN} --pattern {pattern}")).await?;
    Ok(stdout.trim().to_string())
}

/// The machine, for the stamp on the table. `Err` if SIGINT or SIGTERM ended one of the
/// commands it asks (they share this program's process group, as the terminal's Ctrl-C does).
fn machine() -> Result<String, Halt> {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            let line = info.lines().find(|line| line.starts_with("model name"))?;
            Some(line.split_once(':')?.1.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|release| {
            let line = release
                .lines()
                .find(|line| line.starts_with("PRETTY_NAME="))?;
            Some(line["PRETTY_NAME=".len()..].trim_matches('"').to_string())
        })
        .unwrap_or_else(|| std::env::consts::OS.into());
    let version = |program: &str| {
        let output = Command::new(program).arg("--version").output().ok();
        if let Some(stop) = output.as_ref().and_then(|out| stopped_by(out.status)) {
            return Err(stop);
        }
        Ok(output
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
            .filter(|text| !text.is_empty())
            .unwrap_or_else(|| format!("{program}: unknown")))
    };
    Ok(format!(
        "{cpu}, {cores} cores, {os}, {}, {}",
        version("rustc")?,
        version("python3")?
    ))
}

/// Runs everything, both languages, and writes the chapter's table and plot.
async fn compare(items: u64) -> Result<(), Halt> {
    use clap::ValueEnum as _;
    let mut rows = Vec::new();
    for &work in Work::value_variants() {
        for &pattern in Pattern::value_variants() {
            let line = measure_in_child(pattern, items, work).await?;
            eprintln!("rust   {line}");
            rows.push(("Rust", line));
        }
        for pattern in ["gather", "queue"] {
            let line = measure_python(pattern, items, work).await?;
            eprintln!("python {line}");
            rows.push(("Python", line));
        }
    }
    let find = |language: &str, pattern: &str, work: &str| -> Result<(f64, f64), String> {
        let line = rows
            .iter()
            .find(|(lang, line)| {
                *lang == language
                    && line.contains(&format!("pattern={pattern} "))
                    && line.contains(&format!("work={work} "))
            })
            .map(|(_, line)| line)
            .ok_or_else(|| format!("no {language} {pattern} {work} row"))?;
        let seconds = figure(line, "seconds").ok_or("no seconds")?;
        Ok((seconds, figure(line, "peak_rss_mb").unwrap_or(f64::NAN)))
    };
    let mut table = format!(
        "Measured with `cargo run --release --bin ch13_million -- --compare` on {}.\n\n\
         | language | pattern | work | items | seconds | items per second | peak memory (MB) |\n\
         |---|---|---|---|---|---|---|\n",
        machine()?
    );
    for (language, line) in &rows {
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
                .unwrap_or("?")
                .to_string()
        };
        let seconds = figure(line, "seconds").unwrap_or(f64::NAN);
        let _ = writeln!(
            table,
            "| {language} | {} | {} | {} | {seconds:.3} | {:.0} | {} |",
            field("pattern"),
            field("work"),
            field("items"),
            items as f64 / seconds,
            field("peak_rss_mb"),
        );
    }
    let (rust_queue, _) = find("Rust", "queue", "zero")?;
    let (python_queue, _) = find("Python", "queue", "zero")?;
    let (rust_join, rust_join_mb) = find("Rust", "join_all", "zero")?;
    let (rust_spawn, rust_spawn_mb) = find("Rust", "spawn", "zero")?;
    let (python_gather, python_gather_mb) = find("Python", "gather", "zero")?;
    let (rust_sleep, _) = find("Rust", "queue", "sleep1ms")?;
    let (python_sleep, _) = find("Python", "queue", "sleep1ms")?;
    let (rust_paced, _) = find("Rust", "queue", "paced")?;
    let (python_paced, _) = find("Python", "queue", "paced")?;
    // Both the sleeps and the schedule: N jobs, 50 at a time, 1 ms each, with nothing else.
    let ideal = items as f64 / CONSUMERS as f64 / 1000.0;
    let verdict = |met: bool| if met { "met" } else { "missed" };
    let queue_ratio = python_queue / rust_queue;
    // `gather` wraps each coroutine in a task: the like-for-like pattern is a task each.
    let spawn_ratio = python_gather / rust_spawn;
    let spawn_memory_ratio = python_gather_mb / rust_spawn_mb;
    let join_ratio = python_gather / rust_join;
    let memory_ratio = python_gather_mb / rust_join_mb;
    let over = |seconds: f64| (seconds / ideal - 1.0) * 100.0;
    let _ = write!(
        table,
        "\nTargets:\n\n\
         - the queue, which takes {BATCH} jobs that cost nothing per turn of its lock where \
           Python's takes one, moves {queue_ratio:.0} times as many items per second as \
           Python's (target: 20): {}\n\
         - a task for every job at once (`spawn`, what `gather` does) is {spawn_ratio:.0} times \
           as fast as Python's `gather` (target: 20), in 1/{spawn_memory_ratio:.0} of its peak \
           memory (target: 1/5): {}; joining them in one task without a task each \
           (`join_all`) is {join_ratio:.0} times as fast, in 1/{memory_ratio:.0} of the memory\n\
         - the 1 ms sleeps through 50 consumers take {rust_sleep:.2} s against an ideal of \
           {ideal:.2} s, {:.1} % over (target: within 10 %; Python: {python_sleep:.2} s, \
           {:.1} % over): {}\n\
         - the paced jobs through 50 consumers take {rust_paced:.2} s against the schedule's \
           {ideal:.2} s, {:.1} % over (target: within 10 %; Python: {python_paced:.2} s, \
           {:.1} % over): {}\n",
        verdict(queue_ratio >= 20.0),
        verdict(spawn_ratio >= 20.0 && spawn_memory_ratio >= 5.0),
        over(rust_sleep),
        over(python_sleep),
        verdict(over(rust_sleep) <= 10.0),
        over(rust_paced),
        over(python_paced),
        verdict(over(rust_paced) <= 10.0),
    );
    std::fs::write(TABLE, &table).map_err(|error| format!("cannot write {TABLE}: {error}"))?;
    eprintln!("wrote {TABLE}");

    // The cost model: time and memory against N, for each pattern, with no work.
    let mut sweep = Vec::new();
    for n in [10_000, 100_000, 1_000_000] {
        for &pattern in Pattern::value_variants() {
            let line = measure_in_child(pattern, n, Work::Zero).await?;
            eprintln!("rust   {line}");
            sweep.push(("Rust", pattern.to_string(), n, line));
        }
        for pattern in ["gather", "queue"] {
            let line = measure_python(pattern, n, Work::Zero).await?;
            eprintln!("python {line}");
            sweep.push(("Python", pattern.to_string(), n, line));
        }
    }
    std::fs::write(PLOT, plot(&sweep)).map_err(|error| format!("cannot write {PLOT}: {error}"))?;
    eprintln!("wrote {PLOT}");
    Ok(())
}
// ANCHOR_END: compare

/// One measurement for the plot: N, seconds, peak memory in MB.
type Point = (f64, f64, f64);

/// Two log-log panels: seconds against N, and peak memory against N, a line per pattern.
fn plot(sweep: &[(&str, String, u64, String)]) -> String {
    const PANEL: f64 = 360.0;
    const HEIGHT: f64 = 300.0;
    const MARGIN: f64 = 55.0;
    let colours = [
        "#4c78a8", "#f58518", "#54a24b", "#b279a2", "#9d755d", "#e45756", "#72b7b2",
    ];
    let mut series: Vec<(String, Vec<Point>)> = Vec::new();
    for (language, pattern, n, line) in sweep {
        let name = format!("{language} {pattern}");
        let point = (
            *n as f64,
            figure(line, "seconds").unwrap_or(f64::NAN),
            figure(line, "peak_rss_mb").unwrap_or(f64::NAN),
        );
        match series.iter_mut().find(|(existing, _)| *existing == name) {
            Some((_, points)) => points.push(point),
            None => series.push((name, vec![point])),
        }
    }
    let log_range = |values: Vec<f64>| {
        let finite: Vec<f64> = values
            .into_iter()
            .filter(|v| v.is_finite() && *v > 0.0)
            .collect();
        let low = finite
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min)
            .log10()
            .floor();
        let high = finite
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max)
            .log10()
            .ceil();
        (low, high.max(low + 1.0))
    };
    let all = |index: usize| -> Vec<f64> {
        series
            .iter()
            .flat_map(|(_, points)| {
                points
                    .iter()
                    .map(move |p| if index == 1 { p.1 } else { p.2 })
            })
            .collect()
    };
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {} {}\" font-family=\"sans-serif\" \
         font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
        2.0 * PANEL + 2.0 * MARGIN + 180.0,
        HEIGHT + 2.0 * MARGIN
    );
    for (panel, (index, title, unit)) in [(1, "time", "s"), (2, "peak memory", "MB")]
        .into_iter()
        .enumerate()
    {
        let (low, high) = log_range(all(index));
        let left = MARGIN + panel as f64 * (PANEL + MARGIN);
        let x = |n: f64| left + (n.log10() - 4.0) / 2.0 * PANEL;
        let y = |v: f64| MARGIN + HEIGHT - (v.log10() - low) / (high - low) * HEIGHT;
        let _ = writeln!(
            svg,
            "<text x=\"{left}\" y=\"{}\" font-size=\"13\" font-weight=\"bold\">{title} ({unit}, \
             log scale) against N</text>",
            MARGIN - 15.0
        );
        for exponent in (low as i32)..=(high as i32) {
            let value = 10f64.powi(exponent);
            let _ = writeln!(
                svg,
                "<line x1=\"{left}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{value}</text>",
                left + PANEL,
                y(value),
                y(value),
                left - 4.0,
                y(value) + 4.0
            );
        }
        for n in [10_000.0, 100_000.0, 1_000_000.0] {
            let _ = writeln!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{n}</text>",
                x(n),
                MARGIN + HEIGHT + 16.0
            );
        }
        for (number, (name, points)) in series.iter().enumerate() {
            let colour = colours[number % colours.len()];
            let dash = if name.starts_with("Python") {
                " stroke-dasharray=\"5 3\""
            } else {
                ""
            };
            let path: Vec<String> = points
                .iter()
                .map(|p| (p.0, if index == 1 { p.1 } else { p.2 }))
                .filter(|(_, v)| v.is_finite() && *v > 0.0)
                .map(|(n, v)| format!("{:.1},{:.1}", x(n), y(v)))
                .collect();
            let _ = writeln!(
                svg,
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"{dash}/>",
                path.join(" ")
            );
        }
    }
    for (number, (name, _)) in series.iter().enumerate() {
        let colour = colours[number % colours.len()];
        let top = MARGIN + 16.0 * number as f64;
        let left = 2.0 * PANEL + 2.0 * MARGIN + 20.0;
        let dash = if name.starts_with("Python") {
            " stroke-dasharray=\"5 3\""
        } else {
            ""
        };
        let _ = writeln!(
            svg,
            "<line x1=\"{left}\" x2=\"{:.1}\" y1=\"{top}\" y2=\"{top}\" stroke=\"{colour}\" \
             stroke-width=\"2\"{dash}/><text x=\"{:.1}\" y=\"{:.1}\">{name}</text>",
            left + 20.0,
            left + 25.0,
            top + 4.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}

// ANCHOR: signals
/// Waits for SIGTERM or SIGINT (Ctrl-C), and returns its name and its number. Listening
/// starts when this is called, not when the future is first awaited: from then on, neither
/// signal ends the program on its own, and the program stops its child before it exits.
fn stop_signal() -> std::io::Result<impl Future<Output = (&'static str, i32)>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => ("SIGTERM", SignalKind::terminate().as_raw_value()),
            _ = interrupt.recv() => ("SIGINT", SignalKind::interrupt().as_raw_value()),
        }
    })
}
// ANCHOR_END: signals

/// Measures each pattern and work in a child process of its own, one after another.
async fn in_children(patterns: &[Pattern], works: &[Work], items: u64) -> Result<(), Halt> {
    for &work in works {
        for &pattern in patterns {
            println!("{}", measure_in_child(pattern, items, work).await?);
        }
    }
    Ok(())
}

/// The Python twin, the chapter's table and its plot, from the project's root.
const TWIN: &str = "code/ch13_million.py";
const TABLE: &str = "chapters/ch13_million.table.md";
const PLOT: &str = "chapters/ch13_million.svg";

/// What `--compare` needs, checked before its minutes of work: a folder it can write the table
/// and the plot in, the Python twin, and a python3 (3.9 or later) that runs it. `Err` says
/// what is missing, in one line; or, if SIGINT or SIGTERM ended a python3 it asked (it shares
/// this program's process group, as the terminal's Ctrl-C does), that the run was stopped.
fn compare_can_finish() -> Result<(), Halt> {
    let refuse = |message: String| Halt::Refused(format!("--compare: {message}"));
    let from_root = "run it from the project's root";
    // Whether a file can be created in the folder: only trying tells for sure (permissions,
    // a read-only file system, a folder that is not there).
    let probe = format!("chapters/.ch13_million.{}.probe", std::process::id());
    std::fs::File::create_new(&probe)
        .map_err(|error| refuse(format!("cannot write in chapters/ ({error}); {from_root}")))?;
    let _ = std::fs::remove_file(&probe);
    // The files, where they exist already: opened to append, which changes nothing.
    for file in [TABLE, PLOT] {
        match std::fs::OpenOptions::new().append(true).open(file) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                return Err(refuse(format!("cannot write {file}: {error}")));
            }
            _ => {}
        }
    }
    if !std::path::Path::new(TWIN).is_file() {
        return Err(refuse(format!("no {TWIN}; {from_root}")));
    }
    let needs = "it needs python3, 3.9 or later, on the PATH";
    let version = Command::new("python3")
        .arg("--version")
        .output()
        .map_err(|error| refuse(format!("cannot run python3 ({error}): {needs}")))?;
    if let Some(stop) = stopped_by(version.status) {
        return Err(stop);
    }
    // "Python 3.11.7"; Python 2 printed it on stderr.
    let said = [version.stdout, version.stderr].concat();
    let said = String::from_utf8_lossy(&said);
    // Its first line: what follows, if any, is not a version.
    let said = said.lines().next().unwrap_or_default().trim();
    let numbers: Vec<u32> = said
        .strip_prefix("Python ")
        .map(|numbers| numbers.split('.').map_while(|n| n.parse().ok()).collect())
        .unwrap_or_default();
    if !version.status.success() || numbers.len() < 2 || (numbers[0], numbers[1]) < (3, 9) {
        return Err(refuse(format!("python3 --version says {said:?}: {needs}")));
    }
    // One job, to see that the twin runs under this python3 and prints its line.
    let trial = Command::new("python3")
        .args([TWIN, "--pattern", "queue", "--work", "zero", "--items", "1"])
        .output()
        .map_err(|error| refuse(format!("cannot run python3 {TWIN}: {error}")))?;
    if let Some(stop) = stopped_by(trial.status) {
        return Err(stop);
    }
    if !trial.status.success() || !trial.stdout.starts_with(b"pattern=queue ") {
        let stderr = String::from_utf8_lossy(&trial.stderr);
        let last = stderr.lines().last().unwrap_or_default();
        return Err(refuse(format!(
            "python3 {TWIN} does not run ({}): {last}",
            trial.status
        )));
    }
    Ok(())
}

/// What `--pattern` or `--work` chose: one value, or every one of them with `all`.
#[derive(Clone)]
struct OneOrAll<T>(Vec<T>);

/// For clap: a value of `T`, by its name, or `all`.
fn one_or_all<T: clap::ValueEnum + Clone>(value: &str) -> Result<OneOrAll<T>, String> {
    if value == "all" {
        return Ok(OneOrAll(T::value_variants().to_vec()));
    }
    T::from_str(value, false)
        .map(|one| OneOrAll(vec![one]))
        .map_err(|_| {
            let names: Vec<String> = T::value_variants()
                .iter()
                .filter_map(T::to_possible_value)
                .map(|name| name.get_name().to_string())
                .collect();
            format!("expected {} or all", names.join(", "))
        })
}

/// The name clap knows a value by, `join_all` or `sleep1ms`: what the lines print.
fn name_of(value: &impl clap::ValueEnum) -> String {
    value
        .to_possible_value()
        // Only a variant marked `#[value(skip)]` has none, and none is.
        .map_or_else(String::new, |name| name.get_name().to_string())
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str(&name_of(self))
    }
}

impl std::fmt::Display for Work {
    fn fmt(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str(&name_of(self))
    }
}

/// Pushes N jobs through each pattern the book teaches, and measures its time and memory.
///
/// Prints, for each pattern and work, one line:
/// pattern=NAME work=zero|sleep1ms|paced items=N seconds=S peak_rss_mb=M. One pattern and one work
/// are measured in this process; otherwise each pattern and work runs in a child process of its
/// own, so that its peak memory is its own, and SIGTERM or Ctrl-C stops that child too. Build
/// with --release: a debug build measures the compiler's debug code.
#[derive(clap::Parser)]
#[command(name = "ch13_million", version)]
struct Options {
    /// Jobs per pattern, from 1 to 10000000.
    #[arg(long, value_name = "N", default_value_t = 1_000_000,
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    items: u64,
    /// join_all, spawn, queue, buffer_unordered, joinset_semaphore, or all.
    #[arg(long, value_name = "NAME", default_value = "all",
          value_parser = one_or_all::<Pattern>)]
    pattern: OneOrAll<Pattern>,
    /// zero (a job that returns at once), sleep1ms (a 1 ms sleep), paced (a slot on a schedule
    /// of 50 jobs a millisecond), or all.
    #[arg(long, value_name = "KIND", default_value = "all", value_parser = one_or_all::<Work>)]
    work: OneOrAll<Work>,
    /// Every pattern and work, then the same in code/ch13_million.py (python3 3.9 or later
    /// must be on the PATH), then N swept over 10000, 100000 and 1000000; writes
    /// chapters/ch13_million.table.md and chapters/ch13_million.svg. Run it from the project's
    /// root.
    #[arg(long, conflicts_with_all = ["pattern", "work"])]
    compare: bool,
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
    // Also in each child, whose stdout is a pipe to this program: if this program is gone,
    // the child ends quietly with status 141 instead of a panic trace.
    exit_cleanly_when_the_environment_fails();
    // A bad command line ends here, with one line of error and exit status 2.
    let options = read_options();
    let started = std::time::Instant::now();
    let (patterns, works, items) = (options.pattern.0, options.work.0, options.items);
    let result = if let ([pattern], [work], false) = (&patterns[..], &works[..], options.compare) {
        // One pattern and one work: measured here, in this process. Each child runs this.
        // It starts no process of its own, so a signal may end it as it ends any program.
        measure(*pattern, items, *work).map_err(Halt::Failed)
    } else {
        in_child_processes(options.compare, &patterns, &works, items)
    };
    match result {
        Ok(()) => {
            println!(
                "elapsed time: {:.2} seconds",
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(Halt::Signal(name, number)) => {
            // The child it was running, if any, has been killed and reaped by now (see
            // `KillOnDrop`), or had died of that same signal.
            eprintln!("{name}: stopped, and the measurement in progress with it");
            ExitCode::from(128 + number as u8)
        }
        Err(Halt::Refused(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
        Err(Halt::Failed(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the measurements in child processes, on a runtime that also listens for SIGTERM and
/// SIGINT, and, for `--compare`, checks first that the comparison can finish.
fn in_child_processes(
    compare_too: bool,
    patterns: &[Pattern],
    works: &[Work],
    items: u64,
) -> Result<(), Halt> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the tokio runtime: {error}"))?;
    // Listening starts first, before anything that takes time: from here on neither signal
    // ends the program on its own, so no child can be left running. Before this line (the
    // program's first millisecond or so), a signal ends the program as it ends any other,
    // before there is a child to leave behind.
    let stopped = {
        let _inside = runtime.enter(); // tokio's signals belong to a runtime
        stop_signal().map_err(|error| format!("cannot listen for SIGTERM and SIGINT: {error}"))?
    };
    if compare_too {
        // Its python3 commands are short; a signal meanwhile is seen right after them.
        compare_can_finish()?;
    }
    let outcome = runtime.block_on(async {
        tokio::select! {
            // `biased`: a signal goes first, even when a measurement has just ended too.
            biased;
            // By then `select!` has dropped the measurement, and so killed and reaped the
            // child it was running (see `KillOnDrop`).
            (name, number) = stopped => Err(Halt::Signal(name, number)),
            result = async {
                if compare_too {
                    compare(items).await
                } else {
                    in_children(patterns, works, items).await
                }
            } => result,
        }
    });
    // A blocking read of a killed child's pipe may still be open if the child had children of
    // its own: nothing is left to wait for, so the runtime does not wait for it.
    runtime.shutdown_background();
    outcome
}
