//! Faults on demand: a share of requests fail with 500, hang, lose their connection, or are
//! applied and then lose it. Each request draws one number from a seeded generator, so a
//! run's faults can be replayed with the same `--seed` (in the same order of arrival). The
//! generator is SplitMix64, a few lines of arithmetic on one atomic counter: no lock, and no
//! crate needed for it.

use std::sync::atomic::{AtomicU64, Ordering};

/// What the service does to one request, besides its normal work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Answer 500 without applying the effect.
    Fail,
    /// Never answer: hold the connection until the client gives up.
    Hang,
    /// Reset the connection without an answer.
    Drop,
    /// Apply the effect, then reset the connection without an answer.
    Lose,
}

pub struct Faults {
    fail: f64,
    hang: f64,
    drop: f64,
    lose: f64,
    state: AtomicU64,
}

/// SplitMix64's increment: the golden ratio in 64 bits.
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

impl Faults {
    pub fn new(fail: f64, hang: f64, drop: f64, lose: f64, seed: u64) -> Faults {
        Faults {
            fail,
            hang,
            drop,
            lose,
            state: AtomicU64::new(seed),
        }
    }

    /// Draws the fault of one request: a uniform number in [0, 1) falls in the fail share,
    /// then the hang share, then the drop share, or past them all (no fault).
    pub fn draw(&self) -> Fault {
        let draw = self.next() as f64 / 2f64.powi(53);
        if draw < self.fail {
            Fault::Fail
        } else if draw < self.fail + self.hang {
            Fault::Hang
        } else if draw < self.fail + self.hang + self.drop {
            Fault::Drop
        } else if draw < self.fail + self.hang + self.drop + self.lose {
            Fault::Lose
        } else {
            Fault::None
        }
    }

    /// The next 53 random bits. Each caller takes its own step of the state at once
    /// (`fetch_add`), so concurrent requests never draw the same number.
    fn next(&self) -> u64 {
        let mut z = self
            .state
            .fetch_add(GAMMA, Ordering::Relaxed)
            .wrapping_add(GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) >> 11
    }
}
