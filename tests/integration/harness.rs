//! The test harness a user calls from their own `cargo test`: the same verdicts, messages and
//! reproduce lines as the CLI, and their own strategies by name.

use std::path::PathBuf;

use gauntlet::Harness;
use gauntlet_core::balance::{RoundRobin, Strategy};
use gauntlet_reports::{Verdict, Violation};

const SCENARIO: &str = r#"name = "harness-too-fast"
description = "Expects a p50 the servers cannot give: the run must fail, and say so."
seed = 5
duration = "2s"

[[fleet]]
group = "g"
count = 2
tools = ["t"]
latency = { constant = "10ms" }

[workload]
arrivals = { poisson = 100 }
mix = [{ tool = "g__t" }]
deadline = "1s"

[expect]
p50 = "<= 1ms"
"#;

fn scenario_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gauntlet-harness-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).expect("written");
    path
}

#[test]
fn a_failing_scenario_fails_with_the_cli_s_expectation_line_and_reproduce_line() {
    let path = scenario_file("too-fast", SCENARIO);
    let outcome = Harness::new().run_paths(std::slice::from_ref(&path)).expect("a valid file");
    assert!(!outcome.passed());
    let failed: Vec<_> = outcome.failed().collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].verdict, Verdict::Fail);
    assert!(failed[0].failed_expectations().any(|e| e.name == "p50"));
    let report = outcome.report();
    assert!(report.contains("  expected p50 <= 1ms, measured "), "{report}");
    assert!(
        report.contains(&format!("  reproduce: gauntlet run {} --seed 5 --strategy p2c-peak-ewma", path.display()))
    );
    assert!(std::panic::catch_unwind(|| outcome.assert_passed()).is_err(), "assert_passed must fail");
    // A binary built on the library names itself in the reproduce line.
    let mine = Harness::new().program("my-gauntlet").run_paths(std::slice::from_ref(&path)).expect("a valid file");
    assert!(mine.report().contains(&format!("  reproduce: my-gauntlet run {} --seed 5", path.display())));
}

#[test]
fn a_registered_strategy_runs_a_scenario_by_name_and_an_invalid_file_is_reported_where_it_is_wrong() {
    let mine =
        gauntlet_core::balance::register("harness-rotation", "round-robin, registered", || Box::new(RoundRobin::new()))
            .expect("a valid name");
    let steady = SCENARIO.replace("p50 = \"<= 1ms\"", "success_rate = \">= 0.99\"");
    let path = scenario_file("steady", &steady);
    let outcome = Harness::new().strategy(mine).seeds(2).run_paths(std::slice::from_ref(&path)).expect("valid");
    let strategies: Vec<&str> = outcome.runs.iter().map(|r| r.strategy.as_str()).collect();
    assert_eq!(strategies, ["harness-rotation", "harness-rotation"]);
    outcome.assert_passed();
    // A scenario file can name it too.
    let named = steady.replace("[workload]", "[client]\nbalancer = \"harness-rotation\"\n\n[workload]");
    let path = scenario_file("named", &named);
    let outcome = Harness::new().run_paths(&[path]).expect("valid");
    assert_eq!(outcome.runs[0].strategy, mine.name());
    assert!(outcome.runs[0].violations.iter().all(|v| !matches!(v, Violation::Stopped { .. })));
    // An unknown one is an error at its value.
    let unknown = steady.replace("[workload]", "[client]\nbalancer = \"nobody-registered-this\"\n\n[workload]");
    let path = scenario_file("unknown", &unknown);
    let err = Harness::new().run_paths(std::slice::from_ref(&path)).expect_err("unknown balancer");
    assert!(
        err.message.starts_with(&format!("{}:13:12: unknown balancer `nobody-registered-this`", path.display())),
        "{err}"
    );
    assert!(Strategy::all().contains(&mine));
}

#[test]
fn leaving_out_a_scenario_that_does_not_exist_is_an_error_not_a_silent_no_op() {
    let err = Harness::new().except(&["no-such-scenario"]).run_bundled().expect_err("a typo is caught");
    assert_eq!(err.message, "except: no scenario is named `no-such-scenario`");
}
