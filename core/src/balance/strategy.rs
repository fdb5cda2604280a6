//! Strategies by name: how configs, scenarios and the CLI choose a balancer.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, RwLock};

use super::{
    Balancer, LeastOutstanding, Maglev, P2c, PeakEwma, Pending, Priority, Random, RoundRobin, SlowStart,
    SlowStartConfig, Weighted,
};

/// A balancing strategy, by name: one of the seven built in, or one a user registered with
/// [`register`]. Configs, scenarios, the CLI and the reports name strategies the same way
/// whichever kind they are; nothing is sized by the built-in list.
///
/// Registered strategies live in one process-wide registry, because any config or scenario
/// parsed in the process may name them. A strategy is a small copyable handle; its balancers
/// come from [`Strategy::build`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Strategy(u16);

/// Makes a fresh balancer of a registered strategy.
pub type Factory = Box<dyn Fn() -> Box<dyn Balancer + Send> + Send + Sync>;

/// The most strategies a process may register.
pub const MAX_REGISTERED: usize = 64;
/// The longest name a registered strategy may have.
pub const MAX_NAME: usize = 64;

struct Registered {
    name: &'static str,
    summary: Arc<str>,
    factory: Arc<Factory>,
}

/// The registered strategies, in registration order; [`Strategy`] `7 + i` is entry `i`.
static REGISTRY: RwLock<Vec<Registered>> = RwLock::new(Vec::new());

fn registry() -> std::sync::RwLockReadGuard<'static, Vec<Registered>> {
    // A panic while the lock was held cannot leave the list half-written: entries are pushed or
    // replaced whole.
    REGISTRY.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Why a strategy could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// Names are 1 to 64 characters of `a-z`, `0-9` and `-`, starting with a letter.
    #[error("`{0}` is not a strategy name: use 1 to 64 characters of a-z, 0-9 and -, starting with a letter")]
    InvalidName(String),
    /// A built-in strategy has this name.
    #[error("`{0}` is a built-in strategy; register yours under another name")]
    BuiltIn(String),
    /// The registry is full.
    #[error("at most {MAX_REGISTERED} strategies can be registered")]
    Full,
}

/// Registers a balancing strategy under `name`, with a one-line `summary` and a `factory` that
/// makes a fresh balancer for each replica set; returns its handle. Registering a name again
/// replaces its summary and factory (balancers already built keep theirs), so tests that each
/// register the same strategy can share a process.
pub fn register(
    name: &str,
    summary: &str,
    factory: impl Fn() -> Box<dyn Balancer + Send> + Send + Sync + 'static,
) -> Result<Strategy, RegisterError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return Err(RegisterError::InvalidName(name.to_owned()));
    }
    if Strategy::BUILT_IN.iter().any(|s| s.name() == name) {
        return Err(RegisterError::BuiltIn(name.to_owned()));
    }
    let mut list = REGISTRY.write().unwrap_or_else(std::sync::PoisonError::into_inner);
    let factory: Arc<Factory> = Arc::new(Box::new(factory));
    if let Some(i) = list.iter().position(|r| r.name == name) {
        list[i].summary = summary.into();
        list[i].factory = factory;
        return Ok(Strategy::registered(i));
    }
    if list.len() >= MAX_REGISTERED {
        return Err(RegisterError::Full);
    }
    // Bounded by MAX_REGISTERED, and a name is never leaked twice: a handle's name lives as long
    // as the process.
    let name: &'static str = Box::leak(name.to_owned().into_boxed_str());
    list.push(Registered { name, summary: summary.into(), factory });
    Ok(Strategy::registered(list.len() - 1))
}

impl Strategy {
    /// [`RoundRobin`].
    pub const ROUND_ROBIN: Strategy = Strategy(0);
    /// [`Weighted`].
    pub const WEIGHTED: Strategy = Strategy(1);
    /// [`LeastOutstanding`].
    pub const LEAST_OUTSTANDING: Strategy = Strategy(2);
    /// [`Random`].
    pub const RANDOM: Strategy = Strategy(3);
    /// [`P2c`] over [`Pending`].
    pub const P2C: Strategy = Strategy(4);
    /// [`P2c`] over [`PeakEwma`].
    pub const P2C_PEAK_EWMA: Strategy = Strategy(5);
    /// [`Maglev`].
    pub const MAGLEV: Strategy = Strategy(6);

    /// The built-in strategies, in a fixed order.
    pub const BUILT_IN: [Strategy; 7] = [
        Strategy::ROUND_ROBIN,
        Strategy::WEIGHTED,
        Strategy::LEAST_OUTSTANDING,
        Strategy::RANDOM,
        Strategy::P2C,
        Strategy::P2C_PEAK_EWMA,
        Strategy::MAGLEV,
    ];

    fn registered(i: usize) -> Strategy {
        // `i < MAX_REGISTERED`, so it fits.
        Strategy(u16::try_from(Strategy::BUILT_IN.len() + i).unwrap_or(u16::MAX))
    }

    /// The strategy's index among all strategies: built-in ones first, then registered ones in
    /// registration order.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    /// Every strategy: the built-in ones, then the registered ones in registration order.
    pub fn all() -> Vec<Strategy> {
        let registered = registry().len();
        Strategy::BUILT_IN.into_iter().chain((0..registered).map(Strategy::registered)).collect()
    }

    /// Whether it is one of the seven built in.
    pub fn is_built_in(self) -> bool {
        self.index() < Strategy::BUILT_IN.len()
    }

    /// The name used in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::ROUND_ROBIN => "round-robin",
            Strategy::WEIGHTED => "weighted",
            Strategy::LEAST_OUTSTANDING => "least-outstanding",
            Strategy::RANDOM => "random",
            Strategy::P2C => "p2c",
            Strategy::P2C_PEAK_EWMA => "p2c-peak-ewma",
            Strategy::MAGLEV => "maglev",
            other => registry().get(other.index() - Strategy::BUILT_IN.len()).map_or("unregistered", |r| r.name),
        }
    }

    /// One line on what it does.
    pub fn summary(self) -> Arc<str> {
        let built_in = match self {
            Strategy::ROUND_ROBIN => "each available server in turn",
            Strategy::WEIGHTED => "shares proportional to weight, exact from the first pick (EDF)",
            Strategy::LEAST_OUTSTANDING => "fewest calls in flight (exact scan)",
            Strategy::RANDOM => "uniform among available servers",
            Strategy::P2C => "best of two random choices by calls in flight",
            Strategy::P2C_PEAK_EWMA => "best of two random choices by Peak-EWMA latency x (in flight + 1)",
            Strategy::MAGLEV => "consistent hashing on the call's affinity key",
            other => {
                return registry()
                    .get(other.index() - Strategy::BUILT_IN.len())
                    .map_or_else(|| "".into(), |r| r.summary.clone());
            }
        };
        built_in.into()
    }

    /// A fresh balancer of this strategy.
    pub fn build(self) -> Box<dyn Balancer + Send> {
        match self {
            Strategy::ROUND_ROBIN => Box::new(RoundRobin::new()),
            Strategy::WEIGHTED => Box::new(Weighted::new()),
            Strategy::LEAST_OUTSTANDING => Box::new(LeastOutstanding::new()),
            Strategy::RANDOM => Box::new(Random::new()),
            Strategy::P2C => Box::new(P2c::new(Pending)),
            Strategy::P2C_PEAK_EWMA => Box::new(P2c::new(PeakEwma)),
            Strategy::MAGLEV => Box::new(Maglev::new()),
            other => {
                // The factory is called outside the lock, so that it may itself read the registry.
                let factory = registry().get(other.index() - Strategy::BUILT_IN.len()).map(|r| r.factory.clone());
                match factory {
                    Some(make) => make(),
                    // Handles come only from this registry, which never shrinks.
                    None => Box::new(RoundRobin::new()),
                }
            }
        }
    }
}

impl fmt::Debug for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A strategy name that names no strategy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownStrategy(pub String);

impl fmt::Display for UnknownStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let known: Vec<&str> = Strategy::all().into_iter().map(Strategy::name).collect();
        write!(f, "unknown balancer `{}`; expected one of: {}", self.0, known.join(", "))
    }
}

impl std::error::Error for UnknownStrategy {}

impl FromStr for Strategy {
    type Err = UnknownStrategy;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Strategy::all().into_iter().find(|k| k.name() == s).ok_or_else(|| UnknownStrategy(s.to_owned()))
    }
}

impl serde::Serialize for Strategy {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Strategy {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Name;
        impl serde::de::Visitor<'_> for Name {
            type Value = Strategy;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a balancer's name")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Strategy, E> {
                v.parse().map_err(|e: UnknownStrategy| E::custom(e))
            }
        }
        deserializer.deserialize_str(Name)
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
        for s in Strategy::all() {
            assert_eq!(s.name().parse::<Strategy>(), Ok(s));
        }
    }

    #[test]
    fn a_registered_strategy_is_named_parsed_listed_and_built_like_a_built_in_one() {
        let s = register("test-first-available", "the first available member", || {
            Box::new(crate::balance::from_fn(
                |view: &crate::FleetView<'_>, ctx: &super::super::PickContext<'_>, _: &mut crate::SeededRng| {
                    view.members().iter().copied().find(|&id| view.state(id).is_available() && !ctx.is_excluded(id))
                },
            ))
        })
        .expect("a valid name");
        assert!(!s.is_built_in());
        assert_eq!(s.name(), "test-first-available");
        assert_eq!("test-first-available".parse::<Strategy>(), Ok(s));
        assert!(Strategy::all().contains(&s));
        assert_eq!(&*s.summary(), "the first available member");
        let json = serde_json::to_string(&s).expect("serializes");
        assert_eq!(json, "\"test-first-available\"");
        assert_eq!(serde_json::from_str::<Strategy>(&json).expect("parses"), s);
        // Registering it again keeps its handle.
        assert_eq!(register("test-first-available", "again", || Box::new(RoundRobin::new())), Ok(s));
    }

    #[test]
    fn a_built_in_name_or_a_malformed_one_cannot_be_registered() {
        let make = || Box::new(RoundRobin::new()) as Box<dyn Balancer + Send>;
        assert_eq!(register("maglev", "", make), Err(RegisterError::BuiltIn("maglev".to_owned())));
        for bad in ["", "Upper", "9lives", "has space", &"x".repeat(MAX_NAME + 1)] {
            assert_eq!(register(bad, "", make), Err(RegisterError::InvalidName(bad.to_owned())), "{bad:?}");
        }
    }

    #[test]
    fn an_unknown_name_lists_the_known_ones() {
        let err = "fastest".parse::<Strategy>().unwrap_err().to_string();
        assert!(err.contains("`fastest`") && err.contains("p2c-peak-ewma"), "{err}");
    }
}
