//! Exercise: five at once, with join_all and then with a JoinSet (chapter 3).
//!
//! `one_after_another` runs five tasks of 1 s the way chapter 2 does, each awaited before the
//! next starts: 5 s. Write `with_join_all` and `with_join_set`, which run the same five tasks
//! at once, in 1 s, and return the five results. The checks at the bottom run your code on
//! tokio's paused clock, so those seconds pass at once.
//!
//! Check your work: `cargo run -q --bin exercise -- join`, or the Run button.
#![allow(unused)] // The starter leaves things unused until your part is written.

use std::time::Duration;

use tokio::task::JoinSet;

// ANCHOR: exercise
/// Chapter 2's way, as a model: each task is awaited before the next is created. 5 s.
async fn one_after_another() -> Vec<String> {
    let mut results = Vec::new();
    for task_number in 0..5 {
        results.push(normal_task(task_number, ONE_SECOND).await);
    }
    results
}

/// The same five tasks at once, with `futures::future::join_all`. 1 s.
async fn with_join_all() -> Vec<String> {
    todo!("build the five futures without awaiting them, then await them all with join_all")
}

/// The same five tasks at once, each spawned into a `JoinSet`. 1 s.
async fn with_join_set() -> Vec<String> {
    let mut tasks: JoinSet<String> = JoinSet::new();
    todo!("spawn the five tasks into `tasks`, then collect each result with join_next")
}
// ANCHOR_END: exercise

// ── From chapter 3 (code/ch03_gather.rs), as it is there. ──
const ONE_SECOND: Duration = Duration::from_secs(1);
// ── End of chapter 3's code. ──

// ── The checks. They run your code on tokio's paused clock; no need to read on. ──

/// Chapter 3's task, as the checks see it: it notes when it starts and ends, and returns a
/// result, as a request would.
async fn normal_task(task_number: u32, time_to_execute: Duration) -> String {
    checks::note(&checks::STARTED, task_number);
    tokio::time::sleep(time_to_execute).await;
    checks::note(&checks::ENDED, task_number);
    format!("result {task_number}")
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> std::process::ExitCode {
    let verdict = async {
        let summary = checks::judge("with_join_all", with_join_all).await?;
        println!("✓ with_join_all: {summary}");
        let summary = checks::judge("with_join_set", with_join_set).await?;
        Ok(format!("with_join_set: {summary}"))
    };
    checks::report(verdict.await)
}

mod checks {
    //! A lock's `unwrap()` here fails only if a check panicked while holding it.
    use std::sync::Mutex;
    use std::time::Duration;
    use tokio::time::Instant;

    /// When the function being checked was called.
    static BEGAN: Mutex<Option<Instant>> = Mutex::new(None);
    /// Each task that started, and each that ended: its number, and when.
    pub static STARTED: Mutex<Vec<(u32, f64)>> = Mutex::new(Vec::new());
    pub static ENDED: Mutex<Vec<(u32, f64)>> = Mutex::new(Vec::new());

    /// Seconds since the function being checked was called.
    fn now() -> f64 {
        let began = BEGAN.lock().unwrap().expect("set by judge");
        began.elapsed().as_secs_f64()
    }

    pub fn note(times: &Mutex<Vec<(u32, f64)>>, task_number: u32) {
        times.lock().unwrap().push((task_number, now()));
    }

    /// Runs one of the learner's functions as a task, and judges what its five tasks did.
    pub async fn judge<F>(name: &str, function: fn() -> F) -> Result<String, String>
    where
        F: Future<Output = Vec<String>> + Send + 'static,
    {
        *BEGAN.lock().unwrap() = Some(Instant::now());
        STARTED.lock().unwrap().clear();
        ENDED.lock().unwrap().clear();
        let learner = tokio::spawn(function());
        let outcome = tokio::time::timeout(Duration::from_secs(10_000), learner).await;
        let returned = now();
        let mut results = match outcome {
            Err(_) => return Err(format!("{name}() still ran after 10000 s")),
            Ok(Err(panic)) => return Err(format!("{name}() panicked: {}", message(panic))),
            Ok(Ok(results)) => results,
        };
        // Anything left running (a task spawned, never awaited) shows up meanwhile.
        tokio::time::sleep(Duration::from_secs(100)).await;
        let started = STARTED.lock().unwrap().clone();
        let ended = ENDED.lock().unwrap().clone();
        if started.is_empty() {
            let why = if name == "with_join_all" {
                "futures do nothing until they are polled: is join_all(...) awaited?"
            } else {
                "dropping a JoinSet aborts its tasks: is join_next awaited until it returns None?"
            };
            return Err(format!(
                "{name}() returned at {returned:.2} s and no task ran: {why}"
            ));
        }
        for number in 0..5 {
            match started.iter().filter(|&&(n, _)| n == number).count() {
                0 => return Err(format!("{name}(): task {number} never ran")),
                1 => {}
                times => {
                    return Err(format!(
                        "{name}(): task {number} ran {times} times: once is enough"
                    ));
                }
            }
            let Some(&(_, end)) = ended.iter().find(|&&(n, _)| n == number) else {
                return Err(format!(
                    "{name}(): task {number} started and never ended: was it aborted when the \
                     JoinSet was dropped? Await join_next until it returns None"
                ));
            };
            if end > returned {
                return Err(format!(
                    "{name}() returned at {returned:.2} s, before task {number} ended at \
                     {end:.2} s: wait for every task before returning"
                ));
            }
        }
        if started.iter().any(|&(_, start)| start > 0.0) {
            let starts: Vec<_> = started.iter().map(|(_, t)| format!("{t:.2}")).collect();
            let shape = if started.iter().filter(|&&(_, start)| start == 0.0).count() == 1 {
                "one after another. Is each awaited inside the loop?"
            } else {
                "not all at once. Is any awaited inside the loop?"
            };
            return Err(format!(
                "{name}(): elapsed {returned:.2} s, not 1.00: the tasks started at {} s, {shape} \
                 Start all five, then await them together",
                starts.join(", ")
            ));
        }
        let last_end = ended.iter().map(|&(_, end)| end).fold(0.0, f64::max);
        if returned > last_end + 1e-6 {
            return Err(format!(
                "{name}(): elapsed {returned:.2} s, not 1.00: the five tasks had all ended at \
                 {last_end:.2} s. What does it wait for after them? Return once the last is done"
            ));
        }
        results.sort();
        let expected: Vec<String> = (0..5).map(|n| format!("result {n}")).collect();
        if results != expected {
            return Err(format!(
                "{name}() returned {results:?}, not the five results: collect what each task returns"
            ));
        }
        Ok(format!(
            "five tasks, each once, all started at 0.00 s; elapsed {returned:.2} s; 5 results"
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
