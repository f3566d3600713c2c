// A solution of the exercise `retries`: the part of code/exercises/retries.rs between its
// ANCHOR lines, written. `cargo run -q --bin exercise -- retries --solution` puts it in place
// of the starter's part and runs the checks.

// ANCHOR: exercise
/// Calls `attempt` for a new future, gives it `policy.timeout`, and starts again while the
/// attempts time out, `policy.attempts` times at most. Says which attempt got through, if any.
async fn retry<F, Fut>(mut attempt: F, policy: Policy) -> Retried
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    for number in 1..=policy.attempts {
        // `attempt()` makes a new future: a new attempt, from the start. On expiry the
        // `Timeout` only answers `Err(Elapsed)`; this `.await` consumed it, so it is dropped
        // here, with the attempt inside, which cancels the attempt.
        if tokio::time::timeout(policy.timeout, attempt())
            .await
            .is_ok()
        {
            return Retried::Done { attempt: number };
        }
    }
    Retried::GaveUp {
        attempts: policy.attempts,
    }
}
// ANCHOR_END: exercise
