//! The failure-handling half of the per-call policy path, and the whole path:
//! - `breaker/permit_record`: one permit and one record on a closed breaker with a time window;
//! - `retry/budget`, ids `gauntlet` and `tower`: one deposit and one withdrawal, ours beside
//!   tower 0.5's `retry::budget::TpsBudget` with the same window, floor and ratio (the ratio
//!   from alternated rounds is printed after the group);
//! - `hedge/decide`: one latency observation and one hedge decision;
//! - `aggregate/majority/{3,5,7}`: a majority over n JSON answers, one of them dissenting;
//! - `catalog/build/<namespacing>` and `catalog/routes`: the federated catalog and its route
//!   table for 1,000 servers × 50 tools;
//! - `engine/call`: one call's decisions on the engine the client runs (`Engine::begin`,
//!   `pick`, `finish`: route, budget, poll, balancer, breaker permit, every record and the retry
//!   decision), 100 servers; then the tail of that cost from an HDR histogram of single calls,
//!   printed as p50 / p99 / p99.9 beside the cost of the timer alone.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use gauntlet_core::aggregate::{Answer, majority};
use gauntlet_core::breaker::{Breaker, BreakerConfig};
use gauntlet_core::hedge::{HedgeConfig, Hedger};
use gauntlet_core::outcome::{Outcome, Verdict};
use gauntlet_core::policy::{Engine, Policy, ServerEntry};
use gauntlet_core::retry::{BudgetConfig, CallKind, RetryBudget};
use gauntlet_core::route::{Catalog, CatalogConfig, Namespacing, RouteTable, ServerTools, ToolHints};
use gauntlet_core::{ServerId, Time};
use hdrhistogram::Histogram;
use serde_json::json;
use tower::retry::budget::{Budget, TpsBudget};

const ANSWER_COUNTS: [usize; 3] = [3, 5, 7];
/// One call in this many fails (never enough to trip the default breaker).
const FAILURE_EVERY: u64 = 16;
/// Alternated rounds for the ratio against tower, and operations per round.
const RATIO_ROUNDS: usize = 30;
const RATIO_OPS: u64 = 200_000;
const SEED: u64 = 0x510b_7a1e;

fn breaker(c: &mut Criterion) {
    let mut breaker = Breaker::new(BreakerConfig::default(), Time::ZERO);
    let mut tick = 0u64;
    c.bench_function("breaker/permit_record", |b| {
        b.iter(|| {
            tick += 1;
            let now = Time::from_micros(tick);
            let permit = breaker.permit(now).expect("closed");
            let verdict = if tick.is_multiple_of(FAILURE_EVERY) { Verdict::Failure } else { Verdict::Success };
            black_box(breaker.record(permit, verdict, Duration::from_micros(200), now))
        });
    });
}

fn budget(c: &mut Criterion) {
    let config = BudgetConfig::default();
    let mut ours = RetryBudget::new(config);
    let tower = tower_budget(&config);
    let mut tick = 0u64;
    let mut group = c.benchmark_group("retry/budget");
    group.bench_function("gauntlet", |b| {
        b.iter(|| {
            tick += 1;
            let now = Time::from_micros(tick);
            ours.deposit(now);
            black_box(ours.withdraw(now))
        });
    });
    group.bench_function("tower", |b| {
        b.iter(|| {
            tower.deposit();
            black_box(tower.withdraw())
        });
    });
    group.finish();

    let ratio = common::alternated(
        RATIO_ROUNDS,
        || {
            for _ in 0..RATIO_OPS {
                tick += 1;
                let now = Time::from_micros(tick);
                ours.deposit(now);
                black_box(ours.withdraw(now));
            }
        },
        || {
            for _ in 0..RATIO_OPS {
                tower.deposit();
                black_box(tower.withdraw());
            }
        },
    );
    common::report(&format!(
        "retry/budget: tower time / ours per deposit + withdrawal, median of {RATIO_ROUNDS} alternated rounds of {RATIO_OPS}: {ratio}"
    ));
}

/// Tower's budget with our defaults: the same window, floor per second and ratio.
fn tower_budget(config: &BudgetConfig) -> TpsBudget {
    TpsBudget::new(config.window, config.min_per_sec, config.ratio as f32)
}

fn hedge(c: &mut Criterion) {
    let mut hedger = Hedger::new(HedgeConfig::default());
    let mut budget = RetryBudget::new(BudgetConfig::default());
    let kind = CallKind::Tool { hints: ToolHints { read_only: true, idempotent: false }, trusted: true };
    let mut tick = 0u64;
    c.bench_function("hedge/decide", |b| {
        b.iter(|| {
            tick += 1;
            let now = Time::from_micros(tick);
            let latency = Duration::from_micros(100 + tick % 2_000);
            hedger.observe(latency);
            black_box(hedger.decide(kind, latency, 0, now, now + Duration::from_secs(1), &mut budget))
        });
    });
}

fn aggregate(c: &mut Criterion) {
    let mut group = c.benchmark_group("aggregate/majority");
    for n in ANSWER_COUNTS {
        let answers: Vec<Answer> = (0..n)
            .map(|i| Answer {
                server: ServerId(i as u32),
                latency: Duration::from_millis(i as u64),
                result: Ok(json!({
                    "content": [{"type": "text", "text": if i == 0 { "wrong" } else { "the answer" }}],
                    "isError": false,
                    "meta": {"took_ms": 12.0, "shard": 3}
                })),
            })
            .collect();
        group.bench_with_input(BenchmarkId::from_parameter(n), &answers, |b, answers| {
            b.iter(|| black_box(majority(black_box(answers)).map(|a| a.agreeing.len())));
        });
    }
    group.finish();
}

/// Servers, replicas per group and tools per server of the catalog benches.
const CATALOG_SERVERS: u32 = 1_000;
const CATALOG_REPLICAS: u32 = 4;
const CATALOG_TOOLS: usize = 50;

/// `servers` servers in groups of `replicas`, each listing the same `tools` tool names, so
/// every name is offered by every group (the collision-heavy case for namespacing).
fn federation(servers: u32, replicas: u32, tools: usize) -> Vec<ServerTools> {
    let names: Vec<String> = (0..tools).map(|t| format!("tool_{t:02}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    (0..servers)
        .map(|i| {
            ServerTools::new(ServerId(i), &format!("server-{i}"), &names).in_group(&format!("group-{}", i / replicas))
        })
        .collect()
}

fn catalog(c: &mut Criterion) {
    let servers = federation(CATALOG_SERVERS, CATALOG_REPLICAS, CATALOG_TOOLS);
    let mut group = c.benchmark_group("catalog");
    group.sample_size(10);
    for namespacing in [Namespacing::Always, Namespacing::OnCollision] {
        let config = CatalogConfig { namespacing, ..CatalogConfig::default() };
        let id = BenchmarkId::new("build", format!("{namespacing:?}").to_lowercase());
        group.bench_function(id, |b| b.iter(|| black_box(Catalog::build(&servers, &config).expect("builds").len())));
    }
    let catalog = Catalog::build(&servers, &CatalogConfig::default()).expect("builds");
    group.bench_function("routes", |b| b.iter(|| black_box(RouteTable::new(&catalog, &[]).routes().len())));
    group.finish();
}

/// The engine's fleet: 100 servers in groups of 4, 20 tools each, balanced by P2C + Peak-EWMA.
const ENGINE_SERVERS: u32 = 100;
const ENGINE_REPLICAS: u32 = 4;
const ENGINE_TOOLS: usize = 20;
/// Calls made before the tail is measured, and calls measured.
const TAIL_WARM_UP: u64 = 200_000;
const TAIL_CALLS: u64 = 2_000_000;
const START: Time = Time::from_secs(60);

/// The engine the client runs, with every server connected, and the exposed tools it routes.
/// Each call is one microsecond of simulated time after the previous; one in `FAILURE_EVERY`
/// times out, and latencies run from 0.2 ms to 2 ms.
struct Calls {
    engine: Engine,
    tools: Vec<String>,
    tick: u64,
}

impl Calls {
    fn new() -> Calls {
        let servers = federation(ENGINE_SERVERS, ENGINE_REPLICAS, ENGINE_TOOLS);
        let entries: Vec<ServerEntry> = servers
            .iter()
            .map(|s| ServerEntry { name: s.name.clone(), weight: 1, priority: 0, trusted: true })
            .collect();
        let policy = Policy { seed: SEED, ..Policy::default() };
        let mut engine = Engine::new(policy, &entries, None).expect("a valid policy");
        engine.set_tools(&servers).expect("builds");
        for i in 0..ENGINE_SERVERS {
            engine.link(ServerId(i), true, START);
        }
        let tools = engine.routes().map(|(r, _)| r.exposed.clone()).collect();
        Calls { engine, tools, tick: 0 }
    }

    /// One call: begin (route, budget), pick (poll, balancer, permit), finish (records, retry
    /// decision). Returns the server.
    fn call(&mut self) -> ServerId {
        self.tick += 1;
        let k = self.tick;
        let now = START + Duration::from_micros(k);
        let tool = &self.tools[(k % self.tools.len() as u64) as usize];
        let mut call = self.engine.begin(tool, None, None, now).expect("routed");
        let attempt = self.engine.pick(&mut call, now).expect("a server is available");
        let outcome = if k.is_multiple_of(FAILURE_EVERY) { Outcome::Timeout } else { Outcome::Success };
        let latency = Duration::from_micros(200 + k % 1_800);
        black_box(self.engine.finish(&mut call, attempt, outcome, true, now + latency));
        attempt.server
    }
}

fn engine(c: &mut Criterion) {
    let mut p = Calls::new();
    c.bench_function("engine/call", |b| b.iter(|| black_box(p.call())));

    // The tail: every call timed alone, and the timer alone beside it.
    let mut p = Calls::new();
    for _ in 0..TAIL_WARM_UP {
        p.call();
    }
    let histogram = || Histogram::<u64>::new_with_bounds(1, 10_000_000, 3).expect("static bounds");
    let (mut cost, mut timer) = (histogram(), histogram());
    let nanos = |t: Instant| u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX);
    for _ in 0..TAIL_CALLS {
        let t = Instant::now();
        black_box(p.call());
        cost.saturating_record(nanos(t));
        let t = Instant::now();
        timer.saturating_record(nanos(black_box(t)));
    }
    let q = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q);
    common::report(&format!(
        "engine/tail: one call's begin + pick + finish over {TAIL_CALLS} calls: p50 {} ns, p99 {} ns, p99.9 {} ns, max {} ns (the timer alone: p50 {} ns, p99 {} ns)",
        q(&cost, 0.5),
        q(&cost, 0.99),
        q(&cost, 0.999),
        cost.max(),
        q(&timer, 0.5),
        q(&timer, 0.99),
    ));
}

criterion_group!(benches, breaker, budget, hedge, aggregate, catalog, engine);
criterion_main!(benches);
