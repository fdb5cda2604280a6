//! Workflow workloads: the checkers pass an honest executor and catch each broken one; a crash
//! of the client's host is survived through the journal; runs are deterministic.

use gauntlet_core::workflow::Status;
use gauntlet_reports::Violation;
use gauntlet_sim::{CallEnd, Failure, RunReport, Scenario};

/// Orders: reserve stock and charge (both truly unsafe, each with a compensation), then ship
/// (read-only) with the charge's result.
const ORDERS: &str = r#"
name = "orders"
description = "orders across three groups"
seed = 3
duration = "6s"

[[fleet]]
group = "stock"
count = 2
unsafe_tools = ["reserve"]
idempotent_tools = ["release"]
latency = { median = "10ms", p99 = "30ms" }

[[fleet]]
group = "pay"
count = 2
unsafe_tools = ["charge"]
idempotent_tools = ["refund"]
latency = { median = "20ms", p99 = "60ms" }

[[fleet]]
group = "ship"
count = 2
tools = ["label"]
latency = { median = "10ms", p99 = "30ms" }

[client]
call_timeout = "400ms"

[workflow]
[[workflow.step]]
name = "reserve"
tool = "stock__reserve"
args = { order = "${input.run}" }
compensate = { tool = "stock__release", args = { order = "${input.run}" } }

[[workflow.step]]
name = "charge"
tool = "pay__charge"
args = { order = "${input.run}" }
after = ["reserve"]
compensate = { tool = "pay__refund", args = { order = "${input.run}" } }

[[workflow.step]]
name = "ship"
tool = "ship__label"
# The whole result of `charge` (a broken executor that hands it over before it exists
# passes `null`, and the run still completes: the output checker must catch it).
args = { receipt = "${steps.charge}" }

[workload]
arrivals = { callers = 4 }
deadline = "5s"
"#;

fn scenario(extra: &str) -> Scenario {
    let text = format!("{ORDERS}\n{extra}");
    let file = gauntlet_sim::file::parse("orders.toml", &text).unwrap_or_else(|e| panic!("{e}"));
    Scenario { keep_calls: true, ..file.scenario }
}

fn run(extra: &str) -> RunReport {
    gauntlet_sim::run(&scenario(extra)).expect("runs")
}

const CRASH: &str = "[[fault]]\nat = \"2s\"\nfor = \"1s\"\nkind = \"crash\"\ntarget = \"client\"\n";
const SHIP_DOWN: &str = "[[fault]]\nat = \"2s\"\nfor = \"2s\"\nkind = \"brownout\"\ntarget = \"ship\"\n";

fn count(report: &RunReport, f: impl Fn(&Violation) -> bool) -> usize {
    report.violations.iter().filter(|v| f(v)).count()
}

fn ended(report: &RunReport, status: Status) -> usize {
    report.calls.iter().filter(|c| c.end == Some(CallEnd::Failed(Failure::Workflow(status)))).count()
}

#[test]
fn a_crash_of_the_client_host_is_survived_without_an_effect_twice_and_unsafe_steps_in_flight_are_parked() {
    let report = run(CRASH);
    assert_eq!(report.violations, Vec::new(), "an honest executor breaks no rule");
    assert!(report.issued > 50, "runs were made: {}", report.issued);
    // Runs whose unsafe step was sent and not answered when the host crashed are parked as
    // unknown, not resent; every other run completed.
    let unknown = ended(&report, Status::Unknown);
    assert!(unknown >= 1, "some unsafe step was in flight at the crash");
    let ok = report.calls.iter().filter(|c| c.is_ok()).count();
    assert_eq!(ok + unknown, report.calls.len(), "every run completed or was parked");
    // Some completed run was caught by the crash: it took the second down and more.
    assert!(report.calls.iter().any(|c| c.is_ok() && c.took_us().is_some_and(|t| t > 1_000_000)));
}

#[test]
fn a_resume_that_forgets_the_journal_is_caught_running_an_unsafe_step_twice() {
    let report =
        gauntlet_sim::run(&Scenario { sabotage: Some(gauntlet_sim::Sabotage::RerunJournaled), ..scenario(CRASH) })
            .expect("runs");
    assert!(count(&report, |v| matches!(v, Violation::WorkflowEffectTwice { .. })) > 0, "{:?}", report.violations);
}

#[test]
fn a_failed_step_after_two_effects_compensates_both_and_an_executor_skipping_that_is_caught() {
    let honest = run(SHIP_DOWN);
    assert_eq!(honest.violations, Vec::new());
    let compensated = ended(&honest, Status::Compensated) as u64;
    assert!(compensated > 10, "runs during the brownout failed and were compensated");
    // The per-step table agrees with the runs: every compensated run failed at `ship` and
    // undid `reserve` and `charge`; every step sent ended one way or another.
    let names: Vec<&str> = honest.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["reserve", "charge", "ship"]);
    let [reserve, charge, ship] = &honest.steps[..] else { panic!("{:?}", honest.steps) };
    assert_eq!((ship.failed, reserve.compensated, charge.compensated), (compensated, compensated, compensated));
    assert_eq!(ship.compensated, 0, "ship has no compensation");
    for s in &honest.steps {
        assert_eq!(s.sent, s.done + s.failed + s.unknown + s.cancelled, "{s:?}");
    }
    assert_eq!(gauntlet_sim::summarize(&honest).steps, honest.steps, "the results carry the table");
    let broken = gauntlet_sim::run(&Scenario {
        sabotage: Some(gauntlet_sim::Sabotage::SkipCompensation),
        ..scenario(SHIP_DOWN)
    })
    .expect("runs");
    assert!(count(&broken, |v| matches!(v, Violation::NotCompensated { .. })) > 10, "{:?}", broken.violations);
}

#[test]
fn an_executor_acknowledging_a_step_when_sent_is_caught_breaking_dependencies_and_the_output() {
    let broken = gauntlet_sim::run(&Scenario { sabotage: Some(gauntlet_sim::Sabotage::AckOnSend), ..scenario("") })
        .expect("runs");
    assert!(count(&broken, |v| matches!(v, Violation::DependencyBroken { .. })) > 0, "{:?}", broken.violations);
    assert!(count(&broken, |v| matches!(v, Violation::WorkflowDiverged { .. })) > 0);
    assert_eq!(run("").violations, Vec::new());
}

#[test]
fn a_workflow_run_with_a_crash_is_deterministic() {
    let (a, b) = (run(CRASH), run(CRASH));
    assert_eq!(a.digest, b.digest);
    assert_eq!(a.calls, b.calls);
}

#[test]
fn a_crash_at_any_moment_of_a_run_leaves_every_run_completed_or_parked_and_no_effect_twice() {
    // One run at a time, the crash moved through it 7 ms at a time: before and after each
    // intent, each send, each answer and each journaled result.
    for k in 0..16u64 {
        let at = 1_000 + 7 * k;
        let extra = format!("[[fault]]\nat = \"{at}ms\"\nfor = \"500ms\"\nkind = \"crash\"\ntarget = \"client\"\n");
        let mut s = scenario(&extra);
        s.workload.arrivals = gauntlet_sim::Arrivals::Callers(1);
        s.duration = std::time::Duration::from_secs(3);
        let report = gauntlet_sim::run(&s).expect("runs");
        assert_eq!(report.violations, Vec::new(), "crash at {at} ms");
        let parked = ended(&report, Status::Unknown);
        let ok = report.calls.iter().filter(|c| c.is_ok()).count();
        assert_eq!(ok + parked, report.calls.len(), "crash at {at} ms: {:?}", report.calls.last());
        assert!(parked <= 1, "crash at {at} ms: at most the run in flight is parked");
    }
}

#[test]
fn runs_started_by_poisson_arrivals_are_counted_before_they_end() {
    // Regression: only closed-loop arrivals counted the runs in flight, so the first Poisson
    // run to end took the count below zero.
    let text = ORDERS.replace("arrivals = { callers = 4 }", "arrivals = { poisson = 20 }");
    let file = gauntlet_sim::file::parse("poisson.toml", &text).unwrap_or_else(|e| panic!("{e}"));
    let report = gauntlet_sim::run(&file.scenario).expect("runs");
    assert_eq!(report.violations, Vec::new());
    assert!(report.issued > 50, "{} runs", report.issued);
}
