// ANCHOR: process
//! One item, from claim to outcome: the retry loop (chapters 5, 7 and 8). Each attempt is one
//! request (`request.rs`); a failure the service may get over is retried after a backoff, while
//! the attempts and the retry budget last, and under one deadline across every retry (chapter
//! 7). A shutdown (chapter 9) stops it between requests: the item has no outcome, stays claimed
//! in the database, and the next run sends it again.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
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

// ANCHOR_END: process

// ANCHOR: attempts
/// Sends one item until it is done or dead; `None` if the run stopped first (it stays claimed).
///
/// The item's deadline starts when its first request leaves, not when its task starts: time
/// spent waiting inside the client, for a permit or a turn under the rate, is not the
/// service's doing and must not kill an item that was never sent. The deadline is checked
/// between attempts and bounds the waits; it never cuts a request that has left, which
/// `--request-timeout` bounds: a request cut short may have been applied, and its item would
/// then be recorded dead though the service did it.
pub async fn process(shared: &Shared, item: &Item) -> Option<Outcome> {
    shared.budget.deposit();
    let (mut failed, mut retry, mut deadline) = (0, 0, None);
    loop {
        let (sent_at, answer) = send(shared, item).await?;
        let deadline = *deadline.get_or_insert(sent_at + shared.deadline);
        let (cause, retry_after) = match answer {
            Ok(()) => return Some(Outcome::Done),
            Err(Failure::Final(reason)) => return dead(item, reason),
            Err(Failure::Retryable { cause, retry_after }) => (cause, retry_after),
        };
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
        let wake = Instant::now() + backoff(retry, retry_after);
        if wake >= deadline {
            let seconds = shared.deadline.as_secs_f64();
            return dead(
                item,
                format!("deadline of {seconds} s passed, the last: {cause:?}"),
            );
        }
        debug!(id = item.id, ?cause, "retrying");
        tokio::select! {
            biased;
            _ = shared.stop.cancelled() => return None,
            _ = tokio::time::sleep_until(wake) => {}
        }
    }
}

fn dead(item: &Item, reason: String) -> Option<Outcome> {
    warn!(id = item.id, reason, "dead letter");
    Some(Outcome::Dead(reason))
}
// ANCHOR_END: attempts
