//! A retry budget: retries and hedges may add at most a fraction of the calls, plus a floor.
//!
//! Finagle's `RetryBudget` and tower's `TpsBudget`, with time passed in: every original call
//! `deposit`s; every retry or hedge must `withdraw`, which succeeds while the withdrawals in the
//! trailing window stay within `ratio × deposits in the window + min_per_sec × window`. The
//! floor lets a quiet client still retry; the ratio caps the extra load a failing fleet sees, so
//! retries cannot turn an outage into a retry storm (the SRE book's "retry budget", ch. 22).
//!
//! The window is a ring of [`BUCKETS`] buckets with running totals: deposit and withdraw are
//! O(1) amortised and allocate nothing. The guarantee, proved in the property tests: over any
//! window of the budget's length (aligned to buckets), withdrawals never exceed `ratio ×` the
//! deposits of that window and the one before it, `+ min_per_sec × window` (a withdrawal
//! is judged on the window ending at it, whose deposits may expire before its own record does).
//!
//! Defaults (tower's): 20 % of calls, 10 per second, over 10 s.

use std::time::Duration;

use crate::time::{Time, nanos_of};

/// Buckets in the window.
pub const BUCKETS: usize = 10;

/// A budget's settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BudgetConfig {
    /// Extra attempts per original call, in `[0, 1000]`.
    pub ratio: f64,
    /// Extra attempts per second allowed whatever the traffic.
    pub min_per_sec: u32,
    /// How far back deposits count.
    pub window: Duration,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig { ratio: 0.2, min_per_sec: 10, window: Duration::from_secs(10) }
    }
}

/// The shared budget of retries and hedges.
#[derive(Clone, Debug)]
pub struct RetryBudget {
    ratio: f64,
    floor: f64,
    width: u64,
    /// (bucket index, deposits, withdrawals)
    buckets: [(u64, u32, u32); BUCKETS],
    head: u64,
    deposits: u64,
    withdrawals: u64,
}

impl RetryBudget {
    /// A budget with `config`. Panics on a ratio outside `[0, 1000]` or a zero window: validate
    /// configs at the edge.
    pub fn new(config: BudgetConfig) -> RetryBudget {
        assert!((0.0..=1000.0).contains(&config.ratio), "retry budget ratio out of range: {}", config.ratio);
        assert!(!config.window.is_zero(), "retry budget window must be positive");
        RetryBudget {
            ratio: config.ratio,
            floor: f64::from(config.min_per_sec) * config.window.as_secs_f64(),
            width: (nanos_of(config.window) / BUCKETS as u64).max(1),
            buckets: [(0, 0, 0); BUCKETS],
            head: 0,
            deposits: 0,
            withdrawals: 0,
        }
    }

    /// An original call was made at `now`.
    #[inline]
    pub fn deposit(&mut self, now: Time) {
        let slot = self.advance(now);
        self.buckets[slot].1 += 1;
        self.deposits += 1;
    }

    /// Asks for one retry or hedge at `now`; `true` (and it is counted) if the budget allows.
    #[inline]
    pub fn withdraw(&mut self, now: Time) -> bool {
        let slot = self.advance(now);
        if (self.withdrawals + 1) as f64 > self.ratio * self.deposits as f64 + self.floor {
            return false;
        }
        self.buckets[slot].2 += 1;
        self.withdrawals += 1;
        true
    }

    /// How many withdrawals would succeed at `now`.
    pub fn remaining(&mut self, now: Time) -> u64 {
        self.advance(now);
        let allowed = (self.ratio * self.deposits as f64 + self.floor).floor() as u64;
        allowed.saturating_sub(self.withdrawals)
    }

    /// Moves the window to `now`, expiring old buckets; returns the current slot.
    #[inline]
    fn advance(&mut self, now: Time) -> usize {
        let index = now.as_nanos() / self.width;
        debug_assert!(index + 1 >= self.head, "retry budget time went backwards");
        if index > self.head {
            let from = self.head + 1;
            let to = index.min(self.head + BUCKETS as u64);
            for i in from..=to {
                let b = &mut self.buckets[(i % BUCKETS as u64) as usize];
                self.deposits -= u64::from(b.1);
                self.withdrawals -= u64::from(b.2);
                *b = (i, 0, 0);
            }
            if index > to {
                // Everything expired: the ring is empty, re-label the current slot.
                self.buckets[(index % BUCKETS as u64) as usize].0 = index;
            }
            self.head = index;
        }
        (self.head % BUCKETS as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_client_gets_the_floor_and_no_more() {
        let mut b = RetryBudget::new(BudgetConfig { ratio: 0.2, min_per_sec: 1, window: Duration::from_secs(10) });
        let granted = (0..20).filter(|_| b.withdraw(Time::from_secs(1))).count();
        assert_eq!(granted, 10);
    }

    #[test]
    fn the_ratio_grows_the_budget_with_traffic_and_expiry_shrinks_it() {
        let mut b = RetryBudget::new(BudgetConfig { ratio: 0.5, min_per_sec: 0, window: Duration::from_secs(10) });
        for _ in 0..100 {
            b.deposit(Time::from_secs(1));
        }
        assert_eq!(b.remaining(Time::from_secs(2)), 50);
        assert_eq!(b.remaining(Time::from_secs(12)), 0, "deposits expired");
    }
}
