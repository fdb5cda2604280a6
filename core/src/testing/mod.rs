//! A conformance kit for balancers: the contract every built-in balancer is held to, ready to
//! run against your own.
//!
//! Two forms: [`check_balancer`], quick and seeded, here; and [`kit`] (the `kit` feature), on
//! proptest, which also changes the fleet between picks on one balancer, checks determinism,
//! and shrinks a failure to a minimal script it can persist as a regression.
//!
//! [`check_balancer`] builds random fleets from a seed (random sizes, availability, exclusions,
//! loads and latencies) and checks, pick after pick, that the balancer
//! - only returns members of the view,
//! - never returns an unavailable or excluded server,
//! - returns a server exactly when an eligible one exists.
//!
//! A violation names the seed and the case, so it replays exactly:
//!
//! ```
//! use gauntlet_core::balance::RoundRobin;
//! gauntlet_core::testing::check_balancer(RoundRobin::new, 7, 200).unwrap();
//! ```

use std::fmt;
use std::time::Duration;

#[cfg(feature = "bench")]
pub mod bench;
#[cfg(feature = "kit")]
pub mod kit;
pub mod load;

use crate::balance::{Balancer, PickContext};
use crate::fleet::{Fleet, LatencyConfig, ServerId, ServerSpec};
use crate::rng::SeededRng;
use crate::time::Time;

/// A broken rule, with what is needed to replay it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The seed given to [`check_balancer`].
    pub seed: u64,
    /// The failing case, counted from zero.
    pub case: u32,
    /// What went wrong.
    pub what: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seed {} case {}: {}", self.seed, self.case, self.what)
    }
}

impl std::error::Error for Violation {}

/// A random fleet for tests: `n` servers with random weights, priorities, availability, calls
/// in flight and latency samples. Returns the fleet and its members.
pub fn random_fleet(rng: &mut SeededRng, n: u32, p_unavailable: f64) -> (Fleet, Vec<ServerId>) {
    let mut fleet = Fleet::new(LatencyConfig::default());
    let mut ids = Vec::with_capacity(n as usize);
    let now = Time::from_secs(100);
    for i in 0..n {
        let spec = ServerSpec { weight: 1 + rng.below(10), priority: rng.below(3) };
        let id = fleet.add(&format!("server-{i}"), spec).expect("weights in range");
        for _ in 0..rng.below(4) {
            fleet.begin(id);
        }
        if rng.below(2) == 0 {
            fleet.begin(id);
            fleet.end(id, Duration::from_micros(u64::from(100 + rng.below(50_000))), now);
        }
        if rng.unit() < p_unavailable {
            match rng.below(3) {
                0 => fleet.set_healthy(id, false, now),
                1 => fleet.set_breaker_open(id, true, now),
                _ => fleet.set_ejected(id, true, now),
            }
        }
        ids.push(id);
    }
    (fleet, ids)
}

/// Runs `cases` random fleets through balancers from `make`; see the [module docs](self).
pub fn check_balancer<B: Balancer>(mut make: impl FnMut() -> B, seed: u64, cases: u32) -> Result<(), Violation> {
    let mut rng = SeededRng::new(seed);
    for case in 0..cases {
        let fail = |what: String| Violation { seed, case, what };
        let n = rng.below(40);
        let p_unavailable = [0.0, 0.3, 0.9, 1.0][rng.below(4) as usize];
        let (fleet, ids) = random_fleet(&mut rng, n, p_unavailable);
        let excluded: Vec<ServerId> = ids.iter().copied().filter(|_| rng.below(5) == 0).collect();
        let mut balancer = make();
        let view = fleet.view(&ids);
        for pick in 0..20u64 {
            let ctx = PickContext::at(Time::from_secs(100 + pick)).with_affinity(pick);
            let ctx = if pick % 2 == 0 { ctx } else { ctx.excluding(&excluded) };
            let eligible = ids.iter().any(|&id| fleet.state(id).is_available() && !ctx.is_excluded(id));
            match balancer.pick(&view, &ctx, &mut rng) {
                None if eligible => return Err(fail(format!("pick {pick}: none, though an eligible server exists"))),
                None => {}
                Some(id) if !ids.contains(&id) => return Err(fail(format!("pick {pick}: {id} is not a member"))),
                Some(id) if !fleet.state(id).is_available() => {
                    return Err(fail(format!("pick {pick}: {id} is unavailable")));
                }
                Some(id) if ctx.is_excluded(id) => return Err(fail(format!("pick {pick}: {id} is excluded"))),
                Some(_) if !eligible => return Err(fail(format!("pick {pick}: a server, though none is eligible"))),
                Some(_) => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::Strategy;

    #[test]
    fn every_built_in_strategy_passes_the_conformance_kit() {
        for s in Strategy::BUILT_IN {
            check_balancer(|| s.build(), 11, 300).unwrap_or_else(|v| panic!("{s}: {v}"));
        }
    }

    #[test]
    fn the_kit_catches_a_balancer_that_ignores_availability() {
        let careless =
            |view: &crate::FleetView<'_>, _: &PickContext<'_>, _: &mut SeededRng| view.members().first().copied();
        let err = check_balancer(|| crate::balance::from_fn(careless), 3, 300).unwrap_err();
        assert!(
            err.what.contains("unavailable") || err.what.contains("excluded") || err.what.contains("none is eligible"),
            "{err}"
        );
    }
}
