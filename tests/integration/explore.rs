//! `gauntlet explore` from the command line: findings, shrunk files that replay, determinism
//! across processes and jobs, bad envelopes.

use crate::support::{gauntlet, printed};

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("gauntlet-explore-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn a_sabotaged_client_is_found_the_same_way_by_any_jobs_and_its_shrunk_file_fails_under_run() {
    let (one, two) = (scratch("jobs1"), scratch("jobs2"));
    let explore = |jobs: &str, out: &std::path::Path| {
        gauntlet(&[
            "explore",
            "envelopes/replicas.toml",
            "--runs",
            "6",
            "--jobs",
            jobs,
            "--sabotage",
            "ignore-breaker",
            "--out",
            out.to_str().expect("a UTF-8 path"),
        ])
    };
    let (a, b) = (explore("1", &one), explore("2", &two));
    assert_eq!(a.status.code(), Some(1), "{}{}", printed(&a.stdout), printed(&a.stderr));
    assert_eq!(b.status.code(), Some(1));
    // The same findings and the same files, but for the header and the directory named.
    let body = |o: &std::process::Output, dir: &std::path::Path| {
        printed(&o.stdout).lines().skip(1).collect::<Vec<_>>().join("\n").replace(dir.to_str().expect("utf-8"), "OUT")
    };
    assert_eq!(body(&a, &one), body(&b, &two));
    assert!(printed(&a.stdout).contains("breaker-bypassed@p2c-peak-ewma"), "{}", printed(&a.stdout));
    let file = |dir: &std::path::Path| {
        std::fs::read_to_string(dir.join("finding-1.toml"))
            .expect("a finding file")
            .replace(dir.to_str().expect("utf-8"), "OUT")
    };
    assert_eq!(file(&one), file(&two));
    // The shrunk file is a scenario that fails the same way under `gauntlet run`.
    let path = one.join("finding-1.toml");
    let run = gauntlet(&["run", path.to_str().expect("utf-8")]);
    assert_eq!(run.status.code(), Some(1), "{}", printed(&run.stdout));
    assert!(printed(&run.stdout).contains("while its breaker was open"), "{}", printed(&run.stdout));
    let _ = (std::fs::remove_dir_all(&one), std::fs::remove_dir_all(&two));
}

#[test]
fn a_correct_client_passes_and_a_printed_run_is_a_scenario_file() {
    let out = scratch("clean");
    let o = gauntlet(&["explore", "envelopes/tiers.toml", "--runs", "4", "--out", out.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(0), "{}{}", printed(&o.stdout), printed(&o.stderr));
    assert!(printed(&o.stdout).contains("runs: 4, clean: 4, findings: 0"), "{}", printed(&o.stdout));
    assert!(!out.exists(), "nothing found, nothing written");
    // A run's schedule, printed, validates as a scenario.
    let printed_run = gauntlet(&["explore", "envelopes/tiers.toml", "--print-run", "3"]);
    assert_eq!(printed_run.status.code(), Some(0));
    std::fs::create_dir_all(&out).expect("scratch dir");
    let path = out.join("run-3.toml");
    std::fs::write(&path, &printed_run.stdout).expect("write");
    let v = gauntlet(&["validate", path.to_str().expect("utf-8")]);
    assert_eq!(v.status.code(), Some(0), "{}{}", printed(&v.stdout), printed(&v.stderr));
    assert!(printed(&printed_run.stdout).contains("[[fault]]"));
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn bad_envelopes_and_flags_are_bad_input_with_where() {
    let dir = scratch("bad");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let base = std::fs::read_to_string(crate::support::root().join("envelopes/replicas.toml")).expect("read");
    let cases = [
        ("faults = [1, 3]", "faults = [0, 99]", "is not a range in [0, 16]"),
        ("for = [\"100ms\", \"3s\"]", "for = [\"100ms\", \"30s\"]", "ends after"),
        ("kinds = [", "kinds = [\"volcano\", ", "`volcano`"),
    ];
    for (from, to, says) in cases {
        let path = dir.join("bad.toml");
        std::fs::write(&path, base.replace(from, to)).expect("write");
        let o = gauntlet(&["explore", path.to_str().expect("utf-8"), "--runs", "1"]);
        let err = printed(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{to}: {err}");
        assert!(err.contains(&format!("{}:", path.display())) && err.contains(says), "{to}: {err}");
        // The line and column of the key.
        let at = err.split(&format!("{}:", path.display())).nth(1).expect("a position");
        assert!(at.split(':').take(2).all(|n| n.parse::<usize>().is_ok_and(|n| n > 0)), "{err}");
    }
    let o = gauntlet(&["explore", "envelopes/replicas.toml", "--sabotage", "nope"]);
    assert_eq!(o.status.code(), Some(2));
    let o = gauntlet(&["explore", "scenarios/steady-state.toml"]);
    assert_eq!(o.status.code(), Some(2), "a scenario without [explore] is not an envelope");
    let o = gauntlet(&["run", "envelopes/replicas.toml"]);
    assert_eq!(o.status.code(), Some(2), "an envelope is not a scenario");
    let _ = std::fs::remove_dir_all(&dir);
}
