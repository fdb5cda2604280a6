//! `sim/throughput`: simulated tool calls per wall-clock second through Gauntlet's simulator
//! (the real client, recorder, checkers, digest), next to raw rmcp over turmoil with the same
//! fleet (`gauntlet_sim::baseline`), in the same run. Runs are alternated and the ratio of
//! their throughputs is reported; the targets are ≥ 70 % of raw and ≥ 25,000 calls/s.
//!
//! The tick is 1 ms: it resolves millisecond service times. A longer tick runs faster (idle
//! ticks cost wall time) but rounds latencies up to the tick.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use gauntlet_sim::{Arrivals, Scenario, ServerGroup, ServiceTime, SimTool, Workload, baseline, run};

const SERVERS: u32 = 5;
const CALLERS: u32 = 16;
const SIM_SECONDS: u64 = 5;
const SEED: u64 = 0x5eed;
const ROUNDS: usize = 6;

fn scenario() -> Scenario {
    let fleet =
        ServerGroup::new("g", SERVERS, vec![SimTool::safe("lookup")], ServiceTime::Constant(Duration::from_millis(1)));
    let workload = Workload {
        arrivals: Arrivals::Callers(CALLERS),
        mix: vec![("g__lookup".to_owned(), 1)],
        deadline: Duration::from_secs(2),
        aggregate: None,
        think: Duration::ZERO,
        affinity: None,
    };
    let mut s = Scenario::new("throughput", SEED, Duration::from_secs(SIM_SECONDS), vec![fleet], workload);
    s.policy.balancer = gauntlet_core::balance::Strategy::ROUND_ROBIN;
    s
}

fn throughput(c: &mut Criterion) {
    let s = scenario();
    let mut group = c.benchmark_group("sim/throughput");
    group.sample_size(10);
    group.bench_function("gauntlet", |b| b.iter(|| black_box(run(&s).expect("runs").ok())));
    group.bench_function("raw-rmcp", |b| b.iter(|| black_box(baseline::run_raw(&s).expect("runs"))));
    group.finish();

    let (mut ours, mut raw) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let n = run(&s).expect("runs").ok() as f64;
        ours.push(n / t.elapsed().as_secs_f64());
        let t = Instant::now();
        let n = baseline::run_raw(&s).expect("runs") as f64;
        raw.push(n / t.elapsed().as_secs_f64());
    }
    let (ours, raw) = (common::Spread::of(ours).median, common::Spread::of(raw).median);
    common::report(&format!(
        "sim/throughput: gauntlet {ours:.0} calls/s, raw rmcp over turmoil {raw:.0} calls/s, ratio {:.2} ({SERVERS} servers, {CALLERS} callers, 1 ms tick, median of {ROUNDS} alternated runs)",
        ours / raw
    ));
}

criterion_group!(benches, throughput);
criterion_main!(benches);
