//! Exercise: blocking work off the runtime (chapter 12).
//!
//! `lookup` below stands for a call into a blocking library, such as a synchronous database
//! driver: it holds its thread for a whole second. `lookup_all` makes three of them, each in a
//! task of its own, and yet they run one after another, and nothing else runs meanwhile. Fix
//! it, so that the calls overlap and the runtime stays free. The checks at the bottom run your
//! code on the real clock, on a runtime with a single thread, as chapter 12 does.
//!
//! Check your work: `cargo run -q --bin exercise -- blocking`, or the Run button.
#![allow(unused)] // The starter leaves things unused until your part is written.

use std::time::Duration;

// ANCHOR: exercise
/// Looks up every id at once, and returns the answers in the order of `ids`.
async fn lookup_all(ids: Vec<u32>) -> Vec<String> {
    let mut tasks = Vec::new();
    for id in ids {
        // A task of its own for each lookup, as asyncio's `create_task` would make.
        tasks.push(tokio::spawn(async move { lookup(id) }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        match task.await {
            Ok(answer) => answers.push(answer),
            // A lookup panicked: panic here too, with its own message. (`into_panic` would
            // itself panic for a task that was cancelled, but nothing here aborts one.)
            Err(error) => std::panic::resume_unwind(error.into_panic()),
        }
    }
    answers
}
// ANCHOR_END: exercise

/// How long a lookup holds its thread.
const CALL: Duration = Duration::from_secs(1);

/// A blocking call, as a synchronous library makes it: it holds its thread until the answer
/// is in. Here it sleeps; the checks note when it ran, and on which thread.
fn lookup(id: u32) -> String {
    let _noted = checks::Call::start();
    std::thread::sleep(CALL);
    format!("record {id}")
}

// ── The checks. They run your code on the real clock, for a few seconds; no need to read on. ──

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    checks::report(checks::run().await)
}

mod checks {
    //! A lock's `unwrap()` here fails only if a check panicked while holding it.
    //!
    //! The margins are wide, for a busy machine. The heartbeat is due every 50 ms; a runtime
    //! that a lookup blocks misses it for CALL (1 s) at least, as `thread::sleep` never ends
    //! early, while a free one is late by what the operating system takes to wake the thread:
    //! a few ms, tens on a loaded machine, 0.3 s seen once beside a dozen compilers on two
    //! cores. The checks pass below half a CALL (0.5 s). Three lookups take 3 s at least one
    //! after another, about 1 s side by side: the checks pass below half the sum (1.5 s).
    use super::*;
    use std::sync::Mutex;
    use std::thread::ThreadId;
    use std::time::Instant;

    const IDS: [u32; 3] = [7, 3, 12];
    const BEAT: Duration = Duration::from_millis(50);
    /// When the heartbeat ticked.
    static TICKS: Mutex<Vec<Instant>> = Mutex::new(Vec::new());
    /// Each lookup: the thread it ran on, when it started and when it ended.
    static CALLS: Mutex<Vec<(ThreadId, Instant, Option<Instant>)>> = Mutex::new(Vec::new());

    /// Notes a lookup's start, and, when dropped, its end.
    pub struct Call(usize);
    impl Call {
        pub fn start() -> Call {
            let mut calls = CALLS.lock().unwrap();
            calls.push((std::thread::current().id(), Instant::now(), None));
            Call(calls.len() - 1)
        }
    }
    impl Drop for Call {
        fn drop(&mut self) {
            CALLS.lock().unwrap()[self.0].2 = Some(Instant::now());
        }
    }

    pub async fn run() -> Result<String, String> {
        tokio::spawn(async {
            loop {
                tokio::time::sleep(BEAT).await;
                TICKS.lock().unwrap().push(Instant::now());
            }
        });
        // The heartbeat ticks, and the blocking pool has made its first thread: starting it
        // up is not the learner's to pay for.
        tokio::task::spawn_blocking(|| ())
            .await
            .expect("an empty closure");
        tokio::time::sleep(BEAT * 2).await;
        let start = Instant::now();
        let task = tokio::spawn(lookup_all(IDS.to_vec()));
        let answers = match tokio::time::timeout(Duration::from_secs(20), task).await {
            Err(_) => Err("lookup_all() still ran after 20 s: is every task awaited?")?,
            Ok(Err(panic)) => {
                let text = message(panic);
                let hint = match text.contains("multi-threaded runtime") {
                    true => ". block_in_place needs that runtime; spawn_blocking works on any",
                    false => "",
                };
                Err(format!("lookup_all() panicked: {text}{hint}"))?
            }
            Ok(Ok(answers)) => answers,
        };
        let end = Instant::now();
        let runtime = std::thread::current().id();
        let calls = CALLS.lock().unwrap().clone();
        let wanted: Vec<String> = IDS.iter().map(|id| format!("record {id}")).collect();
        if answers != wanted {
            Err(format!(
                "lookup_all() returned {answers:?}; expected {wanted:?}, an answer for each id, \
                 in the order of the ids"
            ))?;
        }
        if calls.len() != IDS.len() || calls.iter().any(|call| call.2.is_none_or(|at| at > end)) {
            Err(format!(
                "lookup_all() returned after {} lookups ended, of the {} it should make: \
                 await every one",
                calls
                    .iter()
                    .filter(|call| call.2.is_some_and(|at| at <= end))
                    .count(),
                IDS.len()
            ))?;
        }
        // The longest the heartbeat waited while lookup_all ran: the runtime was blocked so long.
        let mut times: Vec<Instant> = TICKS.lock().unwrap().clone();
        times.retain(|&tick| start < tick && tick < end);
        times.insert(0, start);
        times.push(end);
        let gap = times
            .windows(2)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or_default();
        let (gap, each) = (gap.as_secs_f64(), CALL.as_secs_f64());
        let elapsed = (end - start).as_secs_f64();
        if gap >= each / 2.0 {
            let on_runtime = calls.iter().filter(|call| call.0 == runtime).count();
            let why = match on_runtime {
                0 => "No lookup ran on its thread, but something waited on it without an .await: \
                      a thread's join(), a std lock or channel? Await spawn_blocking's handle"
                    .into(),
                n => format!(
                    "{n} of {} lookups ran on the runtime's own thread, holding it {each:.2} s \
                     each. Hand them to tokio::task::spawn_blocking",
                    calls.len()
                ),
            };
            Err(format!(
                "the runtime was blocked for {gap:.2} s: the heartbeat, due every {:.2} s, \
                 waited that long. {why}",
                BEAT.as_secs_f64()
            ))?;
        }
        if elapsed >= each * IDS.len() as f64 / 2.0 {
            Err(format!(
                "the {} lookups of {each:.2} s took {elapsed:.2} s: they ran one after another. \
                 Give each its own spawn_blocking, and start them all before you await any",
                IDS.len()
            ))?;
        }
        Ok(format!(
            "{} lookups of {each:.2} s took {elapsed:.2} s together; meanwhile the heartbeat, \
             due every {:.2} s, never waited more than {gap:.2} s",
            IDS.len(),
            BEAT.as_secs_f64()
        ))
    }

    /// The message of a panic in a task, as `panic!` or `todo!` gave it.
    fn message(error: tokio::task::JoinError) -> String {
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
