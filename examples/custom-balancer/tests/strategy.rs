//! `least-latency` through everything a built-in strategy goes through: the conformance kit,
//! the bundled suite (through the harness), `compare` through this crate's own binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use custom_balancer::{LeastLatency, NAME};
use gauntlet_core::balance::{Balancer, PickContext, Strategy};
use gauntlet_core::{FleetView, SeededRng, ServerId};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn strategy() -> Strategy {
    custom_balancer::registry().install().expect("a valid registry")[0]
}

#[test]
fn it_passes_the_conformance_kit() {
    for seed in 0..8 {
        gauntlet_core::testing::check_balancer(LeastLatency::new, seed, 300).unwrap_or_else(|v| panic!("{v}"));
    }
}

/// The same strategy with a bug a user could write: it forgets the servers a retry excluded.
struct ForgetsExclusions;

impl Balancer for ForgetsExclusions {
    fn pick(&mut self, view: &FleetView<'_>, ctx: &PickContext<'_>, rng: &mut SeededRng) -> Option<ServerId> {
        let everyone = PickContext { exclude: &[], ..*ctx };
        LeastLatency.pick(view, &everyone, rng)
    }
}

#[test]
fn the_kit_catches_the_same_strategy_when_it_forgets_exclusions() {
    let caught = (0..8).find_map(|seed| gauntlet_core::testing::check_balancer(|| ForgetsExclusions, seed, 300).err());
    let violation = caught.expect("the kit finds the bug");
    assert!(violation.what.contains("excluded"), "{violation}");
}

#[test]
fn it_passes_the_proptest_kit_with_fleet_changes_between_picks() {
    let kit = gauntlet_core::testing::kit::Kit {
        regressions: Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kit.proptest-regressions")),
        ..Default::default()
    };
    gauntlet_core::testing::kit::check(LeastLatency::new, &kit).unwrap_or_else(|f| panic!("{f}"));
}

#[test]
fn it_picks_without_allocating_once_warm() {
    gauntlet_core::testing::kit::check_allocations(LeastLatency::new).unwrap_or_else(|f| panic!("{f}"));
}

#[test]
fn the_proptest_kit_shrinks_the_exclusion_bug_to_one_excluding_pick() {
    use gauntlet_core::testing::kit::{Kit, Step, check};
    let failure = check(|| ForgetsExclusions, &Kit::default()).expect_err("the kit finds the bug");
    assert!(failure.message.contains("excluded"), "{failure}");
    let script = failure.script.expect("a minimal script");
    let last = script.steps.last().expect("a step");
    assert!(matches!(last, Step::Pick { exclude, .. } if *exclude != 0), "{script:#?}");
    let joins = script.steps.iter().filter(|s| matches!(s, Step::Join { .. })).count();
    assert_eq!(script.servers.len() + joins, 1, "shrunk to one server: {script:#?}");
    assert!(script.steps.len() <= 6, "shrunk to a few steps: {script:#?}");
}

#[test]
fn the_bundled_suite_passes_under_it() {
    // `maglev-affinity` is about keeping each affinity key on one server, which least-latency
    // does not claim (it fails there: most keys move); every other hypothesis must hold.
    let outcome = gauntlet::Harness::new()
        .strategy(strategy())
        .except(&["maglev-affinity"])
        .program("custom-balancer")
        .run_bundled()
        .expect("the bundled scenarios are valid");
    let ours = outcome.runs.iter().filter(|r| r.strategy == NAME).count();
    assert!(ours >= 20, "{ours} runs under {NAME}:\n{}", outcome.report());
    outcome.assert_passed();
}

#[test]
fn its_own_binary_compares_it_with_round_robin_under_a_latency_spike() {
    let out = std::env::temp_dir().join(format!("custom-balancer-compare-{}", std::process::id()));
    let status = Command::new(env!("CARGO_BIN_EXE_custom-balancer"))
        .current_dir(repository())
        .args(["compare", "scenarios/latency-spike.toml", "--strategies", "least-latency,round-robin", "--out"])
        .arg(&out)
        .output()
        .expect("runs");
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let p99 = |strategy: &str| -> f64 {
        let text = std::fs::read_to_string(out.join(format!("latency-spike.{strategy}.seed-3.json"))).expect("results");
        let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        v["latency"]["p99"].as_f64().expect("a p99")
    };
    let (ours, round_robin) = (p99(NAME), p99("round-robin"));
    // Round-robin sends a quarter of the calls into the 250 ms spike; a latency-aware pick does not.
    assert!(ours * 4.0 < round_robin, "least-latency p99 {ours} ms, round-robin {round_robin} ms");
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn its_own_binary_lists_it_beside_the_built_in_strategies() {
    let out = Command::new(env!("CARGO_BIN_EXE_custom-balancer")).arg("strategies").output().expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = text.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert!(names.contains(&NAME) && names.contains(&"p2c-peak-ewma"), "{text}");
}
