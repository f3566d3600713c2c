// ANCHOR: classify
//! When to try again, and how long to wait first (chapters 5, 7 and 8). Every failure is sorted
//! once, here: retryable (the service may say yes later: 429, 503, other 5xx, a timeout, a
//! refused or dropped connection) or final (it will say no again: another 4xx, an answer that
//! makes no sense). A retry waits what the service asked for (`Retry-After`) plus exponential
//! backoff with full jitter, and is paid for out of a retry budget.

use std::cell::Cell;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// Why an attempt failed and may be retried: the causes the report counts retries by.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Cause {
    /// 429: over the quota. The service says when to come back: not a failure of the item,
    /// so it costs neither an attempt nor the retry budget; the item's deadline bounds it.
    Quota,
    /// 503: over capacity. A sign to send less: the limiter cuts its limit.
    Overload,
    /// Any other 5xx.
    ServerError,
    /// No answer in `--request-timeout`: maybe overload too, so the limiter cuts its limit.
    Timeout,
    /// Reset or closed without an answer, once the request was on its way: it may have
    /// reached the service, so it counts as a failure of the item.
    Connect,
    /// No connection at all: the service is down or restarting, and the request never left.
    /// Like a 429, not a failure of the item: it costs neither an attempt nor the retry
    /// budget, so that a redeploy does not dead-letter the items in flight; the item's
    /// deadline bounds how long it waits for the service to come back.
    Unreachable,
}

pub enum Failure {
    Retryable { cause: Cause, retry_after: Duration },
    Final(String),
}

/// Sorts an answer that is not a success by its status.
pub fn classify_status(status: StatusCode, headers: &HeaderMap) -> Failure {
    let retry_after = retry_after(headers);
    let cause = match status {
        StatusCode::TOO_MANY_REQUESTS => Cause::Quota,
        StatusCode::SERVICE_UNAVAILABLE => Cause::Overload,
        status if status.is_server_error() => Cause::ServerError,
        status => return Failure::Final(format!("refused: {status}")),
    };
    Failure::Retryable { cause, retry_after }
}

/// Sorts an error of reqwest's: no answer, or an answer cut short.
pub fn classify_error(error: &reqwest::Error) -> Failure {
    // A connect error first: a connection that timed out is one the request never left on.
    let cause = if error.is_connect() {
        Cause::Unreachable
    } else if error.is_timeout() {
        Cause::Timeout
    } else if error.is_request() || error.is_body() {
        Cause::Connect
    } else {
        return Failure::Final(format!("{error}"));
    };
    let retry_after = Duration::ZERO;
    Failure::Retryable { cause, retry_after }
}
// ANCHOR_END: classify

// ANCHOR: backoff
/// `Retry-After` in whole seconds (the form this service sends); none, or an HTTP date, is 0.
fn retry_after(headers: &HeaderMap) -> Duration {
    let seconds = headers
        .get(RETRY_AFTER)
        .and_then(|value| value.to_str().ok());
    let seconds = seconds.and_then(|text| text.trim().parse::<u64>().ok());
    // At most a minute: a service's mistake must not park an item for a day.
    Duration::from_secs(seconds.unwrap_or(0).min(60))
}

const BACKOFF_BASE: Duration = Duration::from_millis(50);
const BACKOFF_CAP: Duration = Duration::from_secs(2);

/// The wait before retry number `retry` (1, 2, ...): what the service asked for, plus up to
/// `BACKOFF_BASE × 2^(retry-1)` (at most `BACKOFF_CAP`) drawn at random, so that clients refused
/// together do not come back together.
pub fn backoff(retry: u32, retry_after: Duration) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(2_u32.saturating_pow(retry.saturating_sub(1)))
        .min(BACKOFF_CAP);
    retry_after + ceiling.mul_f64(random())
}

/// A number in [0, 1): splitmix64, one state a thread, seeded by the standard library's
/// random hash keys. Jitter needs spread, not secrecy.
fn random() -> f64 {
    thread_local!(static STATE: Cell<u64> = Cell::new(RandomState::new().hash_one(0_u8)));
    STATE.with(|state| {
        let next = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        state.set(next);
        let mut z = next;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1_u64 << 53) as f64
    })
}
// ANCHOR_END: backoff

// ANCHOR: budget
/// Retries earned per item started, and how many can be saved up for each request the client
/// may have in flight (the budget starts full). A bank that grows with the concurrency: one
/// reset of the service fails every request in flight at once, and a fixed bank smaller than
/// that would turn the rest into dead letters.
const BUDGET_RATIO: f64 = 0.2;
const BUDGET_PER_REQUEST: f64 = 2.0;

/// Each item started adds a fifth of a retry, up to a cap; each retry takes one. When the
/// service fails everything, retries add a fifth to the load instead of multiplying it.
pub struct RetryBudget {
    tokens: Mutex<f64>,
    cap: f64,
}

impl RetryBudget {
    /// For a client with at most `in_flight` requests at once.
    pub fn new(in_flight: u32) -> RetryBudget {
        let cap = BUDGET_PER_REQUEST * f64::from(in_flight);
        RetryBudget {
            tokens: Mutex::new(cap),
            cap,
        }
    }

    pub fn deposit(&self) {
        // A panic cannot leave one `f64` half-written: the value is sound.
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        *tokens = (*tokens + BUDGET_RATIO).min(self.cap);
    }

    pub fn try_withdraw(&self) -> bool {
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        let allowed = *tokens >= 1.0;
        if allowed {
            *tokens -= 1.0;
        }
        allowed
    }
}
// ANCHOR_END: budget
