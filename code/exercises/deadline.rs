//! Exercise: one deadline across every retry (chapter 7).
//!
//! `process` below tries a flaky service for one item, up to ATTEMPTS times, and gives each
//! attempt a fresh timeout of ATTEMPT_TIMEOUT. So an item whose service never answers takes
//! ATTEMPTS × ATTEMPT_TIMEOUT, 6 s, though its caller allowed BUDGET, 3 s. Fix it: make one
//! deadline for the item, BUDGET after it starts, and let every attempt share it, each still
//! limited to ATTEMPT_TIMEOUT. The checks at the bottom run five items on tokio's paused clock.
//!
//! Check your work: `cargo run -q --bin exercise -- deadline`, or the Run button.
#![allow(unused)] // The starter leaves things unused until your part is written.

use std::time::Duration;

use tokio::time::Instant;

// ANCHOR: exercise
/// Calls `attempt(item)` until it answers `Ok`, at most ATTEMPTS times, each attempt for at
/// most ATTEMPT_TIMEOUT, and the whole item within BUDGET of its start.
async fn process(item: u32) -> Outcome {
    for _ in 0..ATTEMPTS {
        // A fresh timeout for each attempt: nothing here knows about BUDGET.
        // `Ok(Ok(()))`: it answered in time. `Ok(Err(Refused))` or `Err(Elapsed)`: try again.
        if let Ok(Ok(())) = tokio::time::timeout(ATTEMPT_TIMEOUT, attempt(item)).await {
            return Outcome::Done;
        }
    }
    Outcome::GaveUp
}
// ANCHOR_END: exercise

// ── From chapter 7 (code/ch07_select.rs), as it is there. ──
const ATTEMPTS: u32 = 3;
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the caller is prepared to wait for the whole job, retries included.
const BUDGET: Duration = Duration::from_secs(3);
// ── End of chapter 7's code. ──

/// How an item ended: the service answered, or `process` gave up on it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    Done,
    GaveUp,
}

/// The service's refusal of one attempt.
#[derive(Debug)]
struct Refused;

// ── The checks. They run your code on tokio's paused clock; no need to read on. ──

/// What the service does with each attempt, item by item: after so many seconds, it answers
/// (`true`) or refuses (`false`). HANG stands for never.
const SCRIPT: [&[(f64, bool)]; 5] = [
    &[(0.5, true)],
    &[(HANG, true), (0.5, true)],
    &[(HANG, true), (HANG, true), (HANG, true)],
    &[(HANG, true), (1.5, true)],
    &[(0.2, false), (0.2, false), (0.2, true)],
];
const HANG: f64 = 1000.0;
/// How each item should end, and when.
const EXPECTED: [(Outcome, f64); 5] = [
    (Outcome::Done, 0.5),
    (Outcome::Done, 2.5),
    (Outcome::GaveUp, 3.0),
    (Outcome::GaveUp, 3.0),
    (Outcome::Done, 0.6),
];

/// One attempt at the service, as the checks see it: it notes when it starts, and when it
/// ends or is dropped.
async fn attempt(item: u32) -> Result<(), Refused> {
    let call = checks::Call::start(item);
    let script = SCRIPT[item as usize].get(call.number - 1);
    let (after, answers) = script.copied().unwrap_or((HANG, true));
    tokio::time::sleep(Duration::from_secs_f64(after)).await;
    if answers { Ok(()) } else { Err(Refused) }
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> std::process::ExitCode {
    checks::START.get_or_init(Instant::now);
    let mut items = tokio::task::JoinSet::new();
    for item in 0..SCRIPT.len() as u32 {
        items.spawn(async move { checks::ended(item, process(item).await) });
    }
    // `join_all` re-raises a panic in `process`; the checks' task reports it.
    let all = tokio::spawn(items.join_all());
    let verdict = match tokio::time::timeout(Duration::from_secs(10_000), all).await {
        Err(_) => Err("process() still ran after 10000 s: does every attempt have a limit?".into()),
        Ok(Err(panic)) => {
            let message = checks::message(panic);
            let hint = if message.contains("after completion") {
                ": an attempt that had ended was awaited again. Make each attempt a fresh call"
            } else {
                ""
            };
            Err(format!("process() panicked: {message}{hint}"))
        }
        Ok(Ok(_)) => checks::judge(),
    };
    checks::report(verdict)
}

mod checks {
    //! A lock's `unwrap()` here fails only if a check panicked while holding it.
    use super::{ATTEMPTS, BUDGET, EXPECTED, Outcome};
    use std::sync::{Mutex, OnceLock};

    pub static START: OnceLock<tokio::time::Instant> = OnceLock::new();
    /// One attempt: its item, its number for that item, when it started and when it ended
    /// (`None` while it runs).
    type Attempt = (u32, usize, f64, Option<f64>);
    static CALLS: Mutex<Vec<Attempt>> = Mutex::new(Vec::new());
    /// Every item that ended: how, and when.
    static ENDED: Mutex<Vec<(u32, Outcome, f64)>> = Mutex::new(Vec::new());

    pub fn now() -> f64 {
        START.get().expect("set by main").elapsed().as_secs_f64()
    }

    /// One attempt in progress: dropping it, however the attempt ends, notes the time.
    pub struct Call {
        index: usize,
        pub number: usize,
    }

    impl Call {
        pub fn start(item: u32) -> Call {
            let mut calls = CALLS.lock().unwrap();
            let number = calls.iter().filter(|call| call.0 == item).count() + 1;
            calls.push((item, number, now(), None));
            let index = calls.len() - 1;
            Call { index, number }
        }
    }

    impl Drop for Call {
        fn drop(&mut self) {
            CALLS.lock().unwrap()[self.index].3 = Some(now());
        }
    }

    pub fn ended(item: u32, outcome: Outcome) {
        ENDED.lock().unwrap().push((item, outcome, now()));
    }

    pub fn judge() -> Result<String, String> {
        let calls = CALLS.lock().unwrap().clone();
        // Every item ended (`main` waited for them all), and every item started at 0 s: every
        // deadline is at BUDGET.
        let mut ended = ENDED.lock().unwrap().clone();
        ended.sort_by_key(|e| e.0);
        let (budget, limit) = (BUDGET.as_secs_f64(), super::ATTEMPT_TIMEOUT.as_secs_f64());
        for &(item, outcome, end) in &ended {
            if end > budget + 1e-6 && end <= budget + 2e-3 {
                // Late by a millisecond or two: the paused clock is exact, so this is a deadline
                // read from the real clock, which tokio's timer rounded up to its next 1 ms tick.
                return Err(format!(
                    "item {item} ended at {end:.6} s, {:.6} s past its deadline at {budget:.6} \
                     s, a hair late: is the deadline a std::time::Instant (perhaps converted \
                     with .into())? On tokio's clock, take it from tokio::time::Instant::now()",
                    end - budget
                ));
            }
            if end > budget + 1e-6 {
                let how = match outcome {
                    Outcome::Done => "finished",
                    Outcome::GaveUp => "gave up",
                };
                return Err(format!(
                    "item {item} {how} at {end:.2} s, {:.2} s past its deadline at {budget:.2} s: \
                     each attempt had a fresh timeout. Make one deadline for the item before its \
                     first attempt, and let every attempt share it (timeout_at)",
                    end - budget
                ));
            }
        }
        for (index, &(item, number, start, stop)) in calls.iter().enumerate() {
            let item_end = ended[item as usize].2;
            let stop = stop.unwrap_or(f64::INFINITY);
            let next = calls[index + 1..].iter().find(|call| call.0 == item);
            if start >= budget - 1e-6 {
                return Err(format!(
                    "item {item} started attempt {number} at {start:.2} s, when its deadline \
                     ({budget:.2} s) had come: give up once no time is left"
                ));
            }
            if next.is_some_and(|next| next.2 < stop - 1e-6) || stop > item_end + 1e-6 {
                return Err(format!(
                    "item {item}'s attempt {number} ran on after it timed out: a timed-out attempt \
                     must be cancelled. Is it spawned? Dropping a JoinHandle leaves its task running"
                ));
            }
            if stop - start > limit + 1e-6 {
                return Err(format!(
                    "item {item}'s attempt {number} ran for {:.2} s, longer than ATTEMPT_TIMEOUT \
                     ({limit:.0} s): is each attempt a fresh call to attempt(), limited to the \
                     sooner of ATTEMPT_TIMEOUT from its start and the item's deadline?",
                    stop - start
                ));
            }
        }
        for (&(item, outcome, end), &(expected, at)) in ended.iter().zip(&EXPECTED) {
            let tried = calls.iter().filter(|call| call.0 == item).count();
            if tried as u32 > ATTEMPTS {
                return Err(format!(
                    "item {item} had {tried} attempts, at most ATTEMPTS (3) may"
                ));
            }
            let right = outcome == expected && (end - at).abs() < 1e-6;
            if !right && outcome == Outcome::GaveUp {
                return Err(format!(
                    "item {item} gave up at {end:.2} s after {tried} attempt(s), with {:.2} s \
                     left before its deadline: a refusal or a timeout is worth another attempt, \
                     while there is time and attempts are left",
                    budget - end
                ));
            }
            if !right {
                return Err(format!(
                    "item {item}: {outcome:?} at {end:.2} s, not {expected:?} at {at:.2} s"
                ));
            }
        }
        let done = ended.iter().filter(|e| e.1 == Outcome::Done);
        Ok(format!(
            "5 items: {} done, the last at {:.2} s; {} given up at their deadline, {budget:.2} s, \
             their last attempt cancelled there; {} attempts, each a fresh call within its limit",
            done.clone().count(),
            done.map(|e| e.2).fold(0.0, f64::max),
            ended.iter().filter(|e| e.1 == Outcome::GaveUp).count(),
            calls.len()
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
