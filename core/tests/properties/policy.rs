use std::collections::BTreeMap;
use std::time::Duration;

use gauntlet_core::balance::Strategy as Balancing;
use gauntlet_core::policy::{
    BreakerMode, BreakerWindow, Count, Fraction, HedgePolicy, Period, Policy, Ratio, RoutePolicy, SlowStartPolicy,
    ToolPolicy,
};
use gauntlet_core::retry::Jitter;
use gauntlet_core::route::{Fallback, Namespacing, Pattern};
use proptest::prelude::*;

fn period() -> impl Strategy<Value = Period> {
    // Whole and fractional milliseconds up to a day, written back as humantime text.
    (1u64..=86_400_000, 0u64..1_000_000)
        .prop_map(|(ms, ns)| Period::new(Duration::from_millis(ms - 1) + Duration::from_nanos(ns.max(1))).unwrap())
}

fn ratio() -> impl Strategy<Value = Ratio> {
    (0u32..=1_000).prop_map(|k| Ratio::new(f64::from(k) / 1_000.0).unwrap())
}

fn count<const LO: u32, const HI: u32>() -> impl Strategy<Value = Count<LO, HI>> {
    (LO..=HI).prop_map(|n| Count::new(n).unwrap())
}

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,11}"
}

prop_compose! {
    fn policy()(
        balancer in prop::sample::select(Balancing::BUILT_IN.to_vec()),
        threshold in ratio(),
        slow in prop::option::of((period(), ratio())),
        namespacing in prop::sample::select(vec![Namespacing::Always, Namespacing::OnCollision, Namespacing::PreferPriority, Namespacing::Never]),
        timeouts in (period(), period(), period()),
        limits in (count::<1, 65_536>(), count::<0, 1_000_000>(), 0..=i64::MAX as u64),
        breaker in (prop::bool::ANY, count::<0, 10_000>(), ratio(), period(), prop::option::of(count::<1, 100_000>())),
        backoff in prop::sample::select(vec![Jitter::None, Jitter::Full, Jitter::Decorrelated]),
        attempts in count::<1, 10>(),
        hedge in prop::option::of((prop::option::of(period()), count::<1, 7>())),
        ttl in prop::option::of(period()),
        tools in prop::collection::btree_map(name(), (prop::option::of(period()), prop::option::of(count::<1, 10>()), prop::option::of(prop::bool::ANY), prop::option::of(prop::bool::ANY)), 0..3),
        routes in prop::collection::vec((name(), prop::collection::vec(name(), 0..3)), 0..3),
        fallbacks in prop::collection::vec((name(), prop::collection::vec(name(), 1..3)), 0..2),
    ) -> Policy {
        let mut p = Policy {
            balancer,
            priority_threshold: threshold,
            slow_start: slow.map(|(window, min_share)| SlowStartPolicy { window, min_share, ..SlowStartPolicy::default() }),
            namespacing,
            deadline: timeouts.0,
            call_timeout: timeouts.1,
            connect_timeout: timeouts.2,
            max_concurrency: limits.0,
            queue: limits.1,
            seed: limits.2,
            ..Policy::default()
        };
        p.breaker.mode = if breaker.0 { BreakerMode::Enforce } else { BreakerMode::Shadow };
        p.breaker.consecutive_failures = breaker.1;
        p.breaker.failure_rate = breaker.2;
        p.breaker.window = match breaker.4 {
            Some(n) => BreakerWindow::Calls(n),
            None => BreakerWindow::Time(breaker.3),
        };
        p.retry.backoff = backoff;
        p.retry.max_attempts = attempts;
        p.hedge = hedge.map(|(after, max_extra)| HedgePolicy {
            after,
            percentile: after.is_none().then(|| Ratio::new(0.95).unwrap()),
            max_extra,
            ..HedgePolicy::default()
        });
        p.cache.ttl = ttl;
        p.tools = tools
            .into_iter()
            .map(|(k, (timeout, max_attempts, hedge, idempotent))| (k, ToolPolicy { timeout, max_attempts, hedge, idempotent }))
            .collect::<BTreeMap<_, _>>();
        p.routes = routes
            .into_iter()
            .map(|(glob, tags)| RoutePolicy { tools: Pattern::new(&format!("{glob}*")).unwrap(), tags, capabilities: Vec::new() })
            .collect();
        p.fallbacks = fallbacks.into_iter().map(|(group, then)| Fallback { group, then }).collect();
        p.retry.budget.ratio = Fraction::new(0.5).unwrap();
        p
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any policy survives being written and read back, as JSON and as TOML, unchanged.
    #[test]
    fn a_policy_round_trips_through_json_and_toml_unchanged(p in policy()) {
        let json = serde_json::to_string(&p).unwrap();
        prop_assert_eq!(&serde_json::from_str::<Policy>(&json).unwrap(), &p);
        let toml = toml::to_string(&p).unwrap();
        prop_assert_eq!(&toml::from_str::<Policy>(&toml).unwrap(), &p, "{}", toml);
    }

    /// A JSON `gauntlet` section and a TOML `[client]` table that say the same thing give equal
    /// policies: the TOML is made from the JSON value, key by key, not from the policy.
    #[test]
    fn a_json_section_and_a_toml_table_with_the_same_values_are_equal(p in policy()) {
        let value: serde_json::Value = serde_json::to_value(&p).unwrap();
        let from_json: Policy = serde_json::from_value(value.clone()).unwrap();
        let table: toml::Table = serde_json::from_value(value).unwrap();
        let from_toml: Policy = toml::from_str(&toml::to_string(&table).unwrap()).unwrap();
        prop_assert_eq!(from_json, from_toml);
    }
}
