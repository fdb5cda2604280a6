//! Metrics: what happened, per server, in counters and HDR latency histograms.
//!
//! Per server: attempts by [`Outcome`], retries and hedges sent to it, calls its breaker
//! refused, and an HDR histogram of attempt latency (2 significant digits, 1 µs to 1 h: about
//! 16 KiB a server, so a 1,000-server fleet costs ~16 MiB). Per client: picks by strategy, and
//! picks by route tier (tier 0 is a tool's own group; higher tiers are fallbacks, so their
//! counts are the fallback usage). Recording is O(1) and allocates nothing.
//!
//! [`Metrics::prometheus`] renders the Prometheus text exposition format (version 0.0.4):
//! counters, and latency as a summary with p50, p90, p99 and p99.9 plus `_sum` and `_count`.
//! Label values are escaped as the format requires; server names are configuration, never
//! secrets.

use std::fmt::Write;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::balance::Strategy;
use crate::fleet::ServerId;
use crate::latency;
use crate::outcome::Outcome;

/// Route tiers counted separately; deeper fallbacks count in the last one.
pub const MAX_TIERS: usize = 8;
/// The quantiles exported for latency.
pub const QUANTILES: [f64; 4] = [0.5, 0.9, 0.99, 0.999];

const OUTCOMES: [&str; 8] =
    ["success", "tool-error", "rpc-error", "timeout", "transport", "malformed", "cancelled", "rejected"];

fn outcome_index(o: Outcome) -> usize {
    match o {
        Outcome::Success => 0,
        Outcome::ToolError => 1,
        Outcome::RpcError(_) => 2,
        Outcome::Timeout => 3,
        Outcome::Transport => 4,
        Outcome::Malformed => 5,
        Outcome::Cancelled => 6,
        Outcome::Rejected => 7,
    }
}

/// One server's numbers.
#[derive(Clone, Debug)]
pub struct ServerMetrics {
    name: String,
    outcomes: [u64; OUTCOMES.len()],
    retries: u64,
    hedges: u64,
    breaker_rejections: u64,
    latency: Histogram<u64>,
    latency_sum: Duration,
}

impl ServerMetrics {
    /// The server's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Attempts that ended in `outcome` (any JSON-RPC error code counts as one kind).
    pub fn count(&self, outcome: Outcome) -> u64 {
        self.outcomes[outcome_index(outcome)]
    }
    /// Attempts of every outcome.
    pub fn attempts(&self) -> u64 {
        self.outcomes.iter().sum()
    }
    /// Retries sent to it.
    pub fn retries(&self) -> u64 {
        self.retries
    }
    /// Hedges sent to it.
    pub fn hedges(&self) -> u64 {
        self.hedges
    }
    /// Calls its breaker refused.
    pub fn breaker_rejections(&self) -> u64 {
        self.breaker_rejections
    }
    /// Its latency at `quantile`.
    pub fn latency(&self, quantile: f64) -> Option<Duration> {
        latency::quantile(&self.latency, quantile)
    }
}

/// A client's metrics.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    servers: Vec<ServerMetrics>,
    /// Picks by strategy, by [`Strategy::index`] (grown once, on a strategy's first pick).
    strategy_picks: Vec<u64>,
    tier_picks: [u64; MAX_TIERS],
}

impl Metrics {
    /// Metrics with no servers.
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Adds a server; its id must be the next dense id.
    pub fn add_server(&mut self, id: ServerId, name: &str) {
        assert_eq!(id.index(), self.servers.len(), "metrics servers are added in id order");
        self.servers.push(ServerMetrics {
            name: name.to_owned(),
            outcomes: [0; OUTCOMES.len()],
            retries: 0,
            hedges: 0,
            breaker_rejections: 0,
            latency: latency::histogram(2),
            latency_sum: Duration::ZERO,
        });
    }

    /// One server's numbers.
    pub fn server(&self, id: ServerId) -> &ServerMetrics {
        &self.servers[id.index()]
    }

    /// An attempt to `id` ended in `outcome` after `latency`.
    #[inline]
    pub fn record_attempt(&mut self, id: ServerId, outcome: Outcome, latency: Duration) {
        let s = &mut self.servers[id.index()];
        s.outcomes[outcome_index(outcome)] += 1;
        if !matches!(outcome, Outcome::Rejected | Outcome::Cancelled) {
            latency::record(&mut s.latency, latency);
            s.latency_sum = s.latency_sum.saturating_add(latency);
        }
    }

    /// A retry was sent to `id`.
    #[inline]
    pub fn record_retry(&mut self, id: ServerId) {
        self.servers[id.index()].retries += 1;
    }

    /// A hedge was sent to `id`.
    #[inline]
    pub fn record_hedge(&mut self, id: ServerId) {
        self.servers[id.index()].hedges += 1;
    }

    /// `id`'s breaker refused a call.
    #[inline]
    pub fn record_breaker_rejection(&mut self, id: ServerId) {
        self.servers[id.index()].breaker_rejections += 1;
    }

    /// A pick by `strategy` from route tier `tier` (0: the tool's own group).
    #[inline]
    pub fn record_pick(&mut self, strategy: Strategy, tier: usize) {
        let i = strategy.index();
        if self.strategy_picks.len() <= i {
            self.strategy_picks.resize(i + 1, 0);
        }
        self.strategy_picks[i] += 1;
        self.tier_picks[tier.min(MAX_TIERS - 1)] += 1;
    }

    /// Picks made by `strategy`.
    pub fn picks(&self, strategy: Strategy) -> u64 {
        self.strategy_picks.get(strategy.index()).copied().unwrap_or(0)
    }

    /// Picks from route tier `tier`; tiers above 0 are fallbacks.
    pub fn tier_picks(&self, tier: usize) -> u64 {
        self.tier_picks[tier.min(MAX_TIERS - 1)]
    }

    /// The Prometheus text exposition.
    pub fn prometheus(&self) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        };
        counter(&mut out, "gauntlet_attempts_total", "Attempts sent to each server, by outcome.");
        for s in &self.servers {
            for (i, outcome) in OUTCOMES.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "gauntlet_attempts_total{{server=\"{}\",outcome=\"{outcome}\"}} {}",
                    escape(&s.name),
                    s.outcomes[i]
                );
            }
        }
        for (name, help, get) in [
            (
                "gauntlet_retries_total",
                "Retries sent to each server.",
                (|s: &ServerMetrics| s.retries) as fn(&ServerMetrics) -> u64,
            ),
            ("gauntlet_hedges_total", "Hedged requests sent to each server.", |s| s.hedges),
            ("gauntlet_breaker_rejections_total", "Calls each server's circuit breaker refused.", |s| {
                s.breaker_rejections
            }),
        ] {
            counter(&mut out, name, help);
            for s in &self.servers {
                let _ = writeln!(out, "{name}{{server=\"{}\"}} {}", escape(&s.name), get(s));
            }
        }
        let _ = writeln!(
            out,
            "# HELP gauntlet_attempt_latency_seconds Attempt latency by server (HDR histogram, 2 significant digits).\n\
             # TYPE gauntlet_attempt_latency_seconds summary"
        );
        for s in &self.servers {
            let server = escape(&s.name);
            for q in QUANTILES {
                let v = s.latency(q).map_or(f64::NAN, |d| d.as_secs_f64());
                let _ = writeln!(
                    out,
                    "gauntlet_attempt_latency_seconds{{server=\"{server}\",quantile=\"{q}\"}} {}",
                    number(v)
                );
            }
            let _ = writeln!(
                out,
                "gauntlet_attempt_latency_seconds_sum{{server=\"{server}\"}} {}",
                number(s.latency_sum.as_secs_f64())
            );
            let _ = writeln!(out, "gauntlet_attempt_latency_seconds_count{{server=\"{server}\"}} {}", s.latency.len());
        }
        counter(&mut out, "gauntlet_picks_total", "Server picks by balancing strategy.");
        for s in Strategy::all() {
            let _ = writeln!(out, "gauntlet_picks_total{{strategy=\"{}\"}} {}", escape(s.name()), self.picks(s));
        }
        counter(&mut out, "gauntlet_tier_picks_total", "Server picks by route tier; tiers above 0 are fallbacks.");
        for (tier, n) in self.tier_picks.iter().enumerate() {
            let _ = writeln!(out, "gauntlet_tier_picks_total{{tier=\"{tier}\"}} {n}");
        }
        out
    }
}

/// A sample value as the format writes it.
fn number(v: f64) -> String {
    if v.is_nan() { "NaN".to_owned() } else { format!("{v}") }
}

/// Escapes a label value: backslash, double quote and line feed.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> Metrics {
        let mut m = Metrics::new();
        m.add_server(ServerId(0), "alpha");
        m.add_server(ServerId(1), "we\"ird\\name\n");
        for ms in 1..=100 {
            m.record_attempt(ServerId(0), Outcome::Success, Duration::from_millis(ms));
        }
        m.record_attempt(ServerId(1), Outcome::Timeout, Duration::from_secs(2));
        m.record_attempt(ServerId(1), Outcome::RpcError(-32603), Duration::from_millis(3));
        m.record_retry(ServerId(0));
        m.record_hedge(ServerId(0));
        m.record_breaker_rejection(ServerId(1));
        m.record_pick(Strategy::P2C_PEAK_EWMA, 0);
        m.record_pick(Strategy::P2C_PEAK_EWMA, 2);
        m
    }

    #[test]
    fn counters_and_percentiles_reflect_what_was_recorded() {
        let m = metrics();
        let a = m.server(ServerId(0));
        assert_eq!(a.count(Outcome::Success), 100);
        let p99 = a.latency(0.99).unwrap().as_millis();
        assert!((98..=100).contains(&p99), "{p99}");
        assert_eq!(m.server(ServerId(1)).attempts(), 2);
        assert_eq!(m.picks(Strategy::P2C_PEAK_EWMA), 2);
        assert_eq!(m.tier_picks(2), 1);
    }

    #[test]
    fn the_exposition_is_accepted_by_a_prometheus_parser() {
        let text = metrics().prometheus();
        let lines = text.lines().map(|l| Ok(l.to_owned()));
        let scrape = prometheus_parse::Scrape::parse(lines).expect("valid exposition");
        let sample_lines = text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).count();
        // A summary's quantile lines fold into one sample per server; every other line is one.
        let folded = 2 * (QUANTILES.len() - 1);
        assert_eq!(scrape.samples.len(), sample_lines - folded, "a line the parser did not take:\n{text}");
        let retries = scrape
            .samples
            .iter()
            .find(|s| s.metric == "gauntlet_retries_total" && s.labels.get("server") == Some("alpha"));
        assert!(matches!(retries.unwrap().value, prometheus_parse::Value::Counter(v) if v == 1.0));
        // The parser keeps label values as written: the escaped form, quote and all, in one label.
        let weird = scrape.samples.iter().find(|s| {
            s.metric == "gauntlet_breaker_rejections_total" && s.labels.get("server") == Some(r#"we\"ird\\name\n"#)
        });
        assert!(matches!(weird.unwrap().value, prometheus_parse::Value::Counter(v) if v == 1.0));
    }
}
