//! Every mechanism a policy reaches does something: for each, the same world runs twice with
//! one key changed, and the outcome moves the way the key says it should. The worlds are
//! scenario files, so these are also tests of the `[client]` table as users write it.

use gauntlet_core::breaker::Phase;
use gauntlet_reports::What;
use gauntlet_sim::RunReport;

/// Three `search` replicas behind `client`, `poisson` calls per second for 6 s, with `faults`.
fn world(client: &str, fleet_extra: &str, workload_extra: &str, faults: &str) -> String {
    format!(
        r#"
name = "policy-test"
description = "one policy key, changed"
seed = 5
duration = "6s"

[[fleet]]
group = "search"
count = 3
tools = ["lookup"]
latency = {{ median = "10ms", p99 = "30ms" }}
{fleet_extra}

[client]
call_timeout = "500ms"
{client}

[workload]
arrivals = {{ poisson = 200 }}
mix = [{{ tool = "search__lookup" }}]
deadline = "2s"
{workload_extra}

{faults}
"#
    )
}

fn run(text: &str) -> RunReport {
    let file = gauntlet_sim::file::parse("policy-test.toml", text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let mut scenario = file.scenario(file.seeds[0], &file.variants[0]);
    scenario.keep_calls = true;
    gauntlet_sim::run(&scenario).expect("runs")
}

fn events(r: &RunReport, server: &str, what: impl Fn(&What) -> bool) -> usize {
    r.events.iter().filter(|e| e.server == server && what(&e.what)).count()
}

fn opened(r: &RunReport, server: &str) -> usize {
    events(r, server, |w| matches!(w, What::Breaker { to: Phase::Open, .. }))
}

fn p99_ms(r: &RunReport) -> u64 {
    let mut took: Vec<u64> = r.calls.iter().filter_map(gauntlet_sim::CallRecord::took_us).collect();
    took.sort_unstable();
    took.get(took.len() * 99 / 100).copied().unwrap_or(0) / 1_000
}

const BROWNOUT_0: &str = r#"
[[fault]]
at = "1s"
for = "4s"
kind = "brownout"
rate = 0.6
target = "search-0"
"#;

#[test]
fn the_breaker_trips_on_its_failure_rate_only_when_the_rate_is_set() {
    let base = "balancer = \"round-robin\"\nbreaker = { consecutive_failures = 0, min_calls = 10, window = \"2s\", failure_rate = ";
    let on = run(&world(&format!("{base}0.5 }}"), "", "", BROWNOUT_0));
    let off = run(&world(&format!("{base}0 }}"), "", "", BROWNOUT_0));
    assert!(opened(&on, "search-0") >= 1, "{:#?}", on.events);
    assert_eq!(opened(&off, "search-0"), 0, "{:#?}", off.events);
}

#[test]
fn the_breaker_trips_on_slow_calls_only_when_the_slow_call_rate_is_set() {
    let latency =
        "[[fault]]\nat = \"1s\"\nfor = \"4s\"\nkind = \"latency\"\nlatency = \"150ms\"\ntarget = \"search-0\"";
    let base = "balancer = \"round-robin\"\nbreaker = { consecutive_failures = 0, failure_rate = 0, min_calls = 10, window = 20, slow_call_duration = \"100ms\", slow_call_rate = ";
    let on = run(&world(&format!("{base}0.5 }}"), "", "", latency));
    let off = run(&world(&format!("{base}0 }}"), "", "", latency));
    assert!(opened(&on, "search-0") >= 1, "{:#?}", on.events);
    assert_eq!(opened(&off, "search-0"), 0);
    assert!(
        p99_ms(&on) < p99_ms(&off),
        "p99 {} ms with the slow-call breaker, {} ms without",
        p99_ms(&on),
        p99_ms(&off)
    );
}

#[test]
fn outlier_ejection_follows_its_deviation_factor() {
    let gray = "[[fault]]\nat = \"0s\"\nfor = \"6s\"\nkind = \"brownout\"\nrate = 0.3\ntarget = \"search-0\"";
    let base = "balancer = \"round-robin\"\nbreaker = { consecutive_failures = 0, failure_rate = 0 }\noutlier = { interval = \"1s\", request_volume = 20, stdev_factor = ";
    let on = run(&world(&format!("{base}1.0 }}"), "", "", gray));
    let off = run(&world(&format!("{base}0 }}"), "", "", gray));
    assert!(events(&on, "search-0", |w| *w == What::Ejected) >= 1, "{:#?}", on.events);
    assert_eq!(events(&off, "search-0", |w| *w == What::Ejected), 0);
    assert!(
        on.attempts < off.attempts,
        "an ejected server fails no calls to retry: {} vs {}",
        on.attempts,
        off.attempts
    );
}

/// Every server fails 30% of calls.
const FLAKY: &str = "error_rate = 0.3";
/// Breakers off: at 30% errors on every replica, five failures in a row open each breaker about
/// once in 6 s, which would hide what the retry keys do.
const NO_BREAKER: &str = "breaker = { consecutive_failures = 0, failure_rate = 0 }";

#[test]
fn max_attempts_and_the_per_tool_override_decide_how_often_a_call_is_tried() {
    let budget = format!("{NO_BREAKER}\nretry.budget = {{ ratio = 5.0 }}");
    let one = run(&world(&format!("{budget}\nretry.max_attempts = 1"), FLAKY, "", ""));
    let three = run(&world(&format!("{budget}\nretry.max_attempts = 3"), FLAKY, "", ""));
    let overridden = run(&world(
        &format!("{budget}\nretry.max_attempts = 3\ntools = {{ search__lookup = {{ max_attempts = 1 }} }}"),
        FLAKY,
        "",
        "",
    ));
    assert!(three.success_rate() > one.success_rate() + 0.15, "{} vs {}", three.success_rate(), one.success_rate());
    assert_eq!(one.attempts, one.calls.len() as u64, "one attempt per call");
    assert_eq!(overridden.attempts, overridden.calls.len() as u64, "the tool's override wins");
}

#[test]
fn an_empty_retry_budget_allows_no_retry() {
    let empty = run(&world(&format!("{NO_BREAKER}\nretry.budget = {{ ratio = 0, min_per_sec = 0 }}"), FLAKY, "", ""));
    let default = run(&world(NO_BREAKER, FLAKY, "", ""));
    assert_eq!(empty.attempts, empty.calls.len() as u64);
    assert!(default.attempts > default.calls.len() as u64);
}

#[test]
fn the_backoff_base_sets_how_long_a_retry_waits() {
    let retry = |base: &str, cap: &str| {
        format!(
            "{NO_BREAKER}\nretry = {{ base = \"{base}\", cap = \"{cap}\", backoff = \"none\", budget = {{ ratio = 5.0 }} }}"
        )
    };
    let fast = run(&world(&retry("1ms", "2ms"), FLAKY, "", ""));
    let slow = run(&world(&retry("300ms", "1s"), FLAKY, "", ""));
    assert!(p99_ms(&slow) >= 300, "p99 {} ms", p99_ms(&slow));
    assert!(p99_ms(&fast) < 100, "p99 {} ms", p99_ms(&fast));
}

/// search-0 is 100 ms away each way for the whole run.
const SLOW_0: &str =
    "[[fault]]\nat = \"0s\"\nfor = \"6s\"\nkind = \"latency\"\nlatency = \"100ms\"\ntarget = \"search-0\"";

#[test]
fn a_percentile_hedge_cuts_the_tail_unless_the_tool_opts_out() {
    // A budget large enough for every slow call's hedge: with the default budget (0.2 of the
    // calls plus 10 per second) hedges stop once it is spent, which is the budget's job.
    let rr = "balancer = \"round-robin\"\nretry.budget = { ratio = 2.0 }";
    // Five samples before the percentile is known: fewer slow calls go unhedged at the start
    // than one in a hundred, so p99 shows the hedged tail.
    let hedged = run(&world(&format!("{rr}\nhedge = {{ percentile = 0.6, min_samples = 5 }}"), "", "", SLOW_0));
    let plain = run(&world(rr, "", "", SLOW_0));
    let opted_out = run(&world(
        &format!(
            "{rr}\nhedge = {{ percentile = 0.6, min_samples = 5 }}\ntools = {{ search__lookup = {{ hedge = false }} }}"
        ),
        "",
        "",
        SLOW_0,
    ));
    assert!(p99_ms(&hedged) * 2 < p99_ms(&plain), "p99 {} ms hedged, {} ms not", p99_ms(&hedged), p99_ms(&plain));
    assert!(hedged.attempts > hedged.calls.len() as u64, "hedges are attempts");
    assert_eq!(opted_out.attempts, opted_out.calls.len() as u64, "no hedge for a tool that opts out");
}

#[test]
fn a_quorum_larger_than_the_honest_replicas_fails_while_one_lies() {
    let liar = "[[fault]]\nat = \"1s\"\nfor = \"4s\"\nkind = \"byzantine\"\ntarget = \"search-2\"";
    let two = run(&world("", "", "aggregate = { quorum = 2 }", liar));
    let three = run(&world("", "", "aggregate = { quorum = 3 }", liar));
    assert!(two.violations.is_empty(), "{:?}", two.violations);
    assert!(two.success_rate() > 0.99, "{}", two.success_rate());
    assert!(three.success_rate() < 0.5, "three of three cannot agree while one lies: {}", three.success_rate());
}

#[test]
fn health_checks_notice_a_silent_server_as_fast_as_their_interval_and_threshold_allow() {
    // search-0 holds every message for 3 s from 1 s.
    let hold = "[[fault]]\nat = \"1s\"\nfor = \"3s\"\nkind = \"hold\"\ntarget = \"search-0\"";
    let first_disconnect = |r: &RunReport| {
        r.events.iter().find(|e| e.server == "search-0" && e.what == What::Disconnected).map(|e| e.t_us)
    };
    let quick =
        run(&world("health = { interval = \"100ms\", timeout = \"50ms\", unhealthy_threshold = 2 }", "", "", hold));
    let patient =
        run(&world("health = { interval = \"100ms\", timeout = \"50ms\", unhealthy_threshold = 1000 }", "", "", hold));
    // Two failed checks 100 ms apart end the session within about 0.3 s of the hold; with a
    // threshold of 1,000 only the calls' own timeouts (500 ms, three in a row) end it.
    let quick_at = first_disconnect(&quick).expect("two failed checks end the session");
    assert!(quick_at < 1_350_000, "noticed at {quick_at} us, the hold began at 1 s");
    let patient_at = first_disconnect(&patient).unwrap_or(u64::MAX);
    assert!(patient_at >= 1_500_000, "ended at {patient_at} us, before any call could time out: {:#?}", patient.events);
}

#[test]
fn a_shorter_peak_ewma_decay_brings_traffic_back_sooner_after_a_latency_spike() {
    let spike = "[[fault]]\nat = \"1s\"\nfor = \"2s\"\nkind = \"latency\"\nlatency = \"200ms\"\ntarget = \"search-0\"";
    let after_heal = |r: &RunReport| {
        r.calls
            .iter()
            .filter(|c| (3_000_000..4_000_000).contains(&c.start_us))
            .filter(|c| matches!(&c.end, Some(gauntlet_sim::CallEnd::Ok { server, .. }) if server == "search-0"))
            .count()
    };
    let quick = run(&world("peak_ewma = { decay = \"200ms\" }", "", "", spike));
    let slow = run(&world("peak_ewma = { decay = \"1m\" }", "", "", spike));
    assert!(
        after_heal(&quick) > after_heal(&slow) + 20,
        "calls served by search-0 in the second after the spike: {} with a 200 ms decay, {} with 1 m",
        after_heal(&quick),
        after_heal(&slow)
    );
}

#[test]
fn the_reconnect_cap_bounds_how_long_a_repaired_server_waits_to_be_connected_again() {
    // Every replica cut off for 5 s: connects are refused all that time, and the waits grow.
    let outage = "[[fault]]\nat = \"0s\"\nfor = \"5s\"\nkind = \"partition\"\ntarget = \"search\"";
    let back_after = |r: &RunReport| {
        r.events
            .iter()
            .filter(|e| e.t_us >= 5_000_000 && e.what == What::Connected)
            .map(|e| e.t_us - 5_000_000)
            .max()
            .expect("every server reconnects")
    };
    let short = run(&world("reconnect = { cap = \"300ms\" }", "", "", outage));
    let long = run(&world("reconnect = { cap = \"30s\" }", "", "", outage));
    assert!(back_after(&short) <= 400_000, "the last server was back {} us after the repair", back_after(&short));
    assert!(back_after(&long) > back_after(&short), "{} vs {}", back_after(&long), back_after(&short));
}

#[test]
fn a_scenario_under_on_collision_naming_calls_the_bare_names_the_client_exposes() {
    let text = r#"
name = "bare-names"
description = "one group: on-collision keeps the tool's own name"
seed = 1
duration = "3s"

[[fleet]]
group = "search"
count = 2
tools = ["lookup"]

[client]
namespacing = "on-collision"

[workload]
arrivals = { poisson = 50 }
mix = [{ tool = "lookup" }]
"#;
    let r = run(text);
    assert!(!r.calls.is_empty());
    assert!(r.success_rate() > 0.99, "{}", r.success_rate());
}

#[test]
fn recovery_from_a_fault_that_never_heals_in_the_run_is_not_measured_and_its_bound_fails() {
    let text = world(
        "",
        "",
        "",
        "[[fault]]\nat = \"4s\"\nfor = \"10s\"\nkind = \"partition\"\ntarget = \"search-0\"\n\n[expect]\nrecovery = \"<= 5s\"",
    );
    let file = gauntlet_sim::file::parse("never-heals.toml", &text).expect("valid");
    let results = file.run_seed(file.seeds[0], &file.variants);
    let r = &results[0];
    assert_eq!(r.recovery_ms, None);
    let recovery = r.expectations.iter().find(|e| e.name == "recovery").expect("checked");
    assert!(!recovery.pass);
    assert_eq!(recovery.measured, "not measured");
}

#[test]
fn a_wrong_answer_is_counted_as_wrong_never_as_a_success_and_majority_returns_none() {
    let liar = "[[fault]]\nat = \"1s\"\nfor = \"4s\"\nkind = \"byzantine\"\ntarget = \"search-2\"";
    let single = run(&world("balancer = \"round-robin\"", "", "", liar));
    let majority = run(&world("", "", "aggregate = \"majority\"", liar));
    let wrong = |r: &RunReport| {
        r.calls.iter().filter(|c| matches!(c.end, Some(gauntlet_sim::CallEnd::Ok { correct: false, .. }))).count()
    };
    // Round-robin sends a third of the calls to the liar for 4 s of 6.
    assert!(wrong(&single) > 100, "{} wrong answers", wrong(&single));
    assert!(single.success_rate() < 0.85, "wrong answers are not successes: {}", single.success_rate());
    assert_eq!(wrong(&majority), 0);
    assert!(majority.success_rate() > 0.99, "{}", majority.success_rate());
}
