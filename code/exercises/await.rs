//! Exercise: nothing happens until you await (chapter 1).
//!
//! `run` below should time one task of 1 s with chapter 1's `Timer`, and print
//! `elapsed time: 1.00 seconds` once the task is done. It has the two mistakes chapter 1 warns
//! about: a future that is never awaited, and a timer that is dropped the moment it starts.
//! Fix them. The checks at the bottom run your code on tokio's paused clock, so the task's
//! second passes at once.
//!
//! Check your work: `cargo run -q --bin exercise -- await`, or the Run button.
#![allow(unused)] // The starter leaves things unused until your part is written.
#![warn(unused_must_use, let_underscore_drop)] // But these two warn of this exercise's bugs.

use std::time::Duration;

use tokio::time::Instant;

// ANCHOR: exercise
/// Starts a timer, runs one task of 1 s, and lets the timer report once the task is done.
async fn run() {
    let _ = Timer::start();
    normal_task(0, Duration::from_secs(1));
}
// ANCHOR_END: exercise

/// Chapter 1's timer: it prints how long it lived when it is dropped, at the end of its scope.
/// It has one line more than chapter 1's, which tells the checks what it printed.
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
        checks::timer_reported(self.0);
    }
}

// ── The checks. They run your code on tokio's paused clock; no need to read on. ──

/// Chapter 1's task, as the checks see it: it also notes when it starts and ends.
async fn normal_task(task_number: u32, time_to_execute: Duration) {
    checks::STARTED.lock().unwrap().push(checks::now());
    tokio::time::sleep(time_to_execute).await;
    println!(
        "processed task with task_number={task_number} time_to_execute_in_seconds={} behavior=normal-sleep",
        time_to_execute.as_secs_f64()
    );
    checks::ENDED.lock().unwrap().push(checks::now());
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> std::process::ExitCode {
    checks::START.get_or_init(Instant::now);
    let learner = tokio::spawn(async {
        run().await;
        checks::now()
    });
    let verdict = match tokio::time::timeout(Duration::from_secs(10_000), learner).await {
        Err(_) => Err("run() still ran after 10000 s: what is it waiting for?".to_string()),
        Ok(Err(panic)) => Err(format!("run() panicked: {}", checks::message(panic))),
        Ok(Ok(returned)) => {
            // Anything run() left running (a task spawned, never awaited) shows up meanwhile.
            tokio::time::sleep(Duration::from_secs(100)).await;
            checks::judge(returned)
        }
    };
    checks::report(verdict)
}

mod checks {
    //! A lock's `unwrap()` here fails only if a check panicked while holding it.
    use std::sync::{Mutex, OnceLock};
    use tokio::time::Instant;

    pub static START: OnceLock<Instant> = OnceLock::new();
    /// When the task started, and when it ended, once for each time it ran.
    pub static STARTED: Mutex<Vec<f64>> = Mutex::new(Vec::new());
    pub static ENDED: Mutex<Vec<f64>> = Mutex::new(Vec::new());
    /// Each report of a timer: when it was started, and when it reported.
    static TIMER: Mutex<Vec<(f64, f64)>> = Mutex::new(Vec::new());

    pub fn now() -> f64 {
        seconds(Instant::now())
    }

    fn seconds(instant: Instant) -> f64 {
        let start = *START.get().expect("set by main");
        instant.duration_since(start).as_secs_f64()
    }

    pub fn timer_reported(started: Instant) {
        TIMER.lock().unwrap().push((seconds(started), now()));
    }

    pub fn judge(returned: f64) -> Result<String, String> {
        let started = STARTED.lock().unwrap().clone();
        let ended = ENDED.lock().unwrap().clone();
        let timer = TIMER.lock().unwrap().clone();
        let start = match started[..] {
            [] => {
                return Err(
                    "the task never ran: calling an async fn only builds a future, \
                    and a future does nothing until it is awaited. Is `.await` after the call?"
                        .into(),
                );
            }
            [start] => start,
            _ => return Err(format!("the task ran {} times: run it once", started.len())),
        };
        let Some(&end) = ended.first() else {
            return Err(format!("the task started at {start:.2} s and never ended"));
        };
        if returned < end {
            return Err(format!(
                "run() returned at {returned:.2} s, before the task ended at {end:.2} s: \
                 the task ran on its own. Was it spawned and never awaited? `.await` it in run"
            ));
        }
        let (timer_start, reported) = match timer[..] {
            [] => {
                return Err("the timer never reported: start one with `Timer::start()` \
                    at the top of run, and keep it to the end"
                    .into());
            }
            [one] => one,
            _ => return Err(format!("{} timers reported: one is enough", timer.len())),
        };
        let elapsed = reported - timer_start;
        if reported < end {
            return Err(format!(
                "the timer reported {elapsed:.2} s at {reported:.2} s, before the task ended \
                 at {end:.2} s: it was dropped too soon. Is it bound to a name, `_timer`, that \
                 lives to the end of run? `let _ = Timer::start();` drops the new timer at once: \
                 `_` binds nothing, and the timer is a temporary"
            ));
        }
        if timer_start > start {
            return Err(format!(
                "the timer reported {elapsed:.2} s: it started at {timer_start:.2} s, after \
                 the task began at {start:.2} s. Start it before the task"
            ));
        }
        if elapsed > end - start {
            return Err(format!(
                "the timer reported {elapsed:.2} s for a task of {:.2} s: time the task, \
                 and nothing else",
                end - start
            ));
        }
        Ok(format!(
            "the task ran once, from {start:.2} s to {end:.2} s; the timer reported \
             {elapsed:.2} s when run() returned, at {returned:.2} s"
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
