//! Backoff between attempts, with jitter, always bounded.
//!
//! From Marc Brooker's "Exponential Backoff And Jitter" (AWS Architecture Blog, 2015):
//! - **Full**: uniform in `[0, min(cap, base × 2^attempt)]`: spreads a synchronised crowd
//!   of retries best, at the cost of sometimes retrying at once.
//! - **Decorrelated**: uniform in `[base, min(cap, 3 × previous)]`: grows like an exponential
//!   without synchronising, and never retries sooner than `base`.
//! - **None**: `min(cap, base × 2^attempt)`: for tests and for callers that add their own jitter.
//!
//! Defaults: 10 ms base (an MCP call to a healthy local server answers in single-digit ms), a 1 s
//! cap (beyond it, a deadline is usually the better judge), decorrelated.

use std::time::Duration;

use crate::rng::SeededRng;
use crate::time::nanos_of;

/// The jitter kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Jitter {
    /// No jitter.
    None,
    /// Full jitter.
    Full,
    /// Decorrelated jitter.
    #[default]
    Decorrelated,
}

/// Bounded exponential backoff.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The first step, and decorrelated jitter's floor.
    pub base: Duration,
    /// The longest delay.
    pub cap: Duration,
    /// How delays are spread.
    pub jitter: Jitter,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { base: Duration::from_millis(10), cap: Duration::from_secs(1), jitter: Jitter::Decorrelated }
    }
}

impl Backoff {
    /// The delay before retry number `retry` (0 for the first retry), given the previous delay
    /// (zero before the first). Always within `[0, cap]`; within `[min(base, cap), cap]` for
    /// decorrelated jitter.
    pub fn delay(&self, retry: u32, previous: Duration, rng: &mut SeededRng) -> Duration {
        let base = nanos_of(self.base);
        let cap = nanos_of(self.cap);
        let exp = base.saturating_mul(1u64.checked_shl(retry.min(63)).unwrap_or(u64::MAX)).min(cap);
        let nanos = match self.jitter {
            Jitter::None => exp,
            Jitter::Full => uniform(rng, 0, exp),
            Jitter::Decorrelated => {
                let low = base.min(cap);
                let high = nanos_of(previous).saturating_mul(3).max(low).min(cap);
                uniform(rng, low, high)
            }
        };
        Duration::from_nanos(nanos)
    }
}

/// Uniform in `[low, high]`.
fn uniform(rng: &mut SeededRng, low: u64, high: u64) -> u64 {
    debug_assert!(low <= high);
    let span = high - low;
    if span == u64::MAX {
        return rng.next_u64();
    }
    // Multiply-shift on 64 bits: the bias is below 2^-64 × span, negligible for delays.
    low + ((u128::from(rng.next_u64()) * u128::from(span + 1)) >> 64) as u64
}
