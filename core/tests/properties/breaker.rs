use std::time::Duration;

use gauntlet_core::Time;
use gauntlet_core::breaker::{
    Breaker, BreakerConfig, Permit, RejectReason, State, TIME_BUCKETS, TripReason, WindowSize,
};
use gauntlet_core::outcome::Verdict;
use proptest::prelude::*;

fn config() -> impl Strategy<Value = BreakerConfig> {
    (
        prop::option::of(1u32..8),
        prop::option::of(0.1f64..=1.0),
        prop::option::of(0.1f64..=1.0),
        prop_oneof![
            (1u32..20).prop_map(WindowSize::Count),
            (1u64..5_000).prop_map(|ms| WindowSize::Time(Duration::from_millis(ms)))
        ],
        1u32..15,
        1u32..5,
    )
        .prop_flat_map(|(consecutive, failure_rate, slow_rate, window, min_calls, probes)| {
            (1..=probes).prop_map(move |successes_to_close| BreakerConfig {
                consecutive_failures: consecutive,
                failure_rate,
                slow_call_rate: slow_rate,
                slow_call_duration: Duration::from_millis(100),
                window,
                min_calls,
                open_for: Duration::from_millis(500),
                open_multiplier: 2.0,
                max_open_for: Duration::from_secs(4),
                probes,
                successes_to_close,
                probe_timeout: Duration::from_millis(300),
            })
        })
}

/// One step: time passes `dt_ms`, then a call with this verdict and latency is made.
fn steps() -> impl Strategy<Value = Vec<(u64, u8, u64)>> {
    prop::collection::vec((0u64..400, 0u8..3, prop_oneof![Just(5u64), Just(150u64)]), 1..300)
}

fn verdict(v: u8) -> Verdict {
    [Verdict::Success, Verdict::Failure, Verdict::Ignored][v as usize]
}

/// The closed state's trip rule, recomputed from scratch over every outcome since the last
/// transition: a deliberately naive restatement of the documented rule.
struct Model {
    config: BreakerConfig,
    /// (time, failed, slow) of every counted call since the breaker last closed.
    calls: Vec<(Time, bool, bool)>,
}

impl Model {
    fn should_trip(&self, now: Time) -> Option<TripReason> {
        let consecutive = self.calls.iter().rev().take_while(|c| c.1).count() as u32;
        if self.config.consecutive_failures.is_some_and(|n| consecutive >= n) {
            return Some(TripReason::ConsecutiveFailures);
        }
        let in_window: Vec<_> = match self.config.window {
            WindowSize::Count(n) => self.calls.iter().rev().take(n as usize).collect(),
            WindowSize::Time(span) => {
                let width = (span.as_nanos() as u64 / TIME_BUCKETS as u64).max(1);
                let current = now.as_nanos() / width;
                self.calls.iter().filter(|c| current - c.0.as_nanos() / width < TIME_BUCKETS as u64).collect()
            }
        };
        let n = in_window.len() as u32;
        if n < self.config.min_calls {
            return None;
        }
        let failures = in_window.iter().filter(|c| c.1).count() as f64;
        let slow = in_window.iter().filter(|c| c.2).count() as f64;
        if self.config.failure_rate.is_some_and(|r| failures >= r * f64::from(n)) {
            return Some(TripReason::FailureRate);
        }
        if self.config.slow_call_rate.is_some_and(|r| slow >= r * f64::from(n)) {
            return Some(TripReason::SlowCallRate);
        }
        None
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_breaker_trips_exactly_when_a_reference_model_says_it_should(config in config(), steps in steps()) {
        let mut now = Time::from_secs(1);
        let mut breaker = Breaker::new(config, now);
        let mut model = Model { config, calls: Vec::new() };
        for (dt, v, latency_ms) in steps {
            now = now + Duration::from_millis(dt);
            let permit = match breaker.permit(now) {
                Ok(p) => p,
                Err(_) => continue,
            };
            let latency = Duration::from_millis(latency_ms);
            let was_closed = matches!(breaker.state(), State::Closed { .. });
            let transition = breaker.record(permit, verdict(v), latency, now);
            if !was_closed {
                // Half-open: the model restarts whenever the breaker closes again.
                if matches!(breaker.state(), State::Closed { .. }) {
                    model.calls.clear();
                }
                continue;
            }
            let expected = if verdict(v) == Verdict::Ignored {
                None
            } else {
                let slow = config.slow_call_rate.is_some() && latency >= config.slow_call_duration;
                model.calls.push((now, verdict(v) == Verdict::Failure, slow));
                model.should_trip(now)
            };
            let actual = transition.and_then(|t| match t.to { State::Open { reason, .. } => Some(reason), _ => None });
            prop_assert_eq!(actual, expected, "at {} after {} calls", now, model.calls.len());
            if actual.is_some() {
                model.calls.clear();
            }
        }
    }

    #[test]
    fn a_half_open_breaker_never_has_more_probes_out_than_its_limit(config in config(), steps in steps(), seed: u64) {
        let mut now = Time::from_secs(1);
        let mut breaker = Breaker::new(config, now);
        // Outstanding permits, with the half-open episode (its `since`) they were issued in.
        let mut out: Vec<(Permit, Option<Time>)> = Vec::new();
        let episode = |b: &Breaker| match b.state() { State::HalfOpen { since, .. } => Some(since), _ => None };
        let mut pick = seed;
        for (dt, v, latency_ms) in steps {
            now = now + Duration::from_millis(dt);
            if let Ok(p) = breaker.permit(now) {
                out.push((p, episode(&breaker)));
            }
            // Answer one outstanding call, chosen pseudo-randomly, about half the time.
            pick = pick.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            if !out.is_empty() && pick >> 63 == 1 {
                let (p, _) = out.swap_remove((pick >> 32) as usize % out.len());
                let _ = breaker.record(p, verdict(v), Duration::from_millis(latency_ms), now);
            }
            if let State::HalfOpen { since, admitted, .. } = breaker.state() {
                let probes_out = out.iter().filter(|(p, e)| p.is_probe() && *e == Some(since)).count() as u32;
                prop_assert!(admitted <= config.probes, "admitted {admitted} > {}", config.probes);
                prop_assert!(probes_out <= admitted, "{probes_out} probes out, {admitted} admitted");
            }
        }
    }

    #[test]
    fn a_half_open_breaker_always_leaves_half_open_or_admits_within_a_probe_timeout(config in config(), steps in steps()) {
        let mut now = Time::from_secs(1);
        let mut breaker = Breaker::new(config, now);
        let mut held = Vec::new();
        for (dt, v, latency_ms) in steps {
            now = now + Duration::from_millis(dt);
            if let Ok(p) = breaker.permit(now) {
                // Every other probe is never answered.
                if p.is_probe() && held.len() % 2 == 0 {
                    held.push(p);
                    continue;
                }
                let _ = breaker.record(p, verdict(v), Duration::from_millis(latency_ms), now);
            }
            if let State::HalfOpen { .. } = breaker.state() {
                let later = now + config.probe_timeout;
                let mut probe = breaker.clone();
                let admitted = probe.permit(later);
                prop_assert!(
                    admitted.is_ok() || matches!(probe.state(), State::Open { .. }),
                    "still refusing a probe timeout later: {:?} {:?}", admitted, probe.state()
                );
                prop_assert_ne!(admitted, Err(RejectReason::ProbesBusy));
            }
        }
    }
}
