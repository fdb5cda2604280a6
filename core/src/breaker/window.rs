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
    Time(TimeRing),
}

/// Ten buckets with running totals. The head bucket's end time is cached, so a call within the
/// current bucket (the common case) costs no division and no summing.
#[derive(Clone, Debug)]
pub(crate) struct TimeRing {
    width: u64,
    /// Index of the newest bucket (`time / width`), and the time at which it ends.
    head: u64,
    head_end: u64,
    buckets: [Totals; TIME_BUCKETS],
    totals: Totals,
}

impl TimeRing {
    /// Moves the head to `now`'s bucket, expiring the buckets that fell out of the window.
    #[inline]
    fn advance(&mut self, now: Time) {
        let t = now.as_nanos();
        if t < self.head_end {
            return;
        }
        let index = t / self.width;
        let stale = (index - self.head).min(TIME_BUCKETS as u64);
        for i in 1..=stale {
            let slot = ((self.head + i) % TIME_BUCKETS as u64) as usize;
            let old = std::mem::take(&mut self.buckets[slot]);
            self.totals.calls -= old.calls;
            self.totals.failures -= old.failures;
            self.totals.slow -= old.slow;
        }
        self.head = index;
        self.head_end = (index + 1).saturating_mul(self.width);
    }
}

const FAILED: u8 = 1;
const SLOW: u8 = 2;

impl Window {
    pub(crate) fn new(size: WindowSize) -> Window {
        match size {
            WindowSize::Count(n) => {
                Window::Count { ring: vec![0; n.max(1) as usize], next: 0, filled: 0, totals: Totals::default() }
            }
            WindowSize::Time(span) => Window::Time(TimeRing {
                width: (nanos_of(span) / TIME_BUCKETS as u64).max(1),
                head: 0,
                head_end: 0,
                buckets: [Totals::default(); TIME_BUCKETS],
                totals: Totals::default(),
            }),
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
            Window::Time(ring) => {
                ring.advance(now);
                let bucket = &mut ring.buckets[(ring.head % TIME_BUCKETS as u64) as usize];
                for t in [bucket, &mut ring.totals] {
                    t.calls += 1;
                    t.failures += u32::from(failed);
                    t.slow += u32::from(slow);
                }
            }
        }
    }

    /// The totals at `now`. Takes `&mut self` because a time window expires old buckets here.
    #[inline]
    pub(crate) fn totals(&mut self, now: Time) -> Totals {
        match self {
            Window::Count { totals, .. } => *totals,
            Window::Time(ring) => {
                ring.advance(now);
                ring.totals
            }
        }
    }

    /// The totals as of the last `record` or `totals` call (no expiry).
    #[inline]
    pub(crate) fn last_totals(&self) -> Totals {
        match self {
            Window::Count { totals, .. } => *totals,
            Window::Time(ring) => ring.totals,
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
            Window::Time(ring) => {
                ring.buckets = [Totals::default(); TIME_BUCKETS];
                ring.totals = Totals::default();
            }
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
        // A bucket expires as a whole: the 0.5 s call leaves once its bucket [0, 1 s) is
        // more than ten buckets old.
        assert_eq!(w.totals(Time::from_secs(10)), Totals { calls: 1, failures: 0, slow: 0 });
        assert_eq!(w.totals(Time::from_secs(30)), Totals::default());
    }
}
