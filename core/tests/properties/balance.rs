use std::collections::BTreeMap;
use std::time::Duration;

use gauntlet_core::balance::{
    Balancer, BalancerConfig, Load, Maglev, P2c, PeakEwma, Pending, PickContext, Priority, RoundRobin, SlowStart,
    SlowStartConfig, Strategy, Weighted, sample_pair,
};
use gauntlet_core::{Fleet, LatencyConfig, SeededRng, ServerId, ServerSpec, Time};
use proptest::prelude::*;

use crate::fleets::{NOW, build, fleet_cases};

/// Every built-in policy: each strategy alone, within priority tiers, and with slow start.
fn all_policies() -> Vec<BalancerConfig> {
    let mut all = Vec::new();
    for strategy in Strategy::BUILT_IN {
        all.push(BalancerConfig::from(strategy));
        all.push(BalancerConfig { priority_threshold: Some(0.7), ..strategy.into() });
        all.push(BalancerConfig { slow_start: Some(SlowStartConfig::default()), ..strategy.into() });
    }
    all
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn no_balancer_ever_picks_an_unavailable_or_excluded_server(cases in fleet_cases(24), seed: u64) {
        let (fleet, ids, excluded) = build(&cases);
        for policy in all_policies() {
            let mut b = policy.build();
            let mut rng = SeededRng::new(seed);
            for k in 0..8u64 {
                let ctx = PickContext::at(NOW).with_affinity(k);
                let ctx = if k % 2 == 0 { ctx } else { ctx.excluding(&excluded) };
                if let Some(id) = b.pick(&fleet.view(&ids), &ctx, &mut rng) {
                    prop_assert!(ids.contains(&id), "{policy:?} picked a non-member");
                    prop_assert!(fleet.state(id).is_available(), "{policy:?} picked unavailable {id}");
                    prop_assert!(!ctx.is_excluded(id), "{policy:?} picked excluded {id}");
                }
            }
        }
    }

    #[test]
    fn a_pick_exists_if_and_only_if_a_candidate_exists(cases in fleet_cases(24), seed: u64) {
        let (fleet, ids, excluded) = build(&cases);
        let any_up = ids.iter().any(|&id| fleet.state(id).is_available());
        let any_eligible = ids.iter().any(|&id| fleet.state(id).is_available() && !excluded.contains(&id));
        for policy in all_policies() {
            let mut b = policy.build();
            let mut rng = SeededRng::new(seed);
            let plain = b.pick(&fleet.view(&ids), &PickContext::at(NOW), &mut rng);
            prop_assert_eq!(plain.is_some(), any_up, "{:?}", policy);
            let avoiding = b.pick(&fleet.view(&ids), &PickContext::at(NOW).excluding(&excluded), &mut rng);
            prop_assert_eq!(avoiding.is_some(), any_eligible, "{:?}", policy);
        }
    }

    /// Tolerance: the EDF bound `|count − k·w/W| < 1 + n·w/W` (module docs of `weighted`), at
    /// every prefix k of 10,000 picks, for weights 1..=10.
    #[test]
    fn weighted_shares_stay_within_the_edf_bound_at_every_prefix_of_10000_picks(
        weights in prop::collection::vec(1u32..=10, 1..20), seed: u64,
    ) {
        let mut fleet = Fleet::new(LatencyConfig::default());
        let ids: Vec<_> = weights.iter().enumerate()
            .map(|(i, &w)| fleet.add(&format!("s{i}"), ServerSpec { weight: w, priority: 0 }).unwrap()).collect();
        let total: u32 = weights.iter().sum();
        let n = weights.len() as f64;
        let mut b = Weighted::new();
        let mut rng = SeededRng::new(seed);
        let mut counts = vec![0u32; ids.len()];
        for k in 1..=10_000u32 {
            let id = b.pick(&fleet.view(&ids), &PickContext::at(NOW), &mut rng).unwrap();
            counts[id.index()] += 1;
            for (i, &w) in weights.iter().enumerate() {
                let share = f64::from(w) / f64::from(total);
                let dev = (f64::from(counts[i]) - f64::from(k) * share).abs();
                prop_assert!(dev < 1.0 + n * share + 1e-6, "server {i} (w={w}) at pick {k}: {} vs {:.2}", counts[i], f64::from(k) * share);
            }
        }
    }

    /// Tolerance: every available server gets ⌊N/m⌋ or ⌈N/m⌉ of N = 10,000 picks.
    #[test]
    fn round_robin_gives_every_available_server_an_equal_share_within_one_pick(cases in fleet_cases(30)) {
        let (fleet, ids, _) = build(&cases);
        let up: Vec<_> = ids.iter().copied().filter(|&id| fleet.state(id).is_available()).collect();
        prop_assume!(!up.is_empty());
        let mut b = RoundRobin::new();
        let mut rng = SeededRng::new(0);
        let mut counts = BTreeMap::new();
        for _ in 0..10_000 {
            *counts.entry(b.pick(&fleet.view(&ids), &PickContext::at(NOW), &mut rng).unwrap()).or_insert(0u32) += 1;
        }
        let fair = 10_000 / up.len() as u32;
        prop_assert_eq!(counts.len(), up.len());
        prop_assert!(counts.values().all(|&c| c == fair || c == fair + 1), "{counts:?}");
    }

    #[test]
    fn p2c_never_picks_the_strictly_worse_of_its_two_samples(cases in fleet_cases(24), seed: u64, at_ms in 0u64..60_000) {
        let (fleet, ids, _) = build(&cases);
        let up: Vec<_> = ids.iter().copied().filter(|&id| fleet.state(id).is_available()).collect();
        prop_assume!(!up.is_empty());
        let now = NOW + Duration::from_millis(at_ms);
        check_p2c(&fleet, &ids, &up, P2c::new(Pending), &Pending, seed, now)?;
        check_p2c(&fleet, &ids, &up, P2c::new(PeakEwma), &PeakEwma, seed, now)?;
    }

    #[test]
    fn priority_never_uses_a_lower_tier_while_a_higher_one_is_above_its_panic_threshold(
        cases in fleet_cases(30), seed: u64, threshold in 0.0f64..=1.0,
    ) {
        let (fleet, ids, _) = build(&cases);
        let mut b = Priority::with_threshold(gauntlet_core::balance::Random::new(), threshold);
        let mut rng = SeededRng::new(seed);
        // Tiers, best first, with their available fraction.
        let mut tiers: BTreeMap<std::cmp::Reverse<u32>, (usize, usize)> = BTreeMap::new();
        for &id in &ids {
            let t = tiers.entry(std::cmp::Reverse(fleet.state(id).priority())).or_default();
            t.0 += usize::from(fleet.state(id).is_available());
            t.1 += 1;
        }
        // The lowest priority still allowed: stop after the first tier healthy enough.
        let mut floor = None;
        for (&std::cmp::Reverse(p), &(up, all)) in &tiers {
            floor = Some(p);
            if up > 0 && up as f64 >= threshold * all as f64 {
                break;
            }
        }
        for _ in 0..50 {
            if let Some(id) = b.pick(&fleet.view(&ids), &PickContext::at(NOW), &mut rng) {
                prop_assert!(fleet.state(id).priority() >= floor.unwrap(), "picked tier {} below {floor:?}", fleet.state(id).priority());
            }
        }
    }

    #[test]
    fn maglev_keeps_every_key_on_its_server_while_the_fleet_is_unchanged(n in 1u32..50, keys in prop::collection::vec(any::<u64>(), 1..200), seed: u64) {
        let mut fleet = Fleet::new(LatencyConfig::default());
        let ids: Vec<_> = (0..n).map(|i| fleet.add(&format!("s{i}"), ServerSpec::default()).unwrap()).collect();
        let mut a = Maglev::with_table_size(4_099);
        let mut rng = SeededRng::new(seed);
        let first: Vec<_> = keys.iter().map(|&k| a.pick(&fleet.view(&ids), &PickContext::at(NOW).with_affinity(k), &mut rng)).collect();
        // A fresh table, and the same one again later, agree.
        let mut b = Maglev::with_table_size(4_099);
        for (i, &k) in keys.iter().enumerate() {
            let ctx = PickContext::at(NOW + Duration::from_secs(5)).with_affinity(k);
            prop_assert_eq!(a.pick(&fleet.view(&ids), &ctx, &mut rng), first[i]);
            prop_assert_eq!(b.pick(&fleet.view(&ids), &ctx, &mut rng), first[i]);
        }
    }

    #[test]
    fn slow_start_ramps_monotonically(window_ms in 1u64..100_000, aggression in 0.25f64..4.0, min_share in 0.01f64..1.0,
                                      mut a_ms in 0u64..200_000, mut b_ms in 0u64..200_000) {
        let cfg = SlowStartConfig { window: Duration::from_millis(window_ms), aggression, min_share };
        if a_ms > b_ms { std::mem::swap(&mut a_ms, &mut b_ms); }
        let since = Time::from_secs(10);
        let (fa, fb) = (cfg.factor(since, since + Duration::from_millis(a_ms)), cfg.factor(since, since + Duration::from_millis(b_ms)));
        prop_assert!(fa <= fb, "factor fell from {fa} to {fb}");
        prop_assert!((min_share..=1.0).contains(&fa));
        prop_assert_eq!(cfg.factor(since, since + Duration::from_millis(window_ms)), 1.0);
    }
}

fn check_p2c<L: Load>(
    fleet: &Fleet,
    ids: &[ServerId],
    up: &[ServerId],
    mut balancer: P2c<L>,
    load: &L,
    seed: u64,
    now: Time,
) -> Result<(), TestCaseError> {
    let mut rng = SeededRng::new(seed);
    for _ in 0..20 {
        let mut replay = rng.clone();
        let picked = balancer.pick(&fleet.view(ids), &PickContext::at(now), &mut rng).unwrap();
        let (a, b) = sample_pair(up.len() as u32, &mut replay);
        let a = up[a as usize];
        let Some(b) = b.map(|b| up[b as usize]) else {
            prop_assert_eq!(picked, a);
            continue;
        };
        prop_assert!(picked == a || picked == b, "picked {picked}, sampled {a} and {b}");
        let other = if picked == a { b } else { a };
        let view = fleet.view(ids);
        prop_assert!(
            load.load(&view, picked, now) <= load.load(&view, other, now),
            "picked the strictly worse sample {picked} over {other}"
        );
    }
    Ok(())
}

/// Maglev: removing one of n servers moves that server's keys, and hardly any others.
/// Tolerance: at most 1/n + 2 % of all keys move (the Maglev paper measures a few percent of
/// extra disruption at M ≈ 100·n; here M = 65,537, n ≤ 100).
#[test]
fn maglev_moves_only_about_one_nth_of_keys_when_one_of_n_servers_leaves() {
    const KEYS: u64 = 20_000;
    for n in [5u32, 20, 100] {
        let mut fleet = Fleet::new(LatencyConfig::default());
        let ids: Vec<_> = (0..n).map(|i| fleet.add(&format!("replica-{i}"), ServerSpec::default()).unwrap()).collect();
        let mut b = Maglev::new();
        let mut rng = SeededRng::new(1);
        let pick = |b: &mut Maglev, fleet: &Fleet, rng: &mut SeededRng, k: u64| {
            b.pick(&fleet.view(&ids), &PickContext::at(NOW).with_affinity(k.wrapping_mul(0x9e37_79b9_7f4a_7c15)), rng)
                .unwrap()
        };
        let before: Vec<_> = (0..KEYS).map(|k| pick(&mut b, &fleet, &mut rng, k)).collect();
        let leaving = ids[n as usize / 2];
        fleet.retire(leaving, NOW);
        let after: Vec<_> = (0..KEYS).map(|k| pick(&mut b, &fleet, &mut rng, k)).collect();
        let moved = before.iter().zip(&after).filter(|(x, y)| x != y).count() as f64 / KEYS as f64;
        let owned = before.iter().filter(|&&s| s == leaving).count() as f64 / KEYS as f64;
        assert!(after.iter().all(|&s| s != leaving));
        assert!(moved >= owned, "n={n}: the leaving server's keys must move");
        assert!(moved <= 1.0 / f64::from(n) + 0.02, "n={n}: {:.2} % of keys moved", moved * 100.0);
    }
}

/// A server that joins mid-run gets a growing share of picks as its ramp proceeds.
#[test]
fn slow_start_grows_a_joining_servers_share_over_its_window() {
    let mut fleet = Fleet::new(LatencyConfig::default());
    let mut ids: Vec<_> = (0..4).map(|i| fleet.add(&format!("old-{i}"), ServerSpec::default()).unwrap()).collect();
    let joined = Time::from_secs(100);
    let new = fleet.join("new", ServerSpec::default(), joined).unwrap();
    ids.push(new);
    let config = SlowStartConfig { window: Duration::from_secs(30), aggression: 1.0, min_share: 0.05 };
    let mut b = SlowStart::new(RoundRobin::new(), config);
    let mut rng = SeededRng::new(5);
    let mut shares = Vec::new();
    for at in [1u64, 10, 20, 29, 40] {
        let now = joined + Duration::from_secs(at);
        let hits =
            (0..20_000).filter(|_| b.pick(&fleet.view(&ids), &PickContext::at(now), &mut rng) == Some(new)).count();
        shares.push(hits as f64 / 20_000.0);
    }
    // Full share is 1/5; the ramp is linear, so at 1 s it is near the floor.
    assert!(shares[0] < 0.05, "{shares:?}");
    assert!(shares.windows(2).all(|w| w[0] < w[1] + 0.01), "not increasing: {shares:?}");
    assert!((shares[4] - 0.2).abs() < 0.01, "{shares:?}");
}
