// ANCHOR: process
//! One item, from claim to outcome: the retry loop (chapters 5, 7 and 8). Each attempt is one
//! request (`request.rs`); a failure the service may get over is retried after a backoff, while
//! the attempts and the retry budget last; the whole lot runs under one deadline, across every
//! retry (chapter 7's `timeout_at`). A shutdown (chapter 9) stops it between requests: the item
//! has no outcome, stays claimed in the database, and the next run sends it again.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, timeout_at};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::limiter::{Limiter, RateLimiter};
use crate::queue::{Item, Outcome};
use crate::report::Stats;
use crate::request::send;
use crate::retry::{Cause, Failure, RetryBudget, backoff};

/// What every item's task shares.
pub struct Shared {
    pub http: reqwest::Client,
    /// `http://host:port`, without a slash at the end.
    pub base: String,
    pub client_id: String,
    pub limiter: Arc<Limiter>,
    pub rate: Option<RateLimiter>,
    pub budget: RetryBudget,
    pub stats: Stats,
    pub attempts: u32,
    pub deadline: Duration,
    /// Cancelled by the first signal: no new request leaves.
    pub stop: CancellationToken,
    /// Cancelled when the grace period ends: the requests in flight are dropped.
    pub abort: CancellationToken,
}

/// Sends one item until it is done or dead; `None` if the run stopped first (it stays claimed).
pub async fn process(shared: &Shared, item: &Item) -> Option<Outcome> {
    shared.budget.deposit();
    let deadline = Instant::now() + shared.deadline;
    let mut last = None;
    match timeout_at(deadline, attempts(shared, item, &mut last)).await {
        Ok(outcome) => outcome,
        Err(_elapsed) => {
            let last = last.map_or(String::new(), |cause| format!(", the last: {cause:?}"));
            let seconds = shared.deadline.as_secs_f64();
            dead(item, format!("deadline of {seconds} s passed{last}"))
        }
    }
}

fn dead(item: &Item, reason: String) -> Option<Outcome> {
    warn!(id = item.id, reason, "dead letter");
    Some(Outcome::Dead(reason))
}
// ANCHOR_END: process

// ANCHOR: attempts
/// The retry loop. `last` keeps the last failure's cause for the deadline's message.
async fn attempts(shared: &Shared, item: &Item, last: &mut Option<Cause>) -> Option<Outcome> {
    let (mut failed, mut retry) = (0, 0);
    loop {
        let (cause, retry_after) = match send(shared, item).await? {
            Ok(()) => return Some(Outcome::Done),
            Err(Failure::Final(reason)) => return dead(item, reason),
            Err(Failure::Retryable { cause, retry_after }) => (cause, retry_after),
        };
        *last = Some(cause);
        // A 429 is the service saying when, and an unreachable service is no answer at all:
        // neither is the item failing (see `Cause`). The deadline bounds both.
        if !matches!(cause, Cause::Quota | Cause::Unreachable) {
            failed += 1;
            if failed >= shared.attempts {
                return dead(
                    item,
                    format!("{failed} attempts failed, the last: {cause:?}"),
                );
            }
            if !shared.budget.try_withdraw() {
                return dead(
                    item,
                    format!("retry budget spent, the last failure: {cause:?}"),
                );
            }
        }
        shared.stats.retried(cause);
        retry += 1;
        let wait = backoff(retry, retry_after);
        debug!(
            id = item.id,
            ?cause,
            wait_ms = wait.as_millis() as u64,
            "retrying"
        );
        tokio::select! {
            biased;
            _ = shared.stop.cancelled() => return None,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
// ANCHOR_END: attempts
