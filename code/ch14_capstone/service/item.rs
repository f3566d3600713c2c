//! What a well-formed `POST /items/{id}` is. A malformed request gets 400 and a reason: the
//! client must not retry it, since the same request would be refused the same way. Checking it
//! first, before the quota and the capacity, costs the service nothing.

use axum::body::Bytes;
use axum::extract::Path;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::http::{HeaderMap, StatusCode};

/// The item's id and idempotency key, or why the request is malformed (status and message).
pub fn check(
    id: Result<Path<String>, PathRejection>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(String, String), (StatusCode, String)> {
    let bad = |message: &str| (StatusCode::BAD_REQUEST, message.to_string());
    let Ok(Path(id)) = id else {
        return Err(bad("the id in the path is not valid UTF-8"));
    };
    let good_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if id.is_empty() || id.len() > 128 || !id.chars().all(good_char) {
        return Err(bad("the id must be 1 to 128 characters of A-Z a-z 0-9 _ -"));
    }
    let key = match headers.get("idempotency-key").map(|v| v.to_str()) {
        Some(Ok(key)) if !key.is_empty() => key.to_string(),
        _ => return Err(bad("missing Idempotency-Key")),
    };
    // A body over 64 KiB (the router's limit) keeps the status axum gives it: 413, also final.
    let body = body.map_err(|rejection| (rejection.status(), rejection.body_text()))?;
    match std::str::from_utf8(&body) {
        Ok("") => Err(bad("the body is empty")),
        Ok(_) => Ok((id, key)),
        Err(_) => Err(bad("the body is not UTF-8")),
    }
}
