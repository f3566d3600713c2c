// The fix for a std::sync::MutexGuard held across `.await`: release it before the await.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

#[tokio::main]
async fn main() {
    let processed = Arc::new(Mutex::new(0_u32));
    let counter = Arc::clone(&processed);
    // ANCHOR: scoped
    let handle = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        // The guard is a temporary: it is dropped at the semicolon, before any other await.
        // A poisoned lock (a panic while it was held) still holds a valid count: use it.
        *counter.lock().unwrap_or_else(PoisonError::into_inner) += 1;
    });
    // ANCHOR_END: scoped
    if let Err(error) = handle.await {
        eprintln!("the task failed: {error}");
    }
    let count = *processed.lock().unwrap_or_else(PoisonError::into_inner);
    println!("processed={count}");
}
