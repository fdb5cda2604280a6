//! The text renderers on fixed results (`tests/fixtures`: a small latency spike under a good
//! policy, `base`, and a bad one, `head`), as snapshots: the Markdown summary, the JUnit report,
//! the summary lines and the diff. A change to any of them shows as a snapshot to review.

use std::path::Path;

use gauntlet_reports::diff::{Status, Thresholds, diff};
use gauntlet_reports::{Page, RunResult, Verdict, Violation, html, junit, markdown, summary_line};

fn load(side: &str) -> Vec<RunResult> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(side);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the fixtures")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n != "manifest.json"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).expect("readable")).expect("results JSON"))
        .collect()
}

#[test]
fn the_markdown_summary_of_passing_and_failing_runs() {
    let mut runs = load("base");
    runs.extend(load("head"));
    insta::assert_snapshot!("markdown", markdown("Gauntlet suite", &runs));
}

#[test]
fn the_junit_report_has_a_case_per_run_and_a_failure_per_failed_one() {
    let mut runs = load("base");
    runs.extend(load("head"));
    insta::assert_snapshot!("junit", junit("gauntlet", &runs));
}

#[test]
fn the_summary_lines() {
    let lines: Vec<String> = load("base").iter().chain(&load("head")).map(summary_line).collect();
    insta::assert_snapshot!("summary_lines", lines.join("\n"));
}

#[test]
fn the_diff_of_a_worse_policy_names_each_regression() {
    let d = diff(&load("base"), &load("head"), &Thresholds::default());
    assert_eq!(d.count(Status::Regressed), 2);
    assert!(d.regressed());
    insta::assert_snapshot!("diff_regressed", d.markdown("base", "head"));
}

#[test]
fn the_diff_of_the_same_runs_says_no_behaviour_changed() {
    let d = diff(&load("base"), &load("base"), &Thresholds::default());
    assert_eq!(d.count(Status::Same), 2);
    assert!(!d.regressed());
    insta::assert_snapshot!("diff_same", d.markdown("base", "base"));
}

#[test]
fn the_diff_of_a_better_policy_is_a_change_not_a_regression() {
    let d = diff(&load("head"), &load("base"), &Thresholds::default());
    assert_eq!(d.count(Status::Changed), 2);
    assert!(!d.regressed());
    insta::assert_snapshot!("diff_improved", d.markdown("head", "base"));
}

#[test]
fn the_html_report_lists_the_events_around_a_timed_violation_and_no_others() {
    let mut run = load("head").remove(0);
    // A call that started at 2.5 s and took 0.2 s: the window is 1.5 s to 3.7 s.
    run.violations.push(Violation::DeadlineMissed { call: 7, took_us: 200_000, start_us: Some(2_500_000) });
    run.verdict = Verdict::Fail;
    let runs = [run];
    let page = html(&Page { title: "t", runs: &runs, base: None, notes: &[], program: "gauntlet" });
    let around =
        page.split("around it:").nth(1).expect("events around the violation").split("</ul>").next().unwrap_or("");
    assert!(around.contains("3.000 s search-2: latency ends"), "{around}");
    assert!(!around.contains("latency starts"), "the fault began 1.5 s before the call: {around}");
    assert!(!around.contains("connected"), "{around}");
}
