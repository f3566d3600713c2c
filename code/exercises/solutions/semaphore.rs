// A solution of the exercise `semaphore`: the part of code/exercises/semaphore.rs between its
// ANCHOR lines, written. `cargo run -q --bin exercise -- semaphore --solution` puts it in place
// of the starter's part and runs the checks.

// ANCHOR: exercise
/// Runs every job of `tasks(TASKS_TO_PROCESS)` with `normal_task`, each in a task of its own,
/// at most MOST_IN_FLIGHT at a time; passes each finished task's result to `report`, and
/// returns once every job is done.
async fn run() {
    let permits = Arc::new(Semaphore::new(MOST_IN_FLIGHT));
    let mut running = JoinSet::new();
    for task in tasks(TASKS_TO_PROCESS) {
        // The loop waits here while 50 jobs run: no task exists for a job without a permit.
        // `acquire_owned` fails only once the semaphore is closed, which nothing here does.
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            break;
        };
        running.spawn(async move {
            // The permit moves into the task, and goes back when the task ends.
            let _permit = permit;
            normal_task(task.number, task.time_to_execute).await;
        });
        // Collect the tasks already finished, without waiting for any.
        while let Some(finished) = running.try_join_next() {
            report(finished);
        }
    }
    while let Some(finished) = running.join_next().await {
        report(finished);
    }
}
// ANCHOR_END: exercise
