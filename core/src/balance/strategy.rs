//! Strategies by name: how configs, scenarios and the CLI choose a balancer.

use std::fmt;
use std::str::FromStr;

use super::{
    Balancer, LeastOutstanding, Maglev, P2c, PeakEwma, Pending, Priority, Random, RoundRobin, SlowStart,
    SlowStartConfig, Weighted,
};

/// A built-in balancing strategy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// [`RoundRobin`].
    RoundRobin,
    /// [`Weighted`].
    Weighted,
    /// [`LeastOutstanding`].
    LeastOutstanding,
    /// [`Random`].
    Random,
    /// [`P2c`] over [`Pending`].
    P2c,
    /// [`P2c`] over [`PeakEwma`].
    P2cPeakEwma,
    /// [`Maglev`].
    Maglev,
}

impl Strategy {
    /// Every strategy, in a fixed order.
    pub const ALL: [Strategy; 7] = [
        Strategy::RoundRobin,
        Strategy::Weighted,
        Strategy::LeastOutstanding,
        Strategy::Random,
        Strategy::P2c,
        Strategy::P2cPeakEwma,
        Strategy::Maglev,
    ];

    /// The name used in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::RoundRobin => "round-robin",
            Strategy::Weighted => "weighted",
            Strategy::LeastOutstanding => "least-outstanding",
            Strategy::Random => "random",
            Strategy::P2c => "p2c",
            Strategy::P2cPeakEwma => "p2c-peak-ewma",
            Strategy::Maglev => "maglev",
        }
    }

    /// One line on what it does.
    pub fn summary(self) -> &'static str {
        match self {
            Strategy::RoundRobin => "each available server in turn",
            Strategy::Weighted => "shares proportional to weight, exact from the first pick (EDF)",
            Strategy::LeastOutstanding => "fewest calls in flight (exact scan)",
            Strategy::Random => "uniform among available servers",
            Strategy::P2c => "best of two random choices by calls in flight",
            Strategy::P2cPeakEwma => "best of two random choices by Peak-EWMA latency x (in flight + 1)",
            Strategy::Maglev => "consistent hashing on the call's affinity key",
        }
    }

    /// A fresh balancer of this strategy.
    pub fn build(self) -> Box<dyn Balancer + Send> {
        match self {
            Strategy::RoundRobin => Box::new(RoundRobin::new()),
            Strategy::Weighted => Box::new(Weighted::new()),
            Strategy::LeastOutstanding => Box::new(LeastOutstanding::new()),
            Strategy::Random => Box::new(Random::new()),
            Strategy::P2c => Box::new(P2c::new(Pending)),
            Strategy::P2cPeakEwma => Box::new(P2c::new(PeakEwma)),
            Strategy::Maglev => Box::new(Maglev::new()),
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A strategy name that names no strategy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown balancer `{0}`; expected one of: {list}", list = Strategy::ALL.map(Strategy::name).join(", "))]
pub struct UnknownStrategy(pub String);

impl FromStr for Strategy {
    type Err = UnknownStrategy;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Strategy::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| UnknownStrategy(s.to_owned()))
    }
}

/// A complete balancing policy: a strategy, optionally within priority tiers and with slow
/// start.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BalancerConfig {
    /// The strategy that picks within the chosen servers.
    pub strategy: Strategy,
    /// `Some(threshold)`: honour priority tiers with that panic threshold.
    pub priority_threshold: Option<f64>,
    /// `Some(config)`: ramp new and recovered servers up.
    pub slow_start: Option<SlowStartConfig>,
}

impl From<Strategy> for BalancerConfig {
    fn from(strategy: Strategy) -> Self {
        BalancerConfig { strategy, priority_threshold: None, slow_start: None }
    }
}

impl BalancerConfig {
    /// A fresh balancer for one replica set.
    pub fn build(&self) -> Box<dyn Balancer + Send> {
        let base = self.strategy.build();
        let tiered: Box<dyn Balancer + Send> = match self.priority_threshold {
            Some(t) => Box::new(Priority::with_threshold(base, t)),
            None => base,
        };
        match self.slow_start {
            Some(cfg) => Box::new(SlowStart::new(tiered, cfg)),
            None => tiered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_strategy_name_parses_back_to_itself() {
        for s in Strategy::ALL {
            assert_eq!(s.name().parse::<Strategy>(), Ok(s));
        }
    }

    #[test]
    fn an_unknown_name_lists_the_known_ones() {
        let err = "fastest".parse::<Strategy>().unwrap_err().to_string();
        assert!(err.contains("`fastest`") && err.contains("p2c-peak-ewma"), "{err}");
    }
}
