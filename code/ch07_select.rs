//! Chapter 7: `select!` and cancellation.
//!
//! Seven lessons, one a run, chosen with `--lesson`: racing a task against a timeout and a
//! shutdown (the loser is dropped), a `send` that loses messages in a `select!` and a
//! `reserve` that does not, a deadline pinned once, `biased` polling, one deadline across
//! retries, and failing fast in a group of tasks.
//! Run it with `cargo run --bin ch07_select`; `--help` lists the options.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

// ANCHOR: select
/// One task against a timeout and the shutdown signal. The `select!` is an expression: its
/// value is the winning handler's, `true` to go on to the next task, `false` to stop.
async fn race_one(
    number: u32,
    steps: u32,
    stopped: &mut watch::Receiver<bool>,
    start: Instant,
) -> bool {
    tokio::select! {
        done = task(number, steps) => {
            println!("{}: task {number} finished its {done} steps", since(start));
            true
        }
        () = tokio::time::sleep(TIMEOUT) => {
            println!("{}: task {number} timed out", since(start));
            true
        }
        // `_` also matches `Err`: a sender dropped without a word counts as a shutdown.
        _ = stopped.wait_for(|&stop| stop) => {
            println!("{}: task {number} stopped by the shutdown", since(start));
            false
        }
    }
}
// ANCHOR_END: select

// ANCHOR: task
/// How long each step of a task takes: one awaited sleep, standing for one request.
const STEP: Duration = Duration::from_secs(1);

/// Remembers how far its task got. When the task is dropped before its last step, `Drop`
/// says so: the only thing a cancelled future runs is its destructors, and they cannot await.
struct Progress {
    number: u32,
    steps: u32,
    done: u32,
}

impl Drop for Progress {
    fn drop(&mut self) {
        if self.done < self.steps {
            println!(
                "task_number={} dropped mid-way, after step {} of {}",
                self.number, self.done, self.steps
            );
        }
    }
}

/// A task of a few steps. Each `.await` is a point where it may stop for good: if the future
/// is dropped while it waits there, no later line of this function runs.
async fn task(number: u32, steps: u32) -> u32 {
    let mut progress = Progress {
        number,
        steps,
        done: 0,
    };
    while progress.done < steps {
        tokio::time::sleep(STEP).await;
        progress.done += 1;
    }
    progress.done
}

/// The time since `start`, in tenths of a second, rounded down: a real-clock run, always a
/// little late, prints the same figures as a paused one. `Instant` is `tokio::time::Instant`
/// (see the `use` lines at the top): it reads tokio's clock, so on the paused clock it
/// reports virtual time, where `std::time::Instant` would report next to nothing.
fn since(start: Instant) -> String {
    let tenths = start.elapsed().as_millis() / 100;
    format!("{}.{} s", tenths / 10, tenths % 10)
}
// ANCHOR_END: task

// ANCHOR: race
const TIMEOUT: Duration = Duration::from_millis(2500);
const SHUTDOWN_AFTER: Duration = Duration::from_secs(6);

/// Runs three tasks one after the other, each racing a timeout and a shutdown signal.
async fn race() {
    let start = Instant::now();
    // The shutdown signal: a `watch` channel whose value turns `true`. A timer task stands in
    // for Ctrl-C, so that the lesson needs no keyboard.
    let (stop, mut stopped) = watch::channel(false);
    tokio::spawn(async move {
        tokio::time::sleep(SHUTDOWN_AFTER).await;
        println!("{}: shutdown requested", since(start));
        // Fails only if every receiver is gone: then nobody is left to tell.
        let _ = stop.send(true);
    });
    for (number, steps) in [(1, 2), (2, 4), (3, 4)] {
        println!("{}: task {number} starts, {steps} steps", since(start));
        if !race_one(number, steps, &mut stopped, start).await {
            break;
        }
    }
}
// ANCHOR_END: race

// ANCHOR: consumer
/// What the producer sends: deliberately not `Copy`, so that sending it moves it.
#[derive(Debug)]
struct Item {
    number: u32,
}

const ITEMS: u32 = 10;
/// The channel holds one item: the producer soon waits for room, as it would for a slow peer.
const CAPACITY: usize = 1;
const CONSUME_EVERY: Duration = Duration::from_millis(500);
/// The producer prints a progress line every second, the first one at 0.7 s.
const FIRST_PROGRESS: Duration = Duration::from_millis(700);
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Takes an item every half second, and returns the numbers of the items it got.
async fn slow_consumer(mut queue: mpsc::Receiver<Item>) -> Vec<u32> {
    // An interval ticks on a fixed schedule, the first tick at once. A tick missed because
    // a turn ran late fires at once, back to back with the next (`MissedTickBehavior::Burst`,
    // the default): it keeps the average rate, not the gap between turns.
    let mut pace = tokio::time::interval(CONSUME_EVERY);
    let mut received = Vec::new();
    loop {
        pace.tick().await;
        let Some(item) = queue.recv().await else {
            return received; // closed and empty
        };
        received.push(item.number);
    }
}

fn progress_ticker() -> tokio::time::Interval {
    tokio::time::interval_at(Instant::now() + FIRST_PROGRESS, PROGRESS_EVERY)
}
// ANCHOR_END: consumer

// ANCHOR: lossy_send
/// Sends every item, printing progress meanwhile. The progress branch can win while `send`
/// waits for room, and the item inside that `send` is dropped with it.
async fn lossy_producer(queue: mpsc::Sender<Item>, start: Instant) -> u32 {
    let mut ticker = progress_ticker();
    let mut sent = 0;
    for number in 0..ITEMS {
        let item = Item { number };
        tokio::select! {
            // `send(item)` moves the item into the future: from here on, the future owns it.
            result = queue.send(item) => {
                if result.is_err() {
                    break; // the consumer is gone
                }
            }
            _ = ticker.tick() => {
                println!("{}: progress: {sent} items sent", since(start));
            }
        }
        // Whichever branch won, the loop is done with this item: it counts it as sent.
        sent += 1;
    }
    sent
}
// ANCHOR_END: lossy_send

// ANCHOR: reserve
/// Waits for room first, with `reserve`, which holds no item: if the progress branch wins,
/// nothing is lost, and the loop asks for room again. Then the permit sends, without waiting.
/// `sent` counts what the producer handed over, as the lossy one does.
async fn reserving_producer(queue: mpsc::Sender<Item>, start: Instant) -> u32 {
    let mut ticker = progress_ticker();
    let mut sent = 0;
    for number in 0..ITEMS {
        let item = Item { number };
        let permit = loop {
            tokio::select! {
                permit = queue.reserve() => break permit,
                _ = ticker.tick() => {
                    println!("{}: progress: {sent} items sent", since(start));
                }
            }
        };
        let Ok(permit) = permit else {
            break; // the consumer is gone
        };
        // Returns nothing: if the receiver has closed since `reserve`, the item is dropped,
        // and `sent` overcounts. Here the consumer reads until every sender is gone.
        permit.send(item);
        sent += 1;
    }
    sent
}
// ANCHOR_END: reserve

// ANCHOR: channel_run
/// Runs one producer against the slow consumer, and counts.
async fn sending(reserve: bool) {
    let start = Instant::now();
    let (sender, receiver) = mpsc::channel(CAPACITY);
    let consumer = tokio::spawn(slow_consumer(receiver));
    let sent = if reserve {
        reserving_producer(sender, start).await
    } else {
        lossy_producer(sender, start).await
    };
    // The producer has returned and dropped its sender: the consumer takes what is left.
    let received = match consumer.await {
        Ok(received) => received,
        Err(error) => {
            println!("the consumer failed: {error}");
            return;
        }
    };
    // Lost: sent, and never received.
    let missing: Vec<u32> = (0..sent).filter(|n| !received.contains(n)).collect();
    println!(
        "items: sent={sent} received={} lost={} missing={missing:?}",
        received.len(),
        missing.len()
    );
}
// ANCHOR_END: channel_run

// ANCHOR: pinned
const MESSAGES: u32 = 6;
const MESSAGE_EVERY: Duration = Duration::from_millis(600);
/// How long the receiver collects messages, at most.
const COLLECT_FOR: Duration = Duration::from_secs(2);

async fn messenger(queue: mpsc::Sender<u32>) {
    let mut pace = tokio::time::interval_at(Instant::now() + MESSAGE_EVERY, MESSAGE_EVERY);
    for number in 1..=MESSAGES {
        pace.tick().await;
        if queue.send(number).await.is_err() {
            return; // the receiver has stopped listening
        }
    }
}

async fn pinned() {
    println!("a new sleep on every turn of the loop:");
    let (sender, mut messages) = mpsc::channel(1);
    tokio::spawn(messenger(sender));
    let start = Instant::now();
    loop {
        tokio::select! {
            message = messages.recv() => match message {
                Some(number) => println!("{}: message {number}", since(start)),
                None => {
                    println!("{}: no more messages, and no deadline", since(start));
                    break;
                }
            },
            // A new sleep each time round: every message starts the wait over again.
            () = tokio::time::sleep(COLLECT_FOR) => {
                println!("{}: deadline", since(start));
                break;
            }
        }
    }

    println!("one sleep, pinned before the loop:");
    let (sender, mut messages) = mpsc::channel(1);
    tokio::spawn(messenger(sender));
    let start = Instant::now();
    // Created once; `pin!` fixes it in place, so that the loop can poll it through `&mut`.
    let mut deadline = std::pin::pin!(tokio::time::sleep(COLLECT_FOR));
    loop {
        tokio::select! {
            message = messages.recv() => match message {
                Some(number) => println!("{}: message {number}", since(start)),
                None => {
                    println!("{}: no more messages, and no deadline", since(start));
                    break;
                }
            },
            () = &mut deadline => {
                println!("{}: deadline", since(start));
                break;
            }
        }
    }
}
// ANCHOR_END: pinned

// ANCHOR: fairness
const TURNS: u32 = 1000;

/// Two branches that are always ready, `TURNS` times: who wins?
async fn fairness() {
    let (mut first, mut second) = (0, 0);
    for _ in 0..TURNS {
        tokio::select! {
            () = std::future::ready(()) => first += 1,
            () = std::future::ready(()) => second += 1,
        }
    }
    // Random: print only what holds on every run, bar a one-in-billions chance.
    let even = |won: u32| (TURNS * 2 / 5..=TURNS * 3 / 5).contains(&won);
    println!(
        "random start: each branch won between 40% and 60% of {TURNS} turns: {}",
        even(first) && even(second)
    );
    let (mut first, mut second) = (0, 0);
    for _ in 0..TURNS {
        tokio::select! {
            biased;
            () = std::future::ready(()) => first += 1,
            () = std::future::ready(()) => second += 1,
        }
    }
    println!("biased: the first branch won {first} of {TURNS} turns, the second {second}");
}

// ANCHOR_END: fairness

// ANCHOR: priority
const JOBS: u32 = 8;
const JOB_TIME: Duration = Duration::from_millis(400);
const STOP_AFTER: Duration = Duration::from_secs(1);

/// A worker with a full queue of jobs and a shutdown signal, polled in the order given.
async fn worker(shutdown_first: bool) {
    let start = Instant::now();
    let (sender, mut jobs) = mpsc::channel(JOBS as usize);
    for job in 0..JOBS {
        // The channel has room for every job: `try_send` cannot fail here.
        let _ = sender.try_send(job);
    }
    drop(sender); // the queue is closed: once empty, `recv` returns `None`
    let (stop, mut stopped) = watch::channel(false);
    tokio::spawn(async move {
        tokio::time::sleep(STOP_AFTER).await;
        let _ = stop.send(true);
    });
    let mut done = 0;
    loop {
        let job = if shutdown_first {
            tokio::select! {
                biased;
                _ = stopped.wait_for(|&stop| stop) => None,
                job = jobs.recv() => job,
            }
        } else {
            tokio::select! {
                biased;
                job = jobs.recv() => job,
                _ = stopped.wait_for(|&stop| stop) => None,
            }
        };
        if job.is_none() {
            break;
        }
        tokio::time::sleep(JOB_TIME).await; // the job's work
        done += 1;
    }
    let order = if shutdown_first { "shutdown" } else { "jobs" };
    println!(
        "{order} first: stopped at {}, after {done} of {JOBS} jobs",
        since(start)
    );
}
// ANCHOR_END: priority

// ANCHOR: deadline
const ATTEMPTS: u32 = 3;
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the caller is prepared to wait for the whole job, retries included.
const BUDGET: Duration = Duration::from_secs(3);

/// A call to a service that has stopped answering.
async fn attempt() {
    tokio::time::sleep(Duration::from_secs(1000)).await;
}

/// Retries with a fresh timeout each time, knowing nothing of the caller's budget.
async fn with_fresh_timeouts(start: Instant) {
    for number in 1..=ATTEMPTS {
        let outcome = tokio::time::timeout(ATTEMPT_TIMEOUT, attempt()).await;
        if outcome.is_ok() {
            return;
        }
        println!("{}: attempt {number} timed out", since(start));
    }
    println!("{}: gave up after {ATTEMPTS} attempts", since(start));
}

/// Retries until `deadline`, which the caller computed once: no attempt outlives it.
async fn until(deadline: Instant, start: Instant) {
    for number in 1..=ATTEMPTS {
        // This attempt's own limit, but never past the caller's deadline.
        let attempt_deadline = deadline.min(Instant::now() + ATTEMPT_TIMEOUT);
        let outcome = tokio::time::timeout_at(attempt_deadline, attempt()).await;
        if outcome.is_ok() {
            return;
        }
        if attempt_deadline == deadline {
            println!("{}: attempt {number} stopped at the deadline", since(start));
            println!(
                "{}: gave up: no time left for another attempt",
                since(start)
            );
            return;
        }
        println!("{}: attempt {number} timed out", since(start));
    }
    println!("{}: gave up after {ATTEMPTS} attempts", since(start));
}

async fn deadline() {
    let budget = BUDGET.as_secs();
    println!("a fresh timeout for each attempt; the caller allowed {budget} s:");
    with_fresh_timeouts(Instant::now()).await;
    println!("one deadline, {budget} s from the start, for every attempt:");
    let start = Instant::now();
    until(start + BUDGET, start).await;
}
// ANCHOR_END: deadline

// ANCHOR: fail_fast
const FAIL_AFTER: Duration = Duration::from_millis(1500);

/// A task that fails after 1500 ms; its siblings are `task`s, wrapped to return a `Result`.
async fn failing(number: u32) -> Result<u32, String> {
    tokio::time::sleep(FAIL_AFTER).await;
    Err(format!("task {number} failed"))
}

async fn fallible(number: u32, steps: u32) -> Result<u32, String> {
    Ok(task(number, steps).await)
}

async fn fail_fast() {
    let start = Instant::now();
    println!("try_join! of 3 tasks; the longest would take 4 steps:");
    // The first `Err` ends the `try_join!`, and the futures still running are dropped.
    let result = tokio::try_join!(failing(1), fallible(2, 3), fallible(3, 4));
    println!("{}: try_join! returned {result:?}", since(start));

    println!("a JoinSet of the same 3 tasks, spawned:");
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    tasks.spawn(failing(1));
    tasks.spawn(fallible(2, 3));
    tasks.spawn(fallible(3, 4));
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(steps)) => println!("{}: a task finished its {steps} steps", since(start)),
            Ok(Err(error)) => {
                println!("{}: {error}: cancelling the others", since(start));
                // Aborts every task still in the set, and waits until each is dropped.
                tasks.shutdown().await;
            }
            Err(error) => println!("{}: a task failed: {error}", since(start)),
        }
    }
    println!("{}: every task is done or cancelled", since(start));
}
// ANCHOR_END: fail_fast

// ANCHOR: resume_unwind
const BUG_AFTER: Duration = Duration::from_millis(500);

/// A task that spawns a child and waits for it. A panic in the child is a bug: the parent
/// does not carry on as if nothing happened, it panics in turn, with the child's own payload.
async fn parent() {
    let child = tokio::spawn(async {
        tokio::time::sleep(BUG_AFTER).await;
        panic!("task 4 hit a bug");
    });
    match child.await {
        Ok(()) => println!("the child finished"),
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(error) => println!("the child was cancelled: {error}"),
    }
}

async fn re_raise() {
    let start = Instant::now();
    // Here the top level is itself a task, so that the run survives to report what it saw.
    // In a program that must stop, `main` would not catch it: the panic would end the process.
    match tokio::spawn(parent()).await {
        Err(error) if error.is_panic() => {
            let payload = error.into_panic();
            let message = payload.downcast_ref::<&str>().copied().unwrap_or("?");
            println!(
                "{}: the parent panicked with its child's payload: {message}",
                since(start)
            );
        }
        other => println!("{}: the parent ended otherwise: {other:?}", since(start)),
    }
}
// ANCHOR_END: resume_unwind

// ANCHOR: timer
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
// ANCHOR_END: timer

/// The chapter's lessons, one a run.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Lesson {
    /// A task races a timeout and a shutdown; the loser is dropped.
    Race,
    /// A `send` in a `select!` loses the item it holds when another branch wins.
    LossySend,
    /// `reserve`, then send through the permit: nothing is lost.
    Reserve,
    /// A deadline created in the loop never fires; pinned before it, it does.
    Pinned,
    /// Random polling order versus `biased`, and a shutdown that waits behind busy work.
    Biased,
    /// A fresh timeout per attempt versus one deadline for all of them.
    Deadline,
    /// The first failure cancels the siblings; a child's panic is re-raised in its parent.
    FailFast,
}

async fn run(lesson: Lesson) {
    let _timer = Timer::start();
    match lesson {
        Lesson::Race => race().await,
        Lesson::LossySend => sending(false).await,
        Lesson::Reserve => sending(true).await,
        Lesson::Pinned => pinned().await,
        Lesson::Biased => {
            fairness().await;
            worker(false).await;
            worker(true).await;
        }
        Lesson::Deadline => deadline().await,
        Lesson::FailFast => {
            fail_fast().await;
            re_raise().await;
        }
    }
}

// ANCHOR: runtime
/// Which clock tokio's timers follow: the real one, or tokio's paused clock, on which a sleep
/// completes at once and the time it would have taken is added to a virtual clock.
#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
enum Clock {
    /// Wait for real.
    Real,
    /// Run on tokio's paused clock: at once, with virtual time.
    Paused,
}

/// The Rust Playground, where the book's Run button sends this file, stops a program after a
/// few seconds. It builds every program as a crate named `playground`, so there the default is
/// the paused clock; everywhere else it is the real one.
fn default_clock() -> Clock {
    if option_env!("CARGO_PKG_NAME") == Some("playground") {
        Clock::Paused
    } else {
        Clock::Real
    }
}

/// What `#[tokio::main]` would build, written out so that the clock can be chosen at run time.
fn runtime(clock: Clock) -> std::io::Result<tokio::runtime::Runtime> {
    match clock {
        // The default of `#[tokio::main]`: one worker thread per core.
        Clock::Real => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
        // The paused clock needs the single-threaded runtime.
        Clock::Paused => {
            // A note, not a result: if stderr cannot take it, the run goes on all the same.
            let _ = writeln!(
                std::io::stderr(),
                "note: tokio's clock is paused: sleeps take no real time, elapsed is virtual"
            );
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .start_paused(true)
                .build()
        }
    }
}
// ANCHOR_END: runtime

/// Lessons on `tokio::select!`: racing, cancellation safety, pinning, `biased`, deadlines and
/// failing fast.
#[derive(clap::Parser)]
#[command(name = "ch07_select", version)]
struct Options {
    /// Which lesson to run.
    #[arg(long, value_enum, default_value_t = Lesson::Race)]
    lesson: Lesson,
    /// Which clock the sleeps follow.
    #[arg(long, value_enum, default_value_t = default_clock())]
    clock: Clock,
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
    match runtime(options.clock) {
        Ok(runtime) => {
            runtime.block_on(run(options.lesson));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: cannot start the tokio runtime: {error}");
            ExitCode::FAILURE
        }
    }
}
