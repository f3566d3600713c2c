// An `async fn main` without a runtime to drive it.

use std::time::Duration;

async fn main() {
    tokio::time::sleep(Duration::from_secs(1)).await;
}
