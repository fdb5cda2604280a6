//! The simulator's own tests: determinism, checkers, and faults the client must survive.

use std::time::Duration;

use gauntlet_core::breaker::Phase;
use gauntlet_core::policy::Policy;
use gauntlet_reports::What;
use gauntlet_sim::{
    Arrivals, Fault, FaultKind, RunReport, Scenario, ServerGroup, ServiceTime, SimError, SimTool, Workload,
};

/// Runs `s`, keeping every call's record for the assertions below.
fn run(s: &Scenario) -> Result<RunReport, SimError> {
    gauntlet_sim::run(&Scenario { keep_calls: true, ..s.clone() })
}

/// A policy written as a scenario's `[client]` table.
fn policy(toml: &str) -> Policy {
    toml::from_str(toml).expect("a valid policy")
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Three replicas of one group, a read-only and an unsafe tool, 8 closed-loop callers.
fn steady(seed: u64) -> Scenario {
    let mut group = ServerGroup::new(
        "search",
        3,
        vec![SimTool::safe("lookup"), SimTool::unsafe_("write")],
        ServiceTime::LogNormal { median: ms(10), p99: ms(40) },
    );
    group.error_rate = 0.01;
    let workload = Workload {
        arrivals: Arrivals::Callers(8),
        mix: vec![("search__lookup".to_owned(), 9), ("search__write".to_owned(), 1)],
        deadline: Duration::from_secs(2),
        aggregate: None,
        think: Duration::ZERO,
        affinity: None,
    };
    let mut s = Scenario::new("steady", seed, Duration::from_secs(5), vec![group], workload);
    s.policy = policy("balancer = \"p2c-peak-ewma\"\ncall_timeout = \"300ms\"");
    s
}

#[test]
fn a_steady_fleet_answers_nearly_everything_safely() {
    let r = run(&steady(1)).expect("runs");
    assert!(r.calls.len() > 1_000, "{} calls", r.calls.len());
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert!(r.success_rate() > 0.99, "{}", r.success_rate());
}

#[test]
fn the_same_seed_gives_the_same_digest_and_another_seed_does_not() {
    let a = run(&steady(7)).expect("runs");
    let b = run(&steady(7)).expect("runs");
    assert_eq!(a.digest, b.digest);
    assert_eq!(a.calls, b.calls);
    let c = run(&steady(8)).expect("runs");
    assert_ne!(a.digest, c.digest);
}

fn served_by(r: &RunReport, server: &str, from_us: u64, to_us: u64) -> usize {
    r.calls
        .iter()
        .filter(|c| c.start_us >= from_us && c.start_us < to_us)
        .filter(|c| matches!(&c.end, Some(gauntlet_sim::CallEnd::Ok { server: s, .. }) if s == server))
        .count()
}

#[test]
fn a_partitioned_replica_is_routed_around_nothing_is_lost_and_it_serves_again_after_repair() {
    for seed in 11..17 {
        let mut s = steady(seed);
        s.duration = Duration::from_secs(8);
        s.faults = vec![Fault {
            at: ms(1_000),
            duration: ms(2_000),
            kind: FaultKind::Partition,
            target: "search-0".to_owned(),
        }];
        let r = run(&s).expect("runs");
        assert!(r.violations.is_empty(), "seed {seed}: {:?}", r.violations);
        assert!(r.success_rate() > 0.98, "seed {seed}: success {}", r.success_rate());
        // The partition spans [1 s, 3 s) of the workload.
        let during = served_by(&r, "search-0", 1_050_000, 3_000_000);
        let after = served_by(&r, "search-0", 5_000_000, 8_000_000);
        assert_eq!(during, 0, "seed {seed}: a partitioned server answered");
        assert!(after > 50, "seed {seed}: the repaired server never came back ({after} calls)");
    }
}

#[test]
fn a_latency_spike_moves_traffic_off_the_slow_replica() {
    let mut s = steady(12);
    s.duration = Duration::from_secs(6);
    s.faults = vec![Fault {
        at: ms(1_000),
        duration: ms(3_000),
        kind: FaultKind::Latency(ms(200)),
        target: "search-2".to_owned(),
    }];
    let r = run(&s).expect("runs");
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert!(r.success_rate() > 0.99);
    // The spike spans [1 s, 4 s); give the balancer half a second to notice.
    let slow = served_by(&r, "search-2", 1_500_000, 4_000_000);
    let fast = served_by(&r, "search-0", 1_500_000, 4_000_000);
    assert!(slow * 5 < fast, "p2c-peak-ewma kept sending to the slow replica: {slow} vs {fast}");
}

/// A crash with many calls in flight: the scenario of the three-process test.
fn crash(seed: u64) -> Scenario {
    let mut s = steady(seed);
    s.duration = Duration::from_secs(4);
    s.workload.arrivals = Arrivals::Callers(32);
    s.faults =
        vec![Fault { at: ms(1_000), duration: ms(1_000), kind: FaultKind::Crash, target: "search-1".to_owned() }];
    s
}

#[test]
fn a_crash_with_calls_in_flight_loses_nothing() {
    let r = run(&crash(21)).expect("runs");
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert!(r.success_rate() > 0.98, "success {}", r.success_rate());
    // At the crash (1 s into the workload), 16 or more calls were in flight.
    let crash_at = 1_000_000;
    let in_flight = r.calls.iter().filter(|c| c.start_us <= crash_at && c.end_us.is_some_and(|e| e > crash_at)).count();
    assert!(in_flight >= 16, "only {in_flight} calls in flight at the crash");
}

#[test]
#[ignore = "run by a_crash_gives_the_same_digest_in_three_processes, in a process of its own"]
fn crash_run_prints_its_digest() {
    let r = run(&crash(21)).expect("runs");
    // Straight to stdout: the parent test reads it from this process's output.
    use std::io::Write;
    writeln!(std::io::stdout().lock(), "digest: {}", r.digest).expect("stdout");
}

#[test]
fn a_crash_gives_the_same_digest_in_three_processes() {
    let exe = std::env::current_exe().expect("the test binary");
    let digests: Vec<String> = (0..3)
        .map(|_| {
            let out = std::process::Command::new(&exe)
                .args(["--exact", "crash_run_prints_its_digest", "--ignored", "--nocapture", "--test-threads", "1"])
                .output()
                .expect("the test binary runs");
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.lines()
                .find_map(|l| l.split_once("digest: ").map(|(_, d)| d.trim().to_owned()))
                .unwrap_or_else(|| panic!("no digest:\n{text}"))
        })
        .collect();
    assert_eq!(digests[0], digests[1]);
    assert_eq!(digests[1], digests[2]);
}

/// Servers that answer after 150 ms, a client that gives up after 100 ms and retries.
fn timeouts(seed: u64, server_lies: bool) -> Scenario {
    let mut s = steady(seed);
    s.duration = Duration::from_secs(3);
    let write = SimTool { idempotent: server_lies, ..SimTool::unsafe_("write") };
    s.fleet[0].tools = vec![write];
    s.fleet[0].service = ServiceTime::Constant(ms(150));
    s.fleet[0].error_rate = 0.0;
    s.policy = policy("balancer = \"round-robin\"\ncall_timeout = \"100ms\"\nretry.max_attempts = 3");
    s.workload.mix = vec![("search__write".to_owned(), 1)];
    s
}

#[test]
fn the_side_effect_checker_catches_a_client_that_trusts_a_server_lying_about_idempotence() {
    let r = run(&timeouts(31, true)).expect("runs");
    let duplicates =
        r.violations.iter().filter(|v| matches!(v, gauntlet_sim::Violation::DuplicateSideEffect { .. })).count();
    assert!(duplicates > 0, "the checker missed replayed unsafe calls: {:?}", r.violations);
}

#[test]
fn an_honestly_annotated_unsafe_tool_is_never_executed_twice_even_when_calls_time_out() {
    let r = run(&timeouts(31, false)).expect("runs");
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert!(r.success_rate() < 0.5, "the calls were meant to time out");
}

#[test]
fn the_side_effect_checker_catches_a_client_that_replays_what_its_configuration_wrongly_vouches_for() {
    let mut s = timeouts(31, false);
    s.sabotage = Some(gauntlet_sim::Sabotage::ReplayUnsafe);
    let r = run(&s).expect("runs");
    let duplicates =
        r.violations.iter().filter(|v| matches!(v, gauntlet_sim::Violation::DuplicateSideEffect { .. })).count();
    assert!(duplicates > 0, "the checker missed replayed unsafe calls: {:?}", r.violations);
}

#[test]
fn every_fault_kind_leaves_the_run_safe_and_mostly_successful() {
    let kinds = [
        (FaultKind::OneWay, 0.97),
        (FaultKind::Hold, 0.95),
        (FaultKind::Loss(0.3), 0.95),
        (FaultKind::Brownout(0.8), 0.97),
        // Without aggregation nothing catches a liar: its wrong answers (a third of the calls for
        // 2 s of 5) are failures, not successes.
        (FaultKind::Byzantine, 0.8),
        (FaultKind::SlowTool("lookup".to_owned(), ms(400)), 0.97),
    ];
    for (kind, floor) in kinds {
        let mut s = steady(41);
        s.faults =
            vec![Fault { at: ms(1_000), duration: ms(2_000), kind: kind.clone(), target: "search@0.3".to_owned() }];
        let r = run(&s).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert!(r.violations.is_empty(), "{kind:?}: {:?}", r.violations);
        assert!(r.success_rate() >= floor, "{kind:?}: success {}", r.success_rate());
        let faults: Vec<_> =
            r.events.iter().filter(|e| matches!(e.what, What::FaultStart { .. } | What::FaultEnd { .. })).collect();
        assert_eq!(faults.len(), 2, "{kind:?}: one server (search@0.3 of 3) starts and ends: {faults:?}");
        assert!(faults.iter().all(|e| e.server == "search-0"), "{faults:?}");
    }
}

#[test]
fn a_byzantine_window_changes_the_answers_and_the_digest() {
    let calm = run(&steady(43)).expect("runs");
    let mut s = steady(43);
    s.faults =
        vec![Fault { at: ms(500), duration: ms(1_000), kind: FaultKind::Byzantine, target: "search-0".to_owned() }];
    let lied = run(&s).expect("runs");
    assert_ne!(calm.digest, lied.digest);
}

#[test]
fn a_server_at_capacity_turns_calls_away_and_the_client_retries_them_elsewhere() {
    // 7 callers for 3 × (2 slots + 2 queued): now and then a server is full while another has
    // room. (With more callers than slots every breaker trips, and retries beyond the budget's
    // 20 % fail: that is the budget working, and a scenario of its own.)
    let mut s = steady(44);
    s.workload.arrivals = Arrivals::Callers(7);
    s.fleet[0].capacity = Some(2);
    s.fleet[0].queue = 2;
    s.fleet[0].error_rate = 0.0;
    s.policy = policy("balancer = \"random\"\ncall_timeout = \"300ms\"\nbreaker.consecutive_failures = 50");
    let r = run(&s).expect("runs");
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    let retried = r.calls.iter().filter(|c| c.is_ok() && c.attempts > 1).count();
    assert!(retried > 0, "no call was turned away");
    assert!(r.success_rate() > 0.97, "success {}", r.success_rate());
}

#[test]
fn a_pareto_tail_is_heavier_than_its_minimum() {
    let mut s = steady(45);
    s.fleet[0].service = ServiceTime::Pareto { min: ms(5), alpha: 1.5 };
    let r = run(&s).expect("runs");
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    let mut took: Vec<u64> = r.calls.iter().filter_map(|c| Some(c.end_us? - c.start_us)).collect();
    took.sort_unstable();
    assert!(took[took.len() / 2] >= 5_000, "the median is at least the minimum");
    assert!(took[took.len() * 99 / 100] > 4 * took[took.len() / 2], "p99 should be far above the median");
}

/// One server of three is cut off (`Partition`: its calls time out, the client reconnects) or
/// fails every call (`Brownout`: its breaker opens, for 5 s) for 3 s.
fn faulty(seed: u64, kind: FaultKind) -> Scenario {
    let mut s = steady(seed);
    s.duration = Duration::from_secs(8);
    s.faults = vec![Fault { at: ms(1_000), duration: ms(3_000), kind, target: "search-0".to_owned() }];
    s
}

fn count(r: &RunReport, what: &What) -> usize {
    r.events.iter().filter(|e| e.what == *what).count()
}

#[test]
fn the_timeline_shows_breaker_transitions_reconnects_and_failovers() {
    let r = run(&faulty(51, FaultKind::Brownout(1.0))).expect("runs");
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    let breaker = |from, to| count(&r, &What::Breaker { from, to });
    assert!(breaker(Phase::Closed, Phase::Open) >= 1, "{:#?}", r.events);
    assert!(breaker(Phase::HalfOpen, Phase::Closed) >= 1, "the breaker never closed again: {:#?}", r.events);
    let failovers = r.events.iter().filter(|e| matches!(&e.what, What::Failover { to } if to.starts_with("search-")));
    assert!(failovers.count() >= 1);
    let times: Vec<u64> = r.events.iter().map(|e| e.t_us).collect();
    assert!(times.is_sorted(), "the timeline is in time order");
    let r = run(&faulty(51, FaultKind::Partition)).expect("runs");
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    let search0 = |what: What| r.events.iter().filter(|e| e.what == what && e.server == "search-0").count();
    assert_eq!(search0(What::Disconnected), 1, "{:#?}", r.events);
    assert_eq!(search0(What::Connected), 2, "the first connect and the reconnect after repair");
}

#[test]
fn the_breaker_checker_catches_a_client_that_ignores_its_breakers() {
    let mut s = faulty(52, FaultKind::Brownout(1.0));
    s.sabotage = Some(gauntlet_sim::Sabotage::IgnoreBreaker);
    let r = run(&s).expect("runs");
    let bypassed: Vec<_> =
        r.violations.iter().filter(|v| matches!(v, gauntlet_sim::Violation::BreakerBypassed { .. })).collect();
    assert!(!bypassed.is_empty(), "the checker missed calls through an open breaker: {:?}", r.violations);
    // The honest client on the same world: its breaker opened and nothing passed it.
    let honest = run(&faulty(52, FaultKind::Brownout(1.0))).expect("runs");
    assert!(honest.events.iter().any(|e| matches!(e.what, What::Breaker { to: Phase::Open, .. })));
    assert!(honest.violations.is_empty(), "{:?}", honest.violations);
}

/// Every call goes to all three replicas; `search-0` lies for the whole run.
fn aggregated(seed: u64) -> Scenario {
    let mut s = steady(seed);
    s.duration = Duration::from_secs(3);
    s.fleet[0].error_rate = 0.0;
    s.fleet[0].service = ServiceTime::Uniform(ms(5), ms(15));
    s.workload.mix = vec![("search__lookup".to_owned(), 1)];
    s.workload.aggregate = Some(gauntlet_core::aggregate::Aggregation::Majority);
    s.faults =
        vec![Fault { at: ms(0), duration: ms(3_000), kind: FaultKind::Byzantine, target: "search-0".to_owned() }];
    s
}

#[test]
fn majority_aggregation_outvotes_a_lying_replica() {
    let r = run(&aggregated(53)).expect("runs");
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert!(r.success_rate() > 0.99, "success {}", r.success_rate());
    let answers: Vec<&str> = r
        .calls
        .iter()
        .filter_map(|c| match &c.end {
            Some(gauntlet_sim::CallEnd::Ok { answer: Some(a), .. }) => Some(a.as_str()),
            _ => None,
        })
        .collect();
    assert!(answers.len() > 100);
    assert!(answers.iter().all(|a| !a.contains("wrong")), "a lie got through");
}

#[test]
fn the_majority_checker_catches_a_client_that_takes_the_first_answer() {
    let mut s = aggregated(53);
    s.sabotage = Some(gauntlet_sim::Sabotage::FirstAsMajority);
    let r = run(&s).expect("runs");
    let minority = r.violations.iter().filter(|v| matches!(v, gauntlet_sim::Violation::MinorityAnswer { .. })).count();
    assert!(minority > 0, "the checker missed the liar's answers: {:?}", r.violations);
}

/// The only server is cut off for 2 s.
fn lone_server_partitioned(seed: u64, policy: Policy) -> Scenario {
    let mut s = steady(seed);
    s.duration = Duration::from_secs(10);
    s.fleet[0].count = 1;
    s.fleet[0].error_rate = 0.0;
    s.policy = policy;
    s.recovery_bound = Duration::from_secs(4);
    s.faults =
        vec![Fault { at: ms(1_000), duration: ms(2_000), kind: FaultKind::Partition, target: "search-0".to_owned() }];
    s
}

#[test]
fn the_client_recovers_within_the_bound_after_the_last_fault_heals() {
    let r = run(&lone_server_partitioned(54, policy("call_timeout = \"300ms\""))).expect("runs");
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    let recovery = r.recovery_us.expect("recovered");
    assert!(recovery <= 4_000_000, "recovery took {recovery} us");
}

#[test]
fn a_new_session_lets_a_partitioned_server_back_whatever_its_breaker_s_open_time() {
    let stuck = policy("call_timeout = \"300ms\"\nbreaker = { open_for = \"1h\", max_open_for = \"1h\" }");
    let r = run(&lone_server_partitioned(54, stuck)).expect("runs");
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    let half_open = r.events.iter().position(|e| matches!(e.what, What::Breaker { to: Phase::HalfOpen, .. }));
    let reconnected = r.events.iter().rposition(|e| e.what == What::Connected);
    assert!(half_open.is_some() && reconnected.is_some_and(|c| c < half_open.unwrap_or(0)), "{:#?}", r.events);
}

#[test]
fn the_liveness_checker_catches_a_client_whose_breaker_never_lets_the_server_back() {
    // Errors, not a partition: the session stays up, so only the open time could end it.
    let stuck = policy("call_timeout = \"300ms\"\nbreaker = { open_for = \"1h\", max_open_for = \"1h\" }");
    let mut s = lone_server_partitioned(54, stuck);
    s.faults[0].kind = FaultKind::Brownout(1.0);
    let r = run(&s).expect("runs");
    assert!(
        r.violations.iter().any(|v| matches!(v, gauntlet_sim::Violation::NotRecovered { .. })),
        "the checker missed a client that never recovered: {:?}",
        r.violations
    );
}

#[test]
fn a_tool_list_change_reaches_the_client_and_is_undone() {
    let mut s = steady(55);
    s.duration = Duration::from_secs(6);
    s.fleet[0].error_rate = 0.0;
    s.faults = vec![Fault {
        at: ms(1_000),
        duration: ms(2_000),
        kind: FaultKind::ListChange(vec![SimTool::safe("lookup")]),
        target: "search".to_owned(),
    }];
    let r = run(&s).expect("runs");
    let writes = |from: u64, to: u64| {
        let w: Vec<_> =
            r.calls.iter().filter(|c| c.tool == "search__write" && c.start_us >= from && c.start_us < to).collect();
        (w.iter().filter(|c| c.is_ok()).count(), w.len())
    };
    let (ok_during, during) = writes(1_500_000, 3_000_000);
    let (ok_after, after) = writes(3_500_000, 6_000_000);
    assert!(during > 10 && ok_during == 0, "write was withdrawn: {ok_during} of {during} succeeded");
    assert!(after > 10 && ok_after == after, "write came back: {ok_after} of {after} succeeded");
    assert!(r.violations.iter().all(|v| !matches!(v, gauntlet_sim::Violation::Lost { .. })));
}

#[test]
fn a_fleet_mixing_protocol_eras_serves_every_call() {
    use gauntlet_sim::ProtocolEra;
    let mut s = steady(56);
    s.fleet[0].count = 1;
    s.fleet[0].era = ProtocolEra::Legacy;
    let mut modern = s.fleet[0].clone();
    modern.group = "modern".to_owned();
    modern.era = ProtocolEra::Modern;
    s.fleet.push(modern);
    s.workload.mix = vec![("search__lookup".to_owned(), 1), ("modern__lookup".to_owned(), 1)];
    let r = run(&s).expect("runs");
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    for server in ["search-0", "modern-0"] {
        assert!(served_by(&r, server, 0, 5_000_000) > 100, "{server} served too little");
    }
}

#[test]
fn a_server_warming_up_after_a_restart_answers_slower_at_first() {
    let mut s = steady(57);
    s.duration = Duration::from_secs(8);
    s.fleet[0].count = 1;
    s.fleet[0].service = ServiceTime::Constant(ms(10));
    s.fleet[0].error_rate = 0.0;
    s.fleet[0].warmup = Some(Duration::from_secs(4));
    s.policy = policy("call_timeout = \"1s\"\nbreaker.open_for = \"200ms\"");
    s.faults =
        vec![Fault { at: ms(1_000), duration: ms(1_000), kind: FaultKind::Crash, target: "search-0".to_owned() }];
    let r = run(&s).expect("runs");
    let median = |from: u64, to: u64| {
        let mut t: Vec<u64> = r
            .calls
            .iter()
            .filter(|c| c.is_ok() && c.start_us >= from && c.start_us < to)
            .filter_map(gauntlet_sim::CallRecord::took_us)
            .collect();
        t.sort_unstable();
        t[t.len() / 2]
    };
    // Warm before the crash; restarted at 2 s, cold (10x) and warming until 6 s. The client
    // is back once it reconnects (after its backoff): take the first 500 ms from then.
    let back = r.calls.iter().filter(|c| c.is_ok() && c.start_us > 2_000_000).map(|c| c.start_us).min().expect("back");
    assert!(back < 4_000_000, "reconnected at {back} us");
    let (before, cold, warm) = (median(0, 900_000), median(back, back + 500_000), median(6_500_000, 8_000_000));
    assert!(cold > 4 * warm, "cold {cold} us, warm {warm} us");
    assert!(before < 2 * warm, "warm from the start: {before} us vs {warm} us");
}

#[test]
fn the_results_model_accounts_for_every_call_per_phase_per_server_and_per_bucket() {
    let s = faulty(58, FaultKind::Partition);
    let r = run(&s).expect("runs");
    let result = gauntlet_sim::summarize(&r);
    assert_eq!(result.calls.total as usize, r.calls.len());
    // The figures folded in as calls ended agree with the calls kept.
    assert_eq!(result.calls.ok as usize, r.calls.iter().filter(|c| c.is_ok()).count());
    assert_eq!(result.attempts, r.calls.iter().map(|c| u64::from(c.attempts)).sum::<u64>());
    let names: Vec<&str> = result.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["warm-up", "fault", "recovery"]);
    assert_eq!(result.phases.iter().map(|p| p.calls.total).sum::<u64>(), result.calls.total);
    assert_eq!(result.series.iter().map(|b| b.started).sum::<u64>(), result.calls.total);
    assert_eq!(result.servers.iter().map(|s| s.answered).sum::<u64>(), result.calls.ok);
    let p = result.latency;
    assert!(p.p50 <= p.p90 && p.p90 <= p.p99 && p.p99 <= p.max, "{p:?}");
    assert!(result.retry_amplification >= 1.0);
    assert_eq!(result.digest, r.digest);
}
