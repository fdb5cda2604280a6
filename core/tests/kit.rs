//! The public conformance kit, on proptest: every built-in balancer passes it, and it catches,
//! with a shrunk script, the bugs a user's balancer can have.

use std::sync::atomic::{AtomicU64, Ordering};

use gauntlet_core::balance::{Balancer, PickContext, Strategy};
use gauntlet_core::testing::kit::{Fairness, Kit, Step, check, check_fairness};
use gauntlet_core::{FleetView, SeededRng, ServerId};

#[test]
fn every_built_in_strategy_passes_the_kit() {
    for s in Strategy::BUILT_IN {
        check(|| s.build(), &Kit { cases: 128, ..Kit::default() }).unwrap_or_else(|f| panic!("{s}: {f}"));
    }
}

/// Caches the available members at its first pick and never looks again: the bug a balancer
/// that ignores the fleet's epoch has.
#[derive(Default)]
struct StaleCache {
    cached: Option<Vec<ServerId>>,
    next: usize,
}

impl Balancer for StaleCache {
    fn pick(&mut self, view: &FleetView<'_>, ctx: &PickContext<'_>, _: &mut SeededRng) -> Option<ServerId> {
        let cached = self.cached.get_or_insert_with(|| {
            view.members().iter().copied().filter(|&id| view.state(id).is_available()).collect()
        });
        let candidates: Vec<ServerId> = cached.iter().copied().filter(|&id| !ctx.is_excluded(id)).collect();
        self.next = self.next.wrapping_add(1);
        candidates.get(self.next % candidates.len().max(1)).copied()
    }
}

#[test]
fn a_balancer_with_a_stale_cache_is_caught_with_a_short_script() {
    for seed in 0..8 {
        let failure =
            check(StaleCache::default, &Kit { seed, ..Kit::default() }).expect_err("the stale cache is found");
        let script = failure.script.expect("a minimal script");
        let picks = script.steps.iter().filter(|s| matches!(s, Step::Pick { .. })).count();
        let changes = script.steps.len() - picks;
        // A stale cache needs a pick that fills it, a change, and a pick that trusts it.
        assert!(picks >= 2 && changes >= 1, "seed {seed}: {script:#?}");
        assert!(script.steps.len() <= 8, "seed {seed}: shrunk to a few steps: {script:#?}");
    }
}

/// Takes the first eligible member in an order drawn from a process-wide counter, not the
/// RNG it is given: the same script replays differently.
#[derive(Default)]
struct OwnEntropy;

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl Balancer for OwnEntropy {
    fn pick(&mut self, view: &FleetView<'_>, ctx: &PickContext<'_>, _: &mut SeededRng) -> Option<ServerId> {
        let eligible: Vec<ServerId> = view
            .members()
            .iter()
            .copied()
            .filter(|&id| view.state(id).is_available() && !ctx.is_excluded(id))
            .collect();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        eligible.get(usize::try_from(n).unwrap_or(0) % eligible.len().max(1)).copied()
    }
}

#[test]
fn a_balancer_that_ignores_the_seeded_rng_is_caught_as_not_deterministic() {
    let failure = check(|| OwnEntropy, &Kit::default()).expect_err("replays differ");
    assert!(failure.message.contains("other picks"), "{failure}");
}

#[test]
fn the_strategies_that_claim_a_share_of_picks_give_it() {
    let kit = Kit { cases: 64, ..Kit::default() };
    let uniform = Fairness::Uniform { tolerance: 0.03 };
    for s in [Strategy::ROUND_ROBIN, Strategy::RANDOM, Strategy::P2C] {
        check_fairness(|| s.build(), uniform, 20_000, &kit).unwrap_or_else(|f| panic!("{s}: {f}"));
    }
    check_fairness(|| Strategy::WEIGHTED.build(), Fairness::Weighted { tolerance: 0.01 }, 20_000, &kit)
        .unwrap_or_else(|f| panic!("weighted: {f}"));
}

#[test]
fn a_strategy_that_does_not_spread_by_weight_fails_the_weighted_claim() {
    let kit = Kit { cases: 64, ..Kit::default() };
    let failure = check_fairness(|| Strategy::ROUND_ROBIN.build(), Fairness::Weighted { tolerance: 0.02 }, 5_000, &kit)
        .expect_err("round-robin ignores weights");
    assert!(failure.message.contains("of the picks, expected"), "{failure}");
}
