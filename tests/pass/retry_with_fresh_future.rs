// The fix for retrying an awaited future: call the async fn again, for a fresh future.

use std::time::Duration;

async fn flaky_call() -> Result<(), String> {
    tokio::time::sleep(Duration::from_millis(10)).await;
    Err("the service is busy".to_string())
}

#[tokio::main]
async fn main() {
    // ANCHOR: retry
    for attempt in 1..=3 {
        // Each call builds a new future: a new attempt, from the start.
        match flaky_call().await {
            Ok(()) => break,
            Err(error) => println!("attempt {attempt} failed: {error}"),
        }
    }
    // ANCHOR_END: retry
}
