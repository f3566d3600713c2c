//! The quota: a token bucket per client id. Each client id may send `burst` requests at once,
//! then `quota` requests a second; past that it gets 429 and a Retry-After telling it when a
//! token will be there. A bucket is refilled lazily, when its client next asks, so no timer runs.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

/// The buckets of every client id seen so far (a teaching service: they are never forgotten).
pub struct Quota {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    refilled_at: Instant,
}

impl Quota {
    pub fn new(per_second: u32, burst: u32) -> Quota {
        Quota {
            per_second: per_second.into(),
            burst: burst.into(),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token from `client`'s bucket, or says in how many whole seconds (at least 1,
    /// as Retry-After counts) the bucket will hold one again.
    pub fn take(&self, client: &str) -> Result<(), u64> {
        let now = Instant::now();
        // A panic while the lock was held cannot leave a bucket half-updated (each update is
        // two plain assignments), so a poisoned lock is safe to keep using.
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let bucket = buckets.entry(client.to_string()).or_insert(Bucket {
            tokens: self.burst,
            refilled_at: now,
        });
        let earned = now.duration_since(bucket.refilled_at).as_secs_f64() * self.per_second;
        bucket.tokens = (bucket.tokens + earned).min(self.burst);
        bucket.refilled_at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / self.per_second;
            Err((wait.ceil() as u64).max(1))
        }
    }
}
