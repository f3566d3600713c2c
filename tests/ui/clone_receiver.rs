// Giving each consumer its own clone of the channel's receiving end.

use tokio::sync::mpsc;

async fn consumer(mut queue: mpsc::Receiver<u32>) {
    while let Some(task_number) = queue.recv().await {
        println!("processed task with task_number={task_number}");
    }
}

#[tokio::main]
async fn main() {
    let (sender, receiver) = mpsc::channel::<u32>(100);
    let mut consumers = Vec::new();
    for _ in 0..50 {
        consumers.push(tokio::spawn(consumer(receiver.clone())));
    }
    drop(sender);
}
