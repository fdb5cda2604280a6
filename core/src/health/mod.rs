//! Health: is a server up, from active checks and from the calls themselves.
//!
//! Active checks (ping on legacy servers, discover on modern ones; the client sends them) run
//! on a schedule: every `interval`, spread by a random `jitter` from the injected RNG so that a
//! client's checks of many servers, or many clients' checks of one server, do not line up. A
//! check unanswered within `timeout` failed. `unhealthy_threshold` failures in a row mark a
//! healthy server down; `healthy_threshold` successes in a row bring it back (Envoy's and
//! Kubernetes' model: hysteresis, so one lost ping does not flap a server).
//!
//! Passive signals are the verdicts of real calls: `passive_failures` failures in a row also
//! mark it down (a server whose pings pass but whose tools all time out is not healthy), and a
//! real success counts like a passing check (it is proof of life), so health is neither falsely
//! up nor falsely down for long.
//!
//! Defaults: every 10 s ± 10 %, 2 s timeout, down after 3 failed checks or 5 failed calls in a
//! row, up after 2 successes.

use std::time::Duration;

use crate::outcome::Verdict;
use crate::rng::SeededRng;
use crate::time::{Time, nanos_of};

/// Health-check settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HealthConfig {
    /// Time between checks.
    pub interval: Duration,
    /// A check unanswered this long failed.
    pub timeout: Duration,
    /// Failed checks in a row that mark a server down.
    pub unhealthy_threshold: u32,
    /// Successes in a row that bring it back.
    pub healthy_threshold: u32,
    /// Spread of the interval, as a fraction in `[0, 1)`: each wait is uniform in
    /// `interval × [1 − jitter, 1 + jitter]`.
    pub jitter: f64,
    /// Failed calls in a row that mark a server down; `None` ignores calls.
    pub passive_failures: Option<u32>,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(2),
            unhealthy_threshold: 3,
            healthy_threshold: 2,
            jitter: 0.1,
            passive_failures: Some(5),
        }
    }
}

/// One server's health.
#[derive(Clone, Debug)]
pub struct Health {
    config: HealthConfig,
    healthy: bool,
    ok_streak: u32,
    fail_streak: u32,
    call_fail_streak: u32,
    next_check: Time,
}

impl Health {
    /// A healthy server (it just connected) whose first check is due one jittered interval
    /// after `now`.
    pub fn new(config: HealthConfig, now: Time, rng: &mut SeededRng) -> Health {
        assert!((0.0..1.0).contains(&config.jitter), "health-check jitter is a fraction in [0, 1)");
        assert!(config.unhealthy_threshold > 0 && config.healthy_threshold > 0, "health thresholds are positive");
        let mut h =
            Health { config, healthy: true, ok_streak: 0, fail_streak: 0, call_fail_streak: 0, next_check: now };
        h.schedule(now, rng);
        h
    }

    /// Whether the server is up.
    pub fn is_healthy(&self) -> bool {
        self.healthy
    }

    /// When the next active check is due.
    pub fn next_check(&self) -> Time {
        self.next_check
    }

    /// Whether a check is due at `now`.
    pub fn is_due(&self, now: Time) -> bool {
        now >= self.next_check
    }

    /// The configuration.
    pub fn config(&self) -> &HealthConfig {
        &self.config
    }

    fn schedule(&mut self, now: Time, rng: &mut SeededRng) {
        let interval = nanos_of(self.config.interval) as f64;
        let spread = 1.0 + self.config.jitter * (2.0 * rng.unit() - 1.0);
        self.next_check = now + Duration::from_nanos((interval * spread) as u64);
    }

    /// An active check ended (`ok`, or failed / timed out) at `now`; schedules the next one.
    /// Returns the new health when it changed.
    pub fn record_check(&mut self, ok: bool, now: Time, rng: &mut SeededRng) -> Option<bool> {
        self.schedule(now, rng);
        if ok { self.success() } else { self.failure(false) }
    }

    /// A real call's verdict. Returns the new health when it changed.
    pub fn record_call(&mut self, verdict: Verdict) -> Option<bool> {
        match verdict {
            Verdict::Ignored => None,
            Verdict::Success => self.success(),
            Verdict::Failure => self.failure(true),
        }
    }

    fn success(&mut self) -> Option<bool> {
        self.fail_streak = 0;
        self.call_fail_streak = 0;
        self.ok_streak += 1;
        if !self.healthy && self.ok_streak >= self.config.healthy_threshold {
            self.healthy = true;
            return Some(true);
        }
        None
    }

    fn failure(&mut self, from_call: bool) -> Option<bool> {
        self.ok_streak = 0;
        let down = if from_call {
            self.call_fail_streak += 1;
            self.config.passive_failures.is_some_and(|n| self.call_fail_streak >= n)
        } else {
            self.fail_streak += 1;
            self.fail_streak >= self.config.unhealthy_threshold
        };
        if self.healthy && down {
            self.healthy = false;
            return Some(false);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health() -> (Health, SeededRng) {
        let mut rng = SeededRng::new(3);
        (Health::new(HealthConfig::default(), Time::ZERO, &mut rng), rng)
    }

    #[test]
    fn three_failed_checks_mark_it_down_and_two_passing_ones_bring_it_back() {
        let (mut h, mut rng) = health();
        assert_eq!(h.record_check(false, Time::from_secs(10), &mut rng), None);
        assert_eq!(h.record_check(false, Time::from_secs(20), &mut rng), None);
        assert_eq!(h.record_check(false, Time::from_secs(30), &mut rng), Some(false));
        assert_eq!(h.record_check(true, Time::from_secs(40), &mut rng), None);
        assert_eq!(h.record_check(true, Time::from_secs(50), &mut rng), Some(true));
    }

    #[test]
    fn one_lost_check_between_passes_does_not_flap_the_server() {
        let (mut h, mut rng) = health();
        for (i, ok) in [true, false, true, false, false, true].into_iter().enumerate() {
            assert_eq!(h.record_check(ok, Time::from_secs(10 * i as u64), &mut rng), None);
        }
    }

    #[test]
    fn failing_calls_mark_a_server_down_even_when_its_pings_pass() {
        let (mut h, mut rng) = health();
        h.record_check(true, Time::from_secs(10), &mut rng);
        let changes: Vec<_> = (0..5).filter_map(|_| h.record_call(Verdict::Failure)).collect();
        assert_eq!(changes, [false]);
    }

    #[test]
    fn checks_are_spread_by_jitter_within_its_bounds() {
        let (mut h, mut rng) = health();
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..200u64 {
            let now = Time::from_secs(100 * i);
            h.record_check(true, now, &mut rng);
            let wait = h.next_check().saturating_since(now);
            assert!(wait >= Duration::from_secs(9) && wait <= Duration::from_secs(11), "{wait:?}");
            seen.insert(wait.as_millis());
        }
        assert!(seen.len() > 100, "jitter should spread the checks");
    }
}
