//! Bench any balancer beside the built-in ones (the `bench` feature, on criterion): the same
//! fleets, loads and steps ([`load`](super::load)) as Gauntlet's own `balance` bench, which uses
//! this module. [`bench_strategies`] gives the groups `balance/<strategy>` (one pick) and
//! `balance+record/<strategy>` (a pick and its call's record: begin, end with a latency sample),
//! ids `<load>/<n>`, at n = 3, 10, 100, 1,000 available servers under `uniform` and `skewed`
//! load. The ratio of a baseline's time over yours from alternated rounds is
//! `gauntlet::bench::alternated_ratio` (it reads the wall clock, which the core never does).
//!
//! ```no_run
//! use criterion::Criterion;
//! use gauntlet_core::balance::Strategy;
//! use gauntlet_core::testing::bench::bench_strategies;
//!
//! fn benches(c: &mut Criterion, mine: Strategy) {
//!     bench_strategies(c, &[mine, Strategy::P2C_PEAK_EWMA]);
//! }
//! ```

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion};

use super::load::{Load, SEED, SIZES, START, fleet, pick_and_record};
use crate::balance::{Balancer, PickContext, Strategy};
use crate::fleet::{Fleet, ServerId};
use crate::rng::SeededRng;

/// Benches `step` for each of `strategies`, load and size, in groups named
/// `{prefix}/{strategy}`. `step` gets the fleet, its members, the balancer, the generator and a
/// tick that advances by one (a microsecond of simulated time) per iteration.
pub fn each_strategy(
    c: &mut Criterion,
    prefix: &str,
    strategies: &[Strategy],
    mut step: impl FnMut(&mut Fleet, &[ServerId], &mut dyn Balancer, &mut SeededRng, u64),
) {
    for &strategy in strategies {
        let mut group = c.benchmark_group(format!("{prefix}/{strategy}"));
        group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(2));
        for load in Load::ALL {
            for n in SIZES {
                let (mut fleet, ids) = fleet(n, load);
                let mut balancer = strategy.build();
                let mut rng = SeededRng::new(SEED);
                let mut tick = 0u64;
                group.bench_function(BenchmarkId::new(load.name(), n), |b| {
                    b.iter(|| {
                        tick += 1;
                        step(&mut fleet, &ids, balancer.as_mut(), &mut rng, tick);
                    });
                });
            }
        }
        group.finish();
    }
}

/// The `balance` and `balance+record` groups for each of `strategies` (built-in or registered).
pub fn bench_strategies(c: &mut Criterion, strategies: &[Strategy]) {
    each_strategy(c, "balance", strategies, |fleet, ids, balancer, rng, tick| {
        let ctx = PickContext::at(START + Duration::from_micros(tick)).with_affinity(tick);
        black_box(balancer.pick(black_box(&fleet.view(ids)), &ctx, rng));
    });
    each_strategy(c, "balance+record", strategies, pick_and_record);
}
