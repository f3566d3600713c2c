// A solution of the exercise `borrow`: the part of code/exercises/borrow.rs between its
// ANCHOR lines, written. `cargo run -q --bin exercise -- borrow --solution` puts it in place
// of the starter's part and runs the checks.

// ANCHOR: exercise
/// Asks the service about every city, one spawned task each, and returns the five reports.
async fn run() -> Vec<String> {
    // One URL for every task: an `Arc` lets them share it, each task owning a handle.
    let service_url = Arc::new(String::from("https://weather.example/v1"));
    let cities = ["Oslo", "Lima", "Pune", "Kyiv", "Perth"].map(String::from);
    let mut tasks = JoinSet::new();
    for city in cities {
        // A handle of this task's own: a new pointer to the same `String`, not a copy of it.
        let service_url = Arc::clone(&service_url);
        // `move`: the task owns its handle and its `city` (the loop gives a new one each
        // time), so it borrows nothing from `run`, and `spawn` accepts it.
        tasks.spawn(async move { fetch(&service_url, &city).await });
    }
    let mut reports = Vec::new();
    while let Some(finished) = tasks.join_next().await {
        match finished {
            Ok(report) => reports.push(report),
            Err(error) => eprintln!("a task failed: {error}"),
        }
    }
    reports
}
// ANCHOR_END: exercise
