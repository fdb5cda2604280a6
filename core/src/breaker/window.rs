//! Sliding windows of call outcomes: the last N calls, or the last T of time in buckets.
//!
//! Both are fixed rings allocated once (linkerd's success-rate window and resilience4j's
//! sliding windows work the same way), so recording never allocates.

use std::time::Duration;

use crate::time::{Time, nanos_of};

/// Calls, failures and slow calls in a window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Calls recorded.
    pub calls: u32,
    /// Of which failed.
    pub failures: u32,
    /// Of which were slow.
    pub slow: u32,
}

/// The kind and size of a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowSize {
    /// The last `n` calls.
    Count(u32),
    /// Calls in the last `span`, in [`TIME_BUCKETS`] buckets: the window slides a bucket at a
    /// time, so it covers between `span − span/10` and `span` of history.
    Time(Duration),
}

/// Buckets in a time window.
pub const TIME_BUCKETS: usize = 10;

#[derive(Clone, Debug)]
pub(crate) enum Window {
    Count { ring: Vec<u8>, next: usize, filled: usize, totals: Totals },
    Time { width: u64, buckets: [(u64, Totals); TIME_BUCKETS] },
}

const FAILED: u8 = 1;
const SLOW: u8 = 2;

impl Window {
    pub(crate) fn new(size: WindowSize) -> Window {
        match size {
            WindowSize::Count(n) => {
                Window::Count { ring: vec![0; n.max(1) as usize], next: 0, filled: 0, totals: Totals::default() }
            }
            WindowSize::Time(span) => Window::Time {
                width: (nanos_of(span) / TIME_BUCKETS as u64).max(1),
                buckets: [(u64::MAX, Totals::default()); TIME_BUCKETS],
            },
        }
    }

    #[inline]
    pub(crate) fn record(&mut self, failed: bool, slow: bool, now: Time) {
        match self {
            Window::Count { ring, next, filled, totals } => {
                if *filled == ring.len() {
                    let old = ring[*next];
                    totals.calls -= 1;
                    totals.failures -= u32::from(old & FAILED != 0);
                    totals.slow -= u32::from(old & SLOW != 0);
                } else {
                    *filled += 1;
                }
                ring[*next] = (u8::from(failed) * FAILED) | (u8::from(slow) * SLOW);
                *next = (*next + 1) % ring.len();
                totals.calls += 1;
                totals.failures += u32::from(failed);
                totals.slow += u32::from(slow);
            }
            Window::Time { width, buckets } => {
                let index = now.as_nanos() / *width;
                let bucket = &mut buckets[(index % TIME_BUCKETS as u64) as usize];
                if bucket.0 != index {
                    *bucket = (index, Totals::default());
                }
                bucket.1.calls += 1;
                bucket.1.failures += u32::from(failed);
                bucket.1.slow += u32::from(slow);
            }
        }
    }

    #[inline]
    pub(crate) fn totals(&self, now: Time) -> Totals {
        match self {
            Window::Count { totals, .. } => *totals,
            Window::Time { width, buckets } => {
                let current = now.as_nanos() / *width;
                let mut sum = Totals::default();
                for (index, t) in buckets {
                    if *index <= current && current - *index < TIME_BUCKETS as u64 {
                        sum.calls += t.calls;
                        sum.failures += t.failures;
                        sum.slow += t.slow;
                    }
                }
                sum
            }
        }
    }

    pub(crate) fn clear(&mut self) {
        match self {
            Window::Count { ring, next, filled, totals } => {
                ring.fill(0);
                *next = 0;
                *filled = 0;
                *totals = Totals::default();
            }
            Window::Time { buckets, .. } => *buckets = [(u64::MAX, Totals::default()); TIME_BUCKETS],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_window_forgets_the_oldest_call() {
        let mut w = Window::new(WindowSize::Count(3));
        for failed in [true, false, false, false] {
            w.record(failed, false, Time::ZERO);
        }
        assert_eq!(w.totals(Time::ZERO), Totals { calls: 3, failures: 0, slow: 0 });
    }

    #[test]
    fn a_time_window_forgets_buckets_older_than_its_span() {
        let mut w = Window::new(WindowSize::Time(Duration::from_secs(10)));
        w.record(true, true, Time::from_millis(500));
        w.record(false, false, Time::from_secs(9));
        assert_eq!(w.totals(Time::from_secs(9)), Totals { calls: 2, failures: 1, slow: 1 });
        assert_eq!(w.totals(Time::from_secs(10)), Totals { calls: 1, failures: 0, slow: 0 });
        assert_eq!(w.totals(Time::from_secs(30)), Totals::default());
    }
}
