// A solution of the exercise `blocking`: the part of code/exercises/blocking.rs between its
// ANCHOR lines, written. `cargo run -q --bin exercise -- blocking --solution` puts it in place
// of the starter's part and runs the checks.

// ANCHOR: exercise
/// Looks up every id at once, and returns the answers in the order of `ids`.
async fn lookup_all(ids: Vec<u32>) -> Vec<String> {
    let mut tasks = Vec::new();
    for id in ids {
        // The call runs on a thread of tokio's blocking pool; awaiting its handle does not block.
        tasks.push(tokio::task::spawn_blocking(move || lookup(id)));
    }
    let mut answers = Vec::new();
    for task in tasks {
        // `expect`: a task fails only if its lookup panicked, and then this should panic too.
        answers.push(task.await.expect("a lookup panicked"));
    }
    answers
}
// ANCHOR_END: exercise
