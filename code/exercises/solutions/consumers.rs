// A solution of the exercise `consumers`: the part of code/exercises/consumers.rs between its
// ANCHOR lines, written. `cargo run -q --bin exercise -- consumers --solution` puts it in place
// of the starter's part and runs the checks.

// ANCHOR: exercise
/// Takes tasks until the queue is closed and empty, and runs each with `normal_task`.
async fn consumer(queue: Arc<Mutex<mpsc::Receiver<Task>>>) {
    loop {
        // The guard is a temporary: the lock is released at the end of this statement,
        // before the task runs, so the other consumers can take theirs.
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
    consumers.spawn(producer(sender, TASKS_TO_PROCESS));
    for _ in 0..CONSUMER_COUNT {
        consumers.spawn(consumer(Arc::clone(&queue)));
    }
    // join_all panics if a task panicked: a bug in a consumer is not hidden.
    consumers.join_all().await;
}
// ANCHOR_END: exercise
