//! Exercise: backpressure, a queue that holds 100 (chapter 4).
//!
//! This is chapter 4's program with one change: its queue has no bound. The producer sends all
//! 1000 tasks before a single one has run. Give the queue chapter 4's bound, QUEUE_BOUND, so
//! that the producer is never more than 100 tasks ahead of the consumers, while every task
//! still runs once, 50 at a time, in 20 s. The checks at the bottom run your code on tokio's
//! paused clock, so those 20 s pass at once.
//!
//! Check your work: `cargo run -q --bin exercise -- bounded`, or the Run button.
#![allow(unused)] // The starter leaves things unused until your part is written.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinSet;

// ANCHOR: exercise
/// Sends every task, then returns, which drops `queue`, the only sender.
async fn producer(queue: mpsc::Sender<Task>, max_tasks: u32) {
    for task in tasks(max_tasks) {
        // Waits while the queue holds QUEUE_BOUND tasks: that wait is the backpressure.
        if queue.send(task).await.is_err() {
            return;
        }
    }
    println!("all tasks sent, closing the queue");
}

/// Takes tasks until the queue is closed and empty, and runs each with `normal_task`.
async fn consumer(queue: Arc<Mutex<mpsc::Receiver<Task>>>) {
    loop {
        let next = queue.lock().await.recv().await;
        let Some(task) = next else {
            return;
        };
        normal_task(task.number, task.time_to_execute).await;
    }
}

/// Starts the producer and CONSUMER_COUNT consumers, and returns once every task is done.
async fn run() {
    let (sender, receiver) = mpsc::channel::<Task>(QUEUE_BOUND);
    let queue = Arc::new(Mutex::new(receiver));
    let mut consumers: JoinSet<()> = JoinSet::new();
    // A task of its own: the producer now waits for room, which only running consumers make.
    consumers.spawn(producer(sender, TASKS_TO_PROCESS));
    for _ in 0..CONSUMER_COUNT {
        consumers.spawn(consumer(Arc::clone(&queue)));
    }
    consumers.join_all().await;
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

// ── The checks. They run your code on tokio's paused clock; no need to read on. ──

/// The tasks to send, in order. For the checks, a task counts as sent when the producer comes
/// back for the next one (or finds there is none left).
fn tasks(count: u32) -> impl Iterator<Item = Task> {
    (0..=count).filter_map(move |number| {
        checks::sent(number);
        let time_to_execute = Duration::from_secs(1);
        (number < count).then_some(Task {
            number,
            time_to_execute,
        })
    })
}

/// The task, as the checks see it: taken from the queue when it starts, timed to its end.
async fn normal_task(task_number: u32, time_to_execute: Duration) {
    let start = checks::taken();
    tokio::time::sleep(time_to_execute).await;
    let end = checks::now();
    checks::RAN.lock().unwrap().push((task_number, start, end));
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> std::process::ExitCode {
    checks::START.get_or_init(tokio::time::Instant::now);
    let limit = Duration::from_secs(10_000);
    let verdict = match tokio::time::timeout(limit, tokio::spawn(run())).await {
        Err(_) => Err(checks::stuck()),
        Ok(Err(panic)) => Err(format!("run() panicked: {panic}")),
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
    /// Tasks sent and taken so far, and the most the producer was ever ahead, with when.
    static QUEUE: Mutex<(u32, u32, u32, f64)> = Mutex::new((0, 0, 0, 0.0));

    pub fn now() -> f64 {
        START.get().expect("set by main").elapsed().as_secs_f64()
    }

    pub fn sent(count: u32) {
        let (sent, taken, most, when) = &mut *QUEUE.lock().unwrap();
        *sent = count;
        if count - *taken > *most {
            (*most, *when) = (count - *taken, now());
        }
    }

    /// Counts a task as taken from the queue, and returns the time.
    pub fn taken() -> f64 {
        QUEUE.lock().unwrap().1 += 1;
        now()
    }

    pub fn stuck() -> String {
        let (sent, taken, _, _) = *QUEUE.lock().unwrap();
        let hint = if taken == 0 && sent > 0 {
            "the producer waits for room in the queue, and no consumer runs to make it. \
             Does run() wait for the producer before it starts the consumers?"
        } else if taken == super::TASKS_TO_PROCESS {
            "every task ran, but the queue never closed. Is a Sender still alive?"
        } else {
            "a consumer that never stops? recv() returns None once every sender is dropped"
        };
        format!("run() still ran after 10000 s, with {sent} tasks sent and {taken} taken: {hint}")
    }

    pub fn judge(returned: f64) -> Result<String, String> {
        let ran = RAN.lock().unwrap().clone();
        let (_, taken, ahead, when) = *QUEUE.lock().unwrap();
        let mut times = [0; super::TASKS_TO_PROCESS as usize];
        for &(number, _, _) in &ran {
            times[number as usize] += 1;
        }
        // The most tasks running at once: at each start, count those begun and not yet ended.
        let at = |t: f64| ran.iter().filter(|&&(_, s, e)| s <= t && t < e).count();
        let most = ran
            .iter()
            .map(|&(_, start, _)| at(start))
            .max()
            .unwrap_or(0);
        if taken as usize > ran.len() {
            let running = taken as usize - ran.len();
            return Err(format!(
                "run() returned at {returned:.2} s, with {running} tasks still running: \
                 wait for every consumer before returning"
            ));
        }
        if ran.is_empty() {
            return Err("no task ran: did any reach the queue? \
                A send does nothing until it is awaited: send(task).await"
                .into());
        }
        if let Some(task) = times.iter().position(|&count| count != 1) {
            return Err(format!(
                "task {task} ran {} times, not once ({} runs in all): was every task sent? \
                 send(task).await waits for room, where try_send gives up at once",
                times[task],
                ran.len()
            ));
        }
        if ahead as usize > super::QUEUE_BOUND {
            return Err(format!(
                "the producer ran {ahead} tasks ahead of the consumers (at {when:.2} s), where \
                 QUEUE_BOUND allows 100: nothing made it wait. Is the channel bounded? \
                 mpsc::channel(QUEUE_BOUND) holds 100, and its send(..).await waits for room"
            ));
        }
        if most > super::CONSUMER_COUNT {
            return Err(format!(
                "{most} tasks ran at once: at most CONSUMER_COUNT (50) may"
            ));
        }
        if returned > 20.0 {
            let why = if most == 1 {
                "The consumers took turns: is the lock held across the task, as a while let does?"
            } else {
                "Did the producer keep the consumers waiting?"
            };
            return Err(format!(
                "elapsed {returned:.2} s, not 20.00, with at most {most} tasks at once. {why}"
            ));
        }
        Ok(format!(
            "1000 tasks, each once; at most {most} at once; \
             the producer at most {ahead} ahead; elapsed {returned:.2} s"
        ))
    }

    pub fn report(verdict: Result<String, String>) -> std::process::ExitCode {
        match &verdict {
            Ok(summary) => println!("✓ {summary}\nAll checks pass."),
            Err(problem) => println!("✗ {problem}"),
        }
        std::process::ExitCode::from(u8::from(verdict.is_err()))
    }
}
