//! Exercise: a shutdown with a grace period (chapter 9).
//!
//! Jobs arrive on a channel, and each runs as its own task. A stop comes through a `watch`
//! channel, as chapter 9's signal would. Write `run` so that, once the stop has come, it takes
//! no new job, gives the jobs in flight GRACE to finish, aborts those still running after
//! that, and says how many were done and how many abandoned. The checks at the bottom run your
//! code on tokio's paused clock, and send the stop 3.5 s into the run; in a short scenario, at
//! 0.5 s, at the very moment a job arrives, which must then not start.
//!
//! Check your work: `cargo run -q --bin exercise -- shutdown`, or the Run button.
#![allow(unused)] // The starter leaves things unused until your part is written.

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

// ANCHOR: exercise
/// Runs each job from `jobs` as its own task, with `work`, until the stop comes or the queue
/// closes. After a stop: no new job, GRACE for the jobs in flight, then abort the rest. After
/// the queue closes, with no stop: wait for every job, however long it takes.
async fn run(mut jobs: mpsc::Receiver<Job>, mut stop: watch::Receiver<bool>) -> Outcome {
    let mut in_flight: JoinSet<()> = JoinSet::new();
    todo!("take jobs until the stop or the end of the queue; then let those in flight finish")
}
// ANCHOR_END: exercise

/// How long the jobs in flight may still run once the stop has come.
const GRACE: Duration = Duration::from_secs(2);

/// A job: its number, and how long it runs.
#[derive(Debug)]
struct Job {
    number: u32,
    length: Duration,
}

/// What `run` reports: how many jobs ran to their end, and how many it aborted.
#[derive(Debug, Default, PartialEq)]
struct Outcome {
    done: usize,
    abandoned: usize,
}

// ── The checks. They run your code on tokio's paused clock; no need to read on. ──

/// A job, as the checks see it: it notes when it starts, and when it ends or is cancelled.
async fn work(job: Job) {
    let running = checks::Running::start(job.number);
    tokio::time::sleep(job.length).await;
    running.finish();
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> std::process::ExitCode {
    let mut passed = Vec::new();
    // The last one, a job due at the very moment of the stop, is run many times: `select!`
    // picks at random among the branches ready, so one run would prove little.
    let (day, moment) = (checks::DAY.as_slice(), checks::MOMENT.as_slice());
    for (stop_at, jobs, runs) in [(Some(3.5), day, 1), (None, day, 1), (Some(0.5), moment, 16)] {
        let mut summary = String::new();
        for _ in 0..runs {
            match checks::scenario(stop_at, jobs).await {
                Ok(said) => summary = said,
                Err(problem) => return checks::report(Err(problem)),
            }
        }
        if runs > 1 {
            summary += &format!(", in each of {runs} runs");
        }
        passed.push(summary);
    }
    checks::report(Ok(passed.join("\n✓ ")))
}

mod checks {
    //! A lock's `unwrap()` here fails only if a check panicked while holding it.
    use super::*;
    use std::sync::Mutex;
    use tokio::time::{Instant, sleep_until};

    /// The jobs of a scenario: when each arrives, and how long it runs, in seconds.
    type Jobs = [(f64, f64)];
    /// A day's work: ten jobs, about two a second.
    pub const DAY: [(f64, f64); 10] = [
        (0.0, 1.0),
        (0.5, 4.0),
        (1.0, 2.0),
        (1.5, 6.0),
        (2.0, 1.0),
        (2.5, 2.5),
        (3.0, 3.0),
        (4.0, 1.0),
        (4.5, 2.0),
        (5.0, 0.5),
    ];
    /// A job that ends well within the grace period, and one due at the moment of the stop.
    pub const MOMENT: [(f64, f64); 2] = [(0.0, 1.0), (0.5, 1.0)];
    /// What happened to the jobs: (number, "started" | "ended" | "cancelled", when).
    static SEEN: Mutex<Vec<(u32, &'static str, Instant)>> = Mutex::new(Vec::new());

    fn note(number: u32, what: &'static str) {
        SEEN.lock().unwrap().push((number, what, Instant::now()));
    }

    /// Notes a job's start; when dropped, its end, or its cancellation if it never finished.
    pub struct Running(u32, bool);
    impl Running {
        pub fn start(number: u32) -> Running {
            note(number, "started");
            Running(number, false)
        }
        pub fn finish(mut self) {
            self.1 = true;
        }
    }
    impl Drop for Running {
        fn drop(&mut self) {
            note(self.0, if self.1 { "ended" } else { "cancelled" });
        }
    }

    /// Runs `run` with `jobs` arriving on time and the stop, if any, at `stop_at`; waits
    /// 10 s more, so that jobs left running show it; and judges what happened.
    pub async fn scenario(stop_at: Option<f64>, jobs: &'static Jobs) -> Result<String, String> {
        let start = Instant::now();
        SEEN.lock().unwrap().clear();
        let at = move |seconds: f64| start + Duration::from_secs_f64(seconds);
        let (send_job, queue) = mpsc::channel(jobs.len());
        let (send_stop, stop) = watch::channel(false);
        tokio::spawn(async move {
            let mut stop_due = stop_at;
            for (number, &(arrives, length)) in (0..).zip(jobs) {
                if let Some(stop_at) = stop_due.filter(|&stop_at| stop_at < arrives) {
                    sleep_until(at(stop_at)).await;
                    send_stop.send_replace(true);
                    stop_due = None;
                }
                sleep_until(at(arrives)).await;
                let length = Duration::from_secs_f64(length);
                // Never full (it has room for every job). It fails once `run` has returned
                // and dropped the queue: nobody takes jobs then.
                let _ = send_job.try_send(Job { number, length });
                if stop_due == Some(arrives) {
                    // The same moment: the job and the stop are both there when `run` looks.
                    send_stop.send_replace(true);
                    stop_due = None;
                }
            }
            drop(send_job); // The queue closes after the last arrival.
            if let Some(stop_at) = stop_due {
                sleep_until(at(stop_at)).await;
                send_stop.send_replace(true);
            }
            // The sender stays: a dropped one would count as a stop.
            std::future::pending::<()>().await;
        });
        let deadline = stop_at.map_or(f64::INFINITY, |stop_at| stop_at + GRACE.as_secs_f64());
        let closed = jobs.last().map_or(0.0, |job| job.0);
        let at_stop = jobs.iter().position(|job| Some(job.0) == stop_at);
        let context = match (stop_at, at_stop) {
            (Some(stop_at), Some(n)) => format!(
                "stop at {stop_at:.2} s, and job {n} due at that same moment; grace period until \
                 {deadline:.2} s"
            ),
            (Some(stop_at), None) => {
                format!("stop at {stop_at:.2} s, grace period until {deadline:.2} s")
            }
            (None, _) => format!("no stop, the queue closed at {closed:.2} s"),
        };
        let limit = Duration::from_secs(1000);
        let outcome = match tokio::time::timeout(limit, tokio::spawn(run(queue, stop))).await {
            Err(_) if stop_at.is_some() => Err(format!(
                "run() still ran at 1000 s ({context}): does the loop end when the stop wins \
                 the select!?"
            ))?,
            Err(_) => Err(format!(
                "run() still ran at 1000 s ({context}): does the loop end when recv() gives \
                 None? In a branch `Some(job) = jobs.recv()` of select!, a None only switches \
                 that branch off"
            ))?,
            Ok(Err(panic)) => Err(format!("run() panicked: {}", message(panic)))?,
            Ok(Ok(outcome)) => outcome,
        };
        let returned = start.elapsed().as_secs_f64();
        sleep_until(at(returned + 10.0)).await;

        // What each job should do: never start, or start on arrival then end or be cancelled.
        let (mut wanted, mut last) = (Outcome::default(), 0.0_f64);
        let seen = SEEN.lock().unwrap().clone();
        let mut problems = Vec::new();
        for (n, &(arrives, length)) in jobs.iter().enumerate() {
            let expected = if stop_at.is_some_and(|stop_at| arrives >= stop_at) {
                None
            } else if arrives + length <= deadline {
                wanted.done += 1;
                Some((arrives, "ended", arrives + length))
            } else {
                wanted.abandoned += 1;
                Some((arrives, "cancelled", deadline))
            };
            last = last.max(expected.map_or(0.0, |(_, _, end)| end));
            let seconds = |at: Instant| (at - start).as_secs_f64();
            let mut events = seen
                .iter()
                .filter(|e| e.0 as usize == n)
                .map(|e| (e.1, seconds(e.2)));
            let fate = events.next().map(|(_, started)| {
                let (how, end) = events.next().unwrap_or(("running", returned + 10.0));
                (started, how, end)
            });
            if describe(fate) == describe(expected) {
                continue;
            }
            // The most telling problem is reported: the one with the lowest rank, a HINTS index.
            let rank = match (expected, fate) {
                (None, _) if Some(arrives) == stop_at => 6,
                (None, _) => 0,
                (_, fate) if fate.is_none_or(|(started, ..)| (started - arrives).abs() > 1e-3) => 1,
                (_, Some((_, "cancelled", _))) if stop_at.is_none() => 2,
                (Some((_, "ended", _)), _) => 3,
                (_, Some((_, "cancelled", _))) => 4,
                _ => 5,
            };
            let (fate, expected) = (describe(fate), describe(expected));
            let problem = format!("job {n} {fate}; expected: {expected} ({context}). ");
            problems.push((rank, problem + HINTS[rank]));
        }
        if let Some((_, problem)) = problems.into_iter().min_by_key(|&(rank, _)| rank) {
            Err(problem)?;
        }
        if (returned - last).abs() > 1e-3 {
            let expected = "once the last job ended or was aborted";
            let hint = match wanted.abandoned {
                0 if returned > last => {
                    ". Every job in flight had ended by then: is the grace period a sleep? Wait \
                     for the jobs themselves (join_next) within the timeout, so that the wait \
                     ends when they do"
                }
                _ => "",
            };
            Err(format!(
                "run() returned at {returned:.2} s, not {last:.2} s, {expected} ({context}){hint}"
            ))?;
        }
        if outcome != wanted {
            Err(format!(
                "run() said {outcome:?}; expected: {wanted:?} ({context}). The jobs still in \
                 the JoinSet when GRACE runs out are the abandoned ones"
            ))?;
        }
        let Outcome { done, abandoned } = wanted;
        Ok(format!(
            "{context}: {done} done, {abandoned} aborted, run() returned at {returned:.2} s"
        ))
    }

    const HINTS: [&str; 7] = [
        "Race the next job against the stop with select!, and leave the loop when the stop wins",
        "Spawn each job into the JoinSet as soon as it comes",
        "With no stop, wait for every job, however long: GRACE is for a stop",
        "Let the jobs in flight run for GRACE before you abort the rest",
        "The grace period starts at the stop: notice it at once, and put one timeout around \
         the whole wait",
        "Once GRACE has passed since the stop, abort the jobs still running (one timeout around \
         the whole wait, then JoinSet::shutdown)",
        "The stop was already raised when run() took that job: is the select! biased, with \
         the stop's branch first? Without `biased;` it picks at random among the branches ready",
    ];

    /// A job's fate, in words: it never started, or it started, then ended or was cancelled.
    fn describe(fate: Option<(f64, &str, f64)>) -> String {
        match fate {
            None => "never started".into(),
            Some((started, how, end)) => format!("started at {started:.2} s, {how} at {end:.2} s"),
        }
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
