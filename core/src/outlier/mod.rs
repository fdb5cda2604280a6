//! Outlier ejection: take a misbehaving server out of rotation for a while (Envoy's model).
//!
//! Two detectors, as in Envoy's `outlier_detection`:
//!
//! - **Consecutive failures**: `consecutive_failures` failures in a row eject at once.
//! - **Success rate**: every `interval`, among servers with at least `request_volume` calls in
//!   the interval (and only when at least `min_hosts` qualify), a server whose success rate is
//!   below `mean − stdev_factor × stdev` is ejected.
//!
//! An ejection lasts `base_ejection_time × k`, where k counts the server's ejections; k falls by
//! one for every interval the server spends un-ejected, so a server that keeps relapsing stays
//! out longer and longer (up to `max_ejection_time`) while one that recovered is forgiven.
//!
//! **Never more than `max_ejected_fraction` of the fleet is ejected at once**: an ejection that
//! would exceed it does not happen (Envoy ejects at least one host regardless; here the bound is
//! strict, because a property test holds it). The default fraction is 0.5, not Envoy's 0.1: MCP
//! fleets are small (2–5 replicas), where 10 % would never eject anyone, and ejecting half still
//! leaves half to serve.
//!
//! The detector decides; the caller applies its [`Ejection`]s to the fleet
//! (`Fleet::set_ejected`). Time is a parameter; per-server state is a dense `Vec`.

use std::time::Duration;

use crate::fleet::ServerId;
use crate::outcome::Verdict;
use crate::time::Time;

/// How outliers are detected and for how long they are ejected.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OutlierConfig {
    /// Failures in a row that eject a server; `None` disables.
    pub consecutive_failures: Option<u32>,
    /// How often the success-rate analysis runs and ejections are reviewed.
    pub interval: Duration,
    /// Success-rate analysis: the fewest servers with enough volume for it to run.
    pub min_hosts: u32,
    /// Success-rate analysis: the fewest calls in an interval for a server to be judged.
    pub request_volume: u32,
    /// Success-rate analysis: how many standard deviations below the mean ejects; `None`
    /// disables the analysis.
    pub stdev_factor: Option<f64>,
    /// The first ejection's length.
    pub base_ejection_time: Duration,
    /// The longest ejection.
    pub max_ejection_time: Duration,
    /// The largest fraction of the fleet ejected at once, in `[0, 1]`.
    pub max_ejected_fraction: f64,
}

impl Default for OutlierConfig {
    fn default() -> Self {
        // Envoy's defaults, except the fraction (see the module docs) and min_hosts: Envoy's 5
        // would disable the analysis for most MCP fleets, 3 is the least that gives a mean
        // and a deviation worth comparing against.
        OutlierConfig {
            consecutive_failures: Some(5),
            interval: Duration::from_secs(10),
            min_hosts: 3,
            request_volume: 100,
            stdev_factor: Some(1.9),
            base_ejection_time: Duration::from_secs(30),
            max_ejection_time: Duration::from_secs(300),
            max_ejected_fraction: 0.5,
        }
    }
}

/// Why a server was ejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EjectReason {
    /// Too many failures in a row.
    ConsecutiveFailures,
    /// Its success rate was an outlier.
    SuccessRate,
}

/// A change the caller applies to the fleet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ejection {
    /// Eject `server` until `until`.
    Eject {
        /// The server.
        server: ServerId,
        /// Why.
        reason: EjectReason,
        /// When it returns.
        until: Time,
    },
    /// `server`'s ejection is over.
    Restore {
        /// The server.
        server: ServerId,
    },
}

#[derive(Clone, Copy, Debug, Default)]
struct ServerStats {
    consecutive: u32,
    successes: u32,
    failures: u32,
    ejected_until: Option<Time>,
    /// k: ejections not yet forgiven.
    multiplier: u32,
}

/// The outlier detector of one fleet (or one replica set).
#[derive(Clone, Debug)]
pub struct OutlierDetector {
    config: OutlierConfig,
    servers: Vec<ServerStats>,
    ejected: u32,
    next_review: Time,
}

impl OutlierDetector {
    /// A detector for `servers` servers, first reviewing at `now + interval`.
    pub fn new(config: OutlierConfig, servers: usize, now: Time) -> OutlierDetector {
        assert!((0.0..=1.0).contains(&config.max_ejected_fraction), "max_ejected_fraction is a fraction");
        assert!(!config.interval.is_zero(), "the review interval must be positive");
        OutlierDetector {
            config,
            servers: vec![ServerStats::default(); servers],
            ejected: 0,
            next_review: now + config.interval,
        }
    }

    /// Makes room for servers that joined (ids up to `servers − 1`).
    pub fn grow(&mut self, servers: usize) {
        if servers > self.servers.len() {
            self.servers.resize(servers, ServerStats::default());
        }
    }

    /// How many servers are ejected now.
    pub fn ejected(&self) -> u32 {
        self.ejected
    }

    /// Whether `server` is ejected.
    pub fn is_ejected(&self, server: ServerId) -> bool {
        self.servers[server.index()].ejected_until.is_some()
    }

    /// The most servers that may be ejected at once.
    pub fn max_ejected(&self) -> u32 {
        (self.config.max_ejected_fraction * self.servers.len() as f64).floor() as u32
    }

    /// Records a call's verdict; may eject `server` for consecutive failures.
    #[inline]
    pub fn record(&mut self, server: ServerId, verdict: Verdict, now: Time) -> Option<Ejection> {
        let s = &mut self.servers[server.index()];
        match verdict {
            Verdict::Ignored => return None,
            Verdict::Success => {
                s.successes += 1;
                s.consecutive = 0;
                return None;
            }
            Verdict::Failure => {
                s.failures += 1;
                s.consecutive += 1;
            }
        }
        let limit = self.config.consecutive_failures?;
        if s.consecutive >= limit && s.ejected_until.is_none() {
            return self.eject(server, EjectReason::ConsecutiveFailures, now);
        }
        None
    }

    /// Runs the periodic review when it is due: restores servers whose ejection is over, runs
    /// the success-rate analysis, and starts a new interval. Pushes changes onto `out`.
    pub fn review(&mut self, now: Time, out: &mut Vec<Ejection>) {
        if now < self.next_review {
            return;
        }
        self.next_review = now + self.config.interval;
        for (i, s) in self.servers.iter_mut().enumerate() {
            match s.ejected_until {
                Some(until) if until <= now => {
                    s.ejected_until = None;
                    s.consecutive = 0;
                    self.ejected -= 1;
                    out.push(Ejection::Restore { server: ServerId(i as u32) });
                }
                Some(_) => {}
                None => s.multiplier = s.multiplier.saturating_sub(1),
            }
        }
        if let Some(factor) = self.config.stdev_factor {
            self.success_rate_analysis(factor, now, out);
        }
        for s in &mut self.servers {
            s.successes = 0;
            s.failures = 0;
        }
    }

    fn success_rate_analysis(&mut self, factor: f64, now: Time, out: &mut Vec<Ejection>) {
        let volume = self.config.request_volume;
        let rates = || {
            self.servers
                .iter()
                .filter(|s| s.ejected_until.is_none() && s.successes + s.failures >= volume.max(1))
                .map(|s| f64::from(s.successes) / f64::from(s.successes + s.failures))
        };
        let n = rates().count();
        if n == 0 || (n as u32) < self.config.min_hosts {
            return;
        }
        let mean = rates().sum::<f64>() / n as f64;
        let variance = rates().map(|r| (r - mean).powi(2)).sum::<f64>() / n as f64;
        let threshold = mean - factor * variance.sqrt();
        for i in 0..self.servers.len() {
            let s = self.servers[i];
            let total = s.successes + s.failures;
            if s.ejected_until.is_some() || total < volume.max(1) {
                continue;
            }
            if f64::from(s.successes) / f64::from(total) < threshold
                && let Some(e) = self.eject(ServerId(i as u32), EjectReason::SuccessRate, now)
            {
                out.push(e);
            }
        }
    }

    fn eject(&mut self, server: ServerId, reason: EjectReason, now: Time) -> Option<Ejection> {
        if self.ejected + 1 > self.max_ejected() {
            return None;
        }
        let s = &mut self.servers[server.index()];
        s.multiplier = s.multiplier.saturating_add(1);
        let time = self.config.base_ejection_time.saturating_mul(s.multiplier).min(self.config.max_ejection_time);
        let until = now + time;
        s.ejected_until = Some(until);
        self.ejected += 1;
        Some(Ejection::Eject { server, reason, until })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fails(d: &mut OutlierDetector, id: u32, n: u32, now: Time) -> Option<Ejection> {
        (0..n).filter_map(|_| d.record(ServerId(id), Verdict::Failure, now)).last()
    }

    #[test]
    fn consecutive_failures_eject_and_repeat_ejections_last_longer() {
        let mut d = OutlierDetector::new(OutlierConfig::default(), 4, Time::ZERO);
        let e = fails(&mut d, 1, 5, Time::from_secs(1));
        assert_eq!(
            e,
            Some(Ejection::Eject {
                server: ServerId(1),
                reason: EjectReason::ConsecutiveFailures,
                until: Time::from_secs(31)
            })
        );
        let mut out = Vec::new();
        d.review(Time::from_secs(40), &mut out);
        assert_eq!(out, [Ejection::Restore { server: ServerId(1) }]);
        let e = fails(&mut d, 1, 5, Time::from_secs(41));
        assert!(matches!(e, Some(Ejection::Eject { until, .. }) if until == Time::from_secs(101)), "{e:?}");
    }

    #[test]
    fn the_success_rate_outlier_is_ejected_and_the_others_are_not() {
        let config = OutlierConfig { consecutive_failures: None, ..Default::default() };
        let mut d = OutlierDetector::new(config, 5, Time::ZERO);
        for id in 0..5u32 {
            for k in 0..200u32 {
                let bad = if id == 3 { k % 2 == 0 } else { k % 100 == 0 };
                d.record(ServerId(id), if bad { Verdict::Failure } else { Verdict::Success }, Time::from_secs(1));
            }
        }
        let mut out = Vec::new();
        d.review(Time::from_secs(10), &mut out);
        assert_eq!(out.len(), 1);
        assert!(matches!(out[0], Ejection::Eject { server: ServerId(3), reason: EjectReason::SuccessRate, .. }));
    }

    #[test]
    fn with_fewer_than_five_servers_the_default_factor_never_ejects_on_success_rate() {
        // One server failing every call, the others none: it stands sqrt(n - 1) standard
        // deviations below the mean, under the default 1.9 until n = 5.
        for (n, ejects) in [(3u32, false), (4, false), (5, true)] {
            let config = OutlierConfig { consecutive_failures: None, ..Default::default() };
            let mut d = OutlierDetector::new(config, n as usize, Time::ZERO);
            for id in 0..n {
                for _ in 0..200 {
                    let verdict = if id == 0 { Verdict::Failure } else { Verdict::Success };
                    d.record(ServerId(id), verdict, Time::from_secs(1));
                }
            }
            let mut out = Vec::new();
            d.review(Time::from_secs(10), &mut out);
            assert_eq!(!out.is_empty(), ejects, "{n} servers: {out:?}");
        }
    }

    #[test]
    fn ejections_stop_at_the_maximum_fraction() {
        let mut d = OutlierDetector::new(OutlierConfig::default(), 3, Time::ZERO);
        assert!(fails(&mut d, 0, 5, Time::ZERO).is_some());
        assert_eq!(fails(&mut d, 1, 5, Time::ZERO), None, "a second of three would exceed 50 %");
        assert_eq!(d.ejected(), 1);
    }
}
