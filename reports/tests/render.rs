//! The text renderers on fixed results (`tests/fixtures`: a small latency spike under a good
//! policy, `base`, and a bad one, `head`), as snapshots: the Markdown summary, the JUnit report,
//! the summary lines and the diff. A change to any of them shows as a snapshot to review.

use std::path::Path;

use gauntlet_reports::diff::{Status, Thresholds, diff};
use gauntlet_reports::{RunResult, junit, markdown, summary_line};

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
