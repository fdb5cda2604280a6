//! `least-latency` beside the built-in strategies it competes with, through the same helper
//! Gauntlet benches its own with: `balance/<strategy>` and `balance+record/<strategy>` at
//! n = 3, 10, 100, 1,000 under uniform and skewed load; then, from alternated rounds, the time
//! of P2C + Peak-EWMA and of round-robin over ours at n = 10 and 1,000.

use std::io::Write;

use criterion::{Criterion, criterion_group, criterion_main};
use gauntlet::bench::alternated_ratio;
use gauntlet_core::balance::Strategy;
use gauntlet_core::testing::bench::bench_strategies;
use gauntlet_core::testing::load::Load;

fn strategies(c: &mut Criterion) {
    let mine = custom_balancer::registry().install().expect("a valid registry")[0];
    bench_strategies(c, &[mine, Strategy::P2C_PEAK_EWMA, Strategy::ROUND_ROBIN]);
    for baseline in [Strategy::P2C_PEAK_EWMA, Strategy::ROUND_ROBIN] {
        for n in [10, 1_000] {
            let ratio = alternated_ratio(mine, baseline, n, Load::Skewed, 20, 20_000);
            let _ = writeln!(
                std::io::stderr(),
                "least-latency vs {baseline} (skewed, n = {n}): {baseline} time / ours = {ratio}"
            );
        }
    }
}

criterion_group!(benches, strategies);
criterion_main!(benches);
