// A solution of the exercise `shutdown`: the part of code/exercises/shutdown.rs between its
// ANCHOR lines, written. `cargo run -q --bin exercise -- shutdown --solution` puts it in place
// of the starter's part and runs the checks.

// ANCHOR: exercise
/// Runs each job from `jobs` as its own task, with `work`, until the stop comes or the queue
/// closes. After a stop: no new job, GRACE for the jobs in flight, then abort the rest. After
/// the queue closes, with no stop: wait for every job, however long it takes.
async fn run(mut jobs: mpsc::Receiver<Job>, mut stop: watch::Receiver<bool>) -> Outcome {
    let mut in_flight: JoinSet<()> = JoinSet::new();
    let mut started = 0;
    let stopped = loop {
        tokio::select! {
            // `biased`: the stop is checked first, so that no job is taken once it has come.
            biased;
            // `_` also matches `Err`: a sender dropped without a word counts as a stop.
            _ = stop.wait_for(|&stop| stop) => break true,
            next = jobs.recv() => match next {
                Some(job) => {
                    in_flight.spawn(work(job));
                    started += 1;
                }
                None => break false,
            },
        }
    };
    // Every job that ends leaves the set. (`work` never panics, so each one ended well.)
    let finish_all = async { while in_flight.join_next().await.is_some() {} };
    if stopped {
        // One timeout around the whole wait: the grace period starts once, at the stop.
        let _ = tokio::time::timeout(GRACE, finish_all).await;
    } else {
        finish_all.await;
    }
    // The jobs left are still running: abort them, and wait until they are gone.
    let abandoned = in_flight.len();
    in_flight.shutdown().await;
    Outcome {
        done: started - abandoned,
        abandoned,
    }
}
// ANCHOR_END: exercise
