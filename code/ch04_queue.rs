//! Chapter 4: a producer, a bounded queue and 50 consumers.
//!
//! One producer sends 1000 task descriptions into a channel that holds at most 100;
//! 50 consumers take them out and run them. Each task takes 1 s, so the run takes 20 s.
//! Run it with `cargo run --bin ch04_queue`; `--help` lists the options.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;

// ANCHOR: task
/// A stand-in for one piece of I/O work (a request, a query): it waits, then reports.
///
/// `task_number` is a `u32` and the time a `Duration`, so neither can be negative:
/// the types enforce what the article's annotations only describe.
async fn normal_task(task_number: u32, time_to_execute: Duration) {
    tokio::time::sleep(time_to_execute).await;
    println!(
        "processed task with task_number={task_number} time_to_execute_in_seconds={} behavior=normal-sleep",
        time_to_execute.as_secs_f64()
    );
}
// ANCHOR_END: task

// ANCHOR: timer
/// Prints how long it lived when it is dropped, like the article's `timer()` context manager:
/// `Drop` runs at the end of the scope however the scope is left, as `finally` does.
struct Timer(Instant);

impl Timer {
    fn start() -> Timer {
        // `tokio::time::Instant` is monotonic: it never jumps back when the wall clock is set.
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

// ANCHOR: parameters
const TASKS_TO_PROCESS: u32 = 1000;
const CONSUMER_COUNT: usize = 50;
/// How many tasks may wait in the queue. The article's choice, and as arbitrary:
/// big enough that no consumer waits for the producer, small enough to hold little memory.
const QUEUE_BOUND: usize = CONSUMER_COUNT * 2;
// ANCHOR_END: parameters

// ANCHOR: description
/// What travels through the queue: a description of the work, plain data, not a future.
/// A consumer turns it into a future when it is ready to run it (and could again, to retry).
#[derive(Debug, Clone, Copy)]
struct Task {
    number: u32,
    time_to_execute: Duration,
}
// ANCHOR_END: description

// ANCHOR: close
/// Sends every task, then returns, which drops `queue`, the only sender.
async fn producer(queue: mpsc::Sender<Task>, max_tasks: u32) {
    for number in 0..max_tasks {
        let task = Task {
            number,
            time_to_execute: Duration::from_secs(1),
        };
        // Waits while the queue is full: the producer can never run ahead of the consumers
        // by more than QUEUE_BOUND tasks. That wait is the backpressure.
        if queue.send(task).await.is_err() {
            // `send` fails only when no receiver is left: nobody would run the rest.
            return;
        }
    }
    println!("all tasks sent, closing the queue");
    // `queue` is dropped here. Once the consumers have taken what is left,
    // `recv` returns `None` to each of them.
}

/// Takes tasks until the queue is closed and empty.
async fn consumer(queue: Arc<Mutex<mpsc::Receiver<Task>>>) {
    loop {
        // Lock, wait for the next task, unlock: the guard is a temporary, dropped at the end
        // of this statement, so the lock is held while waiting, never while working. (Not a
        // `while let`: there the guard would live on through the loop's body, job included.)
        let next = queue.lock().await.recv().await;
        let Some(task) = next else {
            return; // closed and empty: no more work will come
        };
        normal_task(task.number, task.time_to_execute).await;
    }
}
// ANCHOR_END: close

// ANCHOR: pill
/// What travels through the queue when the end is signalled by a poison pill.
enum Message {
    Work(Task),
    PoisonPill,
}

/// Sends every task, then one pill per consumer, so that each consumer swallows exactly one
/// and none is left over.
async fn producer_with_pills(queue: mpsc::Sender<Message>, max_tasks: u32, consumers: usize) {
    for number in 0..max_tasks {
        let task = Task {
            number,
            time_to_execute: Duration::from_secs(1),
        };
        if queue.send(Message::Work(task)).await.is_err() {
            return;
        }
    }
    println!("poison pill put in queue");
    for _ in 0..consumers {
        if queue.send(Message::PoisonPill).await.is_err() {
            return;
        }
    }
}

async fn consumer_with_pills(queue: Arc<Mutex<mpsc::Receiver<Message>>>) {
    loop {
        let next = queue.lock().await.recv().await;
        match next {
            Some(Message::Work(task)) => normal_task(task.number, task.time_to_execute).await,
            // One pill is this consumer's; it does not put it back.
            Some(Message::PoisonPill) => return,
            // The producer is gone without sending our pill (it failed, say): stop as well.
            None => return,
        }
    }
}
// ANCHOR_END: pill

/// How the producer tells the consumers that the work is over.
#[derive(Clone, Copy, clap::ValueEnum)]
enum End {
    /// Drop the sender: the channel closes (the default, and the idiomatic way).
    Close,
    /// Send one `Message::PoisonPill` per consumer.
    #[value(name = "pill")]
    PoisonPill,
}

// ANCHOR: main
async fn run(end: End) {
    let _timer = Timer::start();
    let mut consumers = JoinSet::new();
    let producer = match end {
        End::Close => {
            // `channel` is the counterpart of `asyncio.Queue(maxsize=QUEUE_BOUND)`.
            let (sender, receiver) = mpsc::channel(QUEUE_BOUND);
            // One receiver, shared: each consumer holds a reference-counted handle to it.
            let receiver = Arc::new(Mutex::new(receiver));
            for _ in 0..CONSUMER_COUNT {
                consumers.spawn(consumer(Arc::clone(&receiver)));
            }
            // The producer is a task of its own too: if it panics, the panic ends that task
            // alone, and the sender it drops on the way closes the queue.
            tokio::spawn(producer(sender, TASKS_TO_PROCESS))
            // Our own handle on the receiver is dropped here, so that only the consumers hold
            // it: were they all to fail, `send` would fail too, instead of waiting forever.
        }
        End::PoisonPill => {
            let (sender, receiver) = mpsc::channel(QUEUE_BOUND);
            let receiver = Arc::new(Mutex::new(receiver));
            for _ in 0..CONSUMER_COUNT {
                consumers.spawn(consumer_with_pills(Arc::clone(&receiver)));
            }
            tokio::spawn(producer_with_pills(
                sender,
                TASKS_TO_PROCESS,
                CONSUMER_COUNT,
            ))
        }
    };
    // A consumer returns only once the work is over, so when all of them have returned,
    // every task has been processed. Waiting for them does what `queue.join()` did.
    while let Some(finished) = consumers.join_next().await {
        if let Err(error) = finished {
            eprintln!("a consumer failed: {error}");
        }
    }
    if let Err(error) = producer.await {
        eprintln!("the producer failed: {error}");
    }
}
// ANCHOR_END: main

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

/// Sends 1000 tasks of 1 s through a queue of 100 to 50 consumers, then prints the elapsed time.
#[derive(clap::Parser)]
#[command(name = "ch04_queue", version)]
struct Options {
    /// How the producer tells the consumers that the work is over.
    #[arg(long, value_enum, default_value_t = End::Close)]
    end: End,
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
    // ANCHOR: block_on
    match runtime(options.clock) {
        Ok(runtime) => {
            runtime.block_on(run(options.end));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: cannot start the tokio runtime: {error}");
            ExitCode::FAILURE
        }
    }
    // ANCHOR_END: block_on
}
