// ANCHOR: send
//! One request, as the limiters allow it (chapter 8): a permit of the adaptive limit, a turn of
//! the rate limiter, the POST, and its verdict, sorted by `retry.rs`. The limiter hears how it
//! went. A shutdown (chapter 9) stops it before the request leaves; once it has left, only the
//! end of the grace period (`abort`) cancels it.

use tokio::time::Instant;

use crate::queue::Item;
use crate::retry::{Cause, Failure, classify_error, classify_status};
use crate::worker::Shared;

/// One request: a permit, a turn, the request, its verdict, and when it left. `None` when the
/// run stops first.
pub async fn send(shared: &Shared, item: &Item) -> Option<(Instant, Result<(), Failure>)> {
    let permit = tokio::select! {
        biased;
        _ = shared.stop.cancelled() => return None,
        permit = shared.limiter.acquire() => permit,
    };
    if let Some(rate) = &shared.rate {
        tokio::select! {
            biased;
            _ = shared.stop.cancelled() => return None,
            _ = rate.wait_turn() => {}
        }
    }
    let sent_at = Instant::now();
    let answer = tokio::select! {
        biased;
        _ = shared.abort.cancelled() => return None,
        answer = request(shared, item) => answer,
    };
    shared.stats.answered(sent_at.elapsed(), answer.is_ok());
    match &answer {
        Ok(()) => shared.limiter.on_success(),
        Err(Failure::Retryable {
            cause: Cause::Overload | Cause::Timeout,
            ..
        }) => shared.limiter.on_overload(sent_at),
        Err(_) => {}
    }
    drop(permit);
    Some((sent_at, answer))
}
// ANCHOR_END: send

// ANCHOR: request
/// What the service answers with a 200.
#[derive(serde::Deserialize)]
struct Applied {
    id: String,
}

async fn request(shared: &Shared, item: &Item) -> Result<(), Failure> {
    let url = format!("{}/items/{}", shared.base, item.id);
    let response = shared
        .http
        .post(url)
        // The item's id is its idempotency key: the same on every retry, and on every run.
        .header("Idempotency-Key", &item.id)
        .header("X-Client-Id", &shared.client_id)
        .body(item.payload.clone())
        .send()
        .await
        .map_err(|error| classify_error(&error))?;
    let status = response.status();
    if !status.is_success() {
        return Err(classify_status(status, response.headers()));
    }
    let applied: Applied = response.json().await.map_err(|error| {
        if error.is_decode() {
            Failure::Final(format!("malformed answer: {error}"))
        } else {
            classify_error(&error)
        }
    })?;
    if applied.id != item.id {
        return Err(Failure::Final(format!(
            "answer for another id: {}",
            applied.id
        )));
    }
    Ok(())
}
// ANCHOR_END: request
