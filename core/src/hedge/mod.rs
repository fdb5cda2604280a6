//! Hedging: when a call is slow, send a backup to another server; first answer wins.
//!
//! Dean and Barroso, "The Tail at Scale" (CACM 2013): a backup request sent once the first has
//! been outstanding longer than, say, the 95th percentile of latency cuts the tail sharply for
//! a few percent of extra load. Here:
//!
//! - the trigger is a fixed delay, or a percentile of the latencies observed so far (an HDR
//!   histogram, re-read every [`REFRESH_EVERY`] samples so the decision stays cheap; no hedging
//!   until `min_samples` have been seen);
//! - hedges draw from the same [`RetryBudget`] as retries, and at most `max_extra` backups go
//!   out per call;
//! - only replayable calls are hedged: a hedge *is* sending the request twice;
//! - the backup goes to a server not yet tried, and the first answer wins: the policy engine
//!   (`policy::Engine::hedge` and `finish`) decides both; the caller cancels the losers.
//!
//! Defaults: the 95th percentile (Dean and Barroso's example), one backup, 100 samples.

use std::time::Duration;

use hdrhistogram::Histogram;

use crate::latency;
use crate::retry::{CallKind, RetryBudget};
use crate::time::Time;

/// Samples between re-reading the percentile from the histogram.
pub const REFRESH_EVERY: u32 = 64;
/// Significant digits of the latency histogram. Two put the delay within 1 % of the
/// percentile, and re-reading that histogram walks about a tenth of the buckets three would
/// (the re-read every [`REFRESH_EVERY`] calls is what the per-call tail is made of).
const SIGFIG: u8 = 2;
/// The most attempts of one call in flight at once, the first included: `max_extra` is at most
/// one less.
pub const MAX_RACERS: usize = 8;

/// When a backup is sent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum HedgeTrigger {
    /// After a fixed delay.
    After(Duration),
    /// After the observed latency at this quantile (in `(0, 1)`).
    Percentile(f64),
}

/// Hedging settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HedgeConfig {
    /// When to send a backup.
    pub trigger: HedgeTrigger,
    /// Backups per call, at most `MAX_RACERS − 1`.
    pub max_extra: u32,
    /// Latency samples needed before a percentile trigger fires.
    pub min_samples: u64,
}

impl Default for HedgeConfig {
    fn default() -> Self {
        HedgeConfig { trigger: HedgeTrigger::Percentile(0.95), max_extra: 1, min_samples: 100 }
    }
}

/// Why no backup is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NoHedge {
    /// The call is not safe to send twice.
    Unsafe,
    /// The call already has its `max_extra` backups.
    Cap,
    /// Not enough samples for a percentile yet.
    NoEstimate,
    /// The deadline has passed.
    Deadline,
    /// The budget is spent.
    Budget,
    /// Hedging is off for this call (no `hedge` policy, or the tool opted out).
    Off,
    /// No server the call has not tried yet could take a backup.
    NoServer,
}

/// What to do about a call still in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HedgeDecision {
    /// Send a backup now (a budget withdrawal has been made).
    Send,
    /// Ask again after this long.
    Wait(Duration),
    /// Do not hedge this call.
    Never(NoHedge),
}

/// The hedging policy of one route, with its latency histogram.
#[derive(Clone, Debug)]
pub struct Hedger {
    config: HedgeConfig,
    histogram: Histogram<u64>,
    since_refresh: u32,
    delay: Option<Duration>,
}

impl Hedger {
    /// A hedger with no samples yet. Panics on an invalid config: validate at the edge.
    pub fn new(config: HedgeConfig) -> Hedger {
        assert!((1..MAX_RACERS as u32).contains(&config.max_extra), "max_extra must be in 1..{MAX_RACERS}");
        if let HedgeTrigger::Percentile(q) = config.trigger {
            assert!(q > 0.0 && q < 1.0, "a hedge percentile is in (0, 1), got {q}");
        }
        let delay = match config.trigger {
            HedgeTrigger::After(d) => Some(d),
            HedgeTrigger::Percentile(_) => None,
        };
        Hedger { config, histogram: latency::histogram(SIGFIG), since_refresh: 0, delay }
    }

    /// Records a completed attempt's latency. Allocates nothing.
    #[inline]
    pub fn observe(&mut self, latency: Duration) {
        latency::record(&mut self.histogram, latency);
        self.since_refresh += 1;
        if let HedgeTrigger::Percentile(q) = self.config.trigger
            && self.histogram.len() >= self.config.min_samples
            && (self.since_refresh >= REFRESH_EVERY || self.delay.is_none())
        {
            self.delay = latency::quantile(&self.histogram, q);
            self.since_refresh = 0;
        }
    }

    /// The current hedge delay, if known.
    pub fn delay(&self) -> Option<Duration> {
        self.delay
    }

    /// Whether to send a backup for a call of `kind` that has been in flight for `elapsed`
    /// with `extra_sent` backups already, at `now`, with its deadline at `deadline`.
    pub fn decide(
        &self,
        kind: CallKind,
        elapsed: Duration,
        extra_sent: u32,
        now: Time,
        deadline: Time,
        budget: &mut RetryBudget,
    ) -> HedgeDecision {
        if !kind.is_replayable() {
            return HedgeDecision::Never(NoHedge::Unsafe);
        }
        if extra_sent >= self.config.max_extra {
            return HedgeDecision::Never(NoHedge::Cap);
        }
        let Some(delay) = self.delay else { return HedgeDecision::Never(NoHedge::NoEstimate) };
        // The k-th backup goes after k delays.
        let due = delay.saturating_mul(extra_sent + 1);
        if elapsed < due {
            return HedgeDecision::Wait(due - elapsed);
        }
        if now >= deadline {
            return HedgeDecision::Never(NoHedge::Deadline);
        }
        if !budget.withdraw(now) {
            return HedgeDecision::Never(NoHedge::Budget);
        }
        HedgeDecision::Send
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retry::BudgetConfig;
    use crate::route::ToolHints;

    const SAFE: CallKind = CallKind::Tool { hints: ToolHints { read_only: true, idempotent: true }, trusted: true };

    #[test]
    fn a_percentile_trigger_waits_for_samples_then_fires_after_the_percentile() {
        let mut h = Hedger::new(HedgeConfig { min_samples: 100, ..Default::default() });
        let mut budget = RetryBudget::new(BudgetConfig::default());
        let now = Time::from_secs(1);
        let deadline = Time::from_secs(5);
        assert_eq!(
            h.decide(SAFE, Duration::from_secs(1), 0, now, deadline, &mut budget),
            HedgeDecision::Never(NoHedge::NoEstimate)
        );
        for ms in 1..=100u64 {
            h.observe(Duration::from_millis(ms));
        }
        let p95 = h.delay().unwrap();
        assert!((94..=96).contains(&p95.as_millis()), "{p95:?}");
        assert!(matches!(
            h.decide(SAFE, Duration::from_millis(10), 0, now, deadline, &mut budget),
            HedgeDecision::Wait(_)
        ));
        assert_eq!(h.decide(SAFE, Duration::from_millis(100), 0, now, deadline, &mut budget), HedgeDecision::Send);
        assert_eq!(
            h.decide(SAFE, Duration::from_millis(300), 1, now, deadline, &mut budget),
            HedgeDecision::Never(NoHedge::Cap)
        );
    }

    #[test]
    fn an_unsafe_call_is_never_hedged() {
        let h = Hedger::new(HedgeConfig { trigger: HedgeTrigger::After(Duration::ZERO), ..Default::default() });
        let unsafe_tool = CallKind::Tool { hints: ToolHints::default(), trusted: true };
        let mut budget = RetryBudget::new(BudgetConfig::default());
        let d = h.decide(unsafe_tool, Duration::from_secs(1), 0, Time::ZERO, Time::from_secs(9), &mut budget);
        assert_eq!(d, HedgeDecision::Never(NoHedge::Unsafe));
    }
}
