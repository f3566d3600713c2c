//! Chapter 11: a million tasks, measured.
//!
//! Pushes N jobs (a million by default) through each pattern the book teaches, with two kinds
//! of job: one that does nothing, and one that sleeps for a millisecond. Each pattern runs in
//! a process of its own, so that its peak memory is its own. `--compare` also runs the same
//! work in Python's asyncio (code/ch11_million.py) and writes the table and the plot that the
//! chapter shows.
//! Run it with `cargo run --release --bin ch11_million`; `--help` lists the options.

use std::fmt::Write as _;
use std::future::Future;
use std::process::{Command, ExitCode};
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
#[derive(Clone, Copy, PartialEq, Debug)]
enum Work {
    /// Nothing: the cost measured is the pattern's own.
    Zero,
    /// Sleeps for a millisecond: the cost of waiting, and of the timer.
    Sleep1ms,
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
    // `unconstrained`: without it, tokio's cooperative budget lets only 128 timers per turn
    // report that they fired, while `join_all` polls every future each turn: with a million
    // sleeping futures, that is quadratic (the page explains).
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

/// Chapter 4: a producer, a channel of 100 and 50 consumers. Three changes make it fast: the
/// producer reserves room for `BATCH` jobs at a time, each consumer takes up to `BATCH` jobs
/// per turn of the lock, and, for the 1 ms sleeps, each consumer sleeps until deadlines 1 ms
/// apart rather than for 1 ms at a time (the page says why).
async fn queue(items: u64, work: Work) -> Tally {
    let (sender, receiver) = mpsc::channel(CONSUMERS * 2);
    let receiver = Arc::new(Mutex::new(receiver));
    let mut consumers = JoinSet::new();
    for _ in 0..CONSUMERS {
        let receiver = Arc::clone(&receiver);
        consumers.spawn(async move {
            let mut tally = Tally::default();
            let mut batch = Vec::with_capacity(BATCH);
            let mut deadline = Instant::now();
            loop {
                batch.clear();
                // `recv_many` waits for one job, then takes what else is there, up to `BATCH`.
                if receiver.lock().await.recv_many(&mut batch, BATCH).await == 0 {
                    return tally; // closed and empty
                }
                for &number in &batch {
                    if work == Work::Sleep1ms {
                        deadline += Duration::from_millis(1);
                        tokio::time::sleep_until(deadline).await;
                    }
                    tally.add(number);
                }
            }
        });
    }
    drop(receiver);
    // The producer reserves room for a batch at a time too: one wait for `BATCH` sends.
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

const PATTERNS: [&str; 5] = [
    "join_all",
    "spawn",
    "queue",
    "buffer_unordered",
    "joinset_semaphore",
];

async fn run_pattern(pattern: &str, items: u64, work: Work) -> Tally {
    match (pattern, work) {
        ("join_all", Work::Zero) => all_joined(items, nothing).await,
        ("join_all", Work::Sleep1ms) => all_joined(items, sleep_1ms).await,
        ("spawn", Work::Zero) => all_spawned(items, nothing).await,
        ("spawn", Work::Sleep1ms) => all_spawned(items, sleep_1ms).await,
        ("queue", work) => queue(items, work).await,
        ("buffer_unordered", Work::Zero) => buffered(items, nothing).await,
        ("buffer_unordered", Work::Sleep1ms) => buffered(items, sleep_1ms).await,
        (_, Work::Zero) => join_set_with_semaphore(items, nothing).await,
        (_, Work::Sleep1ms) => join_set_with_semaphore(items, sleep_1ms).await,
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
fn measure(pattern: &str, items: u64, work: Work) -> Result<(), String> {
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
    let work = if work == Work::Zero {
        "zero"
    } else {
        "sleep1ms"
    };
    println!("pattern={pattern} work={work} items={items} seconds={seconds:.6} peak_rss_mb={rss}");
    Ok(())
}
// ANCHOR_END: measure

/// Runs one pattern in a child process of this same program, and returns the line it printed.
fn measure_in_child(pattern: &str, items: u64, work: &str) -> Result<String, String> {
    let program = std::env::current_exe().map_err(|error| format!("own path: {error}"))?;
    let output = Command::new(program)
        .args([
            "--pattern",
            pattern,
            "--work",
            work,
            "--items",
            &items.to_string(),
        ])
        .output()
        .map_err(|error| format!("cannot run a child: {error}"))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).trim().to_string());
    }
    // The child's measurement: its first line (the second is its own elapsed time).
    let stdout = String::from_utf8_lossy(&output.stdout);
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
fn measure_python(pattern: &str, items: u64, work: &str) -> Result<String, String> {
    let output = Command::new("python3")
        .args(["code/ch11_million.py", "--pattern", pattern, "--work", work])
        .args(["--items", &items.to_string()])
        .output()
        .map_err(|error| format!("cannot run python3: {error}"))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).trim().to_string());
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// The machine, for the stamp on the table.
fn machine() -> String {
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
        Command::new(program)
            .arg("--version")
            .output()
            .ok()
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
            .filter(|text| !text.is_empty())
            .unwrap_or_else(|| format!("{program}: unknown"))
    };
    format!(
        "{cpu}, {cores} cores, {os}, {}, {}",
        version("rustc"),
        version("python3")
    )
}

/// Runs everything, both languages, and writes the chapter's table and plot.
fn compare(items: u64) -> Result<(), String> {
    let mut rows = Vec::new();
    for work in ["zero", "sleep1ms"] {
        for pattern in PATTERNS {
            let line = measure_in_child(pattern, items, work)?;
            eprintln!("rust   {line}");
            rows.push(("Rust", line));
        }
        for pattern in ["gather", "queue"] {
            let line = measure_python(pattern, items, work)?;
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
        "Measured with `cargo run --release --bin ch11_million -- --compare` on {}.\n\n\
         | language | pattern | work | items | seconds | items per second | peak memory (MB) |\n\
         |---|---|---|---|---|---|---|\n",
        machine()
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
    let (python_gather, python_gather_mb) = find("Python", "gather", "zero")?;
    let (rust_sleep, _) = find("Rust", "queue", "sleep1ms")?;
    let (python_sleep, _) = find("Python", "queue", "sleep1ms")?;
    let ideal = items as f64 / CONSUMERS as f64 / 1000.0;
    let verdict = |met: bool| if met { "met" } else { "missed" };
    let queue_ratio = python_queue / rust_queue;
    let join_ratio = python_gather / rust_join;
    let memory_ratio = python_gather_mb / rust_join_mb;
    let sleep_excess = rust_sleep / ideal - 1.0;
    let _ = write!(
        table,
        "\nTargets:\n\n\
         - the queue moves {queue_ratio:.0} times as many items per second as Python's \
           (target: 20): {}\n\
         - joining every job at once is {join_ratio:.0} times as fast as Python's `gather` \
           (target: 20), in 1/{memory_ratio:.0} of its peak memory (target: 1/5): {}\n\
         - the 1 ms sleeps through 50 consumers take {rust_sleep:.2} s against an ideal of \
           {ideal:.2} s, {:.1} % over (target: within 10 %; Python: {python_sleep:.2} s): {}\n",
        verdict(queue_ratio >= 20.0),
        verdict(join_ratio >= 20.0 && memory_ratio >= 5.0),
        sleep_excess * 100.0,
        verdict(sleep_excess <= 0.10),
    );
    std::fs::write("chapters/ch11_million.table.md", &table)
        .map_err(|error| format!("cannot write chapters/ch11_million.table.md: {error}"))?;
    eprintln!("wrote chapters/ch11_million.table.md");

    // The cost model: time and memory against N, for each pattern, with no work.
    let mut sweep = Vec::new();
    for n in [10_000, 100_000, 1_000_000] {
        for pattern in PATTERNS {
            let line = measure_in_child(pattern, n, "zero")?;
            eprintln!("rust   {line}");
            sweep.push(("Rust", pattern, n, line));
        }
        for pattern in ["gather", "queue"] {
            let line = measure_python(pattern, n, "zero")?;
            eprintln!("python {line}");
            sweep.push(("Python", pattern, n, line));
        }
    }
    std::fs::write("chapters/ch11_million.svg", plot(&sweep))
        .map_err(|error| format!("cannot write chapters/ch11_million.svg: {error}"))?;
    eprintln!("wrote chapters/ch11_million.svg");
    Ok(())
}
// ANCHOR_END: compare

/// One measurement for the plot: N, seconds, peak memory in MB.
type Point = (f64, f64, f64);

/// Two log-log panels: seconds against N, and peak memory against N, a line per pattern.
fn plot(sweep: &[(&str, &str, u64, String)]) -> String {
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

const USAGE: &str = "\
Usage: ch11_million [--items N] [--pattern NAME|all] [--work zero|sleep1ms|all] [--compare]

Pushes N jobs through each pattern and prints, for each, one line:
  pattern=NAME work=zero|sleep1ms items=N seconds=S peak_rss_mb=M
With `all`, each pattern and work runs in a process of its own, so that its peak memory is
its own. Build with --release: a debug build measures the compiler's debug code.

Options:
  --items N        jobs per pattern, from 1 to 10000000 (default: 1000000)
  --pattern NAME   join_all, spawn, queue, buffer_unordered, joinset_semaphore, or all
                   (the default)
  --work KIND      zero (a job that returns at once), sleep1ms, or all (the default)
  --compare        also run code/ch11_million.py (python3 must be on the PATH), sweep N over
                   10000, 100000 and 1000000, and write chapters/ch11_million.table.md and
                   chapters/ch11_million.svg; run it from the project's root
  -h, --help       print this help
";

struct Options {
    items: u64,
    pattern: Option<String>,
    work: Option<Work>,
    compare: bool,
}

/// Reads the command line: `Ok(None)` asks for the help, `Err` carries the message for a bad one.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut options = Options {
        items: 1_000_000,
        pattern: None,
        work: None,
        compare: false,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--items" => {
                let value = args.next().ok_or("--items needs a value")?;
                options.items = match value.parse() {
                    Ok(n @ 1..=10_000_000) => n,
                    _ => return Err(format!("--items: expected 1 to 10000000, got {value:?}")),
                };
            }
            "--pattern" => {
                let value = args.next().ok_or("--pattern needs a value")?;
                options.pattern = match value.as_str() {
                    "all" => None,
                    name if PATTERNS.contains(&name) => Some(value),
                    _ => {
                        return Err(format!(
                            "--pattern: expected one of {} or all, got {value:?}",
                            PATTERNS.join(", ")
                        ));
                    }
                };
            }
            "--work" => {
                options.work = match args.next().as_deref() {
                    Some("zero") => Some(Work::Zero),
                    Some("sleep1ms") => Some(Work::Sleep1ms),
                    Some("all") => None,
                    Some(other) => {
                        return Err(format!(
                            "--work: expected zero, sleep1ms or all, got {other:?}"
                        ));
                    }
                    None => return Err("--work needs a value: zero, sleep1ms or all".into()),
                };
            }
            "--compare" => options.compare = true,
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
    let started = std::time::Instant::now();
    let result = match (&options.pattern, options.work) {
        _ if options.compare => compare(options.items),
        // One pattern and one work: measure here, in this process.
        (Some(pattern), Some(work)) => measure(pattern, options.items, work),
        // Several: one child process each.
        (pattern, work) => {
            let patterns: Vec<&str> = pattern.as_deref().map_or(PATTERNS.to_vec(), |p| vec![p]);
            let works = match work {
                Some(Work::Zero) => vec!["zero"],
                Some(Work::Sleep1ms) => vec!["sleep1ms"],
                None => vec!["zero", "sleep1ms"],
            };
            works
                .iter()
                .flat_map(|work| patterns.iter().map(move |pattern| (*pattern, *work)))
                .try_for_each(|(pattern, work)| {
                    println!("{}", measure_in_child(pattern, options.items, work)?);
                    Ok(())
                })
        }
    };
    match result {
        Ok(()) => {
            println!(
                "elapsed time: {:.2} seconds",
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
