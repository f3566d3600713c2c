//! Exercise: a client against the real service (chapter 14).
//!
//! The checks start the book's service with faults: 500s, dropped connections, answers lost after
//! the item was applied, requests never answered, and 429s past a quota. They also send one item
//! to a service that always answers 500. Write `attempt` (one POST, its answer sorted),
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
/// header, given REQUEST_TIMEOUT at most; `Ok` for a 2xx answer, else the `Failure` it is.
async fn attempt(client: &reqwest::Client, base: &str, item: &Item) -> Outcome {
    todo!("send the POST, and sort what comes back: done, worth another try, or not")
}

/// Sends `item` until it is done: at most ATTEMPTS tries, with a `backoff` before each retry.
async fn send(client: &reqwest::Client, base: &str, item: &Item) -> Outcome {
    todo!("call attempt() again while it fails with a Retryable, up to ATTEMPTS times")
}

/// Sends every item, at most MAX_IN_FLIGHT at once; returns each item's id and outcome.
async fn run(client: reqwest::Client, base: String, items: Vec<Item>) -> Vec<(String, Outcome)> {
    let limit = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut tasks: JoinSet<(String, Outcome)> = JoinSet::new();
    todo!("for each item, take a permit, then spawn a task that sends it; collect the outcomes")
}
// ANCHOR_END: exercise

/// How many items may be under way at once, and so how many requests may be in flight.
const MAX_IN_FLIGHT: usize = 10;
/// How many times an item is tried, at most: its last failure is then its outcome.
const ATTEMPTS: u32 = 8;
/// How long one request may take, connecting included: a service may never answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);

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
    /// The service may say yes later: a 429, a 5xx, or no answer at all (reset, refused, none
    /// within REQUEST_TIMEOUT).
    Retryable { why: String, retry_after: Duration },
    /// It will say no again: any other answer that is not a success, such as a 400; or a
    /// request that could not even be made (a bad URL or header).
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
    //! A lock's `unwrap()` here fails only if a check panicked while holding it.
    use std::io::{BufRead, BufReader};
    use std::process::{Child, Command, Stdio};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::{ATTEMPTS, Failure, Item, MAX_IN_FLIGHT};

    const ITEMS: usize = 200;
    /// The solution takes 2 to 4 s; items sent one at a time would take 13.
    const TIME_LIMIT: Duration = Duration::from_secs(8);
    /// 40 ms a request; 150 a second after a burst of 30, then 429; 8 % answered 500, 2 % never
    /// answered, 3 % dropped, 4 % applied and then dropped (the answer lost); 503 past
    /// 1.5 × MAX_IN_FLIGHT in flight.
    const SERVICE: &str = "--port 0 --latency-ms 40 --quota 150 --burst 30 --fail-rate 0.08 \
        --hang-rate 0.02 --drop-rate 0.03 --lose-rate 0.04 --capacity";
    /// How long the item the checks' own service always refuses may take: its backoffs add up
    /// to 4.75 s at most.
    const REFUSED_LIMIT: Duration = Duration::from_secs(6);

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
        // Beside the run, one item sent to a service that answers it 500 every time.
        let (refusing, refused_at) = refuser().await?;
        let refused = Item {
            id: "item-refused".into(),
            payload: "0".into(),
        };
        let sender = client.clone();
        let refused = tokio::spawn(async move { super::send(&sender, &refusing, &refused).await });
        let work = tokio::spawn(super::run(client.clone(), base.clone(), items.collect()));
        let outcome = tokio::time::timeout(TIME_LIMIT, work).await;
        let elapsed = started.elapsed().as_secs_f64();
        let ledger = client.get(format!("{base}/ledger")).send().await;
        let ledger = ledger.map_err(|error| format!("no ledger: {error}"))?;
        let ledger: serde_json::Value = ledger.json().await.map_err(|error| error.to_string())?;
        let count = |status: &str| ledger["by_status"][status].as_u64().unwrap_or(0);
        let (requests, applied) = (&ledger["requests"], &ledger["applied"]);
        let (overloaded, malformed, over_quota) = (count("503"), count("400"), count("429"));
        let most = MAX_IN_FLIGHT * 3 / 2;
        // Requests never answered: without a time limit, each holds its item, and its permit.
        let (hung, applied_n) = (count("hang"), applied.as_u64().unwrap_or(0));
        let stuck_all = hung >= MAX_IN_FLIGHT as u64;
        let outcomes = match outcome {
            Ok(Err(panic)) => fail!("run() failed: {panic}"),
            _ if overloaded > 0 => fail!(
                "the service answered 503 (overloaded) {overloaded} times: more than {most} \
                requests were in flight. Take a permit before each spawn, and keep it until the \
                item is done"
            ),
            _ if malformed > 0 => fail!(
                "the service refused {malformed} requests with 400 (malformed): does each POST \
                carry an Idempotency-Key header and a body? A 400 is Final: a retry gets it again"
            ),
            Err(_) if hung > 0 && (stuck_all || applied_n + hung >= ITEMS as u64) => fail!(
                "run() still ran after {elapsed:.1} s, with {applied} of {ITEMS} items applied \
                in {requests} requests, and {hung} requests the service never answered: does a \
                request wait for ever? Give each one REQUEST_TIMEOUT (RequestBuilder::timeout)"
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
        let refused = judge_refused(refused, started, &refused_at).await?;
        let (failed, dropped, lost) = (count("500"), count("drop"), count("lose"));
        Ok(format!(
            "{ITEMS} items done, each applied once, in {requests} requests: {failed} \
            answered 500, {} unanswered, {dropped} dropped, {lost} lost after applying (their \
            retries: {} duplicates), {over_quota} over quota; elapsed {elapsed:.1} s\n✓ {refused}",
            count("hang"),
            ledger["duplicates"]
        ))
    }

    /// When each request came to the checks' own service.
    type Seen = Arc<Mutex<Vec<Instant>>>;

    /// The checks' own service, on loopback: it answers every request 500, and notes when each
    /// came. Past ATTEMPTS requests it no longer answers, so that a retry loop with no end waits
    /// instead of spinning.
    async fn refuser() -> Result<(String, Seen), String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await;
        let listener = listener.map_err(|error| format!("no port for a service: {error}"))?;
        let address = listener.local_addr().map_err(|error| error.to_string())?;
        let seen = Seen::default();
        let noted = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let noted = Arc::clone(&noted);
                tokio::spawn(async move {
                    let (mut request, mut buffer) = (Vec::new(), [0; 4096]);
                    while !whole(&request) {
                        match socket.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buffer[..n]),
                        }
                    }
                    let count = {
                        let mut seen = noted.lock().unwrap();
                        seen.push(Instant::now());
                        seen.len()
                    };
                    if count > ATTEMPTS as usize {
                        std::future::pending::<()>().await;
                    }
                    let answer = "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\
                        connection: close\r\n\r\n";
                    let _ = socket.write_all(answer.as_bytes()).await;
                });
            }
        });
        Ok((format!("http://{address}"), seen))
    }

    /// Whether `request` holds a whole HTTP request: its head, and the body it announces.
    fn whole(request: &[u8]) -> bool {
        let text = String::from_utf8_lossy(request);
        let Some(end) = text.find("\r\n\r\n") else {
            return false;
        };
        let length = text[..end].lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            let length = name.eq_ignore_ascii_case("content-length");
            length.then(|| value.trim().parse().unwrap_or(0))
        });
        request.len() >= end + 4 + length.unwrap_or(0)
    }

    /// Judges `send` on the item always answered 500: ATTEMPTS tries, spread out by backoff,
    /// then its last failure, a Retryable one.
    async fn judge_refused(
        mut task: tokio::task::JoinHandle<super::Outcome>,
        started: Instant,
        seen: &Seen,
    ) -> Result<String, String> {
        let tries = || seen.lock().unwrap().clone();
        while !task.is_finished() && tries().len() <= ATTEMPTS as usize {
            if started.elapsed() > REFUSED_LIMIT {
                task.abort();
                let n = tries().len();
                fail!(
                    "send() still ran after {} s, for an item answered 500 every time, after {n} \
                    tries: does it wait backoff(item, retry, retry_after) between tries, 1.6 s at \
                    most plus what Retry-After says?",
                    REFUSED_LIMIT.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let tries = tries();
        let (n, attempts) = (tries.len(), ATTEMPTS as usize);
        let spread = match (tries.first(), tries.last()) {
            (Some(&first), Some(&last)) => (last - first).as_secs_f64(),
            _ => 0.0,
        };
        if n > attempts {
            task.abort();
            fail!(
                "send() tried an item {n} times in {spread:.2} s, against a service that answers \
                it 500 every time: stop after ATTEMPTS ({ATTEMPTS}) tries, and return the last \
                failure"
            );
        }
        let outcome = match (&mut task).await {
            Ok(outcome) => outcome,
            Err(error) => fail!("send() failed, for an item always answered 500: {error}"),
        };
        match outcome {
            Ok(()) => fail!("send() said Ok for an item the service answered 500 every time"),
            Err(Failure::Final(why)) => fail!(
                "send() gave up after {n} tries, with Final({why:?}), on an item answered 500: \
                a 5xx is Retryable"
            ),
            Err(Failure::Retryable { .. }) if n < attempts => fail!(
                "send() gave up after {n} tries of an item answered 500 every time: it should \
                try ATTEMPTS ({ATTEMPTS}) times"
            ),
            Err(Failure::Retryable { .. }) if spread < 0.05 => fail!(
                "send() made its {n} tries of an item answered 500 within {spread:.3} s: wait \
                backoff(item, retry, retry_after) before each retry, so that a struggling \
                service gets room"
            ),
            Err(failure) => Ok(format!(
                "an item the checks' own service answers 500 every time: {n} tries over \
                {spread:.2} s, then {failure:?}"
            )),
        }
    }
}
