//! Exercise: a spawned task that borrows (chapter 3).
//!
//! `run` asks a weather service about five cities at once, one spawned task per city. It does
//! not compile: each task borrows `service_url` and `city`, which belong to `run`. Make each
//! task own what it uses, so that the compiler accepts it and all five still run at once. The
//! checks at the bottom run your code on tokio's paused clock, so the calls' seconds pass at
//! once.
//!
//! Check your work: `cargo run -q --bin exercise -- borrow`, or the Run button.
#![allow(unused)] // The starter leaves things unused until your part is written.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

// ANCHOR: exercise
/// Asks the service about every city, one spawned task each, and returns the five reports.
async fn run() -> Vec<String> {
    // One URL for every task: an `Arc` lets them share it, each task owning a handle.
    let service_url = Arc::new(String::from("https://weather.example/v1"));
    let cities = ["Oslo", "Lima", "Pune", "Kyiv", "Perth"].map(String::from);
    let mut tasks = JoinSet::new();
    for city in cities {
        // A handle of this task's own: a new pointer to the same `String`, not a copy of it.
        let service_url = Arc::clone(&service_url);
        // `move`: the task owns its handle and its `city` (the loop gives a new one each
        // time), so it borrows nothing from `run`, and `spawn` accepts it.
        tasks.spawn(async move { fetch(&service_url, &city).await });
    }
    let mut reports = Vec::new();
    while let Some(finished) = tasks.join_next().await {
        match finished {
            Ok(report) => reports.push(report),
            Err(error) => eprintln!("a task failed: {error}"),
        }
    }
    reports
}
// ANCHOR_END: exercise

// ── From chapter 3 (code/ch03_gather.rs), as it is there. ──
const ONE_SECOND: Duration = Duration::from_secs(1);
// ── End of chapter 3's code. ──

// ── The checks. They run your code on tokio's paused clock; no need to read on. ──

/// The service, as the checks see it: a call takes 1 s, and notes which task made it, with
/// which URL and city, and when it started and ended.
async fn fetch(service_url: &str, city: &str) -> String {
    let start = checks::now();
    tokio::time::sleep(ONE_SECOND).await;
    checks::CALLS.lock().unwrap().push(checks::Call {
        task: tokio::task::id(),
        url: service_url.to_string(),
        city: city.to_string(),
        start,
        end: checks::now(),
    });
    format!("{city}: sunny")
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> std::process::ExitCode {
    checks::START.get_or_init(tokio::time::Instant::now);
    let learner = tokio::spawn(run());
    let run_task = learner.id();
    let verdict = match tokio::time::timeout(Duration::from_secs(10_000), learner).await {
        Err(_) => Err("run() still ran after 10000 s: what is it waiting for?".to_string()),
        Ok(Err(panic)) => Err(format!("run() panicked: {}", checks::message(panic))),
        Ok(Ok(reports)) => {
            let returned = checks::now();
            // Anything run() left running (a task spawned, never awaited) shows up meanwhile.
            tokio::time::sleep(Duration::from_secs(100)).await;
            checks::judge(returned, run_task, reports)
        }
    };
    checks::report(verdict)
}

mod checks {
    //! A lock's `unwrap()` here fails only if a check panicked while holding it.
    use std::sync::{Mutex, OnceLock};
    use tokio::task::Id;

    pub static START: OnceLock<tokio::time::Instant> = OnceLock::new();
    /// Every call to the service that finished.
    pub static CALLS: Mutex<Vec<Call>> = Mutex::new(Vec::new());

    #[derive(Clone)]
    pub struct Call {
        /// The tokio task that made the call.
        pub task: Id,
        pub url: String,
        pub city: String,
        pub start: f64,
        pub end: f64,
    }

    pub fn now() -> f64 {
        START.get().expect("set by main").elapsed().as_secs_f64()
    }

    pub fn judge(returned: f64, run_task: Id, mut reports: Vec<String>) -> Result<String, String> {
        let calls = CALLS.lock().unwrap().clone();
        if calls.is_empty() {
            return Err(format!(
                "run() returned at {returned:.2} s and no call to the service finished: \
                 dropping a JoinSet aborts its tasks. Is join_next awaited until it returns None?"
            ));
        }
        let cities = ["Oslo", "Lima", "Pune", "Kyiv", "Perth"];
        for city in cities {
            let asked: Vec<&Call> = calls.iter().filter(|call| call.city == city).collect();
            match asked[..] {
                [] => return Err(format!("no task asked about {city}: one per city")),
                [call] if call.url != "https://weather.example/v1" => {
                    return Err(format!(
                        "the task for {city} called {:?}, not the service's URL: each task \
                         needs the whole URL, a clone of its own or a shared Arc",
                        call.url
                    ));
                }
                [call] if call.end > returned => {
                    return Err(format!(
                        "run() returned at {returned:.2} s, before the call for {city} ended \
                         at {:.2} s: collect every task's report before returning",
                        call.end
                    ));
                }
                [_] => {}
                _ => {
                    return Err(format!(
                        "{} tasks asked about {city}: one is enough",
                        asked.len()
                    ));
                }
            }
        }
        if calls.iter().any(|call| call.start > 0.0) {
            let starts: Vec<_> = calls
                .iter()
                .map(|call| format!("{:.2}", call.start))
                .collect();
            return Err(format!(
                "elapsed {returned:.2} s, not 1.00: the calls started at {} s, not all at once. \
                 Is each awaited inside the loop? Spawn all five, then collect",
                starts.join(", ")
            ));
        }
        if calls.iter().any(|call| call.task == run_task) {
            return Err(
                "the calls ran inside run()'s own task, not in tasks of their own: \
                keep `tasks.spawn`, and give each task what it needs to own"
                    .into(),
            );
        }
        reports.sort();
        let mut expected: Vec<String> = cities.map(|city| format!("{city}: sunny")).into();
        expected.sort();
        if reports != expected {
            return Err(format!(
                "run() returned {reports:?}: collect every task's report"
            ));
        }
        Ok(format!(
            "five spawned tasks, one per city, each with the service's URL; \
             all started at 0.00 s; elapsed {returned:.2} s; 5 reports"
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
