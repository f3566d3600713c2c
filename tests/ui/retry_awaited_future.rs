// Retrying by awaiting the same future again: the article's retry, in Rust.

use std::time::Duration;

async fn flaky_call() -> Result<(), String> {
    tokio::time::sleep(Duration::from_millis(10)).await;
    Err("the service is busy".to_string())
}

#[tokio::main]
async fn main() {
    let call = flaky_call();
    for _attempt in 0..3 {
        // The first pass moves `call` into `.await`; there is no second pass.
        if call.await.is_ok() {
            break;
        }
    }
}
