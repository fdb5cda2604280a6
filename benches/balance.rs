//! `balance/<strategy>/<n>`: one pick, for every strategy, over n available servers.
//! `balance+record/<strategy>/<n>`: one pick plus recording its call (begin, end with a latency
//! sample), the per-call work a balancer adds to the hot path.
//!
//! Time advances by a microsecond per iteration so Peak-EWMA decays as it would in a run.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use gauntlet_core::balance::{Balancer, PickContext, Strategy};
use gauntlet_core::{Fleet, LatencyConfig, SeededRng, ServerId, ServerSpec, Time};

const SIZES: [u32; 4] = [3, 10, 100, 1_000];
const SEED: u64 = 0x6a09_e667_f3bc_c908;
const START: Time = Time::from_secs(60);

/// n servers with weights 1..=8, some calls in flight and a latency sample each.
fn fleet(n: u32) -> (Fleet, Vec<ServerId>) {
    let mut fleet = Fleet::new(LatencyConfig::default());
    let mut rng = SeededRng::new(SEED);
    let ids: Vec<_> = (0..n)
        .map(|i| fleet.add(&format!("server-{i}"), ServerSpec { weight: 1 + i % 8, priority: 0 }).unwrap())
        .collect();
    for &id in &ids {
        for _ in 0..rng.below(3) {
            fleet.begin(id);
        }
        fleet.begin(id);
        fleet.end(id, Duration::from_micros(u64::from(500 + rng.below(20_000))), START);
    }
    (fleet, ids)
}

/// Benches `step` for every strategy at every size, in groups named `{prefix}/{strategy}`.
/// `step` gets the fleet, its members, the balancer, the generator and a tick that advances
/// by one (a microsecond of simulated time) per iteration.
fn each_strategy(
    c: &mut Criterion,
    prefix: &str,
    mut step: impl FnMut(&mut Fleet, &[ServerId], &mut dyn Balancer, &mut SeededRng, u64) -> Option<ServerId>,
) {
    for strategy in Strategy::ALL {
        let mut group = c.benchmark_group(format!("{prefix}/{strategy}"));
        for n in SIZES {
            let (mut fleet, ids) = fleet(n);
            let mut balancer = strategy.build();
            let mut rng = SeededRng::new(SEED);
            let mut tick = 0u64;
            group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
                b.iter(|| {
                    tick += 1;
                    black_box(step(&mut fleet, &ids, balancer.as_mut(), &mut rng, tick))
                });
            });
        }
        group.finish();
    }
}

fn pick(c: &mut Criterion) {
    each_strategy(c, "balance", |fleet, ids, balancer, rng, tick| {
        let ctx = PickContext::at(START + Duration::from_micros(tick)).with_affinity(tick);
        balancer.pick(black_box(&fleet.view(ids)), &ctx, rng)
    });
}

fn pick_and_record(c: &mut Criterion) {
    each_strategy(c, "balance+record", |fleet, ids, balancer, rng, tick| {
        let now = START + Duration::from_micros(tick);
        let ctx = PickContext::at(now).with_affinity(tick);
        let id = balancer.pick(&fleet.view(ids), &ctx, rng).expect("every server is available");
        fleet.begin(id);
        fleet.end(id, Duration::from_micros(300 + tick % 700), now);
        Some(id)
    });
}

criterion_group!(benches, pick, pick_and_record);
criterion_main!(benches);
