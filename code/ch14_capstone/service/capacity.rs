//! The service's capacity: how many requests it is working on at once. Like a real server,
//! it slows down when overloaded (latency grows with the square of the load past `capacity`)
//! and, past 1.5 times its capacity, refuses with 503 rather than fall over. A client that
//! adapts its concurrency (the book's AIMD limiter) finds the point where latency stays low.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub struct Capacity {
    capacity: usize,
    base_latency: Duration,
    in_flight: Arc<AtomicUsize>,
}

/// One request in flight. Dropping it, however the request ends (an answer, a 503, or the
/// handler's future dropped because the client hung up), takes it off the gauge.
pub struct InFlight {
    gauge: Arc<AtomicUsize>,
    /// How long this request takes, given the load when it arrived.
    pub latency: Duration,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.gauge.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Capacity {
    pub fn new(capacity: u32, base_latency: Duration) -> Capacity {
        Capacity {
            // A u32 fits in a usize on every platform tokio supports (32 and 64 bits).
            capacity: capacity as usize,
            base_latency,
            in_flight: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Counts a request in, or refuses it (`None`: answer 503) when more than 1.5 times the
    /// capacity would be in flight.
    pub fn admit(&self) -> Option<InFlight> {
        let load = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        let request = InFlight {
            gauge: Arc::clone(&self.in_flight),
            latency: self.latency(load),
        };
        // 2 × load > 3 × capacity is load > 1.5 × capacity, without floating point.
        if 2 * load > 3 * self.capacity {
            return None; // `request` is dropped here: the refused request leaves the gauge.
        }
        Some(request)
    }

    /// The base latency, times (load / capacity)² once the load is past the capacity.
    fn latency(&self, load: usize) -> Duration {
        if load <= self.capacity {
            return self.base_latency;
        }
        let overload = load as f64 / self.capacity as f64;
        self.base_latency.mul_f64(overload * overload)
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }
}
