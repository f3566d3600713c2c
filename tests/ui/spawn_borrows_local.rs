// Spawning a task that borrows a local variable of the function that spawns it.

#[tokio::main]
async fn main() {
    let service_url = String::from("https://example.com/api");
    let handle = tokio::spawn(async {
        println!("calling {service_url}");
    });
    handle.await.ok();
}
