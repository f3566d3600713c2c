//! Exercise: a permit before the spawn (chapter 6).
//!
//! `run` below works through chapter 6's 1000 jobs of 1 s with a `Semaphore` of 50 permits and a
//! task per job in a `JoinSet`. It keeps to 50 jobs in flight and takes 21 s (the checks make
//! job 0 a slow one, of 5 s), as it should, and yet it is wrong: it spawns all 1000 tasks at
//! once, and each one waits for its permit inside. Fix it, so that only the jobs in flight have
//! a task, and finished tasks are collected as the loop goes. The checks at the bottom run your
//! code on tokio's paused clock, so the 21 s pass at once.
//!
//! Check your work: `cargo run -q --bin exercise -- semaphore`, or the Run button.
#![allow(unused)] // The starter leaves things unused until your part is written.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::{JoinError, JoinSet};

// ANCHOR: exercise
/// Runs every job of `tasks(TASKS_TO_PROCESS)` with `normal_task`, each in a task of its own,
/// at most MOST_IN_FLIGHT at a time; passes each finished task's result to `report`, and
/// returns once every job is done.
async fn run() {
    let permits = Arc::new(Semaphore::new(MOST_IN_FLIGHT));
    let mut running = JoinSet::new();
    for task in tasks(TASKS_TO_PROCESS) {
        let permits = Arc::clone(&permits);
        running.spawn(async move {
            // Each task waits for a permit before its job: never more than 50 jobs run.
            // `acquire_owned` fails only once the semaphore is closed, which nothing here does.
            let Ok(_permit) = permits.acquire_owned().await else {
                return;
            };
            normal_task(task.number, task.time_to_execute).await;
        });
        // Collect the tasks already finished, without waiting for any.
        while let Some(finished) = running.try_join_next() {
            report(finished);
        }
    }
    while let Some(finished) = running.join_next().await {
        report(finished);
    }
}
// ANCHOR_END: exercise

// ── From chapter 6 (code/ch06_bounded.rs), as it is there. ──
const TASKS_TO_PROCESS: u32 = 1000;
/// At most this many jobs in flight: chapter 4's 50 consumers, as a number.
const MOST_IN_FLIGHT: usize = 50;
// ── End of chapter 6's code. ──

// ── From chapter 6 (code/ch06_bounded.rs), as it is there. ──
/// A description of one job, as in chapter 4: plain data, not a future.
#[derive(Debug, Clone, Copy)]
struct Task {
    number: u32,
    time_to_execute: Duration,
}

/// The work, as a lazy iterator: each description is made when the next one is asked for,
/// so the whole list never exists at once. A file's lines can be read the same way (`--from`).
fn tasks(count: u32) -> impl Iterator<Item = Task> {
    (0..count).map(|number| Task {
        number,
        time_to_execute: Duration::from_secs(1),
    })
}
// ── End of chapter 6's code. ──

// ── The checks. They run your code on tokio's paused clock; no need to read on. ──

/// Job 0 takes this long, whatever it is given: a slow request, as real services have.
const SLOW_JOB: Duration = Duration::from_secs(5);
/// When a pool of 50 ends: 49 places run 245 jobs while job 0 runs, then 50 run the 754 left.
const POOL_ENDS: f64 = 21.0;
/// When batches of 50 would end: the first waits 5 s for job 0, the 19 others take 1 s each.
const BATCHES_END: f64 = 24.0;

/// The job, as the checks see it: it notes when it starts and ends, and, as it starts, how many
/// tasks are alive and how many finished ones wait in the JoinSet, uncollected.
async fn normal_task(task_number: u32, time_to_execute: Duration) {
    let start = checks::started();
    let time = if task_number == 0 {
        SLOW_JOB
    } else {
        time_to_execute
    };
    tokio::time::sleep(time).await;
    checks::ended(task_number, start);
}

/// Chapter 6's `report`, which also counts the results collected.
fn report(finished: Result<(), JoinError>) {
    checks::STATE.lock().unwrap().collected += 1;
    if let Err(error) = finished {
        eprintln!("a job failed: {error}");
    }
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> std::process::ExitCode {
    checks::START.get_or_init(tokio::time::Instant::now);
    let limit = Duration::from_secs(10_000);
    let verdict = match tokio::time::timeout(limit, tokio::spawn(run())).await {
        Err(_) => Err(
            "run() still ran after 10000 s: do the permits go back? A permit returns \
            to the semaphore when it is dropped, as the task that holds it ends"
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
    pub static STATE: Mutex<State> = Mutex::new(State {
        ran: Vec::new(),
        running: 0,
        collected: 0,
        most: (0, 0, 0),
    });

    pub struct State {
        /// Every job that ran: its number, when it started and when it ended.
        ran: Vec<(u32, f64, f64)>,
        running: usize,
        /// How many results went through `report`.
        pub collected: usize,
        /// The most jobs running, tasks alive and results uncollected, as a job started.
        most: (usize, usize, usize),
    }

    pub fn now() -> f64 {
        START.get().expect("set by main").elapsed().as_secs_f64()
    }

    /// Counts a job in, and the tasks alive (less the checks' own, which runs `run()`).
    pub fn started() -> f64 {
        let alive = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
            - 1;
        let mut state = STATE.lock().unwrap();
        state.running += 1;
        let waiting = state.ran.len() - state.collected;
        let (running, most) = (state.running, state.most);
        state.most = (most.0.max(running), most.1.max(alive), most.2.max(waiting));
        now()
    }

    pub fn ended(number: u32, start: f64) {
        let mut state = STATE.lock().unwrap();
        state.running -= 1;
        state.ran.push((number, start, now()));
    }

    pub fn judge(returned: f64) -> Result<String, String> {
        let state = STATE.lock().unwrap();
        let mut times = vec![0; super::TASKS_TO_PROCESS as usize];
        for &(number, _, _) in &state.ran {
            times[number as usize] += 1;
        }
        if let Some(job) = times.iter().position(|&count| count != 1) {
            return Err(format!(
                "job {job} ran {} times: each job must run once",
                times[job]
            ));
        }
        let last_end = state.ran.iter().map(|&(_, _, end)| end).fold(0.0, f64::max);
        if returned < last_end {
            return Err(format!(
                "run() returned at {returned:.2} s, before the last job ended at {last_end:.2} s: \
                 wait for the tasks still in the JoinSet"
            ));
        }
        let (most, alive, waiting) = state.most;
        let limit = super::MOST_IN_FLIGHT;
        if most > limit {
            return Err(format!(
                "{most} jobs ran at once, at most MOST_IN_FLIGHT ({limit}) may: does the permit \
                 move into the task, to live until its job ends? `let _permit = permit;` in the \
                 `async move` block moves it in. A permit the block never uses stays in the loop, \
                 and goes back as the loop moves on: `let _ = permit;` does not use it"
            ));
        }
        if alive > 2 * limit {
            return Err(format!(
                "{alive} tasks alive at once, for {most} jobs in flight: take the permit before \
                 you spawn, so that the loop waits while {limit} jobs run"
            ));
        }
        if waiting > 2 * limit {
            return Err(format!(
                "{waiting} finished tasks waited in the JoinSet at once, uncollected: collect \
                 them as the loop goes (try_join_next), and pass each result to report()"
            ));
        }
        if returned > super::POOL_ENDS + 1e-6 {
            let why = if most == 1 {
                "one job at a time. Does the loop wait for each job before it spawns the next?"
            } else if most < limit {
                "too few jobs at once. Does the semaphore hold MOST_IN_FLIGHT permits?"
            } else {
                &format!(
                    "50 at once, but were they run in batches? A batch waits for its slowest \
                     job (job 0 takes 5 s), and batches end at {:.2} s; a pool starts the next \
                     job as soon as any one ends and hands back its permit",
                    super::BATCHES_END
                )
            };
            return Err(format!(
                "elapsed {returned:.2} s, not {:.2}: {why}",
                super::POOL_ENDS
            ));
        }
        Ok(format!(
            "1000 jobs, each once; at most {most} at once, {alive} tasks alive, {waiting} results \
             uncollected; elapsed {returned:.2} s"
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
