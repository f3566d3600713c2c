//! Exercise: fifty consumers (chapter 4).
//!
//! The producer below sends 1000 tasks of 1 s into a queue that holds 100. Write `consumer`,
//! and start 50 of them in `run`, so that every task runs exactly once, never more than 50 at a
//! time, and the whole run takes 21 s (the checks make task 0 a slow one, of 5 s). The checks
//! at the bottom run your code on tokio's paused clock, so those 21 s pass at once.
//!
//! Check your work: `cargo run -q --bin exercise -- consumers`, or the Run button.
#![allow(unused)] // The starter leaves things unused until your part is written.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinSet;

// ANCHOR: exercise
/// Takes tasks until the queue is closed and empty, and runs each with `normal_task`.
async fn consumer(queue: Arc<Mutex<mpsc::Receiver<Task>>>) {
    todo!("take the next task from the queue and run it; stop when the queue is closed and empty")
}

/// Starts the producer and CONSUMER_COUNT consumers, and returns once every task is done.
async fn run() {
    let (sender, receiver) = mpsc::channel::<Task>(QUEUE_BOUND);
    let queue = Arc::new(Mutex::new(receiver));
    let mut consumers: JoinSet<()> = JoinSet::new();
    todo!("spawn the producer and the consumers into `consumers`, then wait for them all")
}
// ANCHOR_END: exercise

// ── From chapter 4 (code/ch04_queue.rs), as it is there. ──
const TASKS_TO_PROCESS: u32 = 1000;
const CONSUMER_COUNT: usize = 50;
/// How many tasks may wait in the queue. The article's choice, and as arbitrary:
/// big enough that no consumer waits for the producer, small enough to hold little memory.
const QUEUE_BOUND: usize = CONSUMER_COUNT * 2;
// ── End of chapter 4's code. ──

// ── From chapter 4 (code/ch04_queue.rs), as it is there. ──
/// What travels through the queue: a description of the work, plain data, not a future.
/// A consumer turns it into a future when it is ready to run it (and could again, to retry).
#[derive(Debug, Clone, Copy)]
struct Task {
    number: u32,
    time_to_execute: Duration,
}
// ── End of chapter 4's code. ──

// ── From chapter 4 (code/ch04_queue.rs), as it is there. ──
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
// ── End of chapter 4's code. ──

// ── The checks. They run your code on tokio's paused clock; no need to read on. ──

/// Task 0 takes this long, whatever it is given: a slow request, as real services have.
const SLOW_TASK: Duration = Duration::from_secs(5);
/// When 50 consumers end: 49 run 245 tasks while task 0 runs, then 50 run the 754 left.
const POOL_ENDS: f64 = 21.0;
/// When batches of 50 would end: the first waits 5 s for task 0, the 19 others take 1 s each.
const BATCHES_END: f64 = 24.0;

/// The task, as the checks see it: it notes when it starts and ends, in seconds of the clock.
async fn normal_task(task_number: u32, time_to_execute: Duration) {
    let start = checks::now();
    let time = if task_number == 0 {
        SLOW_TASK
    } else {
        time_to_execute
    };
    tokio::time::sleep(time).await;
    checks::RAN
        .lock()
        .unwrap()
        .push((task_number, start, checks::now()));
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> std::process::ExitCode {
    checks::START.get_or_init(tokio::time::Instant::now);
    let verdict = match tokio::time::timeout(Duration::from_secs(10_000), tokio::spawn(run())).await
    {
        Err(_) => Err(
            "run() still ran after 10000 s: a consumer that never stops? \
            recv() returns None once the queue is empty and closed, and it closes only when \
            the last Sender is dropped: is one still alive (a clone, or one kept in run)?"
                .to_string(),
        ),
        Ok(Err(panic)) => Err(format!("run() panicked: {}", checks::message(panic))),
        Ok(Ok(())) => checks::judge(checks::now()),
    };
    checks::report(verdict)
}

mod checks {
    //! A lock's `unwrap()` here fails only if a check panicked while holding it.
    use std::sync::{Mutex, OnceLock};

    pub static START: OnceLock<tokio::time::Instant> = OnceLock::new();
    /// Every task that ran: its number, when it started and when it ended.
    pub static RAN: Mutex<Vec<(u32, f64, f64)>> = Mutex::new(Vec::new());

    pub fn now() -> f64 {
        START.get().expect("set by main").elapsed().as_secs_f64()
    }

    pub fn judge(returned: f64) -> Result<String, String> {
        let ran = RAN.lock().unwrap().clone();
        let mut times = vec![0; super::TASKS_TO_PROCESS as usize];
        for &(number, _, _) in &ran {
            times[number as usize] += 1;
        }
        if ran.len() < times.len() && returned < super::POOL_ENDS {
            return Err(format!(
                "run() returned at {returned:.2} s with {} of 1000 tasks done: \
                 wait for every consumer before returning",
                ran.len()
            ));
        }
        if let Some(task) = times.iter().position(|&count| count == 0) {
            return Err(format!("task {task} never ran ({} of 1000 did)", ran.len()));
        }
        if let Some(task) = times.iter().position(|&count| count > 1) {
            return Err(format!(
                "task {task} ran {} times: each task must run once",
                times[task]
            ));
        }
        let last_end = ran.iter().map(|&(_, _, end)| end).fold(0.0, f64::max);
        if returned < last_end {
            return Err(format!(
                "run() returned at {returned:.2} s, before the last task ended at {last_end:.2} s: \
                 wait for every consumer"
            ));
        }
        // The most tasks running at once: at each start, count those begun and not yet ended.
        let most = ran
            .iter()
            .map(|&(_, start, _)| {
                ran.iter()
                    .filter(|&&(_, s, e)| s <= start && start < e)
                    .count()
            })
            .max()
            .unwrap_or(0);
        if most > super::CONSUMER_COUNT {
            return Err(format!(
                "{most} tasks ran at once: at most CONSUMER_COUNT (50) may"
            ));
        }
        if most == 1 {
            return Err(format!(
                "elapsed {returned:.2} s: one task at a time. Is the lock held across the \
                 task? A guard lives to the end of its statement if it is a temporary, and to \
                 the end of its block if it has a name (or is in a while let): drop it before \
                 the task runs"
            ));
        }
        if returned > super::POOL_ENDS + 1e-6 {
            let why = if most < super::CONSUMER_COUNT {
                format!("only {most} tasks ran at once. Did you start CONSUMER_COUNT consumers?")
            } else {
                format!(
                    "{most} at once, but were they run in batches? A batch waits for its \
                     slowest task (task 0 takes 5 s), and batches end at {:.2} s; a consumer \
                     that takes one task at a time starts the next as soon as it is done",
                    super::BATCHES_END
                )
            };
            return Err(format!(
                "elapsed {returned:.2} s, not {:.2}: {why}",
                super::POOL_ENDS
            ));
        }
        Ok(format!(
            "1000 tasks, each once; at most {most} at once; elapsed {returned:.2} s"
        ))
    }

    /// The message of a panic in a task, as `panic!` or `todo!` gave it.
    pub fn message(error: tokio::task::JoinError) -> String {
        let Ok(panic) = error.try_into_panic() else {
            return "it was cancelled".into();
        };
        panic
            .downcast_ref::<&str>()
            .map(|text| text.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into())
    }

    pub fn report(verdict: Result<String, String>) -> std::process::ExitCode {
        match verdict {
            Ok(summary) => {
                println!("✓ {summary}\nAll checks pass.");
                std::process::ExitCode::SUCCESS
            }
            Err(problem) => {
                println!("✗ {problem}");
                std::process::ExitCode::FAILURE
            }
        }
    }
}
