//! The hot path does not allocate: every balancer's picks through the public kit's allocation
//! check, and the engine's whole per-call path, under the counting allocator the `alloc-check`
//! feature links.

use std::time::Duration;

use gauntlet_core::balance::{BalancerConfig, SlowStartConfig, Strategy};
use gauntlet_core::outcome::Outcome;
use gauntlet_core::policy::{Engine, Hedge, HedgePolicy, Next, Policy, ServerEntry};
use gauntlet_core::route::{ServerTools, ToolHints, ToolInfo};
use gauntlet_core::testing::kit::check_allocations;
use gauntlet_core::{ServerId, Time};

/// Every built-in balancer, plain and with priority tiers and slow start, once caches are warm.
#[test]
fn every_built_in_balancer_picks_without_allocating() {
    for strategy in Strategy::BUILT_IN {
        let configured = BalancerConfig {
            priority_threshold: Some(0.7),
            slow_start: Some(SlowStartConfig::default()),
            ..strategy.into()
        };
        for policy in [BalancerConfig::from(strategy), configured] {
            check_allocations(|| policy.build()).unwrap_or_else(|f| panic!("{policy:?}: {f}"));
        }
    }
}

/// A balancer that collects its candidates into a new vector on every pick: the kit's check
/// must catch it (it would pass vacuously if the counter were not counting).
#[test]
fn a_balancer_that_allocates_per_pick_is_caught() {
    use gauntlet_core::balance::{Balancer, PickContext};
    use gauntlet_core::{FleetView, SeededRng};
    struct Collects;
    impl Balancer for Collects {
        fn pick(&mut self, view: &FleetView<'_>, ctx: &PickContext<'_>, _: &mut SeededRng) -> Option<ServerId> {
            let eligible: Vec<ServerId> = view
                .members()
                .iter()
                .copied()
                .filter(|&id| view.state(id).is_available() && !ctx.is_excluded(id))
                .collect();
            eligible.first().copied()
        }
    }
    let failure = check_allocations(|| Collects).expect_err("a Vec per pick is an allocation per pick");
    assert!(failure.message.contains("allocations"), "{failure}");
}

/// The engine's whole per-call path, as the client runs it: begin (route lookup, budget
/// deposit), pick (poll, balancer, breaker permit), hedge decisions, finish (fleet, breaker,
/// outlier, health, metrics, hedger records, then the retry decision) and cancel, through
/// breaker trips and recoveries.
#[test]
fn the_engines_call_path_allocates_nothing() {
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
    let spent = allocation_counter::measure(|| {
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
    });
    assert_eq!(spent.count_total, 0, "the engine's call path allocated {} times in 49,900 calls", spent.count_total);
}
