// A solution of the exercise `await`: the part of code/exercises/await.rs between its
// ANCHOR lines, written. `cargo run -q --bin exercise -- await --solution` puts it in place
// of the starter's part and runs the checks.

// ANCHOR: exercise
/// Starts a timer, runs one task of 1 s, and lets the timer report once the task is done.
async fn run() {
    // A name keeps the timer to the end of `run`; `let _ =` would drop it on this line.
    let _timer = Timer::start();
    // Calling an `async fn` only builds the future: `.await` runs it, here and now.
    normal_task(0, Duration::from_secs(1)).await;
}
// ANCHOR_END: exercise
