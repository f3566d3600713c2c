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
