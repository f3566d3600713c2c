// A solution of the exercise `join`: the part of code/exercises/join.rs between its
// ANCHOR lines, written. `cargo run -q --bin exercise -- join --solution` puts it in place
// of the starter's part and runs the checks.

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
    // Calling `normal_task` five times only builds five futures: none runs yet.
    let tasks: Vec<_> = (0..5)
        .map(|task_number| normal_task(task_number, ONE_SECOND))
        .collect();
    // One await for all five: they make progress together, and the results come back in the
    // order of the `Vec`.
    futures::future::join_all(tasks).await
}

/// The same five tasks at once, each spawned into a `JoinSet`. 1 s.
async fn with_join_set() -> Vec<String> {
    let mut tasks: JoinSet<String> = JoinSet::new();
    for task_number in 0..5 {
        // A spawned task starts at once; nothing is awaited inside this loop.
        tasks.spawn(normal_task(task_number, ONE_SECOND));
    }
    let mut results = Vec::new();
    // In the order the tasks finish. `None` once the set is empty.
    while let Some(finished) = tasks.join_next().await {
        match finished {
            Ok(result) => results.push(result),
            // A task that panicked: say so, and keep the others' results.
            Err(error) => eprintln!("a task failed: {error}"),
        }
    }
    results
}
// ANCHOR_END: exercise
