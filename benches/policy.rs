//! The failure-handling half of the per-call policy path:
//! - `breaker/permit_record`: one permit and one record on a closed breaker with a time window;
//! - `retry/budget`: one deposit and one withdrawal;
//! - `hedge/decide`: one latency observation and one hedge decision;
//! - `aggregate/majority/{3,5,7}`: a majority over n JSON answers, one of them dissenting.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use gauntlet_core::aggregate::{Answer, majority};
use gauntlet_core::breaker::{Breaker, BreakerConfig};
use gauntlet_core::hedge::{HedgeConfig, Hedger};
use gauntlet_core::outcome::Verdict;
use gauntlet_core::retry::{BudgetConfig, CallKind, RetryBudget};
use gauntlet_core::route::ToolHints;
use gauntlet_core::{ServerId, Time};
use serde_json::json;

const ANSWER_COUNTS: [usize; 3] = [3, 5, 7];
/// One call in this many fails (never enough to trip the default breaker).
const FAILURE_EVERY: u64 = 16;

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
    let mut budget = RetryBudget::new(BudgetConfig::default());
    let mut tick = 0u64;
    c.bench_function("retry/budget", |b| {
        b.iter(|| {
            tick += 1;
            let now = Time::from_micros(tick);
            budget.deposit(now);
            black_box(budget.withdraw(now))
        });
    });
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

criterion_group!(benches, breaker, budget, hedge, aggregate);
criterion_main!(benches);
