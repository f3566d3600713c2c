// A solution of the exercise `rate`: the part of code/exercises/rate.rs between its
// ANCHOR lines, written. `cargo run -q --bin exercise -- rate --solution` puts it in place
// of the starter's part and runs the checks.

// ANCHOR: exercise
/// Hands out turns to every job that shares it: at most `per_second` a second, each at least
/// `1 / per_second` s after the one before.
struct RateLimiter {
    /// The next free turn: the earliest moment the next request may start.
    next_free: Mutex<Instant>,
    interval: Duration,
}

impl RateLimiter {
    fn new(per_second: f64) -> RateLimiter {
        RateLimiter {
            next_free: Mutex::new(Instant::now()),
            interval: Duration::from_secs_f64(1.0 / per_second),
        }
    }

    /// Reserves the next free turn, then sleeps until it.
    async fn wait_turn(&self) {
        let turn = {
            // A few steps of arithmetic and no `.await`: the lock is free again at once.
            let mut next_free = lock(&self.next_free);
            // Never a turn in the past: after a pause, the turns nobody took are gone.
            let turn = (*next_free).max(Instant::now());
            *next_free = turn + self.interval;
            turn
        };
        tokio::time::sleep_until(turn).await;
    }
}

/// One job: waits for its turn at `limiter`, then makes its request.
async fn job(limiter: Arc<RateLimiter>, number: u32) {
    limiter.wait_turn().await;
    request(number).await;
}
// ANCHOR_END: exercise
