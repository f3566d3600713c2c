// Holding a std::sync::MutexGuard across an `.await` inside a spawned task.

use std::sync::{Arc, Mutex};
use std::time::Duration;

#[tokio::main]
async fn main() {
    let processed = Arc::new(Mutex::new(0_u32));
    let counter = Arc::clone(&processed);
    let handle = tokio::spawn(async move {
        let mut count = counter.lock().unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        *count += 1;
    });
    handle.await.ok();
}
