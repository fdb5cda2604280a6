//! `gauntlet suite`, `run`, `compare` and `validate` on scenario files: the bundled suite
//! passes and replays, broken files get their exact error, shards split the work.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{gauntlet, printed as text, root};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gauntlet-suite-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Each results JSON in `dir`, by file name (not its manifest).
fn results(dir: &Path) -> BTreeMap<String, Value> {
    std::fs::read_dir(dir)
        .expect("the out directory")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "json") && e.file_name() != "manifest.json")
        .map(|e| {
            let json = std::fs::read_to_string(e.path()).expect("readable");
            (e.file_name().to_string_lossy().into_owned(), serde_json::from_str(&json).expect("valid JSON"))
        })
        .collect()
}

#[test]
fn the_bundled_suite_passes_and_every_run_replays_to_the_same_digest() {
    let (a, b) = (scratch("a"), scratch("b"));
    let first = gauntlet(&["suite", "--out", a.to_str().expect("utf-8")]);
    assert!(first.status.success(), "{}\n{}", text(&first.stdout), text(&first.stderr));
    // Again on one thread: the digests may not depend on parallelism.
    let second = gauntlet(&["suite", "--jobs", "1", "--out", b.to_str().expect("utf-8")]);
    assert!(second.status.success(), "{}", text(&second.stdout));
    assert_eq!(text(&first.stdout), text(&second.stdout), "the same suite printed something else");
    let (ra, rb) = (results(&a), results(&b));
    let scenarios: Vec<&str> = ra.values().filter_map(|r| r["scenario"].as_str()).collect();
    assert!(ra.len() >= 16, "{} runs", ra.len());
    assert!(scenarios.iter().collect::<std::collections::BTreeSet<_>>().len() >= 16, "{scenarios:?}");
    for (name, r) in &ra {
        assert_eq!(r["digest"], rb[name]["digest"], "{name} replayed differently");
        for key in ["scenario", "seed", "strategy", "digest", "verdict", "retry_amplification", "expectations"] {
            assert!(!r[key].is_null(), "{name} has no {key}");
        }
        for key in ["total", "ok", "failed", "lost"] {
            assert!(r["calls"][key].is_u64(), "{name} has no calls.{key}");
        }
        assert!(r["latency"]["p99"].is_f64(), "{name} has no p99 in ms");
        assert_eq!(r["verdict"], "pass", "{name}");
        let expectations = r["expectations"].as_array().expect("a list");
        assert!(expectations.iter().all(|e| e["expected"].is_string() && e["measured"].is_string()));
    }
    let summary = std::fs::read_to_string(a.join("summary.md")).expect("a Markdown summary");
    assert!(summary.contains(&format!("{} of {} runs passed", ra.len(), ra.len())), "{summary}");
    let _ = std::fs::remove_dir_all(a);
    let _ = std::fs::remove_dir_all(b);
}

#[test]
fn every_broken_scenario_file_gets_its_exact_error_line_and_exit_code_2() {
    let dir = root().join("tests/scenarios/broken");
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&dir).expect("the corpus").filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    assert!(files.len() >= 12, "{} broken files", files.len());
    for file in files {
        let source = std::fs::read_to_string(&file).expect("readable");
        let expected = source.lines().next().and_then(|l| l.strip_prefix("# expect: ")).expect("an expect line");
        let name = file.strip_prefix(root()).expect("inside the repository").to_str().expect("utf-8");
        let o = gauntlet(&["validate", name]);
        assert_eq!(o.status.code(), Some(2), "{name}");
        let stderr = text(&o.stderr);
        assert_eq!(stderr.lines().next(), Some(format!("{name}:{expected}").as_str()), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// The test cases of a JUnit report: (test case name, failed).
fn junit_cases(xml: &str) -> Vec<(String, bool)> {
    let doc = roxmltree::Document::parse(xml).expect("JUnit output is XML");
    assert_eq!(doc.root_element().tag_name().name(), "testsuites");
    doc.descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .map(|n| (n.attribute("name").expect("named").to_owned(), n.children().any(|c| c.has_tag_name("failure"))))
        .collect()
}

#[test]
fn shards_cover_every_run_exactly_once_and_junit_parses_as_xml() {
    let files = ["scenarios/steady-state.toml", "scenarios/mixed-eras.toml", "scenarios/byzantine-minority.toml"];
    let dir = scratch("shards");
    std::fs::create_dir_all(&dir).expect("scratch");
    let run = |extra: &[&str], junit: &Path| {
        let mut args = vec!["suite", "--seeds", "2", "--junit", junit.to_str().expect("utf-8")];
        args.extend(files);
        args.extend(extra);
        let o = gauntlet(&args);
        assert!(o.status.success(), "{}", text(&o.stderr));
        junit_cases(&std::fs::read_to_string(junit).expect("the JUnit file"))
    };
    let mut all = run(&[], &dir.join("all.xml"));
    assert_eq!(all.len(), 6, "3 scenarios x 2 seeds");
    let mut sharded: Vec<(String, bool)> =
        (1..=4).flat_map(|k| run(&["--shard", &format!("{k}/4")], &dir.join(format!("{k}.xml")))).collect();
    all.sort();
    sharded.sort();
    assert_eq!(sharded, all);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_failed_expectation_exits_1_and_prints_what_was_expected_measured_and_how_to_reproduce() {
    let dir = scratch("strict");
    std::fs::create_dir_all(&dir).expect("scratch");
    let source = std::fs::read_to_string(root().join("scenarios/mixed-eras.toml")).expect("bundled");
    let strict = source.replace("p99 = \"<= 40ms\"", "p99 = \"<= 1ms\"");
    let file = dir.join("strict.toml");
    std::fs::write(&file, strict).expect("written");
    let junit = dir.join("junit.xml");
    let o = gauntlet(&["run", file.to_str().expect("utf-8"), "--junit", junit.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(1));
    let out = text(&o.stdout);
    assert!(out.contains("expected p99 <= 1ms, measured"), "{out}");
    let reproduce = format!("reproduce: gauntlet run {} --seed 17 --strategy round-robin", file.display());
    assert!(out.contains(&reproduce), "{out}");
    assert!(out.lines().any(|l| l.trim_start().starts_with("digest: ")), "{out}");
    let cases = junit_cases(&std::fs::read_to_string(&junit).expect("the JUnit file"));
    assert_eq!(cases, [("mixed-eras [round-robin] seed 17".to_owned(), true)]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn compare_puts_the_strategies_side_by_side_and_the_adaptive_one_wins_the_latency_spike() {
    let dir = scratch("compare");
    let o = gauntlet(&["compare", "scenarios/latency-spike.toml", "--out", dir.to_str().expect("utf-8")]);
    assert!(o.status.success(), "{}", text(&o.stdout));
    let table = std::fs::read_to_string(dir.join("compare.md")).expect("compare.md");
    assert!(table.contains("Machine: ") && table.contains("latency-spike seed 3"), "{table}");
    assert!(table.contains("search-2 "), "the load share per server: {table}");
    let _ = std::fs::remove_dir_all(dir);
    let out = text(&o.stdout);
    let p99 = |strategy: &str| -> f64 {
        let row = out.lines().find(|l| l.starts_with(strategy)).unwrap_or_else(|| panic!("no {strategy} row:\n{out}"));
        let cell = row.split_whitespace().nth(5).expect("a p99 column");
        let ms: f64 = cell.trim_end_matches("ms").parse().unwrap_or_else(|_| panic!("{cell}"));
        ms
    };
    assert!(p99("p2c-peak-ewma") * 5.0 < p99("round-robin"), "{out}");
}

#[test]
fn the_reproduce_command_replays_a_strategy_with_what_its_comparisons_need_and_the_same_digest() {
    let digest_of = |out: &str, strategy: &str| -> String {
        let mut lines = out.lines();
        lines.find(|l| l.contains(&format!("[{strategy}] seed 3:"))).unwrap_or_else(|| panic!("no {strategy}:\n{out}"));
        lines.next().and_then(|l| l.trim().strip_prefix("digest: ")).expect("a digest line").to_owned()
    };
    let all = gauntlet(&["run", "scenarios/latency-spike.toml"]);
    assert!(all.status.success(), "{}", text(&all.stdout));
    let one = gauntlet(&["run", "scenarios/latency-spike.toml", "--seed", "3", "--strategy", "p2c-peak-ewma"]);
    assert!(one.status.success(), "{}", text(&one.stdout));
    let (all, one) = (text(&all.stdout), text(&one.stdout));
    assert_eq!(digest_of(&all, "p2c-peak-ewma"), digest_of(&one, "p2c-peak-ewma"));
    assert!(one.contains("[round-robin]"), "the comparison's other side runs too:\n{one}");
}

#[test]
fn each_of_three_policy_variants_replays_by_its_reproduce_line_to_the_same_digest() {
    let dir = scratch("variants");
    let all = gauntlet(&["run", "scenarios/breaker-variants.toml", "--out", dir.to_str().expect("utf-8")]);
    assert!(all.status.success(), "{}", text(&all.stdout));
    let runs = results(&dir);
    let variants: Vec<&str> = runs.values().filter_map(|r| r["variant"].as_str()).collect();
    assert_eq!(variants.len(), 3, "{variants:?}");
    let digests: Vec<&str> = runs.values().filter_map(|r| r["digest"].as_str()).collect();
    assert!(digests.iter().collect::<std::collections::BTreeSet<_>>().len() == 3, "the variants ran differently");
    for r in runs.values() {
        let (variant, seed) = (r["variant"].as_str().expect("a variant"), r["seed"].as_u64().expect("a seed"));
        assert_eq!(r["strategy"], "round-robin", "a variant keeps the [client] balancer");
        // What the reproduce line says, run on its own.
        let seed = seed.to_string();
        let one = gauntlet(&["run", "scenarios/breaker-variants.toml", "--seed", &seed, "--variant", variant]);
        assert!(one.status.success(), "{}", text(&one.stdout));
        let out = text(&one.stdout);
        let mut lines = out.lines();
        lines
            .find(|l| l.contains(&format!("[{variant}: round-robin] seed {seed}:")))
            .unwrap_or_else(|| panic!("{out}"));
        let digest = lines.next().and_then(|l| l.trim().strip_prefix("digest: ")).expect("a digest line");
        assert_eq!(Some(digest), r["digest"].as_str(), "{variant} replayed differently");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn each_behaviour_expectation_fails_with_what_was_expected_and_what_was_measured() {
    let o = gauntlet(&["run", "tests/scenarios/failing/behaviour.toml"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    let out = text(&o.stdout);
    for expected in [
        "  expected detection <= 1ms, measured 43ms",
        "  expected search-1.breaker_opens == 0, measured 3",
        "  expected search-1.ejections >= 1, measured 0",
        "  expected search-1.load_share >= 0.5, measured 0.1468",
        "  expected fault.share.search-1 >= 0.5, measured 0.0006",
    ] {
        assert!(out.lines().any(|l| l == expected), "no `{expected}` in:\n{out}");
    }
    // The same bounds hold the other way in the bundled brownout (detection, opens, share).
    let brownout = gauntlet(&["run", "scenarios/brownout.toml"]);
    assert!(brownout.status.success(), "{}", text(&brownout.stdout));
}

#[test]
fn orders_hedge_rates_and_per_run_bounds_fail_with_what_was_expected_and_what_was_measured() {
    let o = gauntlet(&["run", "tests/scenarios/failing/order-and-hedges.toml"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    let out = text(&o.stdout);
    for expected in [
        "  expected order search -> search_backup, measured search -> search_backup -> search",
        "  expected fault.order search, measured search_backup",
        "  expected hedge_rate >= 0.5, measured 0.0679",
        "  expected round-robin: p99 <= 1ms, measured 54.015ms",
    ] {
        assert!(out.lines().any(|l| l == expected), "no `{expected}` in:\n{out}");
    }
    // A bound under `[expect.run.round-robin]` is round-robin's alone.
    let p2c = out.split("[p2c-peak-ewma]").nth(1).expect("the p2c run");
    assert!(!p2c.contains("round-robin: p99"), "{out}");
    // The same kinds hold in the bundled files that claim them.
    for file in ["scenarios/fallback-group.toml", "scenarios/primary-partition.toml", "scenarios/breaker-variants.toml"]
    {
        let o = gauntlet(&["run", file]);
        assert!(o.status.success(), "{file}: {}", text(&o.stdout));
    }
}

#[test]
fn keys_moved_holds_for_maglev_and_fails_for_a_balancer_that_ignores_the_key() {
    let maglev = gauntlet(&["run", "scenarios/maglev-affinity.toml"]);
    assert!(maglev.status.success(), "{}", text(&maglev.stdout));
    let round_robin = gauntlet(&["run", "scenarios/maglev-affinity.toml", "--strategy", "round-robin"]);
    assert_eq!(round_robin.status.code(), Some(1), "{}", text(&round_robin.stdout));
    let out = text(&round_robin.stdout);
    let line = out.lines().find(|l| l.contains("expected fault.keys_moved <= 0.35, measured ")).expect(&out);
    let measured: f64 = line.rsplit(' ').next().and_then(|v| v.parse().ok()).expect("a measured share");
    assert!(measured > 0.5, "round-robin moves most keys: {line}");
}

#[test]
fn a_variant_that_does_not_exist_or_a_strategy_on_a_file_of_variants_is_refused_with_exit_2() {
    let unknown = gauntlet(&["run", "scenarios/breaker-variants.toml", "--variant", "nope"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown.stderr).contains("has no variant `nope`; it runs patient, slow-call-breaker, hedged"));
    let strategy = gauntlet(&["run", "scenarios/breaker-variants.toml", "--strategy", "p2c"]);
    assert_eq!(strategy.status.code(), Some(2));
    assert!(text(&strategy.stderr).contains("choose one with --variant"), "{}", text(&strategy.stderr));
}

#[test]
fn validate_reports_every_file_of_a_directory_including_one_that_is_not_utf8_and_exits_2() {
    let dir = scratch("mixed-validity");
    std::fs::create_dir_all(&dir).unwrap();
    // Not UTF-8 on line 2; an overflow that once panicked the validator; a valid file.
    std::fs::write(dir.join("a-not-utf8.toml"), b"name = \"x\"\ndescription = \"d\xff\"\n").unwrap();
    let overflow = std::fs::read(root().join("tests/scenarios/broken/fault-for-overflow.toml")).unwrap();
    std::fs::write(dir.join("b-overflow.toml"), overflow).unwrap();
    std::fs::copy(root().join("scenarios/steady-state.toml"), dir.join("c-valid.toml")).unwrap();
    let o = gauntlet(&["validate", dir.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(2));
    let stderr = text(&o.stderr);
    let name = |f: &str| dir.join(f).display().to_string();
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines.contains(
            &format!("{}:2:17: the file is not UTF-8 (byte 0xff at offset 27)", name("a-not-utf8.toml")).as_str()
        ),
        "{stderr}"
    );
    assert!(lines.iter().any(|l| l.starts_with(&format!("{}:16:7: ", name("b-overflow.toml")))), "{stderr}");
    assert!(!stderr.contains("c-valid"), "the valid file has no error: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_strategy_outside_a_matrix_with_comparisons_is_refused_rather_than_dropping_them() {
    let o = gauntlet(&["run", "scenarios/latency-spike.toml", "--strategy", "maglev"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("maglev is not one of them"), "{}", text(&o.stderr));
}

/// The digest lines `gauntlet run FILE ARGS` prints.
fn digests(file: &str, args: &[&str]) -> Vec<String> {
    let out = gauntlet(&[&["run", file], args].concat());
    assert!(out.status.success(), "{}", text(&out.stdout));
    let digests: Vec<String> =
        text(&out.stdout).lines().filter(|l| l.trim_start().starts_with("digest:")).map(str::to_owned).collect();
    assert!(!digests.is_empty(), "{}", text(&out.stdout));
    digests
}

#[test]
fn workflow_runs_on_a_crashing_server_give_one_digest_in_every_process() {
    // rmcp wakes a dead connection's calls in a hash map's order, different in every process;
    // an executor that polls a run's steps in wake order (a `FuturesUnordered`) let that order
    // reach the engine. Three processes, three hash-map seeds: one digest.
    let file = "tests/scenarios/determinism/crowd-on-a-crashing-server.toml";
    let first = digests(file, &[]);
    assert_eq!(digests(file, &[]), first);
    assert_eq!(digests(file, &[]), first);
}

#[test]
fn parallel_steps_on_crashing_servers_give_one_digest_in_every_process() {
    // A run's task with several calls in flight was itself the waiter rmcp woke, in a hash
    // map's order, when one of its connections died, and acted on its other calls' answers at
    // that random point (five processes gave five digests). Three processes, three seeds each.
    let file = "tests/scenarios/determinism/parallel-steps-on-crashing-servers.toml";
    let first = digests(file, &["--seeds", "3"]);
    assert_eq!(first.len(), 3);
    assert_eq!(digests(file, &["--seeds", "3"]), first);
    assert_eq!(digests(file, &["--seeds", "3"]), first);
}

#[test]
fn a_workflow_scenario_s_results_and_report_count_what_happened_to_each_step() {
    let dir = scratch("workflow-steps");
    let html = dir.join("report.html");
    let out = gauntlet(&[
        "run",
        "scenarios/workflow-compensation.toml",
        "--out",
        dir.to_str().expect("utf-8"),
        "--html",
        html.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json = results(&dir).into_iter().find(|(name, _)| name.starts_with("workflow-compensation.")).map(|(_, v)| v);
    let run: gauntlet_reports::RunResult =
        serde_json::from_value(json.expect("the run's results JSON")).expect("a run result");
    let names: Vec<&str> = run.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["reserve", "charge", "ship"]);
    // The file's outage of `ship` fails some runs after both effects: both are undone.
    let [reserve, charge, ship] = &run.steps[..] else { panic!("{:?}", run.steps) };
    assert!(ship.failed > 0, "{ship:?}");
    assert_eq!((reserve.compensated, charge.compensated), (ship.failed, ship.failed));
    let page = std::fs::read_to_string(&html).expect("the report");
    let table = page.find("<table class=\"steps\">").expect("the report has the steps table");
    assert!(page[table..].contains("<td>charge</td>"), "the table names the steps");
    let _ = std::fs::remove_dir_all(dir);
}
