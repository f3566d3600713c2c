// A solution of the exercise `bounded`: the part of code/exercises/bounded.rs between its
// ANCHOR lines, written. `cargo run -q --bin exercise -- bounded --solution` puts it in place
// of the starter's part and runs the checks.

// ANCHOR: exercise
/// Sends every task, then returns, which drops `queue`, the only sender.
async fn producer(queue: mpsc::Sender<Task>, max_tasks: u32) {
    for task in tasks(max_tasks) {
        // Waits while the queue holds QUEUE_BOUND tasks: that wait is the backpressure.
        if queue.send(task).await.is_err() {
            return;
        }
    }
    println!("all tasks sent, closing the queue");
}

/// Takes tasks until the queue is closed and empty, and runs each with `normal_task`.
async fn consumer(queue: Arc<Mutex<mpsc::Receiver<Task>>>) {
    loop {
        let next = queue.lock().await.recv().await;
        let Some(task) = next else {
            return;
        };
        normal_task(task.number, task.time_to_execute).await;
    }
}

/// Starts the producer and CONSUMER_COUNT consumers, and returns once every task is done.
async fn run() {
    let (sender, receiver) = mpsc::channel::<Task>(QUEUE_BOUND);
    let queue = Arc::new(Mutex::new(receiver));
    let mut consumers: JoinSet<()> = JoinSet::new();
    // A task of its own: the producer now waits for room, which only running consumers make.
    consumers.spawn(producer(sender, TASKS_TO_PROCESS));
    for _ in 0..CONSUMER_COUNT {
        consumers.spawn(consumer(Arc::clone(&queue)));
    }
    consumers.join_all().await;
}
// ANCHOR_END: exercise
