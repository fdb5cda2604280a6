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
            "envelopes/payments.toml",
            "--runs",
            "6",
            "--jobs",
            jobs,
            "--sabotage",
            "replay-unsafe",
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
    assert!(printed(&a.stdout).contains("duplicate-side-effect@p2c-peak-ewma"), "{}", printed(&a.stdout));
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
    assert!(printed(&run.stdout).contains("to an unsafe tool took effect"), "{}", printed(&run.stdout));
    let _ = (std::fs::remove_dir_all(&one), std::fs::remove_dir_all(&two));
}

#[test]
fn a_correct_client_passes_and_a_printed_run_is_a_scenario_file() {
    let out = scratch("clean");
    let o = gauntlet(&["explore", "envelopes/tiers.toml", "--runs", "4", "--out", out.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(0), "{}{}", printed(&o.stdout), printed(&o.stderr));
    assert!(printed(&o.stdout).contains("runs: 4, clean: 4, findings: 0"), "{}", printed(&o.stdout));
    // Nothing found: only the summary is written (so shards merge), with no finding.
    let names: Vec<String> = std::fs::read_dir(&out)
        .expect("the out directory")
        .map(|e| e.expect("an entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["exploration.json"]);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("exploration.json")).expect("read")).expect("JSON");
    assert_eq!(summary["runs"], 4);
    assert_eq!(summary["findings"], serde_json::json!([]));
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
    let o = gauntlet(&["explore", "envelopes/replicas.toml", "--runs", "10", "--print-run", "12"]);
    assert_eq!(o.status.code(), Some(2), "run 12 is not one of 10 runs");
    let o = gauntlet(&["explore", "envelopes/replicas.toml", "--shard", "2/2", "--print-run", "4"]);
    assert_eq!(o.status.code(), Some(2), "run 4 is shard 1/2's");
    let o = gauntlet(&["explore", "scenarios/steady-state.toml"]);
    assert_eq!(o.status.code(), Some(2), "a scenario without [explore] is not an envelope");
    let o = gauntlet(&["run", "envelopes/replicas.toml"]);
    assert_eq!(o.status.code(), Some(2), "an envelope is not a scenario");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn shards_merge_into_the_unsharded_findings_and_a_missing_or_repeated_shard_is_named() {
    let dirs: Vec<std::path::PathBuf> = ["all", "s1", "s2"].iter().map(|n| scratch(&format!("merge-{n}"))).collect();
    let explore = |dir: &std::path::Path, shard: Option<&str>| {
        let mut args = vec![
            "explore",
            "envelopes/payments.toml",
            "--runs",
            "6",
            "--sabotage",
            "replay-unsafe",
            "--out",
            dir.to_str().expect("utf-8"),
        ];
        if let Some(s) = shard {
            args.extend(["--shard", s]);
        }
        gauntlet(&args)
    };
    let all = explore(&dirs[0], None);
    assert_eq!(all.status.code(), Some(1), "{}", printed(&all.stderr));
    // A shard exits 1 if it found something, 0 if not; each writes its summary.
    for (dir, shard) in [(&dirs[1], "1/2"), (&dirs[2], "2/2")] {
        let o = explore(dir, Some(shard));
        assert!(matches!(o.status.code(), Some(0 | 1)), "{}", printed(&o.stderr));
    }
    // The finding lines of a summary: signature, runs and first run.
    let findings = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.contains(" runs (first: run "))
            .map(|l| {
                l.split(" runs (first: run ").next().unwrap_or("").split_whitespace().collect::<Vec<_>>().join(" ")
            })
            .collect()
    };
    let arg = |d: &std::path::PathBuf| d.to_str().expect("utf-8").to_owned();
    let merged = gauntlet(&["explore", "--merge", &arg(&dirs[1]), &arg(&dirs[2])]);
    assert_eq!(merged.status.code(), Some(1), "{}{}", printed(&merged.stdout), printed(&merged.stderr));
    let (whole, parts) = (printed(&all.stdout), printed(&merged.stdout));
    assert!(!findings(&whole).is_empty());
    assert_eq!(findings(&whole), findings(&parts), "{whole}\n{parts}");
    assert!(parts.contains("runs: 6, clean:"), "{parts}");
    // A missing shard, and one merged twice, are named.
    let missing = gauntlet(&["explore", "--merge", &arg(&dirs[2])]);
    assert!(printed(&missing.stdout).contains("shard 1/2 is missing"), "{}", printed(&missing.stdout));
    assert_eq!(missing.status.code(), Some(1));
    let twice = gauntlet(&["explore", "--merge", &arg(&dirs[1]), &arg(&dirs[1]), &arg(&dirs[2])]);
    assert!(printed(&twice.stdout).contains("shard 1/2 is merged already"), "{}", printed(&twice.stdout));
    // A summary claiming a split into 2^64 - 1 shards: counted, a few named, at once.
    let path = dirs[2].join("exploration.json");
    let text = std::fs::read_to_string(&path).expect("read").replace("\"2/2\"", "\"2/18446744073709551615\"");
    std::fs::write(&path, text).expect("write");
    let huge = gauntlet(&["explore", "--merge", &arg(&dirs[2])]);
    assert_eq!(huge.status.code(), Some(1), "{}", printed(&huge.stderr));
    let said = printed(&huge.stdout);
    assert!(
        said.contains("18446744073709551614 shards of 18446744073709551615 are missing: 1/18446744073709551615,"),
        "{said}"
    );
    assert!(said.lines().count() < 40, "{said}");
    for d in &dirs {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn a_timed_exploration_makes_whole_batches_and_prints_the_runs_that_replay_it() {
    let out = scratch("timed");
    let o = gauntlet(&["explore", "envelopes/payments.toml", "--time", "1ms", "--out", out.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(0), "{}{}", printed(&o.stdout), printed(&o.stderr));
    let text = printed(&o.stdout);
    // However short the time, one whole batch.
    assert!(text.contains("made 64 runs;") && text.contains("--runs 64`"), "{text}");
    assert!(text.contains("runs: 64, clean: 64"), "{text}");
    let bad = gauntlet(&["explore", "envelopes/payments.toml", "--time", "soon"]);
    assert_eq!(bad.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&out);
}
