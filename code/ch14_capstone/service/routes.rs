//! The service's three routes. `POST /items/{id}` goes through what a real service does, in
//! order: it refuses a malformed request (400, final), a client over its quota (429) and load
//! past its capacity (503), then works for a while and maybe fails on purpose, and applies the
//! item once per idempotency key. Every exit is counted in the ledger.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::capacity::Capacity;
use crate::connection::DropHandle;
use crate::faults::{Fault, Faults};
use crate::item;
use crate::ledger::Ledger;
use crate::options::Options;
use crate::quota::Quota;

/// Everything the handlers share.
pub struct Service {
    pub quota: Quota,
    pub capacity: Capacity,
    pub faults: Faults,
    pub ledger: Ledger,
}

impl Service {
    pub fn new(options: &Options) -> Service {
        let latency = Duration::from_millis(options.latency_ms);
        Service {
            quota: Quota::new(options.quota, options.burst),
            capacity: Capacity::new(options.capacity, latency),
            faults: Faults::new(
                options.fail_rate,
                options.hang_rate,
                options.drop_rate,
                options.lose_rate,
                options.seed,
            ),
            ledger: Ledger::default(),
        }
    }
}

pub fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/items/{id}", post(post_item))
        .route("/ledger", get(ledger))
        .route("/health", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(64 * 1024))
        .with_state(service)
}

async fn post_item(
    State(service): State<Arc<Service>>,
    ConnectInfo(connection): ConnectInfo<DropHandle>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let ledger = &service.ledger;
    ledger.count_request();
    let answer = |status: StatusCode, body: serde_json::Value| {
        ledger.count_outcome(status.as_str());
        (status, Json(body)).into_response()
    };
    let (id, key) = match item::check(id, &headers, body) {
        Ok(checked) => checked,
        Err((status, error)) => return answer(status, json!({ "error": error })),
    };
    let client = headers.get("x-client-id").and_then(|v| v.to_str().ok());
    if let Err(seconds) = service.quota.take(client.unwrap_or("anonymous")) {
        let mut response = answer(
            StatusCode::TOO_MANY_REQUESTS,
            json!({"error": "over quota"}),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, seconds.into());
        return response;
    }
    let Some(in_flight) = service.capacity.admit() else {
        let mut response = answer(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": "overloaded"}),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    };
    // Drawn on arrival, so the seed replays the same faults for the same order of arrival.
    let fault = service.faults.draw();
    tokio::time::sleep(in_flight.latency).await;
    match fault {
        Fault::Fail => answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": "injected"}),
        ),
        Fault::Hang => {
            ledger.count_outcome("hang");
            // Never ready. When the client gives up and closes the connection, hyper drops this
            // future, and with it `in_flight`: the request leaves the gauge.
            std::future::pending().await
        }
        Fault::Drop => {
            ledger.count_outcome("drop");
            connection.drop_connection();
            // Never sent: the connection fails when hyper tries to write it.
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        Fault::Lose => {
            // Applied, then the answer lost: only the idempotency key saves the retry from
            // applying it twice.
            ledger.apply(&key, &id);
            ledger.count_outcome("lose");
            connection.drop_connection();
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        Fault::None if ledger.apply(&key, &id) => {
            answer(StatusCode::OK, json!({"id": id, "applied": true}))
        }
        Fault::None => answer(
            StatusCode::OK,
            json!({"id": id, "applied": false, "duplicate": true}),
        ),
    }
}

/// `GET /ledger`, and `GET /ledger?items=false` without the list of items.
async fn ledger(State(service): State<Arc<Service>>, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let with_items = !query.split('&').any(|pair| pair == "items=false");
    Json(service.ledger.report(with_items)).into_response()
}
