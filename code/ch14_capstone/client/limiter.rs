// ANCHOR: limiter
//! How many requests may be in flight, and how fast they may leave: chapter 8's two limiters.
//! The concurrency limit adapts itself (AIMD, as TCP's congestion window does): one more per
//! round trip of successes, 30% less when the service says it is overloaded (a 503, or a
//! request that timed out), never above `--max-concurrency`. The rate limiter keeps to
//! `--rate` requests a second, when one is given: the quota is a number the service publishes.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Where the limit starts, and the lowest it may go.
const INITIAL_LIMIT: f64 = 8.0;
const MIN_LIMIT: f64 = 1.0;
/// How much of the limit an overload leaves.
const DECREASE: f64 = 0.7;

pub struct Limiter {
    state: Mutex<State>,
    /// Wakes a task waiting in `acquire` when a permit comes back or the limit grows.
    changed: Notify,
    cap: f64,
}

struct State {
    limit: f64,
    in_flight: u32,
    /// When the limit was last cut: requests sent before then saw the old limit, and their
    /// overload must not cut it again.
    decreased_at: Option<Instant>,
}

/// The right to have one request in flight; dropping it, however that happens, gives it back.
pub struct Permit(Arc<Limiter>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.state().in_flight -= 1;
        self.0.changed.notify_one();
    }
}
// ANCHOR_END: limiter

// ANCHOR: aimd
impl Limiter {
    pub fn new(cap: u32) -> Arc<Limiter> {
        let cap = f64::from(cap);
        Arc::new(Limiter {
            state: Mutex::new(State {
                limit: INITIAL_LIMIT.min(cap),
                in_flight: 0,
                decreased_at: None,
            }),
            changed: Notify::new(),
            cap,
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every update under the lock is a few plain assignments: a panic cannot leave it torn.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until one more request may be in flight.
    pub async fn acquire(self: &Arc<Self>) -> Permit {
        loop {
            // Registered before the check, so that a permit returned in between wakes us.
            let mut changed = std::pin::pin!(self.changed.notified());
            changed.as_mut().enable();
            {
                let mut state = self.state();
                if f64::from(state.in_flight) < state.limit.floor() {
                    state.in_flight += 1;
                    return Permit(Arc::clone(self));
                }
            }
            changed.await;
        }
    }

    /// An answer came back: grow by one over a round trip of answers (1/limit each).
    pub fn on_success(&self) {
        let mut state = self.state();
        state.limit = (state.limit + 1.0 / state.limit).min(self.cap);
        drop(state);
        self.changed.notify_one();
    }

    /// The service is overloaded: cut the limit, once for all the requests sent before the cut.
    pub fn on_overload(&self, sent_at: Instant) {
        let mut state = self.state();
        if state.decreased_at.is_some_and(|at| sent_at < at) {
            return;
        }
        state.limit = (state.limit * DECREASE).max(MIN_LIMIT);
        state.decreased_at = Some(Instant::now());
    }

    pub fn limit(&self) -> f64 {
        self.state().limit
    }
}
// ANCHOR_END: aimd

// ANCHOR: rate
/// Spaces requests `1 / per_second` apart: each gets the next free moment, a deadline.
pub struct RateLimiter {
    next_free: Mutex<Instant>,
    interval: Duration,
}

impl RateLimiter {
    pub fn new(per_second: f64) -> RateLimiter {
        RateLimiter {
            next_free: Mutex::new(Instant::now()),
            interval: Duration::from_secs_f64(1.0 / per_second),
        }
    }

    pub async fn wait_turn(&self) {
        let turn = {
            // A panic cannot leave one `Instant` half-written: the value is sound.
            let mut next_free = self
                .next_free
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let turn = (*next_free).max(Instant::now());
            *next_free = turn + self.interval;
            turn
        };
        // Until a deadline, not for an interval: timer delays do not add up.
        tokio::time::sleep_until(turn).await;
    }
}
// ANCHOR_END: rate
