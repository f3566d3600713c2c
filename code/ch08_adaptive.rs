//! Chapter 8: adapting the number of requests in flight to a service's capacity and quota.
//!
//! A client is built in six steps against a simulated service whose capacity halves for the
//! middle half of the run: chapter 4's 50 consumers, a fixed limit, a rate limiter for the
//! quota, retries with backoff and jitter, a retry budget, and a limit that adapts itself
//! (AIMD). `--client` picks the step; each run ends with its goodput and rejection rate. The
//! service, a stand-in for a real API, is the module `service` at the end of the client's code.
//! Run it with `cargo run --bin ch08_adaptive`; `--help` lists the options.

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;

use service::{QUOTA_PER_SECOND, Rejection, Rng, Service};

// ANCHOR: call
/// The jobs, numbered from 0, shared by the workers as chapter 4's consumers share them.
type Jobs = Arc<tokio::sync::Mutex<mpsc::Receiver<u64>>>;

async fn next_job(jobs: &Jobs) -> Option<u64> {
    jobs.lock().await.recv().await
}

impl Client {
    /// One attempt: a call to the service, counted as an attempt, then as completed or
    /// rejected. `Ok` holds how long the service worked on the request.
    async fn call(&self) -> Result<Duration, Rejection> {
        Counters::add(&self.counters.attempts);
        let answer = self.service.call().await;
        match answer {
            Ok(_) => Counters::add(&self.counters.completed),
            Err(_) => Counters::add(&self.counters.rejected),
        }
        answer
    }
}
// ANCHOR_END: call

// ANCHOR: queue
/// Chapter 4's number of consumers, and the wait after a refusal before calling again.
const CONSUMERS: usize = 50;
const NAIVE_RETRY_WAIT: Duration = Duration::from_millis(100);

/// Chapter 4's consumer, pointed at the service: it takes a job and calls until the call goes
/// through, waiting a fixed tenth of a second after each refusal.
async fn queue_worker(client: Arc<Client>, jobs: Jobs) {
    while let Some(_job) = next_job(&jobs).await {
        while client.call().await.is_err() {
            tokio::time::sleep(NAIVE_RETRY_WAIT).await;
        }
    }
}
// ANCHOR_END: queue

// ANCHOR: limit
/// The service's capacity on a good day, as if someone had measured it once: the best fixed
/// limit there is, until the capacity moves. `client.permits` is a `Semaphore` with this many.
const FIXED_LIMIT: usize = 40;
/// Workers for every step but `queue`: more than any limit lets through, so that the limit,
/// not the number of workers, decides how many requests are in flight.
const WORKERS: usize = 200;

/// A worker that holds a permit for each request, and only while the request is in flight.
async fn limit_worker(client: Arc<Client>, jobs: Jobs) {
    while let Some(_job) = next_job(&jobs).await {
        loop {
            // `acquire` fails only once the semaphore is closed, and nothing closes this one.
            let Ok(permit) = client.permits.acquire().await else {
                return;
            };
            let answer = client.call().await;
            // A request waiting to be retried is not in flight: give its place to another.
            drop(permit);
            if answer.is_ok() {
                break;
            }
            tokio::time::sleep(NAIVE_RETRY_WAIT).await;
        }
    }
}
// ANCHOR_END: limit

// ANCHOR: rate
/// Spaces requests so that they never exceed the quota: each one gets the next free moment,
/// a deadline, `1 / per_second` after the one before.
struct RateLimiter {
    next_free: Mutex<Instant>,
    interval: Duration,
}

impl RateLimiter {
    fn new(per_second: f64) -> RateLimiter {
        RateLimiter {
            next_free: Mutex::new(Instant::now()),
            interval: Duration::from_secs_f64(1.0 / per_second),
        }
    }

    /// Reserves the next turn, then sleeps until it. A task cancelled during the sleep has
    /// already spent its turn, which then goes unused.
    async fn wait_turn(&self) {
        let turn = {
            let mut next_free = lock(&self.next_free);
            let turn = (*next_free).max(Instant::now());
            // The next turn follows this one, not the moment a task wakes up: a late wake-up
            // delays its own request, never the turns after it.
            *next_free = turn + self.interval;
            turn
        };
        tokio::time::sleep_until(turn).await;
    }
}

/// The `limit` worker, which now also waits for its turn under the quota before each call,
/// holding its permit while it waits.
async fn rate_worker(client: Arc<Client>, jobs: Jobs) {
    while let Some(_job) = next_job(&jobs).await {
        loop {
            let Ok(permit) = client.permits.acquire().await else {
                return;
            };
            client.rate.wait_turn().await;
            let answer = client.call().await;
            drop(permit);
            if answer.is_ok() {
                break;
            }
            tokio::time::sleep(NAIVE_RETRY_WAIT).await;
        }
    }
}
// ANCHOR_END: rate

// ANCHOR: backoff
/// The first retry waits up to this long; each further retry up to twice as long as the last.
const BACKOFF_BASE: Duration = Duration::from_millis(50);
/// No retry waits longer than this, on top of what the service asked for.
const BACKOFF_CAP: Duration = Duration::from_secs(2);

/// How long to wait before retry number `retry` (1, 2, ...): what the service asked for, plus
/// exponential backoff with full jitter. Adding the jitter to the service's wait, rather than
/// taking the larger of the two, keeps clients refused together from retrying together.
fn backoff(retry: u32, retry_after: Duration, rng: &mut Rng) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(2_u32.saturating_pow(retry - 1))
        .min(BACKOFF_CAP);
    retry_after + ceiling.mul_f64(rng.next_f64())
}

/// The `rate` worker, which now waits before a retry as long as `backoff` says.
async fn backoff_worker(client: Arc<Client>, jobs: Jobs) {
    while let Some(_job) = next_job(&jobs).await {
        let mut retry = 0;
        loop {
            let Ok(permit) = client.permits.acquire().await else {
                return;
            };
            client.rate.wait_turn().await;
            let answer = client.call().await;
            drop(permit);
            let Err(rejection) = answer else {
                break;
            };
            retry += 1;
            let wait = backoff(retry, rejection.retry_after(), &mut lock(&client.rng));
            tokio::time::sleep(wait).await;
        }
    }
}
// ANCHOR_END: backoff

// ANCHOR: budget
/// Retries allowed per first attempt, over the run: a tenth.
const RETRY_BUDGET_RATIO: f64 = 0.1;
/// Retries that can be saved up, and the budget at the start: a long calm period must not
/// bank enough retries to flood the service when trouble comes.
const RETRY_BUDGET_CAP: f64 = 10.0;

/// Retries are paid for out of a budget that first attempts fill, up to a cap, so that when
/// everything fails, retries add about a tenth to the load instead of multiplying it.
struct RetryBudget(Mutex<f64>);

impl RetryBudget {
    fn deposit(&self) {
        let mut tokens = lock(&self.0);
        *tokens = (*tokens + RETRY_BUDGET_RATIO).min(RETRY_BUDGET_CAP);
    }

    fn try_withdraw(&self) -> bool {
        let mut tokens = lock(&self.0);
        let allowed = *tokens >= 1.0;
        if allowed {
            *tokens -= 1.0;
        }
        allowed
    }
}

/// The `backoff` worker, whose retries are now paid for out of the budget. A job the budget
/// cannot pay for is parked, not lost: the run lists the parked jobs at the end.
async fn budget_worker(client: Arc<Client>, jobs: Jobs) {
    while let Some(job) = next_job(&jobs).await {
        client.budget.deposit();
        let mut retry = 0;
        loop {
            let Ok(permit) = client.permits.acquire().await else {
                return;
            };
            client.rate.wait_turn().await;
            let answer = client.call().await;
            drop(permit);
            let Err(rejection) = answer else {
                break;
            };
            if !client.budget.try_withdraw() {
                client.park(job);
                break;
            }
            retry += 1;
            let wait = backoff(retry, rejection.retry_after(), &mut lock(&client.rng));
            tokio::time::sleep(wait).await;
        }
    }
}
// ANCHOR_END: budget

// ANCHOR: limiter_state
/// Where the concurrency limit starts, and the lowest it may go.
const INITIAL_LIMIT: f64 = 10.0;
const MIN_LIMIT: f64 = 1.0;
/// A latency this many times the lowest seen means the service is queueing our requests.
const LATENCY_TOLERANCE: f64 = 1.25;
/// How much of the limit to keep after a sign of overload: a little after slow answers,
/// more after a refusal.
const DECREASE_ON_LATENCY: f64 = 0.9;
const DECREASE_ON_REJECTION: f64 = 0.7;

/// A concurrency limit that adjusts itself: additive increase, multiplicative decrease (AIMD),
/// as TCP adjusts its congestion window.
struct Limiter {
    state: Mutex<LimiterState>,
    /// Wakes the tasks waiting in `acquire` when a permit is returned or the limit grows.
    changed: Notify,
}

struct LimiterState {
    limit: f64,
    /// Permits held: requests at the service, or waiting for their turn under the quota.
    /// (The report's `in_flight` is another count: the service's, of requests it is serving.)
    held: u32,
    /// Requests at the service: what tells whether the limit is what holds the client back.
    sent: u32,
    /// Until the first sign of overload, grow fast: one more per success, doubling per round
    /// trip, as TCP's slow start does.
    slow_start: bool,
    /// The lowest latency seen: the service's latency when it is not queueing.
    baseline: Option<Duration>,
    /// When the limit was last cut. It takes effect once the requests sent before the cut
    /// have drained, about one baseline latency later: answers to requests sent before that
    /// still show the old overload, and must not cut the limit again.
    decreased_at: Option<Instant>,
}

/// The right to have one request in flight. Dropping it gives the right back.
struct Permit(Arc<Limiter>);

impl Drop for Permit {
    fn drop(&mut self) {
        lock(&self.0.state).held -= 1;
        // One permit back lets one more request go: wake one waiter, not all of them.
        self.0.changed.notify_one();
    }
}
// ANCHOR_END: limiter_state

// ANCHOR: limiter_acquire
impl Limiter {
    fn new() -> Limiter {
        Limiter {
            state: Mutex::new(LimiterState {
                limit: INITIAL_LIMIT,
                held: 0,
                sent: 0,
                slow_start: true,
                baseline: None,
                decreased_at: None,
            }),
            changed: Notify::new(),
        }
    }

    /// Waits until one more request may be in flight. Not first come, first served: a task
    /// arriving just as a permit comes back can take it before the waiter that was woken for
    /// it, who then waits again. Harmless here, where every worker does the same work.
    async fn acquire(self: &Arc<Self>) -> Permit {
        loop {
            // Registered as a waiter before the check (`enable`), so that a permit returned
            // between the check and the wait wakes this task: `notify_one` wakes a registered
            // waiter, and stores at most one wake-up for a future not yet registered.
            let mut changed = std::pin::pin!(self.changed.notified());
            changed.as_mut().enable();
            {
                let mut state = lock(&self.state);
                if f64::from(state.held) < state.limit.floor() {
                    state.held += 1;
                    return Permit(Arc::clone(self));
                }
            }
            changed.await;
        }
    }

    /// A request is leaving for the service now. It counts as sent until the `Sent` is
    /// dropped: handed to `on_success` or `on_rejection`, or dropped with a cancelled call.
    fn sending(self: &Arc<Self>) -> Sent {
        lock(&self.state).sent += 1;
        Sent {
            limiter: Arc::clone(self),
            at: Instant::now(),
        }
    }

    fn limit(&self) -> f64 {
        lock(&self.state).limit
    }
}

/// A request at the service. Dropping it, however that happens, stops counting it.
struct Sent {
    limiter: Arc<Limiter>,
    at: Instant,
}

impl Drop for Sent {
    fn drop(&mut self) {
        lock(&self.limiter.state).sent -= 1;
    }
}
// ANCHOR_END: limiter_acquire

// ANCHOR: limiter_feedback
impl Limiter {
    /// An answer came back, and the service said it took `latency`.
    fn on_success(&self, sent: Sent, latency: Duration) {
        let sent_at = sent.at;
        drop(sent);
        let mut state = lock(&self.state);
        let baseline = state.baseline.map_or(latency, |lowest| lowest.min(latency));
        state.baseline = Some(baseline);
        if latency > baseline.mul_f64(LATENCY_TOLERANCE) {
            state.decrease(sent_at, DECREASE_ON_LATENCY);
        } else if 2.0 * (f64::from(state.sent) + 1.0) >= state.limit {
            // Grow only a limit that is in use, at least half of it: a client held back by its
            // quota, say, learns nothing about the service's capacity from its own restraint.
            let step = if state.slow_start {
                1.0
            } else {
                1.0 / state.limit
            };
            state.limit += step;
            drop(state);
            // The limit grew by one at most: room for one more waiter.
            self.changed.notify_one();
        }
    }

    /// The service refused a request: a cut if it was overloaded, nothing if it was the quota.
    fn on_rejection(&self, sent: Sent, overloaded: bool) {
        let sent_at = sent.at;
        drop(sent);
        let mut state = lock(&self.state);
        if overloaded {
            state.decrease(sent_at, DECREASE_ON_REJECTION);
        }
    }
}

impl LimiterState {
    fn decrease(&mut self, sent_at: Instant, factor: f64) {
        let settling = self.baseline.unwrap_or_default();
        if self.decreased_at.is_some_and(|at| sent_at < at + settling) {
            return; // the last cut has not had time to take effect yet
        }
        // Cut from what is in use, when that is below the limit: a limit twice what was ever
        // used would otherwise take several cuts before it restrained anything.
        let in_use = f64::from(self.sent) + 1.0;
        self.limit = (self.limit.min(in_use) * factor).max(MIN_LIMIT);
        self.slow_start = false;
        self.decreased_at = Some(Instant::now());
    }
}
// ANCHOR_END: limiter_feedback

// ANCHOR: adaptive
/// The `budget` worker with the adaptive limiter in place of the semaphore. It tells the
/// limiter when each request leaves and how it went.
async fn adaptive_worker(client: Arc<Client>, jobs: Jobs) {
    while let Some(job) = next_job(&jobs).await {
        client.budget.deposit();
        let mut retry = 0;
        loop {
            let permit = client.limiter.acquire().await;
            client.rate.wait_turn().await;
            let sent = client.limiter.sending();
            let rejection = match client.call().await {
                // The service reports how long it worked on the request, as some APIs do in a
                // `Server-Timing` header. Without one, time the round trip from `sent.at`: it
                // adds the network and this machine's own delays, which a busy machine inflates.
                Ok(latency) => break client.limiter.on_success(sent, latency),
                Err(rejection) => rejection,
            };
            // A refusal for capacity says the limit is too high; one for the quota says
            // nothing about capacity, only that we sent too fast.
            let overloaded = matches!(rejection, Rejection::Overloaded { .. });
            client.limiter.on_rejection(sent, overloaded);
            drop(permit);
            if !client.budget.try_withdraw() {
                client.park(job);
                break;
            }
            retry += 1;
            let wait = backoff(retry, rejection.retry_after(), &mut lock(&client.rng));
            tokio::time::sleep(wait).await;
        }
    }
}
// ANCHOR_END: adaptive

// ANCHOR: client
/// The steps the client is built in, each adding one part to the one before.
#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
enum Step {
    /// Chapter 4's 50 consumers, retrying after a fixed wait.
    Queue,
    /// A fixed limit on requests in flight, held by a semaphore.
    Limit,
    /// And a rate limiter for the quota.
    Rate,
    /// And retries with exponential backoff and jitter, honouring `Retry-After`.
    Backoff,
    /// And a retry budget, parking the jobs it refuses.
    Budget,
    /// With a limit that adapts itself (AIMD) in place of the fixed one.
    Adaptive,
}

/// What every worker shares: the service, the counters, and every step's parts (each step
/// uses those it needs).
struct Client {
    service: Arc<Service>,
    counters: Counters,
    /// `limit`, `rate`, `backoff`, `budget`: a fixed number of permits.
    permits: Semaphore,
    /// From `rate` on: the quota's pace.
    rate: RateLimiter,
    /// From `backoff` on: the random numbers of the jitter.
    rng: Mutex<Rng>,
    /// From `budget` on: the retry budget, and the jobs it refused. The list grows for as long
    /// as the run lasts: it stands in for storage, where a real client writes each parked job.
    budget: RetryBudget,
    parked: Mutex<Vec<u64>>,
    /// `adaptive`: the limit that adapts itself.
    limiter: Arc<Limiter>,
}

impl Client {
    /// Sets a job aside for later: here a list, printed at the end of the run; in a real
    /// client, durable storage (chapter 10's SQLite, say) that a later run retries from.
    fn park(&self, job: u64) {
        Counters::add(&self.counters.parked);
        lock(&self.parked).push(job);
    }
}

/// What happened over the run, counted by the workers.
#[derive(Default)]
struct Counters {
    attempts: AtomicU64,
    rejected: AtomicU64,
    completed: AtomicU64,
    /// Jobs the retry budget refused to retry.
    parked: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
// ANCHOR_END: client

// ANCHOR: run
async fn run(step: Step, seed: u64, duration: Duration) -> Vec<Sample> {
    let _timer = Timer::start();
    let service = Arc::new(Service::new(seed, duration));
    let client = Arc::new(Client {
        service: Arc::clone(&service),
        counters: Counters::default(),
        permits: Semaphore::new(FIXED_LIMIT),
        rate: RateLimiter::new(QUOTA_PER_SECOND),
        rng: Mutex::new(Rng(seed ^ 0x5EED)),
        budget: RetryBudget(Mutex::new(RETRY_BUDGET_CAP)),
        parked: Mutex::new(Vec::new()),
        limiter: Arc::new(Limiter::new()),
    });

    // More jobs than the service can do in the run: the question is how many get done.
    let (sender, receiver) = mpsc::channel(CONSUMERS * 2);
    let jobs: Jobs = Arc::new(tokio::sync::Mutex::new(receiver));
    let mut tasks = JoinSet::new();
    tasks.spawn(async move {
        for job in 0.. {
            if sender.send(job).await.is_err() {
                return;
            }
        }
    });
    let workers = if step == Step::Queue {
        CONSUMERS
    } else {
        WORKERS
    };
    for _ in 0..workers {
        let (client, jobs) = (Arc::clone(&client), Arc::clone(&jobs));
        match step {
            Step::Queue => tasks.spawn(queue_worker(client, jobs)),
            Step::Limit => tasks.spawn(limit_worker(client, jobs)),
            Step::Rate => tasks.spawn(rate_worker(client, jobs)),
            Step::Backoff => tasks.spawn(backoff_worker(client, jobs)),
            Step::Budget => tasks.spawn(budget_worker(client, jobs)),
            Step::Adaptive => tasks.spawn(adaptive_worker(client, jobs)),
        };
    }
    drop(jobs);

    let samples = observe(&client, step, duration).await;
    // The run is over: cancel every worker, and with them the requests in flight.
    tasks.shutdown().await;
    summarize(&client, step, duration);
    samples
}
// ANCHOR_END: run

/// One point of the picture, every `SAMPLE_EVERY`.
struct Sample {
    at: f64,
    capacity: u32,
    limit: f64,
    in_flight: u32,
    rejected: u64,
}

const SAMPLE_EVERY: Duration = Duration::from_millis(100);

// ANCHOR: observe
/// Samples the run until `duration` has passed, printing a line every second.
async fn observe(client: &Client, step: Step, duration: Duration) -> Vec<Sample> {
    let started = client.service.started;
    let mut samples = Vec::new();
    let mut rejected_before = 0;
    let mut ticks = tokio::time::interval_at(started + SAMPLE_EVERY, SAMPLE_EVERY);
    loop {
        let now = ticks.tick().await;
        if now >= started + duration {
            return samples;
        }
        let at = now.duration_since(started).as_secs_f64();
        let capacity = client.service.capacity_at(now);
        let limit = match step {
            Step::Queue => CONSUMERS as f64,
            Step::Adaptive => client.limiter.limit(),
            Step::Limit | Step::Rate | Step::Backoff | Step::Budget => FIXED_LIMIT as f64,
        };
        let rejected = Counters::get(&client.counters.rejected);
        let in_flight = client.service.in_flight();
        samples.push(Sample {
            at,
            capacity,
            limit,
            in_flight,
            rejected: rejected - rejected_before,
        });
        rejected_before = rejected;
        if samples.len() % 10 == 0 {
            let completed = Counters::get(&client.counters.completed);
            println!(
                "t={at:.0}s capacity={capacity} limit={limit:.1} in_flight={in_flight} \
                 completed={completed} rejected={rejected}"
            );
        }
    }
}
// ANCHOR_END: observe

// ANCHOR: summary
/// How many parked jobs the run lists by number at the end.
const PARKED_SHOWN: usize = 8;

/// The run's figures: goodput, the share of the service's capacity turned into completed
/// jobs, and the share of attempts the service refused.
fn summarize(client: &Client, step: Step, duration: Duration) {
    let service = &client.service;
    // The capacity over the run, integrated in steps of a millisecond.
    let steps = duration.as_millis() as u32;
    let capacity: f64 = (0..steps)
        .map(|ms| service.capacity_per_second(service.started + Duration::from_millis(ms.into())))
        .sum::<f64>()
        / 1000.0;
    let completed = Counters::get(&client.counters.completed);
    let attempts = Counters::get(&client.counters.attempts);
    let rejected = Counters::get(&client.counters.rejected);
    let parked = Counters::get(&client.counters.parked);
    // Every attempt was completed, rejected, or still at the service when the run ended.
    let cut_short = attempts - completed - rejected;
    println!(
        "jobs: attempts={attempts} completed={completed} rejected={rejected} \
         cut_short={cut_short} parked={parked}"
    );
    if matches!(step, Step::Budget | Step::Adaptive) {
        let jobs = lock(&client.parked);
        let mut line = format!("parked: {} jobs the retry budget refused", jobs.len());
        if !jobs.is_empty() {
            line += ":";
        }
        for job in jobs.iter().take(PARKED_SHOWN) {
            line += &format!(" {job}");
        }
        if jobs.len() > PARKED_SHOWN {
            line += " …";
        }
        println!("{line}");
    }
    let name = match step {
        Step::Queue => "queue",
        Step::Limit => "limit",
        Step::Rate => "rate",
        Step::Backoff => "backoff",
        Step::Budget => "budget",
        Step::Adaptive => "adaptive",
    };
    println!(
        "summary: client={name} goodput={:.2} rejected={:.2} elapsed={:.2}",
        completed as f64 / capacity,
        rejected as f64 / attempts.max(1) as f64,
        Instant::now().duration_since(service.started).as_secs_f64(),
    );
}
// ANCHOR_END: summary

/// The simulated service: a stand-in for a real API, with a capacity that moves and a quota.
/// The client above uses only `Service::call`, what its answers say, and the published quota.
mod service {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use tokio::time::Instant;

    use super::lock;

    // ANCHOR: service_parameters
    /// How long the service takes to answer when it is not overloaded, on average.
    pub const BASE_LATENCY: Duration = Duration::from_millis(50);
    /// How many requests the service serves at once before it slows down, most of the time.
    pub const FULL_CAPACITY: u32 = 40;
    /// The service's published quota, in requests per second.
    pub const QUOTA_PER_SECOND: f64 = 600.0;
    /// How many requests the quota lets through at once, in a burst.
    pub const QUOTA_BURST: f64 = 60.0;
    /// Past this multiple of its capacity in flight, the service refuses new requests.
    pub const OVERLOAD_FACTOR: f64 = 1.5;

    /// Why the service refused a request, with the wait it asks for, as a 503's or a 429's
    /// `Retry-After` header would.
    #[derive(Debug, Clone, Copy)]
    pub enum Rejection {
        /// 503: too many requests in flight for its capacity.
        Overloaded { retry_after: Duration },
        /// 429: over the quota.
        QuotaExceeded { retry_after: Duration },
    }

    impl Rejection {
        /// The wait the service asked for: its `Retry-After`.
        pub fn retry_after(self) -> Duration {
            match self {
                Rejection::Overloaded { retry_after } => retry_after,
                Rejection::QuotaExceeded { retry_after } => retry_after,
            }
        }
    }
    // ANCHOR_END: service_parameters

    // ANCHOR: service
    pub struct Service {
        pub started: Instant,
        duration: Duration,
        state: Mutex<ServiceState>,
    }

    struct ServiceState {
        in_flight: u32,
        /// Tokens of the quota's bucket: one per request, refilled at `QUOTA_PER_SECOND`.
        quota_tokens: f64,
        refilled_at: Instant,
        rng: Rng,
    }

    impl Service {
        pub fn new(seed: u64, duration: Duration) -> Service {
            let now = Instant::now();
            Service {
                started: now,
                duration,
                state: Mutex::new(ServiceState {
                    in_flight: 0,
                    quota_tokens: QUOTA_BURST,
                    refilled_at: now,
                    rng: Rng(seed),
                }),
            }
        }

        /// The capacity at a given time: full for the first quarter of the run, half for the
        /// middle half (a node failed, a neighbour is busy), full again for the last quarter.
        pub fn capacity_at(&self, at: Instant) -> u32 {
            let elapsed = at.duration_since(self.started).as_secs_f64();
            let fraction = elapsed / self.duration.as_secs_f64();
            if (0.25..0.75).contains(&fraction) {
                FULL_CAPACITY / 2
            } else {
                FULL_CAPACITY
            }
        }

        /// One request. Either it is refused at once, or it is served after its base latency
        /// times the square of the load (requests in flight over capacity) once the load passes
        /// 1: an overloaded server gets slower at everything, so pushing it past capacity loses
        /// throughput. `Ok` holds how long it took, as a `Server-Timing` header would.
        pub async fn call(self: &Arc<Self>) -> Result<Duration, Rejection> {
            let (latency, _slot) = self.admit()?;
            tokio::time::sleep(latency).await;
            Ok(latency)
            // `_slot` is dropped here, or wherever this future is dropped: either way, the
            // request stops counting as in flight.
        }
        // ANCHOR_END: service

        // ANCHOR: service_admit
        fn admit(self: &Arc<Self>) -> Result<(Duration, Slot), Rejection> {
            let now = Instant::now();
            let mut state = lock(&self.state);
            let refill = now.duration_since(state.refilled_at).as_secs_f64() * QUOTA_PER_SECOND;
            state.quota_tokens = (state.quota_tokens + refill).min(QUOTA_BURST);
            state.refilled_at = now;
            if state.quota_tokens < 1.0 {
                let wait = (1.0 - state.quota_tokens) / QUOTA_PER_SECOND;
                let retry_after = Duration::from_secs_f64(wait);
                return Err(Rejection::QuotaExceeded { retry_after });
            }
            let capacity = f64::from(self.capacity_at(now));
            let in_flight = f64::from(state.in_flight + 1);
            if in_flight > capacity * OVERLOAD_FACTOR {
                let retry_after = BASE_LATENCY;
                return Err(Rejection::Overloaded { retry_after });
            }
            state.quota_tokens -= 1.0;
            state.in_flight += 1;
            let load = (in_flight / capacity).max(1.0);
            let jitter = 0.9 + 0.2 * state.rng.next_f64();
            let latency = BASE_LATENCY.mul_f64(load * load * jitter);
            let slot = Slot(Arc::clone(self));
            Ok((latency, slot))
        }

        /// Requests in flight now, for the run's report.
        pub fn in_flight(&self) -> u32 {
            lock(&self.state).in_flight
        }

        /// How many requests per second the service can complete at a given moment: its
        /// capacity over its base latency, or its quota, whichever is lower.
        pub fn capacity_per_second(&self, at: Instant) -> f64 {
            let by_capacity = f64::from(self.capacity_at(at)) / BASE_LATENCY.as_secs_f64();
            by_capacity.min(QUOTA_PER_SECOND)
        }
    }

    /// A request in flight. Dropping it, however that happens, ends the request.
    struct Slot(Arc<Service>);

    impl Drop for Slot {
        fn drop(&mut self) {
            lock(&self.0.state).in_flight -= 1;
        }
    }

    /// A small seeded random number generator (SplitMix64). Written out rather than taken from
    /// a crate so that its numbers never change with a crate's version. The run a seed gives
    /// depends on tokio too (the order in which it wakes tasks): the same seed on the paused
    /// clock gives the same run with the same `Cargo.lock`.
    pub struct Rng(pub u64);

    impl Rng {
        /// A number in [0, 1).
        pub fn next_f64(&mut self) -> f64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 11) as f64 / (1_u64 << 53) as f64
        }
    }
    // ANCHOR_END: service_admit
}

/// Locks a std mutex. Every critical section here is a few arithmetic steps with no `.await`
/// and no panic inside, so a poisoned lock cannot hold a half-updated state: take it anyway.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Prints how long it lived when it is dropped, like the article's `timer()` context manager.
struct Timer(Instant);

impl Timer {
    fn start() -> Timer {
        Timer(Instant::now())
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        println!(
            "elapsed time: {:.2} seconds",
            self.0.elapsed().as_secs_f64()
        );
    }
}

/// Draws the run as an SVG: the service's capacity, the client's limit (or its fixed number of
/// consumers), and the refusals in each tenth of a second.
fn svg(samples: &[Sample], step: Step, duration: Duration) -> String {
    const WIDTH: f64 = 800.0;
    const HEIGHT: f64 = 320.0;
    const LEFT: f64 = 50.0;
    const RIGHT: f64 = 20.0;
    const TOP: f64 = 40.0;
    const BOTTOM: f64 = 40.0;
    const MAX_Y: f64 = 80.0;
    let plot_width = WIDTH - LEFT - RIGHT;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let x = |at: f64| LEFT + at / duration.as_secs_f64() * plot_width;
    let y = |value: f64| TOP + plot_height * (1.0 - value.min(MAX_Y) / MAX_Y);
    let polyline = |value: &dyn Fn(&Sample) -> f64| -> String {
        samples
            .iter()
            .map(|sample| format!("{:.1},{:.1}", x(sample.at), y(value(sample))))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let title = match step {
        Step::Queue => "queue: chapter 4's 50 consumers",
        Step::Limit => "limit: a fixed limit, held by a semaphore",
        Step::Rate => "rate: a fixed limit and the quota's pace",
        Step::Backoff => "backoff: a fixed limit, the quota, backoff with jitter",
        Step::Budget => "budget: a fixed limit, the quota, backoff, a retry budget",
        Step::Adaptive => "adaptive: an AIMD concurrency limit, the quota, backoff, a budget",
    };
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"white\"/>\n\
         <text x=\"{LEFT}\" y=\"20\" font-size=\"14\" font-weight=\"bold\">{title}</text>\n"
    );
    for tick in (0..=80).step_by(10) {
        let value = f64::from(tick);
        out += &format!(
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{tick}</text>\n",
            WIDTH - RIGHT,
            y(value),
            y(value),
            LEFT - 6.0,
            y(value) + 4.0
        );
    }
    let seconds = duration.as_secs();
    let step = (seconds / 10).max(1) as usize;
    for second in (0..=seconds).step_by(step) {
        let at = second as f64;
        out += &format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{second} s</text>\n",
            x(at),
            HEIGHT - BOTTOM + 18.0
        );
    }
    let bar_width = (plot_width / samples.len().max(1) as f64).max(1.0);
    for sample in samples.iter().filter(|sample| sample.rejected > 0) {
        let top = y(sample.rejected as f64);
        out += &format!(
            "<rect x=\"{:.1}\" y=\"{top:.1}\" width=\"{bar_width:.1}\" height=\"{:.1}\" \
             fill=\"#e45756\" opacity=\"0.6\"/>\n",
            x(sample.at) - bar_width,
            y(0.0) - top
        );
    }
    let capacity = polyline(&|sample| f64::from(sample.capacity));
    let refusal = polyline(&|sample| f64::from(sample.capacity) * service::OVERLOAD_FACTOR);
    let limit = polyline(&|sample| sample.limit);
    let in_flight = polyline(&|sample| f64::from(sample.in_flight));
    out += &format!(
        "<polyline points=\"{capacity}\" fill=\"none\" stroke=\"#555\" stroke-width=\"2\"/>\n\
         <polyline points=\"{refusal}\" fill=\"none\" stroke=\"#555\" stroke-dasharray=\"4 4\"/>\n\
         <polyline points=\"{in_flight}\" fill=\"none\" stroke=\"#72b7b2\"/>\n\
         <polyline points=\"{limit}\" fill=\"none\" stroke=\"#4c78a8\" stroke-width=\"2\"/>\n"
    );
    let legend = [
        ("#555", "", "capacity"),
        ("#555", " stroke-dasharray=\"4 4\"", "refuses beyond"),
        ("#4c78a8", "", "limit (or consumers)"),
        ("#72b7b2", "", "requests in flight"),
        ("#e45756", "", "refusals per 0.1 s"),
    ];
    for (index, (color, dash, label)) in legend.iter().enumerate() {
        let left = LEFT + 10.0 + 150.0 * index as f64;
        out += &format!(
            "<line x1=\"{left:.1}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{color}\" \
             stroke-width=\"3\"{dash}/><text x=\"{:.1}\" y=\"{:.1}\">{label}</text>\n",
            left + 20.0,
            HEIGHT - 10.0,
            HEIGHT - 10.0,
            left + 25.0,
            HEIGHT - 6.0
        );
    }
    out += "</svg>\n";
    out
}

// ANCHOR: runtime
/// Which clock tokio's timers follow: the real one, or tokio's paused clock, on which a sleep
/// completes at once and the time it would have taken is added to a virtual clock.
#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
enum Clock {
    /// Wait for real.
    Real,
    /// Run on tokio's paused clock: at once, with virtual time.
    Paused,
}

/// The Rust Playground, where the book's Run button sends this file, stops a program after a
/// few seconds. It builds every program as a crate named `playground`, so there the default is
/// the paused clock; everywhere else it is the real one.
fn default_clock() -> Clock {
    if option_env!("CARGO_PKG_NAME") == Some("playground") {
        Clock::Paused
    } else {
        Clock::Real
    }
}

/// What `#[tokio::main]` would build, written out so that the clock can be chosen at run time.
fn runtime(clock: Clock) -> std::io::Result<tokio::runtime::Runtime> {
    match clock {
        // The default of `#[tokio::main]`: one worker thread per core.
        Clock::Real => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
        // The paused clock needs the single-threaded runtime.
        Clock::Paused => {
            // A note, not a result: if stderr cannot take it, the run goes on all the same.
            let _ = writeln!(
                std::io::stderr(),
                "note: tokio's clock is paused: sleeps take no real time, elapsed is virtual"
            );
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .start_paused(true)
                .build()
        }
    }
}
// ANCHOR_END: runtime

/// Drives a simulated service, whose capacity halves for the middle half of the run, with one
/// step of the client, and prints the goodput and rejection rate it achieved.
#[derive(clap::Parser)]
#[command(name = "ch08_adaptive", version)]
struct Options {
    /// Which step of the client drives the service.
    #[arg(long, value_enum, default_value_t = Step::Adaptive)]
    client: Step,
    /// The seed of the service's and the client's randomness: the same seed on the paused
    /// clock gives the same run (with the same versions of tokio and this program).
    #[arg(long, value_name = "N", default_value_t = 1)]
    seed: u64,
    /// How long to run, from 4 to 600 whole seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 15, value_parser = whole_seconds)]
    duration: u64,
    /// Also draw the run as an SVG picture in this file.
    #[arg(long, value_name = "PATH")]
    svg: Option<std::path::PathBuf>,
    /// Which clock the sleeps follow.
    #[arg(long, value_enum, default_value_t = default_clock())]
    clock: Clock,
}

/// A run's length for clap: whole seconds, from 4 (one second per quarter of the run) to 600.
fn whole_seconds(value: &str) -> Result<u64, String> {
    match value.parse() {
        Ok(seconds @ 4..=600) => Ok(seconds),
        _ => Err(format!("expected 4 to 600 whole seconds, got {value}")),
    }
}

/// Ends the program with one line on stderr and status 1, instead of a panic trace, when the
/// operating system takes away what it cannot run without: `println!` panics when its output
/// is gone (a full disk), and tokio when the OS refuses it a thread. Such a panic's message
/// ends with the OS's error, `(os error N)`. A closed pipe (EPIPE, 32 on Linux, macOS and the
/// BSDs: the reader went away, as `| head` does) ends it quietly, with the status 141 a shell
/// reports for SIGPIPE. Any other panic is a bug, and is reported as usual.
fn exit_cleanly_when_the_environment_fails() {
    use std::io::Write;
    let report_a_bug = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map_or("", String::as_str);
        if !message.ends_with(')') || !message.contains("(os error ") {
            return report_a_bug(info);
        }
        if message.ends_with("(os error 32)") {
            std::process::exit(141);
        }
        let message = message
            .replace("failed printing to stdout", "cannot write the output")
            .replace(
                "OS can't spawn worker thread",
                "tokio cannot start a thread",
            );
        let _ = writeln!(std::io::stderr(), "error: {message}");
        // At once, from whichever thread: no destructor may print into the broken output.
        std::process::exit(1);
    }));
}

/// Reads the command line. clap prints `--help` and `--version` and exits with status 0; a
/// mistake gets clap's message on one line of stderr (its first paragraph, which names the
/// argument and the values allowed) and exit status 2, before any work starts.
fn read_options() -> Options {
    <Options as clap::Parser>::try_parse().unwrap_or_else(|error| {
        if !error.use_stderr() {
            error.exit();
        }
        let message = error.render().to_string();
        let first: Vec<&str> = message
            .lines()
            .take_while(|line| !line.is_empty())
            .collect();
        let first: Vec<&str> = first.iter().map(|line| line.trim()).collect();
        eprintln!("{} (see --help)", first.join(" "));
        std::process::exit(2);
    })
}

fn main() -> ExitCode {
    exit_cleanly_when_the_environment_fails();
    // A bad command line ends here, with one line of error and exit status 2.
    let options = read_options();
    // The picture's file is created now, not after the run: a wrong path should not cost the
    // whole run.
    let picture = match &options.svg {
        None => None,
        Some(path) => match std::fs::File::create(path) {
            Ok(file) => Some((path, file)),
            Err(error) => {
                eprintln!("error: --svg: cannot create {}: {error}", path.display());
                return ExitCode::from(2);
            }
        },
    };
    let runtime = match runtime(options.clock) {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the tokio runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let duration = Duration::from_secs(options.duration);
    let samples = runtime.block_on(run(options.client, options.seed, duration));
    if let Some((path, mut file)) = picture {
        use std::io::Write;
        let drawing = svg(&samples, options.client, duration);
        if let Err(error) = file.write_all(drawing.as_bytes()) {
            eprintln!("error: cannot write {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
