// A solution of the exercise `deadline`: the part of code/exercises/deadline.rs between its
// ANCHOR lines, written. `cargo run -q --bin exercise -- deadline --solution` puts it in place
// of the starter's part and runs the checks.

// ANCHOR: exercise
/// Calls `attempt(item)` until it answers `Ok`, at most ATTEMPTS times, each attempt for at
/// most ATTEMPT_TIMEOUT, and the whole item within BUDGET of its start.
async fn process(item: u32) -> Outcome {
    // One deadline for the item, made once, before the first attempt: every attempt shares it.
    let deadline = Instant::now() + BUDGET;
    for _ in 0..ATTEMPTS {
        if Instant::now() >= deadline {
            break; // no time left for another attempt
        }
        // This attempt's own limit, but never past the item's deadline.
        let attempt_deadline = deadline.min(Instant::now() + ATTEMPT_TIMEOUT);
        // `Ok(Ok(()))`: it answered in time. `Ok(Err(Refused))` or `Err(Elapsed)`: try again.
        if let Ok(Ok(())) = tokio::time::timeout_at(attempt_deadline, attempt(item)).await {
            return Outcome::Done;
        }
    }
    Outcome::GaveUp
}
// ANCHOR_END: exercise
