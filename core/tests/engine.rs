//! The policy engine driven directly, as the client drives it: one call's decision points.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gauntlet_core::breaker::Phase;
use gauntlet_core::hedge::NoHedge;
use gauntlet_core::outcome::Outcome;
use gauntlet_core::policy::{
    BeginError, BudgetPolicy, Count, Engine, Event, Fraction, Hedge, Next, Policy, ServerEntry, Sink,
};
use gauntlet_core::retry::GiveUp;
use gauntlet_core::route::{ServerTools, ToolHints, ToolInfo};
use gauntlet_core::{ServerId, Time};

/// `groups` of (group, servers, tags); every server offers a safe `search`.
fn fleet(policy: Policy, groups: &[(&str, u32, &[&str])]) -> (Engine, Arc<Mutex<Vec<Event>>>) {
    fleet_of(policy, groups, ToolHints { read_only: true, idempotent: true })
}

/// As [`fleet`], with `search` annotated `hints`.
fn fleet_of(policy: Policy, groups: &[(&str, u32, &[&str])], hints: ToolHints) -> (Engine, Arc<Mutex<Vec<Event>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let sink: Sink = Box::new(move |e: &Event| seen.lock().unwrap().push(*e));
    let mut entries = Vec::new();
    let mut tools = Vec::new();
    for (group, count, tags) in groups {
        for i in 0..*count {
            let id = ServerId(entries.len() as u32);
            let name = format!("{group}-{i}");
            entries.push(ServerEntry { name: name.clone(), weight: 1, priority: 0, trusted: true });
            let mut s = ServerTools::new(id, &name, &[]).in_group(group);
            s.tags = tags.iter().map(|t| (*t).to_owned()).collect();
            s.tools = vec![ToolInfo { name: "search".to_owned(), hints }];
            tools.push(s);
        }
    }
    let mut engine = Engine::new(policy, &entries, Some(sink)).unwrap();
    engine.set_tools(&tools).unwrap();
    for i in 0..entries.len() {
        engine.link(ServerId(i as u32), true, Time::ZERO);
    }
    events.lock().unwrap().clear();
    (engine, events)
}

/// A policy as a scenario's `[client]` table writes it.
fn toml_policy(text: &str) -> Policy {
    toml::from_str(text).expect("a valid policy")
}

fn at(ms: u64) -> Time {
    Time::from_millis(1_000 + ms)
}

#[test]
fn a_failed_attempt_is_retried_on_another_server_until_the_budget_is_spent() {
    let mut policy = Policy::default();
    // One retry token: the floor allows one extra attempt per second over a one-second window,
    // the ratio none.
    policy.retry.budget = BudgetPolicy {
        ratio: Fraction::of(0.0),
        min_per_sec: Count::of(1),
        window: gauntlet_core::policy::Period::from_secs(1),
    };
    policy.retry.max_attempts = Count::of(5);
    let (mut engine, events) = fleet(policy, &[("g", 3, &[])]);
    let mut call = engine.begin("g__search", None, None, at(0)).unwrap();
    let first = engine.pick(&mut call, at(0)).unwrap();
    let Next::Retry(after) = engine.finish(&mut call, first, Outcome::Timeout, true, at(10)) else {
        panic!("the first failure is retried within the budget")
    };
    let second = engine.pick(&mut call, at(10) + after).unwrap();
    assert_ne!(second.server, first.server, "a retry goes to a server not tried yet");
    assert!(events.lock().unwrap().contains(&Event::Failover { from: first.server, to: second.server }));
    let next = engine.finish(&mut call, second, Outcome::Transport, true, at(20) + after);
    assert_eq!(next, Next::GiveUp(GiveUp::Budget), "the budget had one token");
    assert_eq!(call.attempts(), 2);
}

#[test]
fn a_success_ends_a_call_and_an_unknown_tool_is_refused() {
    let (mut engine, _) = fleet(Policy::default(), &[("g", 2, &[])]);
    let mut call = engine.begin("g__search", None, None, at(0)).unwrap();
    let a = engine.pick(&mut call, at(0)).unwrap();
    // A success ends the call; the cache and retries are for failures.
    assert_eq!(engine.finish(&mut call, a, Outcome::Success, true, at(5)), Next::Done);
    assert_eq!(engine.begin("g__nope", None, None, at(0)).unwrap_err(), BeginError::UnknownTool);
}

#[test]
fn an_unsafe_tool_is_not_replayed_once_sent_unless_the_configuration_vouches_for_it() {
    let unsafe_ = ToolHints { read_only: false, idempotent: false };
    let (mut engine, _) = fleet_of(Policy::default(), &[("g", 2, &[])], unsafe_);
    let mut call = engine.begin("g__search", None, None, at(0)).unwrap();
    let a = engine.pick(&mut call, at(0)).unwrap();
    assert_eq!(engine.finish(&mut call, a, Outcome::Timeout, true, at(5)), Next::GiveUp(GiveUp::Unsafe));
    // Not sent: always safe to try elsewhere.
    let mut call = engine.begin("g__search", None, None, at(10)).unwrap();
    let a = engine.pick(&mut call, at(10)).unwrap();
    assert!(matches!(engine.finish(&mut call, a, Outcome::Transport, false, at(11)), Next::Retry(_)));

    let vouched = toml_policy("tools = { \"g__search\" = { idempotent = true } }");
    let (mut engine, _) = fleet_of(vouched, &[("g", 2, &[])], unsafe_);
    let mut call = engine.begin("g__search", None, None, at(0)).unwrap();
    let a = engine.pick(&mut call, at(0)).unwrap();
    let Next::Retry(after) = engine.finish(&mut call, a, Outcome::Timeout, true, at(5)) else {
        panic!("a vouched-for tool is replayed after a timeout")
    };
    let b = engine.pick(&mut call, at(5) + after).unwrap();
    assert_ne!(a.server, b.server);
}

#[test]
fn hedges_wait_for_their_delay_and_respect_the_cap_and_the_budget() {
    let mut policy = toml_policy("hedge = { after = \"20ms\" }");
    let (mut engine, events) = fleet(policy.clone(), &[("g", 3, &[])]);
    let mut call = engine.begin("g__search", None, None, at(0)).unwrap();
    let first = engine.pick(&mut call, at(0)).unwrap();
    assert_eq!(engine.hedge(&mut call, at(5)), Hedge::Wait(Duration::from_millis(15)));
    let Hedge::Send(backup) = engine.hedge(&mut call, at(20)) else { panic!("due after 20 ms") };
    assert_ne!(backup.server, first.server);
    assert!(events.lock().unwrap().iter().any(|e| matches!(e, Event::Sent { hedge: true, .. })));
    // max_extra = 1: no second backup, however long it waits.
    assert_eq!(engine.hedge(&mut call, at(100)), Hedge::Never(NoHedge::Cap));
    // The backup won; the first attempt is abandoned, not retried.
    assert_eq!(engine.finish(&mut call, backup, Outcome::Success, true, at(30)), Next::Done);
    engine.cancel(first, at(30));
    assert!(call.hedged());

    // With an empty budget a due hedge is refused.
    policy.retry.budget =
        BudgetPolicy { ratio: Fraction::of(0.0), min_per_sec: Count::of(0), ..BudgetPolicy::default() };
    let (mut engine, _) = fleet(policy, &[("g", 3, &[])]);
    let mut call = engine.begin("g__search", None, None, at(0)).unwrap();
    let first = engine.pick(&mut call, at(0)).unwrap();
    assert_eq!(engine.hedge(&mut call, at(20)), Hedge::Never(NoHedge::Budget));
    engine.cancel(first, at(20));
}

#[test]
fn a_failure_while_a_hedge_is_in_flight_waits_for_it() {
    let policy = toml_policy("hedge = { after = \"10ms\" }");
    let (mut engine, _) = fleet(policy, &[("g", 2, &[])]);
    let mut call = engine.begin("g__search", None, None, at(0)).unwrap();
    let first = engine.pick(&mut call, at(0)).unwrap();
    let Hedge::Send(backup) = engine.hedge(&mut call, at(10)) else { panic!("due") };
    assert_eq!(engine.finish(&mut call, first, Outcome::Transport, true, at(12)), Next::Wait);
    assert_eq!(engine.finish(&mut call, backup, Outcome::Success, true, at(15)), Next::Done);
}

#[test]
fn a_new_session_half_opens_a_breaker_the_old_one_tripped_and_its_probes_close_it() {
    let mut policy = Policy::default();
    policy.breaker.consecutive_failures = Count::of(2);
    let (mut engine, events) = fleet(policy, &[("g", 1, &[])]);
    let mut calls: Vec<_> = (0..2).map(|_| engine.begin("g__search", None, None, at(0)).unwrap()).collect();
    let attempts: Vec<_> = calls.iter_mut().map(|c| engine.pick(c, at(0)).unwrap()).collect();
    let _ = engine.finish(&mut calls[0], attempts[0], Outcome::Transport, true, at(1));
    let _ = engine.finish(&mut calls[1], attempts[1], Outcome::Transport, true, at(1));
    engine.link(ServerId(0), false, at(1));
    assert_eq!(engine.breaker(ServerId(0)).phase(), Phase::Open);
    // A health check or a repeated link-up of the same session changes nothing; a new one does.
    engine.link(ServerId(0), false, at(50));
    assert_eq!(engine.breaker(ServerId(0)).phase(), Phase::Open);
    engine.link(ServerId(0), true, at(100));
    assert_eq!(engine.breaker(ServerId(0)).phase(), Phase::HalfOpen, "long before the 5 s open time");
    let breaker: Vec<_> =
        events.lock().unwrap().iter().filter(|e| matches!(e, Event::Breaker { .. })).copied().collect();
    assert_eq!(
        breaker,
        [
            Event::Breaker { server: ServerId(0), from: Phase::Closed, to: Phase::Open },
            Event::Breaker { server: ServerId(0), from: Phase::Open, to: Phase::HalfOpen },
        ]
    );
    // Two successful probes close it.
    for t in [101, 102] {
        let mut call = engine.begin("g__search", None, None, at(t)).unwrap();
        let a = engine.pick(&mut call, at(t)).expect("a probe is admitted");
        assert_eq!(engine.finish(&mut call, a, Outcome::Success, true, at(t)), Next::Done);
    }
    assert_eq!(engine.breaker(ServerId(0)).phase(), Phase::Closed);
}

#[test]
fn a_stale_permit_after_a_breaker_transition_cannot_flip_its_state() {
    let mut policy = Policy::default();
    policy.breaker.consecutive_failures = Count::of(2);
    let (mut engine, events) = fleet(policy, &[("g", 1, &[])]);
    // Three attempts in flight on the one server; two fail and trip its breaker.
    let mut calls: Vec<_> = (0..3).map(|_| engine.begin("g__search", None, None, at(0)).unwrap()).collect();
    let attempts: Vec<_> = calls.iter_mut().map(|c| engine.pick(c, at(0)).unwrap()).collect();
    let _ = engine.finish(&mut calls[0], attempts[0], Outcome::Timeout, true, at(1));
    let _ = engine.finish(&mut calls[1], attempts[1], Outcome::Timeout, true, at(2));
    assert_eq!(engine.breaker(ServerId(0)).phase(), Phase::Open);
    // The third answers late, with a permit from before the trip: the breaker stays open.
    let _ = engine.finish(&mut calls[2], attempts[2], Outcome::Success, true, at(3));
    assert_eq!(engine.breaker(ServerId(0)).phase(), Phase::Open);
    let transitions: Vec<_> =
        events.lock().unwrap().iter().filter(|e| matches!(e, Event::Breaker { .. })).copied().collect();
    assert_eq!(transitions, [Event::Breaker { server: ServerId(0), from: Phase::Closed, to: Phase::Open }]);
    // Open: no server may take a new call.
    let mut call = engine.begin("g__search", None, None, at(4)).unwrap();
    assert!(engine.pick(&mut call, at(4)).is_none());
}

#[test]
fn a_fallback_group_serves_when_the_primary_group_is_down() {
    let policy = toml_policy("fallbacks = [{ group = \"search\", then = [\"backup\"] }]");
    let (mut engine, events) = fleet(policy, &[("search", 2, &[]), ("backup", 1, &[])]);
    // One exposed tool, two tiers.
    let routes: Vec<_> = engine.routes().map(|(r, _)| (r.exposed.clone(), r.tiers.len())).collect();
    assert_eq!(routes, [("search__search".to_owned(), 2)]);
    let mut call = engine.begin("search__search", None, None, at(0)).unwrap();
    let a = engine.pick(&mut call, at(0)).unwrap();
    assert_eq!(a.tier, 0);
    let _ = engine.finish(&mut call, a, Outcome::Success, true, at(1));
    engine.link(ServerId(0), false, at(2));
    engine.link(ServerId(1), false, at(2));
    let mut call = engine.begin("search__search", None, None, at(3)).unwrap();
    let b = engine.pick(&mut call, at(3)).unwrap();
    assert_eq!((b.server, b.tier), (ServerId(2), 1));
    assert!(events.lock().unwrap().contains(&Event::Sent { server: ServerId(2), probe: false, tier: 1, hedge: false }));
    assert_eq!(engine.metrics().tier_picks(1), 1);
}

#[test]
fn a_route_rule_pins_a_tool_to_tagged_servers() {
    let policy = toml_policy("routes = [{ tools = \"g__*\", tags = [\"eu\"] }]");
    let (mut engine, _) = fleet(policy, &[("g", 2, &["us"]), ("h", 1, &[])]);
    // `g`'s servers are tagged `us`, not `eu`: the rule leaves `g__search` no server.
    let mut call = engine.begin("g__search", None, None, at(0)).unwrap();
    assert!(engine.pick(&mut call, at(0)).is_none());
    let mut call = engine.begin("h__search", None, None, at(0)).unwrap();
    assert!(engine.pick(&mut call, at(0)).is_some());
}

#[test]
fn a_hedge_refused_says_why() {
    // Hedging off: no backup, and the reason is that it is off, not that the tool is unsafe.
    let (mut engine, _) = fleet(Policy::default(), &[("g", 2, &[])]);
    let mut call = engine.begin("g__search", None, None, at(0)).unwrap();
    let a = engine.pick(&mut call, at(0)).unwrap();
    assert!(!call.may_hedge());
    assert_eq!(engine.hedge(&mut call, at(100)), Hedge::Never(NoHedge::Off));
    engine.cancel(a, at(100));
    // Two backups allowed, two servers: after one backup no untried server is left.
    let (mut engine, _) = fleet(toml_policy("hedge = { after = \"10ms\", max_extra = 2 }"), &[("g", 2, &[])]);
    let mut call = engine.begin("g__search", None, None, at(0)).unwrap();
    let a = engine.pick(&mut call, at(0)).unwrap();
    let Hedge::Send(b) = engine.hedge(&mut call, at(10)) else { panic!("due") };
    assert_eq!(engine.hedge(&mut call, at(20)), Hedge::Never(NoHedge::NoServer));
    engine.cancel(a, at(20));
    engine.cancel(b, at(20));
}

#[test]
fn retries_go_to_servers_not_yet_tried_while_one_exists() {
    let policy =
        toml_policy("retry = { max_attempts = 5, budget = { ratio = 10.0 } }\nbreaker.consecutive_failures = 0");
    let (mut engine, _) = fleet(policy, &[("g", 3, &[])]);
    let mut call = engine.begin("g__search", None, None, at(0)).unwrap();
    let mut servers = Vec::new();
    let mut t = at(0);
    for _ in 0..4 {
        let a = engine.pick(&mut call, t).unwrap();
        servers.push(a.server);
        let Next::Retry(after) = engine.finish(&mut call, a, Outcome::Timeout, true, t) else { panic!("retried") };
        t = t + after;
    }
    let mut first_three = servers[..3].to_vec();
    first_three.sort();
    first_three.dedup();
    assert_eq!(first_three.len(), 3, "three attempts, three servers: {servers:?}");
    // Every server tried: the fourth goes to any of them.
    assert!(servers[..3].contains(&servers[3]));
}

#[test]
fn a_fallback_group_with_no_server_connected_yet_does_not_block_the_catalog() {
    let policy = toml_policy("fallbacks = [{ group = \"search\", then = [\"backup\"] }]");
    let (mut engine, _) = fleet(policy, &[("search", 2, &[]), ("backup", 1, &[])]);
    // Every server connected: the backup's copy backs `search` up, one exposed tool.
    let exposed: Vec<String> = engine.catalog().entries().map(|e| e.exposed.clone()).collect();
    assert_eq!(exposed, ["search__search"]);
    // Only `search` connected (the backup not yet, or down): the catalog is still built.
    let searchers: Vec<ServerTools> = (0..2)
        .map(|i| {
            let mut s = ServerTools::new(ServerId(i), &format!("search-{i}"), &[]).in_group("search");
            let hints = ToolHints { read_only: true, idempotent: true };
            s.tools = vec![ToolInfo { name: "search".to_owned(), hints }];
            s
        })
        .collect();
    engine.set_tools(&searchers).expect("a fallback group with no server yet is not an error");
    let mut call = engine.begin("search__search", None, None, at(0)).expect("the tool is routed");
    let a = engine.pick(&mut call, at(0)).expect("a server of the primary group");
    assert!(a.server.index() < 2, "{a:?}");
}
