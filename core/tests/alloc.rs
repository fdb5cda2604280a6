//! The hot path does not allocate: a counting global allocator watches picks and records.
//!
//! Its own test binary, because a global allocator is process-wide, and one `#[test]`, because
//! the test harness's other threads would allocate concurrently and blur the count.
#![allow(unsafe_code)] // a `GlobalAlloc` impl is unsafe by definition

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use gauntlet_core::balance::{BalancerConfig, PickContext, SlowStartConfig, Strategy};
use gauntlet_core::breaker::{Breaker, BreakerConfig};
use gauntlet_core::health::{Health, HealthConfig};
use gauntlet_core::hedge::{HedgeConfig, Hedger};
use gauntlet_core::metrics::Metrics;
use gauntlet_core::outcome::{Classifier, Outcome};
use gauntlet_core::outlier::{OutlierConfig, OutlierDetector};
use gauntlet_core::retry::{BudgetConfig, CallKind, RetryBudget};
use gauntlet_core::route::{Catalog, CatalogConfig, RouteTable, ServerTools, ToolHints};
use gauntlet_core::{Fleet, LatencyConfig, SeededRng, ServerId, ServerSpec, Time};

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

struct Counting;

// SAFETY: forwards every call to `System` unchanged; only counts this thread's allocations.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn the_per_call_policy_path_allocates_nothing() {
    picks_and_records();
    breaker_budget_and_recorders();
}

/// Every balancer's pick, and the fleet's record of the call, once caches are warm.
fn picks_and_records() {
    let mut fleet = Fleet::new(LatencyConfig::default());
    let ids: Vec<_> = (0..1_000)
        .map(|i| fleet.add(&format!("s{i}"), ServerSpec { weight: 1 + i % 7, priority: i % 3 }).unwrap())
        .collect();
    let tried = [ids[3], ids[500]];
    let mut policies = Vec::new();
    for strategy in Strategy::ALL {
        policies.push(BalancerConfig::from(strategy));
        policies.push(BalancerConfig {
            priority_threshold: Some(0.7),
            slow_start: Some(SlowStartConfig::default()),
            ..strategy.into()
        });
    }
    for policy in policies {
        let mut balancer = policy.build();
        let mut rng = SeededRng::new(1);
        // Warm up: the first pick after an epoch change builds the caches.
        let warm = PickContext::at(Time::from_secs(1));
        balancer.pick(&fleet.view(&ids), &warm, &mut rng).unwrap();
        let before = allocations();
        for k in 0..10_000u64 {
            let now = Time::from_secs(1) + Duration::from_micros(k);
            let ctx = PickContext::at(now).with_affinity(k);
            let ctx = if k % 4 == 0 { ctx.excluding(&tried) } else { ctx };
            let id = balancer.pick(&fleet.view(&ids), &ctx, &mut rng).unwrap();
            fleet.begin(id);
            fleet.end(id, Duration::from_micros(200 + k % 300), now);
        }
        let spent = allocations() - before;
        assert_eq!(spent, 0, "{policy:?} allocated {spent} times in 10,000 picks and records");
    }
}

/// A route lookup, breaker permit + record through trips and recoveries, retry-budget
/// deposits and withdrawals, hedge decisions, outlier, health and metrics records.
fn breaker_budget_and_recorders() {
    let servers: Vec<_> = (0..4)
        .map(|i| ServerTools::new(ServerId(i), &format!("s{i}"), &["search", "fetch", "write"]).in_group("g"))
        .collect();
    let routes = RouteTable::new(&Catalog::build(&servers, &CatalogConfig::default()).unwrap(), &[]);
    let tools = ["g__search", "g__fetch", "g__write"];
    let classifier = Classifier::default();
    let mut breaker = Breaker::new(BreakerConfig::default(), Time::ZERO);
    let mut budget = RetryBudget::new(BudgetConfig::default());
    let mut hedger = Hedger::new(HedgeConfig::default());
    let mut outlier = OutlierDetector::new(OutlierConfig::default(), 4, Time::ZERO);
    let mut rng = SeededRng::new(2);
    let mut health = Health::new(HealthConfig::default(), Time::ZERO, &mut rng);
    let mut metrics = Metrics::new();
    for i in 0..4 {
        metrics.add_server(ServerId(i), &format!("s{i}"));
    }
    let kind = CallKind::Tool { hints: ToolHints { read_only: true, idempotent: true }, trusted: true };
    let outcomes = [Outcome::Success, Outcome::Timeout, Outcome::ToolError, Outcome::Transport, Outcome::Success];
    let before = allocations();
    for k in 0..50_000u64 {
        let now = Time::from_millis(k);
        let route = routes.route(tools[(k % 3) as usize]).expect("routed");
        assert_eq!(route.tiers[0].len(), 4);
        // Failures come in bursts so the breaker trips, opens, probes and closes again.
        let outcome = if (k / 500) % 3 == 1 { Outcome::Timeout } else { outcomes[(k % 5) as usize] };
        let verdict = classifier.classify(outcome);
        let latency = Duration::from_micros(100 + k % 5_000);
        if let Ok(permit) = breaker.permit(now) {
            let _ = breaker.record(permit, verdict, latency, now);
        }
        budget.deposit(now);
        let _ = budget.withdraw(now);
        hedger.observe(latency);
        let _ = hedger.decide(kind, latency, 0, now, now + Duration::from_secs(1), &mut budget);
        let server = ServerId((k % 4) as u32);
        let _ = outlier.record(server, verdict, now);
        let _ = health.record_call(verdict);
        metrics.record_pick(Strategy::P2cPeakEwma, 0);
        metrics.record_attempt(server, outcome, latency);
    }
    let spent = allocations() - before;
    assert_eq!(spent, 0, "the route lookup, breaker, budget and recorders allocated {spent} times in 50,000 calls");
}
