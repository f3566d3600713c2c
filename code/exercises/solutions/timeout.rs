// A solution of the exercise `timeout`: the part of code/exercises/timeout.rs between its
// ANCHOR lines, written. `cargo run -q --bin exercise -- timeout --solution` puts it in place
// of the starter's part and runs the checks.

// ANCHOR: exercise
/// Runs the tasks one after another, each on a tokio task of its own (a panic stays inside
/// it), and returns how each one ended, in order.
async fn run_all(tasks: Vec<Task>) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for task in tasks {
        // The timeout runs inside the spawned task, around the work: when it expires, the task
        // ends and drops the work's future, which cancels it. The next task gets a fresh LIMIT.
        let handle = tokio::spawn(tokio::time::timeout(LIMIT, run_task(task)));
        let outcome = match handle.await {
            Ok(Ok(Ok(()))) => Outcome::Done,
            Ok(Ok(Err(_error))) => Outcome::Failed,
            Ok(Err(_elapsed)) => Outcome::TimedOut,
            Err(_panic) => Outcome::Panicked,
        };
        outcomes.push(outcome);
    }
    outcomes
}
// ANCHOR_END: exercise
