//! Exercise: retries that retry (chapter 5).
//!
//! Write `retry`, as chapter 5's `--attempts 3 --timeout 2` run retries: give an attempt
//! `policy.timeout`, and if it runs out, start a new attempt, at most `policy.attempts` in all.
//! A future can be awaited only once, so `retry` takes a closure, and calls it for a fresh
//! future at every attempt. The checks at the bottom run your code on tokio's paused clock, and
//! watch each attempt at the three jobs in `JOBS`: when it started, and how it ended.
//!
//! Check your work: `cargo run -q --bin exercise -- retries`, or the Run button.
#![allow(unused)] // The starter leaves things unused until your part is written.

use std::time::Duration;

// ANCHOR: exercise
/// Calls `attempt` for a new future, gives it `policy.timeout`, and starts again while the
/// attempts time out, `policy.attempts` times at most. Says which attempt got through, if any.
async fn retry<F, Fut>(mut attempt: F, policy: Policy) -> Retried
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    for number in 1..=policy.attempts {
        // `attempt()` makes a new future: a new attempt, from the start. When the timeout
        // expires, it drops the old one, which cancels it.
        if tokio::time::timeout(policy.timeout, attempt())
            .await
            .is_ok()
        {
            return Retried::Done { attempt: number };
        }
    }
    Retried::GaveUp {
        attempts: policy.attempts,
    }
}
// ANCHOR_END: exercise

/// How `retry` ended.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Retried {
    /// Attempt number `attempt` (the first is 1) completed in time.
    Done { attempt: u32 },
    /// All `attempts` attempts timed out.
    GaveUp { attempts: u32 },
}

/// As chapter 5's `--attempts 3 --timeout 2`.
const POLICY: Policy = Policy {
    timeout: Duration::from_secs(2),
    attempts: 3,
};

// ── From chapter 5 (code/ch05_unreliable.rs), as it is there. ──
/// How hard the consumer tries: the time each attempt gets, and how many attempts a task gets.
#[derive(Clone, Copy)]
struct Policy {
    timeout: Duration,
    attempts: u32,
}
// ── End of chapter 5's code. ──

/// A job for an unreliable service: its number, and how many of its first attempts hang (for
/// 1000 s, as chapter 5's stuck task). Any attempt after those answers in 1 s.
#[derive(Debug, Clone, Copy)]
struct Job(u32, u32);

/// One job answers its first attempt, one hangs twice and then answers, one always hangs.
const JOBS: [Job; 3] = [Job(0, 0), Job(1, 2), Job(2, u32::MAX)];

/// The jobs, one after another, each with `retry`: this is how the checks call your code. The
/// closure makes a new call each time `retry` calls it.
async fn run() -> Vec<Retried> {
    let mut results = Vec::new();
    for job in JOBS {
        results.push(retry(|| call(job), POLICY).await);
    }
    results
}

// ── The checks. They run your code on tokio's paused clock; no need to read on. ──

/// One attempt at `job`, as the checks see it: it counts the attempt when it starts, hangs or
/// answers, and notes when it ends or is cancelled.
async fn call(job: Job) {
    let mut watch = checks::Watch::start(job.0 as usize);
    let hangs = watch.2 <= job.1;
    tokio::time::sleep(Duration::from_secs(if hangs { 1000 } else { 1 })).await;
    watch.3 = true;
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> std::process::ExitCode {
    checks::START.get_or_init(tokio::time::Instant::now);
    let limit = Duration::from_secs(10_000);
    let verdict = match tokio::time::timeout(limit, tokio::spawn(run())).await {
        Err(_) => Err(checks::stuck()),
        Ok(Err(panic)) => Err(format!("run() panicked: {}", checks::message(panic))),
        Ok(Ok(results)) => checks::judge(&results, checks::now()),
    };
    match &verdict {
        Ok(summary) => println!("✓ {summary}\nAll checks pass."),
        Err(problem) => println!("✗ {problem}"),
    }
    std::process::ExitCode::from(u8::from(verdict.is_err()))
}

mod checks {
    //! A lock's `unwrap()` here fails only if a check panicked while holding it.
    use super::Retried::{Done, GaveUp};
    use std::sync::{Mutex, OnceLock};

    pub static START: OnceLock<tokio::time::Instant> = OnceLock::new();
    /// Each job's attempts, in order: the start, the end if it ended, and if it completed.
    static ATTEMPTS: Mutex<[Vec<(f64, Option<f64>, bool)>; 3]> =
        Mutex::new([const { Vec::new() }; 3]);
    /// When each job's attempts should start: at once, and again as soon as one times out.
    const STARTS: [&[f64]; 3] = [&[0.0], &[1.0, 3.0, 5.0], &[6.0, 8.0, 10.0]];
    const JOBS: [&str; 3] = ["answers", "hangs twice, then answers", "always hangs"];

    pub fn now() -> f64 {
        START.get().expect("set by main").elapsed().as_secs_f64()
    }

    /// Notes the start of a job's attempt and its number; when dropped, its end and whether it
    /// completed (`.3`).
    pub struct Watch(usize, usize, pub u32, pub bool);

    impl Watch {
        pub fn start(job: usize) -> Watch {
            let attempts = &mut ATTEMPTS.lock().unwrap()[job];
            attempts.push((now(), None, false));
            Watch(job, attempts.len() - 1, attempts.len() as u32, false)
        }
    }

    impl Drop for Watch {
        fn drop(&mut self) {
            let attempt = &mut ATTEMPTS.lock().unwrap()[self.0][self.1];
            (attempt.1, attempt.2) = (Some(now()), self.3);
        }
    }

    pub fn stuck() -> String {
        let attempts = ATTEMPTS.lock().unwrap();
        let made = attempts.iter().map(Vec::len).collect::<Vec<_>>();
        format!(
            "run() still ran after 10000 s, when jobs 0, 1, 2 had made {made:?} attempts: stop \
             after policy.attempts ({}), and give each policy.timeout",
            super::POLICY.attempts
        )
    }

    pub fn judge(results: &[super::Retried], returned: f64) -> Result<String, String> {
        let attempts = ATTEMPTS.lock().unwrap().clone();
        let limit = super::POLICY.timeout.as_secs_f64();
        let starts = |job: usize| -> Vec<String> {
            attempts[job]
                .iter()
                .map(|a| format!("{:.2}", a.0))
                .collect()
        };
        for (job, (tries, result)) in attempts.iter().zip(results).enumerate() {
            if let (&[(start, end, _)], Done { attempt: 2.. } | GaveUp { attempts: 2.. }) =
                (tries.as_slice(), result)
            {
                return Err(format!(
                    "retry returned {result:?} for job {job}, but one attempt started, at \
                     {start:.2} s, and ran to {:.2} s: each try awaited the same future, which \
                     goes on where it was. Call attempt() for a fresh future every time",
                    end.unwrap_or(returned)
                ));
            }
            for (number, &(start, end, done)) in (1..).zip(tries) {
                let Some(end) = end else {
                    return Err(format!(
                        "job {job}'s attempt {number}, started at {start:.2} s, still ran at the \
                         end: an attempt that times out must be cancelled, by dropping its future"
                    ));
                };
                if end - start > limit + 1e-6 {
                    return Err(format!(
                        "job {job}'s attempt {number} ran {:.2} s, from {start:.2} s to {end:.2} \
                         s: give each attempt policy.timeout ({limit} s), with tokio::time::timeout",
                        end - start
                    ));
                }
            }
            let wanted: Vec<String> = STARTS[job].iter().map(|s| format!("{s:.2}")).collect();
            let mine = starts(job);
            if mine != wanted {
                return Err(format!(
                    "job {job} ({}) made {} attempts, starting at {} s; expected {}, at {} s: a \
                     fresh attempt at once when one times out, policy.attempts ({}) at most",
                    JOBS[job],
                    mine.len(),
                    mine.join(", "),
                    wanted.len(),
                    wanted.join(", "),
                    super::POLICY.attempts
                ));
            }
        }
        let wanted = [
            Done { attempt: 1 },
            Done { attempt: 3 },
            GaveUp { attempts: 3 },
        ];
        if results != wanted {
            return Err(format!(
                "retry returned {results:?}, not {wanted:?}: attempts count from 1"
            ));
        }
        if returned > 12.0 + 1e-6 {
            return Err(format!(
                "elapsed {returned:.2} s, not 12.00: retry returned late"
            ));
        }
        Ok(format!(
            "job 0 done on attempt 1; job 1's attempts started at {} s, done on attempt 3; \
             job 2's at {} s, then it gave up; elapsed {returned:.2} s",
            starts(1).join(", "),
            starts(2).join(", ")
        ))
    }

    /// The message of a panic in a task, as `panic!` or `todo!` gave it.
    pub fn message(error: tokio::task::JoinError) -> String {
        let Ok(panic) = error.try_into_panic() else {
            return "it was cancelled".into();
        };
        let text = panic.downcast_ref::<&str>().map(|text| text.to_string());
        text.or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into())
    }
}
