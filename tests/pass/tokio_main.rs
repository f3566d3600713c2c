// The fix for an `async fn main`: let `#[tokio::main]` build the runtime that drives it.

use std::time::Duration;

// ANCHOR: main
#[tokio::main]
async fn main() {
    tokio::time::sleep(Duration::from_millis(10)).await;
}
// ANCHOR_END: main
