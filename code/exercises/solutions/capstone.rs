// A solution of the exercise `capstone`: the part of code/exercises/capstone.rs between its
// ANCHOR lines, written. `cargo run -q --bin exercise -- capstone --solution` puts it in place
// of the starter's part and runs the checks.

// ANCHOR: exercise
/// One POST of `item` to `{base}/items/{id}`, its payload as the body and an Idempotency-Key
/// header, given REQUEST_TIMEOUT at most; `Ok` for a 2xx answer, else the `Failure` it is.
async fn attempt(client: &reqwest::Client, base: &str, item: &Item) -> Outcome {
    let answer = client
        .post(format!("{base}/items/{}", item.id))
        // The item's id is its key: the same on every try, so the service applies it once.
        .header("Idempotency-Key", &item.id)
        .body(item.payload.clone())
        // Connecting, sending and the whole answer: a service that never answers costs this.
        .timeout(REQUEST_TIMEOUT)
        .send()
        .await;
    // No answer (no connection, or one cut or timed out): the item may have been applied or
    // not, and the key makes a retry safe either way. Any other error, such as a URL or a
    // header reqwest could not build, would come again on every try.
    let response = answer.map_err(|error| {
        let why = error.to_string();
        if error.is_connect() || error.is_timeout() || error.is_request() || error.is_body() {
            let retry_after = Duration::ZERO;
            Failure::Retryable { why, retry_after }
        } else {
            Failure::Final(why)
        }
    })?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        let retry_after = retry_after(response.headers());
        let why = status.to_string();
        Err(Failure::Retryable { why, retry_after })
    } else {
        // The same request would be refused again; the body says why.
        let body = response.text().await.unwrap_or_default();
        Err(Failure::Final(format!("{status}: {body}")))
    }
}

/// Sends `item` until it is done: at most ATTEMPTS tries, with a `backoff` before each retry.
async fn send(client: &reqwest::Client, base: &str, item: &Item) -> Outcome {
    let mut retry = 0;
    loop {
        match attempt(client, base, item).await {
            Err(Failure::Retryable { retry_after, .. }) if retry + 1 < ATTEMPTS => {
                retry += 1;
                tokio::time::sleep(backoff(item, retry, retry_after)).await;
            }
            outcome => return outcome,
        }
    }
}

/// Sends every item, at most MAX_IN_FLIGHT at once; returns each item's id and outcome.
async fn run(client: reqwest::Client, base: String, items: Vec<Item>) -> Vec<(String, Outcome)> {
    let limit = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut tasks: JoinSet<(String, Outcome)> = JoinSet::new();
    for item in items {
        // Before the spawn, so the loop waits here while MAX_IN_FLIGHT items are under way.
        // `unwrap`: acquiring fails only on a closed semaphore, and nothing closes this one.
        let permit = Arc::clone(&limit).acquire_owned().await.unwrap();
        let (client, base) = (client.clone(), base.clone());
        tasks.spawn(async move {
            let outcome = send(&client, &base, &item).await;
            drop(permit);
            (item.id, outcome)
        });
    }
    // Waits for every task, and raises again a panic in any of them.
    tasks.join_all().await
}
// ANCHOR_END: exercise
