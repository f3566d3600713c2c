// A solution of the exercise `timeout`: the part of code/exercises/timeout.rs between its
// ANCHOR lines, written. `cargo run -q --bin exercise -- timeout --solution` puts it in place
// of the starter's part and runs the checks.

// ANCHOR: exercise
/// Runs the tasks one after another, each on a tokio task of its own (a panic stays inside
/// it), and returns how each one ended, in order.
async fn run_all(tasks: Vec<Task>) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for task in tasks {
        // The timeout is the spawned task's future, with the work inside it. When it expires it
        // answers Err(Elapsed), the task is over, and tokio drops its future, work and all:
        // that cancels the work. `timeout` fixes the deadline now, LIMIT from this spawn.
        let handle = tokio::spawn(tokio::time::timeout(LIMIT, run_task(task)));
        let outcome = match handle.await {
            Ok(Ok(Ok(()))) => Outcome::Done,
            Ok(Ok(Err(_error))) => Outcome::Failed,
            Ok(Err(_elapsed)) => Outcome::TimedOut,
            // A JoinError is a panic, or a cancellation by `abort()` or a runtime shutting
            // down. Nothing here aborts a task, so it is a panic.
            Err(_panic) => Outcome::Panicked,
        };
        outcomes.push(outcome);
    }
    outcomes
}
// ANCHOR_END: exercise
