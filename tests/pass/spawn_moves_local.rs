// The fix for a spawned task that borrows a local: move the value into the task.

#[tokio::main]
async fn main() {
    // ANCHOR: spawn
    let service_url = String::from("https://example.com/api");
    // `async move` takes ownership of `service_url`: the task owns what it uses.
    let handle = tokio::spawn(async move {
        println!("calling {service_url}");
    });
    // ANCHOR_END: spawn
    if let Err(error) = handle.await {
        eprintln!("the task failed: {error}");
    }
}
