//! Exercise: a rate limiter (chapter 8).
//!
//! Write `RateLimiter`, which hands out turns to every job that shares it: at most RATE a
//! second, each turn at least 1/RATE s after the one before. Then write `job`, which waits for
//! its turn and makes its request. `lock`, below the exercise, is chapter 8's way to lock a std
//! `Mutex`. The checks at the bottom start 50 jobs at once, then 50 more after a pause, all
//! sharing one limiter, on tokio's paused clock: they look at when each request started, and at
//! how many ran at the same time.
//!
//! Check your work: `cargo run -q --bin exercise -- rate`, or the Run button.
#![allow(unused)] // The starter leaves things unused until your part is written.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

// ANCHOR: exercise
/// Hands out turns to every job that shares it: at most `per_second` a second, each at least
/// `1 / per_second` s after the one before.
struct RateLimiter {
    // What the limiter must remember from one turn to the next.
}

impl RateLimiter {
    fn new(per_second: f64) -> RateLimiter {
        todo!("make a limiter whose first turn is now")
    }

    /// Waits for this caller's turn.
    async fn wait_turn(&self) {
        todo!("take the next free turn, move it on for the caller after you, then wait for it")
    }
}

/// One job: waits for its turn at `limiter`, then makes its request.
async fn job(limiter: Arc<RateLimiter>, number: u32) {
    todo!("wait for a turn, then call request(number)")
}
// ANCHOR_END: exercise

/// Turns a second, for every job together.
const RATE: f64 = 10.0;

// ── From chapter 8 (code/ch08_adaptive.rs), as it is there. ──
/// Locks a std mutex. Every critical section here is a few arithmetic steps with no `.await`
/// and no panic inside, so a poisoned lock cannot hold a half-updated state: take it anyway.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
// ── End of chapter 8's code. ──

// ── The checks. They run your code on tokio's paused clock; no need to read on. ──

/// Jobs in each wave; the second wave comes at SECOND_WAVE, after the limiter has been idle,
/// and between two ticks of the first wave's grid of tenths, so that a turn kept on that grid
/// would come less than 1/RATE s after the wave's first.
const WAVE: u32 = 50;
const SECOND_WAVE: f64 = 10.05;
/// How long a request takes, in seconds.
const REQUEST_TIME: f64 = 1.0;

/// The request, as the checks see it: it notes when it starts and ends.
async fn request(number: u32) {
    let start = checks::now();
    tokio::time::sleep(Duration::from_secs_f64(REQUEST_TIME)).await;
    checks::RAN
        .lock()
        .unwrap()
        .push((number, start, checks::now()));
}

/// Both waves, every job a task of its own, sharing one limiter.
async fn waves() {
    let limiter = Arc::new(RateLimiter::new(RATE));
    let mut jobs = tokio::task::JoinSet::new();
    for number in 0..WAVE {
        jobs.spawn(job(Arc::clone(&limiter), number));
    }
    tokio::time::sleep(Duration::from_secs_f64(SECOND_WAVE)).await;
    for number in WAVE..2 * WAVE {
        jobs.spawn(job(Arc::clone(&limiter), number));
    }
    // Re-raises a panic in a job.
    jobs.join_all().await;
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> std::process::ExitCode {
    checks::START.get_or_init(Instant::now);
    let verdict =
        match tokio::time::timeout(Duration::from_secs(10_000), tokio::spawn(waves())).await {
            Err(_) => Err(
                "the jobs still ran after 10000 s: does every job get a turn? \
            Is a lock held while a job waits for something that needs the same lock?"
                    .to_string(),
            ),
            Ok(Err(panic)) => Err(format!("your code panicked: {}", checks::message(panic))),
            Ok(Ok(())) => checks::judge(checks::now()),
        };
    checks::report(verdict)
}

mod checks {
    //! A lock's `unwrap()` here fails only if a check panicked while holding it.
    use super::{RATE, SECOND_WAVE, WAVE};
    use std::sync::{Mutex, OnceLock};

    pub static START: OnceLock<tokio::time::Instant> = OnceLock::new();
    /// Every request: its job's number, when it started and when it ended.
    pub static RAN: Mutex<Vec<(u32, f64, f64)>> = Mutex::new(Vec::new());

    pub fn now() -> f64 {
        START.get().expect("set by main").elapsed().as_secs_f64()
    }

    pub fn judge(returned: f64) -> Result<String, String> {
        const SLACK: f64 = 1e-6;
        let mut ran = RAN.lock().unwrap().clone();
        ran.sort_by(|a, b| a.1.total_cmp(&b.1));
        let mut times = vec![0; 2 * WAVE as usize];
        for &(number, _, _) in &ran {
            times[number as usize] += 1;
        }
        if let Some(job) = times.iter().position(|&count| count != 1) {
            return Err(format!(
                "job {job} made {} requests: each job makes one",
                times[job]
            ));
        }
        // The most starts in one second: from each start, count those less than 1 s later.
        for &(_, first, _) in &ran {
            let within: Vec<f64> = ran
                .iter()
                .map(|r| r.1)
                .filter(|&s| s >= first && s < first + 1.0 - SLACK)
                .collect();
            if within.len() as f64 > RATE {
                let last = within[within.len() - 1];
                let why = if first < SECOND_WAVE - SLACK {
                    "do all the jobs share one schedule of turns, each 1/RATE s after the one before?"
                } else if last - first < SLACK {
                    "after a pause, are the turns nobody took handed out at once? A turn is never \
                     earlier than now (a tokio `interval` does, by default: see MissedTickBehavior)"
                } else {
                    "after the pause, are the turns still on the old grid, the second less than \
                     1/RATE s after the first? Give each turn 1/RATE s after the last one given, \
                     or now if that has passed (an `interval` with MissedTickBehavior::Skip keeps \
                     to its grid)"
                };
                let when = if last - first < SLACK {
                    format!("at {first:.2} s")
                } else {
                    format!("between {first:.2} s and {last:.2} s")
                };
                return Err(format!(
                    "{} requests started {when}, more than RATE ({RATE}) in one second: {why}",
                    within.len()
                ));
            }
        }
        let gap = 1.0 / RATE;
        for pair in ran.windows(2) {
            let ((a, first, _), (b, second, _)) = (pair[0], pair[1]);
            if second - first < gap - 1e-3 {
                return Err(format!(
                    "jobs {a} and {b} started {:.3} s apart, less than 1/RATE ({gap:.2} s): each \
                     turn must be at least 1/RATE s after the one before",
                    second - first
                ));
            }
        }
        // The most requests running at once: at each start, count those begun and not ended.
        let most = ran
            .iter()
            .map(|&(_, start, _)| {
                ran.iter()
                    .filter(|&&(_, s, e)| s <= start && start < e)
                    .count()
            })
            .max()
            .unwrap_or(0);
        if most == 1 {
            return Err(format!(
                "elapsed {returned:.2} s, one request at a time: does the limiter hold its lock \
                 while the job runs? Take the turn, let the lock go, then make the request"
            ));
        }
        let arrived = [0.0, SECOND_WAVE];
        for (wave, &at) in arrived.iter().enumerate() {
            let first = ran
                .iter()
                .map(|r| r.1)
                .find(|&s| s >= at - SLACK)
                .unwrap_or(f64::NAN);
            if (first - at).abs() > SLACK {
                return Err(format!(
                    "the first request of wave {} started at {first:.2} s, though the limiter \
                     was idle when its jobs came at {at:.2} s: a job that finds the limiter idle \
                     goes at once, its turn is now",
                    wave + 1
                ));
            }
        }
        let expected = SECOND_WAVE + (WAVE as f64 - 1.0) / RATE + super::REQUEST_TIME;
        if returned > expected + SLACK {
            return Err(format!(
                "elapsed {returned:.2} s, not {expected:.2}: the jobs waited longer than the \
                 rate asks. Are the turns 1/RATE s apart, and no more?"
            ));
        }
        Ok(format!(
            "100 requests, each once; never more than {RATE} in a second, each {gap:.2} s after \
             the one before; up to {most} running at once; elapsed {returned:.2} s"
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
