//! The policy a user writes: one serde type, read from the `gauntlet` section of an
//! `mcpServers` JSON file and from a scenario's `[client]` TOML table alike. Keys are
//! snake_case, enum values kebab-case, durations text; unknown keys are errors. Every field has a
//! default (`Policy::default()` is the documented default policy) and a checked range.
//!
//! A count or rate documented as "0 turns it off" maps to `None` in the mechanism's config.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use super::values::{Count, Fraction, Period, Ratio};
use crate::LatencyConfig;
use crate::balance::{DEFAULT_THRESHOLD, SlowStartConfig, Strategy};
use crate::breaker::{BreakerConfig, MAX_PROBES, WindowSize};
use crate::health::HealthConfig;
use crate::hedge::{HedgeConfig, HedgeTrigger, MAX_RACERS};
use crate::outlier::OutlierConfig;
use crate::retry::{Backoff, BudgetConfig, Jitter, RetryConfig};
use crate::route::{Fallback, Namespacing, Pattern, RouteRule};

/// The most per-tool overrides, route rules or fallback groups one policy may hold.
pub const MAX_ENTRIES: usize = 1_024;

/// Keys an earlier version of the format used, and what replaced them. A reader that meets one
/// says which key to write instead.
pub const MOVED: &[(&str, &str)] = &[
    ("max_attempts", "retry.max_attempts"),
    ("maxAttempts", "retry.max_attempts"),
    ("retry_budget", "retry.budget.ratio"),
    ("retryBudget", "retry.budget.ratio"),
    ("hedge_after", "hedge.after"),
    ("hedgeAfter", "hedge.after"),
    ("health_interval", "health.interval"),
    ("healthInterval", "health.interval"),
    ("breaker_failures", "breaker.consecutive_failures"),
    ("breakerFailures", "breaker.consecutive_failures"),
    ("breaker_open_for", "breaker.open_for"),
    ("breakerOpenFor", "breaker.open_for"),
    ("breakerMode", "breaker.mode"),
    ("result_cache_ttl", "cache.ttl"),
    ("resultCacheTtl", "cache.ttl"),
    ("tool_timeouts", "tools.<exposed name>.timeout"),
    ("toolTimeouts", "tools.<exposed name>.timeout"),
    ("priorityThreshold", "priority_threshold"),
    ("callTimeout", "call_timeout"),
    ("connectTimeout", "connect_timeout"),
    ("maxConcurrency", "max_concurrency"),
    ("slowStart", "slow_start"),
];

/// What replaced `key`, if it is a key of an earlier version of the format.
pub fn moved(key: &str) -> Option<&'static str> {
    MOVED.iter().find(|(old, _)| *old == key).map(|(_, new)| *new)
}

/// The whole client policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// The balancing strategy within a tier of replicas.
    pub balancer: Strategy,
    /// A tier with less than this share of its servers available spills into the next tier.
    pub priority_threshold: Ratio,
    /// Peak-EWMA latency tracking (for `p2c-peak-ewma`).
    pub peak_ewma: PeakEwmaPolicy,
    /// Ramp a (re)joining server's share of picks up over a window; off when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slow_start: Option<SlowStartPolicy>,
    /// How exposed tool names are formed.
    pub namespacing: Namespacing,
    /// The default deadline of a logical call, all attempts included.
    pub deadline: Period,
    /// Each server's default deadline for one attempt.
    pub call_timeout: Period,
    /// Each server's default deadline for a connect and its handshake.
    pub connect_timeout: Period,
    /// Each server's default limit of calls in flight.
    pub max_concurrency: Count<1, 65_536>,
    /// Each server's default queue of calls waiting for a slot; a call beyond it is rejected.
    pub queue: Count<0, 1_000_000>,
    /// The root of every random stream the client draws from, `0..=2^63-1` (what a TOML
    /// integer can hold, so a seed means the same in both formats).
    #[serde(deserialize_with = "seed")]
    pub seed: u64,
    /// Circuit breaking per server.
    pub breaker: BreakerPolicy,
    /// Outlier ejection.
    pub outlier: OutlierPolicy,
    /// Retries and their budget.
    pub retry: RetryPolicy,
    /// Hedged (backup) requests; off when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hedge: Option<HedgePolicy>,
    /// Active health checks.
    pub health: HealthPolicy,
    /// Reconnecting to a server whose session ended.
    pub reconnect: ReconnectPolicy,
    /// The result cache for trusted read-only tools.
    pub cache: CachePolicy,
    /// Per-tool overrides, by exposed name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tools: BTreeMap<String, ToolPolicy>,
    /// Route rules, tried in order: the first whose pattern matches a tool keeps only the
    /// servers with all of its tags and capabilities.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RoutePolicy>,
    /// Replica groups backing up others: their copies of a tool become its later tiers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fallbacks: Vec<Fallback>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            balancer: Strategy::P2C_PEAK_EWMA,
            priority_threshold: Ratio::of(DEFAULT_THRESHOLD),
            peak_ewma: PeakEwmaPolicy::default(),
            slow_start: None,
            namespacing: Namespacing::Always,
            deadline: Period::from_secs(30),
            call_timeout: Period::from_secs(10),
            connect_timeout: Period::from_secs(10),
            max_concurrency: Count::of(64),
            queue: Count::of(256),
            seed: 0,
            breaker: BreakerPolicy::default(),
            outlier: OutlierPolicy::default(),
            retry: RetryPolicy::default(),
            hedge: None,
            health: HealthPolicy::default(),
            reconnect: ReconnectPolicy::default(),
            cache: CachePolicy::default(),
            tools: BTreeMap::new(),
            routes: Vec::new(),
            fallbacks: Vec::new(),
        }
    }
}

/// A policy whose values are each in range but do not fit together.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct PolicyError {
    /// The key, as a dotted path inside the policy (`hedge.after`).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

fn error(path: impl Into<String>, message: impl Into<String>) -> PolicyError {
    PolicyError { path: path.into(), message: message.into() }
}

impl Policy {
    /// Checks what single values cannot: relations between keys and sizes of lists.
    pub fn check(&self) -> Result<(), PolicyError> {
        let b = &self.breaker;
        if b.successes_to_close.get() > b.probes.get() {
            return Err(error("breaker.successes_to_close", "cannot exceed `probes`"));
        }
        if b.max_open_for < b.open_for {
            return Err(error("breaker.max_open_for", "cannot be shorter than `open_for`"));
        }
        if self.retry.cap < self.retry.base {
            return Err(error("retry.cap", "cannot be shorter than `base`"));
        }
        if self.reconnect.cap < self.reconnect.base {
            return Err(error("reconnect.cap", "cannot be shorter than `base`"));
        }
        if self.outlier.max_ejection_time < self.outlier.base_ejection_time {
            return Err(error("outlier.max_ejection_time", "cannot be shorter than `base_ejection_time`"));
        }
        if let Some(h) = &self.hedge {
            match (h.after, h.percentile) {
                (Some(_), Some(_)) => return Err(error("hedge", "give `after` or `percentile`, not both")),
                (None, None) => return Err(error("hedge", "needs `after` (a delay) or `percentile` (e.g. 0.95)")),
                (None, Some(q)) if !(q.get() > 0.0 && q.get() < 1.0) => {
                    return Err(error("hedge.percentile", "must be in (0, 1)"));
                }
                _ => {}
            }
        }
        for (key, len) in
            [("tools", self.tools.len()), ("routes", self.routes.len()), ("fallbacks", self.fallbacks.len())]
        {
            if len > MAX_ENTRIES {
                return Err(error(key, format!("at most {MAX_ENTRIES} entries, got {len}")));
            }
        }
        for (i, f) in self.fallbacks.iter().enumerate() {
            if f.then.is_empty() {
                return Err(error(format!("fallbacks[{i}].then"), "names no group"));
            }
            if f.then.contains(&f.group) {
                return Err(error(format!("fallbacks[{i}].then"), format!("`{}` cannot back itself up", f.group)));
            }
        }
        Ok(())
    }

    /// The latency tracker's settings.
    pub fn latency_config(&self) -> LatencyConfig {
        LatencyConfig { decay: self.peak_ewma.decay.get(), default_rtt: self.peak_ewma.default_rtt.get() }
    }

    /// The slow-start settings, if on.
    pub fn slow_start_config(&self) -> Option<SlowStartConfig> {
        self.slow_start.map(|s| SlowStartConfig {
            window: s.window.get(),
            aggression: s.aggression.get(),
            min_share: s.min_share.get(),
        })
    }

    /// The breaker's settings.
    pub fn breaker_config(&self) -> BreakerConfig {
        let b = &self.breaker;
        BreakerConfig {
            consecutive_failures: nonzero(b.consecutive_failures.get()),
            failure_rate: b.failure_rate.nonzero(),
            slow_call_rate: b.slow_call_rate.nonzero(),
            slow_call_duration: b.slow_call_duration.get(),
            window: b.window.size(),
            min_calls: b.min_calls.get(),
            open_for: b.open_for.get(),
            open_multiplier: b.open_multiplier.get().max(1.0),
            max_open_for: b.max_open_for.get(),
            probes: b.probes.get(),
            successes_to_close: b.successes_to_close.get(),
            probe_timeout: b.probe_timeout.get(),
        }
    }

    /// Outlier detection's settings.
    pub fn outlier_config(&self) -> OutlierConfig {
        let o = &self.outlier;
        OutlierConfig {
            consecutive_failures: nonzero(o.consecutive_failures.get()),
            interval: o.interval.get(),
            min_hosts: o.min_hosts.get(),
            request_volume: o.request_volume.get(),
            stdev_factor: o.stdev_factor.nonzero(),
            base_ejection_time: o.base_ejection_time.get(),
            max_ejection_time: o.max_ejection_time.get(),
            max_ejected_fraction: o.max_ejected_fraction.get(),
        }
    }

    /// The retry settings, with `max_attempts` overridden for `tool` if it has an override.
    pub fn retry_config(&self, tool: Option<&str>) -> RetryConfig {
        let r = &self.retry;
        let attempts = tool.and_then(|t| self.tools.get(t)).and_then(|t| t.max_attempts).unwrap_or(r.max_attempts);
        RetryConfig {
            max_attempts: attempts.get(),
            backoff: Backoff { base: r.base.get(), cap: r.cap.get(), jitter: r.backoff },
        }
    }

    /// The retry budget's settings.
    pub fn budget_config(&self) -> BudgetConfig {
        let b = &self.retry.budget;
        BudgetConfig { ratio: b.ratio.get(), min_per_sec: b.min_per_sec.get(), window: b.window.get() }
    }

    /// The hedger's settings, if hedging is on. Call after [`check`](Self::check).
    pub fn hedge_config(&self) -> Option<HedgeConfig> {
        let h = self.hedge.as_ref()?;
        let trigger = match (h.after, h.percentile) {
            (Some(d), _) => HedgeTrigger::After(d.get()),
            (None, Some(q)) => HedgeTrigger::Percentile(q.get()),
            (None, None) => return None,
        };
        Some(HedgeConfig { trigger, max_extra: h.max_extra.get(), min_samples: u64::from(h.min_samples.get()) })
    }

    /// Health checking's settings.
    pub fn health_config(&self) -> HealthConfig {
        let h = &self.health;
        HealthConfig {
            interval: h.interval.get(),
            timeout: h.timeout.get(),
            unhealthy_threshold: h.unhealthy_threshold.get(),
            healthy_threshold: h.healthy_threshold.get(),
            jitter: h.jitter.get(),
            passive_failures: nonzero(h.passive_failures.get()),
        }
    }

    /// The backoff between reconnect attempts (decorrelated jitter).
    pub fn reconnect_backoff(&self) -> Backoff {
        Backoff { base: self.reconnect.base.get(), cap: self.reconnect.cap.get(), jitter: Jitter::Decorrelated }
    }

    /// The route rules.
    pub fn route_rules(&self) -> Vec<RouteRule> {
        self.routes
            .iter()
            .map(|r| RouteRule {
                tools: r.tools.clone(),
                require_tags: r.tags.iter().cloned().collect(),
                require_capabilities: r.capabilities.iter().cloned().collect(),
            })
            .collect()
    }

    /// One attempt's deadline on a server whose own is `server_timeout`: the tool's override
    /// if it has one.
    pub fn attempt_timeout(&self, tool: &str, server_timeout: Duration) -> Duration {
        self.tools.get(tool).and_then(|t| t.timeout).map_or(server_timeout, Period::get)
    }

    /// Whether the configuration vouches that `tool` is idempotent (`tools.<tool>.idempotent`).
    pub fn vouches_idempotent(&self, tool: &str) -> bool {
        self.tools.get(tool).and_then(|t| t.idempotent).unwrap_or(false)
    }

    /// Whether calls to `tool` may be hedged (hedging on, and not turned off for the tool).
    pub fn hedges(&self, tool: &str) -> bool {
        self.hedge.is_some() && self.tools.get(tool).and_then(|t| t.hedge).unwrap_or(true)
    }
}

fn seed<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let n = u64::deserialize(d)?;
    if i64::try_from(n).is_err() {
        return Err(de::Error::custom(format!("{n} is not in 0..=9223372036854775807")));
    }
    Ok(n)
}

fn nonzero(n: u32) -> Option<u32> {
    (n > 0).then_some(n)
}

/// Peak-EWMA latency tracking.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PeakEwmaPolicy {
    /// How fast old latency samples fade (the EWMA's time constant).
    pub decay: Period,
    /// The latency assumed for a server with no sample yet.
    pub default_rtt: Period,
}

impl Default for PeakEwmaPolicy {
    fn default() -> Self {
        let d = LatencyConfig::default();
        PeakEwmaPolicy {
            decay: Period::new(d.decay).expect("in range"),
            default_rtt: Period::new(d.default_rtt).expect("in range"),
        }
    }
}

/// Slow start. Also written as a bare duration (`slow_start = "30s"`), the window.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SlowStartPolicy {
    /// How long the ramp lasts.
    pub window: Period,
    /// The ramp's curvature (1: linear).
    pub aggression: Fraction<1000>,
    /// The share a server starts from.
    pub min_share: Ratio,
}

impl Default for SlowStartPolicy {
    fn default() -> Self {
        let d = SlowStartConfig::default();
        SlowStartPolicy {
            window: Period::new(d.window).expect("in range"),
            aggression: Fraction::of(d.aggression),
            min_share: Ratio::of(d.min_share),
        }
    }
}

impl<'de> Deserialize<'de> for SlowStartPolicy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(default, deny_unknown_fields)]
        struct Table {
            window: Period,
            aggression: Fraction<1000>,
            min_share: Ratio,
        }
        impl Default for Table {
            fn default() -> Self {
                let d = SlowStartPolicy::default();
                Table { window: d.window, aggression: d.aggression, min_share: d.min_share }
            }
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SlowStartPolicy;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a duration (the window) or a table { window, aggression, min_share }")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(SlowStartPolicy { window: v.parse().map_err(E::custom)?, ..SlowStartPolicy::default() })
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let t = Table::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(SlowStartPolicy { window: t.window, aggression: t.aggression, min_share: t.min_share })
            }
        }
        d.deserialize_any(V)
    }
}

/// Whether breakers refuse calls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BreakerMode {
    /// An open breaker refuses calls.
    #[default]
    Enforce,
    /// Breakers only watch and report; nothing is refused.
    Shadow,
}

/// A breaker's window: a duration (`"10s"`, time-based) or a number of calls (`100`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerWindow {
    /// The last this-long of calls.
    Time(Period),
    /// The last this-many calls.
    Calls(Count<1, 100_000>),
}

impl BreakerWindow {
    fn size(self) -> WindowSize {
        match self {
            BreakerWindow::Time(p) => WindowSize::Time(p.get()),
            BreakerWindow::Calls(n) => WindowSize::Count(n.get()),
        }
    }
}

impl Serialize for BreakerWindow {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            BreakerWindow::Time(p) => p.serialize(s),
            BreakerWindow::Calls(n) => n.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for BreakerWindow {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = BreakerWindow;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a duration (\"10s\") or a number of calls (100)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<BreakerWindow, E> {
                v.parse().map(BreakerWindow::Time).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<BreakerWindow, E> {
                let n = u32::try_from(v).map_err(|_| E::custom(format!("{v} is not in 1..=100000")))?;
                Count::new(n).map(BreakerWindow::Calls).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<BreakerWindow, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
            }
        }
        d.deserialize_any(V)
    }
}

/// Circuit breaking.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerPolicy {
    /// Enforce, or only watch (shadow).
    pub mode: BreakerMode,
    /// Trip after this many failures in a row (0 turns it off).
    pub consecutive_failures: Count<0, 10_000>,
    /// Trip at this failure rate over the window (0 turns it off).
    pub failure_rate: Ratio,
    /// Trip at this share of slow calls over the window (0 turns it off).
    pub slow_call_rate: Ratio,
    /// A call at least this long is slow.
    pub slow_call_duration: Period,
    /// The window rates are taken over.
    pub window: BreakerWindow,
    /// Rates are not judged on fewer calls.
    pub min_calls: Count<1, 100_000>,
    /// How long the first trip stays open.
    pub open_for: Period,
    /// Each repeated trip multiplies the open time by this (at least 1).
    pub open_multiplier: Fraction<10_000>,
    /// The longest open time.
    pub max_open_for: Period,
    /// Calls admitted while half-open.
    pub probes: Count<1, MAX_PROBES>,
    /// Successful probes that close the breaker.
    pub successes_to_close: Count<1, MAX_PROBES>,
    /// A probe unanswered this long is a failure.
    pub probe_timeout: Period,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        let d = BreakerConfig::default();
        let p = |d: Duration| Period::new(d).expect("in range");
        BreakerPolicy {
            mode: BreakerMode::Enforce,
            consecutive_failures: Count::of(d.consecutive_failures.unwrap_or(0)),
            failure_rate: Ratio::of(d.failure_rate.unwrap_or(0.0)),
            slow_call_rate: Ratio::of(d.slow_call_rate.unwrap_or(0.0)),
            slow_call_duration: p(d.slow_call_duration),
            window: match d.window {
                WindowSize::Time(t) => BreakerWindow::Time(p(t)),
                WindowSize::Count(n) => BreakerWindow::Calls(Count::of(n)),
            },
            min_calls: Count::of(d.min_calls),
            open_for: p(d.open_for),
            open_multiplier: Fraction::of(d.open_multiplier),
            max_open_for: p(d.max_open_for),
            probes: Count::of(d.probes),
            successes_to_close: Count::of(d.successes_to_close),
            probe_timeout: p(d.probe_timeout),
        }
    }
}

/// Outlier ejection (the Envoy model).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutlierPolicy {
    /// Eject after this many failures in a row (0 turns it off; the breaker already trips on
    /// consecutive failures, so it is off by default).
    pub consecutive_failures: Count<0, 10_000>,
    /// How often success rates are compared.
    pub interval: Period,
    /// Success rates are compared only with at least this many servers.
    pub min_hosts: Count<1, 65_536>,
    /// A server with fewer calls in an interval is not judged.
    pub request_volume: Count<1, 1_000_000>,
    /// Eject below the mean success rate minus this many standard deviations (0: off).
    pub stdev_factor: Fraction<1000>,
    /// The first ejection's length; repeated ejections grow.
    pub base_ejection_time: Period,
    /// The longest ejection.
    pub max_ejection_time: Period,
    /// The largest share of servers ejected at once.
    pub max_ejected_fraction: Ratio,
}

impl Default for OutlierPolicy {
    fn default() -> Self {
        let d = OutlierConfig::default();
        let p = |d: Duration| Period::new(d).expect("in range");
        OutlierPolicy {
            consecutive_failures: Count::of(0),
            interval: p(d.interval),
            min_hosts: Count::of(d.min_hosts),
            request_volume: Count::of(d.request_volume),
            stdev_factor: Fraction::of(d.stdev_factor.unwrap_or(0.0)),
            // 10 s rather than Envoy's 30 s, so a gray server comes back within seconds.
            base_ejection_time: Period::from_secs(10),
            max_ejection_time: p(d.max_ejection_time),
            max_ejected_fraction: Ratio::of(d.max_ejected_fraction),
        }
    }
}

/// Retries.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts per logical call, the first included.
    pub max_attempts: Count<1, 10>,
    /// The backoff's jitter: `none`, `full` or `decorrelated`.
    pub backoff: Jitter,
    /// The first backoff.
    pub base: Period,
    /// The longest backoff.
    pub cap: Period,
    /// The retry budget, shared with hedges.
    pub budget: BudgetPolicy,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        let d = RetryConfig::default();
        RetryPolicy {
            max_attempts: Count::of(d.max_attempts),
            backoff: d.backoff.jitter,
            base: Period::new(d.backoff.base).expect("in range"),
            cap: Period::new(d.backoff.cap).expect("in range"),
            budget: BudgetPolicy::default(),
        }
    }
}

/// The retry budget (Finagle's): retries and hedges together may add at most `ratio` of the
/// calls, plus `min_per_sec`, over a sliding `window`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetPolicy {
    /// Extra attempts per call.
    pub ratio: Fraction<1000>,
    /// Extra attempts per second always allowed.
    pub min_per_sec: Count<0, 1_000_000>,
    /// The window calls are counted over.
    pub window: Period,
}

impl Default for BudgetPolicy {
    fn default() -> Self {
        let d = BudgetConfig::default();
        BudgetPolicy {
            ratio: Fraction::of(d.ratio),
            min_per_sec: Count::of(d.min_per_sec),
            window: Period::new(d.window).expect("in range"),
        }
    }
}

/// Hedging: a backup request when the first is slow. Exactly one trigger.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HedgePolicy {
    /// Hedge after this fixed delay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Period>,
    /// Hedge after this percentile of observed latency (in (0, 1)).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percentile: Option<Ratio>,
    /// Backups per call at most.
    pub max_extra: Count<1, { MAX_RACERS as u32 - 1 }>,
    /// A percentile trigger waits for this many samples.
    pub min_samples: Count<1, 1_000_000>,
}

impl Default for HedgePolicy {
    fn default() -> Self {
        let d = HedgeConfig::default();
        HedgePolicy {
            after: None,
            percentile: None,
            max_extra: Count::of(d.max_extra),
            min_samples: Count::of(u32::try_from(d.min_samples).expect("in range")),
        }
    }
}

/// Active health checks.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthPolicy {
    /// Time between checks.
    pub interval: Period,
    /// A check unanswered this long failed.
    pub timeout: Period,
    /// Failed checks in a row that mark a server down.
    pub unhealthy_threshold: Count<1, 1_000>,
    /// Passed checks in a row that mark it up again.
    pub healthy_threshold: Count<1, 1_000>,
    /// Each interval is stretched or shrunk by up to this share, so checks do not align.
    pub jitter: Ratio,
    /// Failed calls in a row that mark a server down (0: calls never do; the default, since
    /// the breaker and outlier ejection judge calls and recover faster).
    pub passive_failures: Count<0, 10_000>,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        let d = HealthConfig::default();
        HealthPolicy {
            interval: Period::new(d.interval).expect("in range"),
            timeout: Period::new(d.timeout).expect("in range"),
            unhealthy_threshold: Count::of(d.unhealthy_threshold),
            healthy_threshold: Count::of(d.healthy_threshold),
            jitter: Ratio::of(d.jitter),
            passive_failures: Count::of(0),
        }
    }
}

/// Reconnecting: after a session ends (or a connect fails), the next connect waits a backoff
/// with decorrelated jitter from `base`, growing with each failure up to `cap`. A refused
/// connect costs little, and a server that comes back should be noticed within seconds, so the
/// cap is short.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReconnectPolicy {
    /// The first wait.
    pub base: Period,
    /// The longest wait.
    pub cap: Period,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy { base: Period::from_millis(100), cap: Period::from_secs(2) }
    }
}

/// The result cache.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CachePolicy {
    /// Serve results of trusted read-only tools from memory for this long; off when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Period>,
    /// Results kept at most (least recently used go first).
    pub capacity: Count<1, 1_000_000>,
}

impl Default for CachePolicy {
    fn default() -> Self {
        CachePolicy { ttl: None, capacity: Count::of(1_024) }
    }
}

/// Overrides for one exposed tool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ToolPolicy {
    /// One attempt's deadline, instead of the server's `call_timeout`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Period>,
    /// Attempts per call, instead of `retry.max_attempts`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<Count<1, 10>>,
    /// `false` never hedges this tool.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hedge: Option<bool>,
    /// `true`: the caller vouches that a second call has no further effect (the server
    /// deduplicates, e.g. by an idempotency key), so the client replays it like a tool a trusted
    /// server marks idempotent, whatever the server's annotations and trust.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotent: Option<bool>,
}

/// A route rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutePolicy {
    /// Which tools, by exposed name (a glob: `*`, `?`).
    pub tools: Pattern,
    /// Tags a server must all have.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Capabilities a server must all have advertised (`tools.listChanged`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
}
