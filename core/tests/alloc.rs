//! The hot path does not allocate: a counting global allocator watches every balancer's picks
//! and the engine's whole per-call path.
//!
//! Its own test binary, because a global allocator is process-wide, and one `#[test]`, because
//! the test harness's other threads would allocate concurrently and blur the count.
#![allow(unsafe_code)] // a `GlobalAlloc` impl is unsafe by definition

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use gauntlet_core::balance::{BalancerConfig, PickContext, SlowStartConfig, Strategy};
use gauntlet_core::outcome::Outcome;
use gauntlet_core::policy::{Engine, Hedge, HedgePolicy, Next, Policy, ServerEntry};
use gauntlet_core::route::{ServerTools, ToolHints, ToolInfo};
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
    the_engines_call_path();
}

/// Every balancer's pick, and the fleet's record of the call, once caches are warm.
fn picks_and_records() {
    let mut fleet = Fleet::new(LatencyConfig::default());
    let ids: Vec<_> = (0..1_000)
        .map(|i| fleet.add(&format!("s{i}"), ServerSpec { weight: 1 + i % 7, priority: i % 3 }).unwrap())
        .collect();
    let tried = [ids[3], ids[500]];
    let mut policies = Vec::new();
    for strategy in Strategy::BUILT_IN {
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

/// The engine's whole per-call path, as the client runs it: begin (route lookup, budget
/// deposit), pick (poll, balancer, breaker permit), hedge decisions, finish (fleet, breaker,
/// outlier, health, metrics, hedger records, then the retry decision) and cancel, through
/// breaker trips and recoveries.
fn the_engines_call_path() {
    let servers: Vec<ServerEntry> =
        (0..100).map(|i| ServerEntry { name: format!("s{i}"), weight: 1, priority: 0, trusted: true }).collect();
    let policy = Policy {
        hedge: Some(HedgePolicy { after: Some("2ms".parse().unwrap()), ..HedgePolicy::default() }),
        ..Policy::default()
    };
    let mut engine = Engine::new(policy, &servers, None).unwrap();
    let tools: Vec<ServerTools> = (0..100)
        .map(|i| {
            let mut s = ServerTools::new(ServerId(i), &format!("s{i}"), &[]).in_group("g");
            s.tools = ["search", "fetch", "write"]
                .iter()
                .map(|t| ToolInfo { name: (*t).to_owned(), hints: ToolHints { read_only: true, idempotent: true } })
                .collect();
            s
        })
        .collect();
    engine.set_tools(&tools).unwrap();
    for i in 0..100 {
        engine.link(ServerId(i), true, Time::ZERO);
    }
    let names = ["g__search", "g__fetch", "g__write"];
    let outcomes = [Outcome::Success, Outcome::Timeout, Outcome::ToolError, Outcome::Transport, Outcome::Success];
    // Warm the balancers' caches.
    for k in 0..100u64 {
        let now = Time::from_millis(k);
        let mut call = engine.begin(names[(k % 3) as usize], None, None, now).unwrap();
        let a = engine.pick(&mut call, now).unwrap();
        let _ = engine.finish(&mut call, a, Outcome::Success, true, now + Duration::from_millis(1));
    }
    let before = allocations();
    for k in 100..50_000u64 {
        let now = Time::from_millis(k);
        let mut call = engine.begin(names[(k % 3) as usize], None, Some(k), now).unwrap();
        // Failures come in bursts so breakers trip, open, probe and close again.
        let outcome = if (k / 500) % 3 == 1 { Outcome::Timeout } else { outcomes[(k % 5) as usize] };
        let mut t = now;
        while let Some(a) = engine.pick(&mut call, t) {
            let later = t + Duration::from_micros(100 + k % 5_000);
            if let Hedge::Send(b) = engine.hedge(&mut call, t + Duration::from_millis(3)) {
                engine.cancel(b, later);
            }
            match engine.finish(&mut call, a, outcome, true, later) {
                Next::Retry(after) => t = later + after,
                Next::Done | Next::Wait | Next::GiveUp(_) => break,
            }
        }
    }
    let spent = allocations() - before;
    assert_eq!(spent, 0, "the engine's call path allocated {spent} times in 49,900 calls");
}
