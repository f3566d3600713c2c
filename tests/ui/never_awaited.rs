// A future that is created and never awaited: nothing runs.
// The lint is a warning by default; the next line makes it an error, as a crate may choose to.
#![deny(unused_must_use)]

use std::time::Duration;

async fn normal_task(task_number: u32, time_to_execute: Duration) {
    tokio::time::sleep(time_to_execute).await;
    println!("processed task with task_number={task_number}");
}

#[tokio::main]
async fn main() {
    // Forgot `.await`: this builds the future and drops it at once.
    normal_task(0, Duration::from_secs(1));
}
