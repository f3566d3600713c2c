//! Exercise: a client against the real service (chapter 14).
//!
//! The checks start the book's service with faults: 500s, dropped connections, answers lost after
//! the item was applied, and 429s past a quota. Write `attempt` (one POST, its answer sorted),
//! `send` (the retries) and `run` (every item, at most MAX_IN_FLIGHT at once), so that the service
//! applies every item exactly once. Check it: `cargo run -q --bin exercise -- capstone`.
#![allow(unused)] // The starter leaves things unused until your part is written.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

// ANCHOR: exercise
/// One POST of `item` to `{base}/items/{id}`, its payload as the body and an Idempotency-Key
/// header; `Ok` for a 2xx answer, else the `Failure` it is.
async fn attempt(client: &reqwest::Client, base: &str, item: &Item) -> Outcome {
    let answer = client
        .post(format!("{base}/items/{}", item.id))
        // The item's id is its key: the same on every try, so the service applies it once.
        .header("Idempotency-Key", &item.id)
        .body(item.payload.clone())
        .send()
        .await;
    // No answer: the item may have been applied or not. The key makes a retry safe either way.
    let response = answer.map_err(|error| Failure::Retryable {
        why: error.to_string(),
        retry_after: Duration::ZERO,
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

/// How many items may be under way at once, and so how many requests may be in flight.
const MAX_IN_FLIGHT: usize = 10;
/// How many times an item is tried, at most: its last failure is then its outcome.
const ATTEMPTS: u32 = 8;

/// One item: its id goes in the URL, its payload is the body.
#[derive(Debug, Clone)]
struct Item {
    id: String,
    payload: String,
}

/// What became of an item, or of one try.
type Outcome = Result<(), Failure>;

/// Why an item is not done.
#[derive(Debug)]
enum Failure {
    /// The service may say yes later: a 429, a 5xx, or no answer at all (reset, refused).
    Retryable { why: String, retry_after: Duration },
    /// It will say no again: any other answer that is not a success, such as a 400.
    Final(String),
}

/// The wait before retry number `retry` (1, 2, ...) of `item`: what the service asked for, plus
/// a jitter of up to 50 ms × 2^(retry-1), 1.6 s at most. It is drawn from a hash with random keys
/// (the standard library's), so that items refused together do not all come back together.
fn backoff(item: &Item, retry: u32, retry_after: Duration) -> Duration {
    let ceiling = Duration::from_millis(50 << (retry.clamp(1, 6) - 1));
    let share = RandomState::new().hash_one((&item.id, retry)) as f64 / u64::MAX as f64;
    retry_after + ceiling.mul_f64(share)
}

// ── From chapter 14 (code/ch14_capstone/client/retry.rs), as it is there. ──
/// `Retry-After` in whole seconds (the form this service sends); none, or an HTTP date, is 0.
fn retry_after(headers: &HeaderMap) -> Duration {
    let seconds = headers
        .get(RETRY_AFTER)
        .and_then(|value| value.to_str().ok());
    let seconds = seconds.and_then(|text| text.trim().parse::<u64>().ok());
    // At most a minute: a service's mistake must not park an item for a day.
    Duration::from_secs(seconds.unwrap_or(0).min(60))
}
// ── End of chapter 14's code. ──

// ── The checks. They start the real service and run your code against it; no need to read on. ──

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let verdict = checks::check().await;
    match &verdict {
        Ok(summary) => println!("✓ {summary}\nAll checks pass."),
        Err(problem) => println!("✗ {problem}"),
    }
    std::process::ExitCode::from(u8::from(verdict.is_err()))
}

mod checks {
    use std::io::{BufRead, BufReader};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use super::{Failure, Item, MAX_IN_FLIGHT};

    const ITEMS: usize = 300;
    /// The solution takes 2 to 4 s; items sent one at a time would take 13.
    const TIME_LIMIT: Duration = Duration::from_secs(8);
    /// 40 ms a request; 150 a second after a burst of 30, then 429; 8 % answered 500, 3 % dropped,
    /// 4 % applied and then dropped (the answer lost); 503 past 1.5 × MAX_IN_FLIGHT in flight.
    const SERVICE: &str = "--port 0 --latency-ms 40 --quota 150 --burst 30 \
        --fail-rate 0.08 --drop-rate 0.03 --lose-rate 0.04 --capacity";

    /// Ends the checks with a failure: `return Err(format!(...))`.
    macro_rules! fail {
        ($($message:tt)*) => { return Err(format!($($message)*)) };
    }

    /// The service's process, killed when dropped, however the checks end.
    struct Service(Child);

    impl Drop for Service {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    pub async fn check() -> Result<String, String> {
        let path = std::env::var("CAPSTONE_SERVICE")
            .map_err(|_| "no CAPSTONE_SERVICE: run `cargo run -q --bin exercise -- capstone`")?;
        let (mut command, args) = (Command::new(&path), format!("{SERVICE} {MAX_IN_FLIGHT}"));
        command.args(args.split(' '));
        let spawned = command.stdout(Stdio::piped()).stderr(Stdio::null()).spawn();
        let mut child = spawned.map_err(|error| format!("no service {path:?}: {error}"))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let _service = Service(child);
        // Its first line is `listening on http://127.0.0.1:PORT`. Killing it ends the read.
        let read = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).map(|_| line)
        });
        let Ok(Ok(Ok(line))) = tokio::time::timeout(Duration::from_secs(5), read).await else {
            fail!("the service printed no address");
        };
        let base = line.trim().replace("listening on ", "");
        let client = reqwest::Client::builder().no_proxy().build();
        let client = client.map_err(|error| error.to_string())?;
        let items = (0..ITEMS).map(|n| Item {
            id: format!("item-{n:03}"),
            payload: n.to_string(),
        });
        let started = Instant::now();
        let work = tokio::spawn(super::run(client.clone(), base.clone(), items.collect()));
        let outcome = tokio::time::timeout(TIME_LIMIT, work).await;
        let elapsed = started.elapsed().as_secs_f64();
        let ledger = client.get(format!("{base}/ledger")).send().await;
        let ledger = ledger.map_err(|error| format!("no ledger: {error}"))?;
        let ledger: serde_json::Value = ledger.json().await.map_err(|error| error.to_string())?;
        let count = |status: &str| ledger["by_status"][status].as_u64().unwrap_or(0);
        let (requests, applied) = (&ledger["requests"], &ledger["applied"]);
        let (overloaded, refused, over_quota) = (count("503"), count("400"), count("429"));
        let most = MAX_IN_FLIGHT * 3 / 2;
        let outcomes = match outcome {
            Ok(Err(panic)) => fail!("run() failed: {panic}"),
            _ if overloaded > 0 => fail!(
                "the service answered 503 (overloaded) {overloaded} times: more than {most} \
                requests were in flight. Take a permit before each spawn, and keep it until the \
                item is done"
            ),
            _ if refused > 0 => fail!(
                "the service refused {refused} requests with 400 (malformed): does each POST carry \
                an Idempotency-Key header and a body? A 400 is Final: a retry gets it again"
            ),
            Err(_) => fail!(
                "run() still ran after {elapsed:.1} s, with {applied} of {ITEMS} items applied \
                in {requests} requests: are the items sent one at a time? Or does a retry loop \
                never end?"
            ),
            Ok(Ok(outcomes)) => outcomes,
        };
        let failed = outcomes.iter().filter(|(_, done)| done.is_err()).count();
        if let Some((id, Err(failure))) = outcomes.iter().find(|(_, done)| done.is_err()) {
            let hint = match failure {
                Failure::Final(_) => "a 4xx is Final (read its reason); retry the rest",
                Failure::Retryable { .. } => "does send() try ATTEMPTS times, with backoff()?",
            };
            fail!("{failed} of {ITEMS} items failed, {id} with {failure:?}: {hint}");
        }
        let mut done: Vec<String> = outcomes.iter().map(|(id, _)| id.clone()).collect();
        let mut applied: Vec<String> =
            serde_json::from_value(ledger["items"].clone()).unwrap_or_default();
        let all: Vec<String> = (0..ITEMS).map(|n| format!("item-{n:03}")).collect();
        done.sort();
        applied.sort();
        if done != all {
            let outcomes = outcomes.len();
            fail!("run() returned {outcomes} outcomes for {ITEMS} items: one for each item?");
        }
        if let Some(id) = all.iter().find(|&id| !applied.contains(id)) {
            fail!(
                "{id} is reported done, but the service never applied it: is a failure taken \
                for done? Or do items share an Idempotency-Key?"
            );
        }
        if let Some([id, _]) = applied.windows(2).find(|pair| pair[0] == pair[1]) {
            fail!(
                "the service applied {id} more than once: a lost answer retried with another \
                Idempotency-Key? Send the same key on every try"
            );
        }
        if over_quota > ITEMS as u64 / 10 {
            fail!(
                "the service answered 429 {over_quota} times for {ITEMS} items: does a retry \
                wait the Retry-After the 429 gives?"
            );
        }
        let (failed, dropped, lost) = (count("500"), count("drop"), count("lose"));
        Ok(format!(
            "{ITEMS} items done, each applied once, in {requests} requests: {failed} \
            answered 500, {dropped} dropped, {lost} lost after applying (their retries: {} \
            duplicates), {over_quota} over quota; elapsed {elapsed:.1} s",
            ledger["duplicates"]
        ))
    }
}
