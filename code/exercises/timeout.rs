//! Exercise: a timeout for each task (chapter 5).
//!
//! `run_all` runs seven tasks one after another, as chapter 5's consumer does: two of them are
//! stuck, one fails and one panics. It gives the whole run one timeout, so the first stuck task
//! uses up the time of all the others. Give each task a timeout of its own instead, LIMIT from its own start, so that
//! each stuck task is cancelled at its limit and every other task completes. The checks at the
//! bottom run your code on tokio's paused clock: the stuck tasks' 1000 s pass at once.
//!
//! Check your work: `cargo run -q --bin exercise -- timeout`, or the Run button.
#![allow(unused)] // The starter leaves things unused until your part is written.

use std::time::Duration;

// ANCHOR: exercise
/// Runs the tasks one after another, each on a tokio task of its own (a panic stays inside
/// it), and returns how each one ended, in order.
async fn run_all(tasks: Vec<Task>) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    // Each task may take LIMIT, so the lot may take LIMIT times their number.
    let budget = LIMIT * tasks.len() as u32;
    let all = async {
        for task in tasks {
            let outcome = match tokio::spawn(run_task(task)).await {
                Ok(Ok(())) => Outcome::Done,
                Ok(Err(_error)) => Outcome::Failed,
                Err(_panic) => Outcome::Panicked,
            };
            outcomes.push(outcome);
        }
    };
    if tokio::time::timeout(budget, all).await.is_err() {
        outcomes.push(Outcome::TimedOut);
    }
    outcomes
}
// ANCHOR_END: exercise

/// How long one task may take: the article's timeout.
const LIMIT: Duration = Duration::from_secs(10);

/// How a task ended: chapter 5's `Outcome`, without the details.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    Done,
    TimedOut,
    Failed,
    Panicked,
}

// ── From chapter 5 (code/ch05_unreliable.rs), as it is there. ──
/// How a task behaves when it runs: the article's four cases.
#[derive(Debug, Clone, Copy)]
enum Behavior {
    /// Sleeps, then reports: 1 s for the normal task, 1000 s for the stuck one.
    Sleep(Duration),
    /// Fails with an error its signature declares (the article's `ValueError`).
    ExpectedError,
    /// Panics: a bug nobody planned for (the article's `ZeroDivisionError`).
    Panic,
}

/// The description of one task: what the queue carries, and what a retry starts again from.
#[derive(Debug, Clone, Copy)]
struct Task {
    number: u32,
    behavior: Behavior,
}

/// The errors a task declares. Its callers must handle them: the compiler checks.
#[derive(Debug)]
enum TaskError {
    InvalidInput { task_number: u32 },
}
// ── End of chapter 5's code. ──

// ── From chapter 5 (code/ch05_unreliable.rs), as it is there. ──
/// One attempt at a task: a new future, built from the description, each time it is called.
async fn run_task(task: Task) -> Result<(), TaskError> {
    match task.behavior {
        Behavior::Sleep(time_to_execute) => {
            normal_task(task.number, time_to_execute).await;
            Ok(())
        }
        Behavior::ExpectedError => Err(TaskError::InvalidInput {
            task_number: task.number,
        }),
        Behavior::Panic => panic!("did not expect that?"),
    }
}
// ── End of chapter 5's code. ──

// ── The checks. They run your code on tokio's paused clock; no need to read on. ──

/// The task, as the checks see it: it notes when it starts, and when it ends or is cancelled.
async fn normal_task(task_number: u32, time_to_execute: Duration) {
    let mut watch = checks::Watch::start(task_number);
    tokio::time::sleep(time_to_execute).await;
    watch.1 = true;
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> std::process::ExitCode {
    checks::START.get_or_init(tokio::time::Instant::now);
    checks::quiet_planned_panic();
    let [fast, stuck] = [1, 1000].map(|seconds| Behavior::Sleep(Duration::from_secs(seconds)));
    let (fails, panics) = (Behavior::ExpectedError, Behavior::Panic);
    let tasks = [fast, stuck, fails, fast, panics, stuck, fast];
    let tasks: Vec<Task> = (0..)
        .zip(tasks)
        .map(|(number, behavior)| Task { number, behavior })
        .collect();
    let run = tokio::spawn(run_all(tasks.clone()));
    let verdict = match tokio::time::timeout(Duration::from_secs(10_000), run).await {
        Err(_) => Err("run_all() still ran after 10000 s: did a stuck task get no timeout?".into()),
        Ok(Err(panic)) => Err(checks::panicked(panic)),
        Ok(Ok(outcomes)) => checks::judge(&tasks, &outcomes, checks::now()),
    };
    match &verdict {
        Ok(summary) => println!("✓ {summary}\nAll checks pass."),
        Err(problem) => println!("✗ {problem}"),
    }
    std::process::ExitCode::from(u8::from(verdict.is_err()))
}

mod checks {
    //! A lock's `unwrap()` here fails only if a check panicked while holding it.
    use super::Outcome::{Done, Failed, Panicked, TimedOut};
    use super::{Behavior, Task};
    use std::sync::{Mutex, OnceLock};

    /// What task 4 says when it panics, as planned.
    const PLANNED: &str = "did not expect that?";

    pub static START: OnceLock<tokio::time::Instant> = OnceLock::new();
    /// Each task that started: its number, its start, its end if it ended, and if it completed.
    static RAN: Mutex<Vec<(u32, f64, Option<f64>, bool)>> = Mutex::new(Vec::new());

    pub fn now() -> f64 {
        START.get().expect("set by main").elapsed().as_secs_f64()
    }

    /// Notes a task's start; when dropped, notes its end: completed if `.1` is set, else cancelled.
    pub struct Watch(usize, pub bool);

    impl Watch {
        pub fn start(number: u32) -> Watch {
            let mut ran = RAN.lock().unwrap();
            ran.push((number, now(), None, false));
            Watch(ran.len() - 1, false)
        }
    }

    impl Drop for Watch {
        fn drop(&mut self) {
            let entry = &mut RAN.lock().unwrap()[self.0];
            (entry.2, entry.3) = (Some(now()), self.1);
        }
    }

    /// The planned panic (task 4's) prints nothing: the checks report what became of it.
    pub fn quiet_planned_panic() {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&PLANNED) {
                default(info);
            }
        }));
    }

    /// What to say when `run_all` itself panicked.
    pub fn panicked(error: tokio::task::JoinError) -> String {
        let Ok(panic) = error.try_into_panic() else {
            return "run_all() was cancelled".into();
        };
        let text = panic.downcast_ref::<&str>().map(|text| text.to_string());
        let text = text.or_else(|| panic.downcast_ref::<String>().cloned());
        match text.as_deref() {
            Some(PLANNED) => format!(
                "run_all() panicked with task 4's panic ({PLANNED:?}): a task's panic took the \
                 whole run down. Run each task on a tokio task of its own (tokio::spawn), where \
                 its panic stays; awaiting the handle then gives Err(JoinError)"
            ),
            text => format!("run_all() panicked: {}", text.unwrap_or("a panic")),
        }
    }

    pub fn judge(
        tasks: &[Task],
        outcomes: &[super::Outcome],
        returned: f64,
    ) -> Result<String, String> {
        let ran = RAN.lock().unwrap().clone();
        let limit = super::LIMIT.as_secs_f64();
        let started = |number: &u32| ran.iter().any(|task| task.0 == *number);
        // Only the tasks that sleep are watched: the others end at once, and show in `outcomes`.
        let sleeps = tasks
            .iter()
            .filter(|task| matches!(task.behavior, Behavior::Sleep(_)));
        let never: Vec<String> = sleeps
            .map(|task| task.number)
            .filter(|n| !started(n))
            .map(|n| n.to_string())
            .collect();
        if let Some(&(number, start, end, _)) = ran.last()
            && !never.is_empty()
        {
            let (never, end) = (never.join(", "), end.unwrap_or(returned));
            return Err(if end - start > limit + 1e-6 {
                format!(
                    "task {number} ran {:.2} s, past its limit of {limit} s, and tasks {never} \
                     never ran: the one timeout around the whole run (it expired at \
                     {returned:.2} s) let a stuck task use up everyone's time. Give each task \
                     a timeout of its own, inside the spawned task",
                    end - start
                )
            } else {
                format!(
                    "tasks {never} never ran, after task {number} ended at {end:.2} s: \
                     a timeout ends one task, not the run. Go on with the next task"
                )
            });
        }
        for (i, &(number, start, end, done)) in ran.iter().enumerate() {
            let Some(end) = end else {
                return Err(format!(
                    "task {number}, started at {start:.2} s, still ran when run_all returned: the \
                     JoinHandle went with the expired timeout, and a dropped handle leaves its task \
                     running. Is the timeout inside the spawned task, around run_task(task)?"
                ));
            };
            if !done && (end - start - limit).abs() > 1e-6 {
                return Err(format!(
                    "task {number} was cancelled at {end:.2} s, {:.2} s after it started: each \
                     task gets {limit} s from its own start. Is one deadline shared by all?",
                    end - start
                ));
            }
            if let Some(&(_, _, Some(previous), _)) = i.checked_sub(1).map(|i| &ran[i])
                && start < previous
            {
                return Err(format!(
                    "task {number} started at {start:.2} s, before task {} ended at \
                     {previous:.2} s: run the tasks one after another, as chapter 5's consumer does",
                    i - 1
                ));
            }
        }
        let expected = [Done, TimedOut, Failed, Done, Panicked, TimedOut, Done];
        if outcomes.len() != expected.len() {
            return Err(format!(
                "run_all returned {} outcomes ({outcomes:?}) for {} tasks: one per task, in order",
                outcomes.len(),
                expected.len()
            ));
        }
        let wrong = outcomes
            .iter()
            .zip(&expected)
            .position(|(got, want)| got != want);
        if let Some(number) = wrong {
            let does = match tasks[number].behavior {
                Behavior::Sleep(time) if time > super::LIMIT => "is stuck",
                Behavior::Sleep(_) => "takes 1 s",
                Behavior::ExpectedError => "returns an Err",
                Behavior::Panic => "panics",
            };
            return Err(format!(
                "run_all said task {number}, which {does}, ended {:?}, not {:?}: take the three \
                 layers apart. The handle's Err (a JoinError) is Panicked, the timeout's \
                 Err(Elapsed) is TimedOut, run_task's own Err is Failed",
                outcomes[number], expected[number]
            ));
        }
        if returned > 23.0 + 1e-6 {
            return Err(format!(
                "elapsed {returned:.2} s, not 23.00: run_all returned late, after its last task"
            ));
        }
        let ended = tasks.iter().zip(outcomes).map(|(task, outcome)| {
            let number = task.number;
            match ran.iter().find(|entry| entry.0 == number) {
                Some(&(_, _, end, done)) => {
                    let how = if done { "done" } else { "cancelled" };
                    format!("task {number} {how} at {:.2} s", end.unwrap_or(returned))
                }
                None => format!("task {number} {}", format!("{outcome:?}").to_lowercase()),
            }
        });
        Ok(format!(
            "{}; elapsed {returned:.2} s",
            ended.collect::<Vec<_>>().join(", ")
        ))
    }
}
