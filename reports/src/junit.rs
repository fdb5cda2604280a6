//! JUnit XML: one test suite per scenario, one test case per strategy × seed.

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::model::{RunResult, Verdict};

/// `runs` as a JUnit XML report named `name`. A failed case's message lists the violations
/// and failed expectations, and its text ends with the command that reproduces it.
pub fn junit(name: &str, runs: &[RunResult]) -> String {
    let mut report = Report::new(name);
    let mut suites: Vec<TestSuite> = Vec::new();
    for run in runs {
        let at = match suites.iter().position(|s| s.name.as_str() == run.scenario) {
            Some(i) => i,
            None => {
                suites.push(TestSuite::new(run.scenario.as_str()));
                suites.len() - 1
            }
        };
        let status = match run.verdict {
            Verdict::Pass => TestCaseStatus::success(),
            Verdict::Fail => {
                let mut reasons: Vec<String> = run.violations.iter().map(ToString::to_string).collect();
                reasons.extend(
                    run.failed_expectations()
                        .map(|e| format!("expected {} {}, measured {}", e.name, e.expected, e.measured)),
                );
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status.set_message(reasons.join("; "));
                status.set_description(format!("{}\nreproduce: {}\n", reasons.join("\n"), run.reproduce()));
                status
            }
        };
        let mut case = TestCase::new(format!("{} [{}] seed {}", run.scenario, run.label(), run.seed), status);
        case.set_classname(format!("gauntlet.{}", run.scenario));
        case.set_system_out(format!(
            "digest: {}\ncalls: {} ok {} failed {} lost {}\n",
            run.digest, run.calls.total, run.calls.ok, run.calls.failed, run.calls.lost
        ));
        suites[at].add_test_case(case);
    }
    report.add_test_suites(suites);
    report.to_string().expect("a report of strings always serializes")
}
