// ANCHOR: stats
//! What the run did, counted as it happens and printed at the end (chapter 11): items done and
//! dead, retries by cause, latency percentiles and requests per second. The latencies go into
//! a histogram of fixed size, three significant digits, not a list: a million requests take
//! the same 58 KB as ten.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::queue::Counts;
use crate::retry::Cause;

/// Counted by every item's task.
pub struct Stats {
    requests: AtomicU64,
    /// Retries by cause, in `Cause`'s order.
    retries: [AtomicU64; 6],
    /// The latencies of the requests that succeeded: a failure that returns at once would make
    /// the service look faster than it is.
    latencies: Mutex<Histogram>,
}

impl Stats {
    pub fn new() -> Stats {
        Stats {
            requests: AtomicU64::new(0),
            retries: Default::default(),
            latencies: Mutex::new(Histogram(vec![0; BUCKETS])),
        }
    }

    /// A request ended, with an answer or without.
    pub fn answered(&self, latency: Duration, succeeded: bool) {
        self.requests.fetch_add(1, Relaxed);
        if succeeded {
            // Adding one to a count cannot be left half done: a poisoned lock is sound.
            let mut latencies = self
                .latencies
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            latencies.add(latency);
        }
    }

    pub fn retried(&self, cause: Cause) {
        self.retries[cause as usize].fetch_add(1, Relaxed);
    }
    // ANCHOR_END: stats

    // ANCHOR: print
    /// The report, on stdout: the words at the start of each line are for scripts to read.
    pub fn print(&self, counts: &Counts, dead: &[(String, String)], elapsed: Duration) {
        let retries = |cause: Cause| self.retries[cause as usize].load(Relaxed);
        let latencies = self
            .latencies
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let ms = |share| latencies.percentile(share).as_secs_f64() * 1000.0;
        let requests = self.requests.load(Relaxed) as f64;
        let mut report = String::new();
        // Writing to a `String` cannot fail: the `Result`s are `Ok`.
        let _ = writeln!(report, "done={}\ndead_letters={}", counts.done, counts.dead);
        let _ = writeln!(
            report,
            "retries: 429={} 503={} 5xx={} timeout={} connect={} unreachable={}",
            retries(Cause::Quota),
            retries(Cause::Overload),
            retries(Cause::ServerError),
            retries(Cause::Timeout),
            retries(Cause::Connect),
            retries(Cause::Unreachable),
        );
        let _ = writeln!(report, "latency_ms: p50={:.1} p99={:.1}", ms(0.5), ms(0.99));
        let per_second = requests / elapsed.as_secs_f64().max(1e-9);
        let _ = writeln!(report, "requests_per_second={per_second:.0}");
        for (id, reason) in dead {
            let _ = writeln!(report, "dead: {id} {reason}");
        }
        let _ = writeln!(report, "elapsed time: {:.2} seconds", elapsed.as_secs_f64());
        // Stdout gone (`| head`): the database has the results, and the exit status says how
        // the run went. Nothing is left to tell, so the error is dropped.
        let _ = std::io::stdout().lock().write_all(report.as_bytes());
    }
}
// ANCHOR_END: print

// ANCHOR: histogram
/// Below 1 ms, one bucket a microsecond; above, 900 buckets a power of ten (100 to 999 times
/// it), up to 1000 s: every latency to three significant digits.
const BUCKETS: usize = 1000 + 7 * 900;

struct Histogram(Vec<u64>);

impl Histogram {
    fn add(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let micros = micros.min(999_999_999);
        let index = if micros < 1000 {
            micros as usize
        } else {
            let decade = micros.ilog10() - 2;
            let leading = micros / 10_u64.pow(decade);
            1000 + (decade as usize - 1) * 900 + (leading as usize - 100)
        };
        self.0[index] += 1;
    }

    /// The latency below which `share` of them fall (nearest rank); zero when there are none.
    fn percentile(&self, share: f64) -> Duration {
        let total: u64 = self.0.iter().sum();
        let rank = ((share * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, count) in self.0.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Duration::from_micros(value(index));
            }
        }
        Duration::ZERO
    }
}

/// The smallest latency, in microseconds, of bucket `index`.
fn value(index: usize) -> u64 {
    if index < 1000 {
        return index as u64;
    }
    let (decade, leading) = ((index - 1000) / 900 + 1, (index - 1000) % 900 + 100);
    leading as u64 * 10_u64.pow(decade as u32)
}
// ANCHOR_END: histogram
