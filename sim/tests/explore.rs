//! `explore`: generated schedules find deliberately broken clients, shrink what they find to a
//! scenario that fails the same way, and find nothing in a correct client.

use gauntlet_sim::explore::{self, Envelope, Kind};
use gauntlet_sim::scenario::Sabotage;

fn envelope(name: &str) -> Envelope {
    let path = format!("{}/../envelopes/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("the envelope is in the repository");
    Envelope::parse(&path, &text).unwrap_or_else(|e| panic!("{e}"))
}

/// Explores the first `runs` runs of `envelope` under its seed, on `jobs` threads, guided.
fn run(envelope: &Envelope, runs: u64, jobs: usize) -> explore::Exploration {
    let indices: Vec<u64> = (0..runs).collect();
    explore::explore(envelope, &indices, options(envelope, jobs)).unwrap_or_else(|e| panic!("{e}"))
}

fn options(envelope: &Envelope, jobs: usize) -> explore::Options<'static> {
    explore::Options { seed: envelope.scenario.scenario.seed, jobs, guided: true, stop: None }
}

/// Explores `name` with `sabotage` for 24 runs: the finding whose signature starts with `kind`
/// is shrunk to at most two faults, in a file that fails the same way on the broken client and
/// not on the correct one.
fn found_and_shrunk(name: &str, sabotage: Sabotage, kind: &str) -> explore::Shrunk {
    let mut env = envelope(name);
    env.sabotage = Some(sabotage);
    let found = run(&env, 24, 2);
    let finding = found
        .findings
        .values()
        .find(|f| f.signature.starts_with(kind))
        .unwrap_or_else(|| panic!("not found in 24 runs: {:?}", found.findings.keys().collect::<Vec<_>>()));
    let shrunk = explore::shrink(&env, &finding.schedule, &finding.signature).unwrap_or_else(|e| panic!("{e}"));
    assert!(shrunk.schedule.len() <= 2, "{:?}", shrunk.schedule);
    assert!(shrunk.runs <= explore::SHRINK_BUDGET);
    // The written file parses as any scenario file and, run on the broken client, fails the same way.
    let text = env.render_scaled(&shrunk.schedule, &shrunk.scale, "shrunk");
    let mut file = gauntlet_sim::file::parse("shrunk.toml", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(file.scenario.sabotage, Some(sabotage), "the file names its sabotage");
    let seed = file.seeds[0];
    let sigs: Vec<String> = file.run_seed(seed, &file.variants).iter().flat_map(explore::signatures).collect();
    assert!(sigs.contains(&finding.signature), "{sigs:?}\n{text}");
    // And the correct client passes it: the finding is the sabotage's, not the schedule's.
    file.scenario.sabotage = None;
    let sigs: Vec<String> = file.run_seed(seed, &file.variants).iter().flat_map(explore::signatures).collect();
    assert!(!sigs.contains(&finding.signature), "{sigs:?}");
    shrunk
}

#[test]
fn a_client_that_ignores_its_breakers_is_found_and_shrunk_to_a_file_that_fails_the_same_way() {
    found_and_shrunk("replicas", Sabotage::IgnoreBreaker, "breaker-bypassed@");
}

#[test]
fn a_client_that_replays_unsafe_tools_is_found_and_shrunk_to_a_file_that_fails_the_same_way() {
    let shrunk = found_and_shrunk("payments", Sabotage::ReplayUnsafe, "duplicate-side-effect@");
    // Besides the faults, the run shrank: a duplicate does not need 10 s.
    assert!(shrunk.scale.duration_ms.is_some_and(|d| d < 10_000), "{:?}", shrunk.scale);
}

#[test]
fn a_scaled_down_envelope_is_a_scenario_file_with_the_scaled_values() {
    let env = envelope("replicas");
    let scale = explore::Scale {
        duration_ms: Some(7_500),
        load: Some(explore::Load::Poisson(25.0)),
        counts: [(0, 2)].into_iter().collect(),
    };
    // Faults on the servers that remain.
    let mut schedule = env.generator.schedule(1, 0);
    for p in &mut schedule {
        p.target = "search-1".to_owned();
    }
    let text = env.render_scaled(&schedule, &scale, "scaled");
    let file = gauntlet_sim::file::parse("scaled.toml", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(file.scenario.duration, std::time::Duration::from_millis(7_500));
    assert_eq!(file.scenario.workload.arrivals, gauntlet_sim::Arrivals::Poisson(25.0));
    assert_eq!(file.scenario.fleet[0].count, 2);
    assert_eq!(scale.describe(&env).len(), 3, "{:?}", scale.describe(&env));
    // Unscaled, it is the envelope's own run.
    let plain = env.file_for(&schedule, "").expect("valid");
    assert_eq!(plain.scenario.duration, env.scenario.scenario.duration);
    assert_eq!(plain.scenario.fleet[0].count, 3);
}

#[test]
fn a_client_that_takes_the_first_answer_for_a_majority_is_found() {
    let mut env = envelope("quorum");
    env.sabotage = Some(Sabotage::FirstAsMajority);
    let found = run(&env, 24, 2);
    let finding = found
        .findings
        .values()
        .find(|f| f.signature.starts_with("minority-answer@"))
        .unwrap_or_else(|| panic!("not found in 24 runs: {:?}", found.findings.keys().collect::<Vec<_>>()));
    let shrunk = explore::shrink(&env, &finding.schedule, &finding.signature).unwrap_or_else(|e| panic!("{e}"));
    assert!(shrunk.schedule.len() <= 2, "{:?}", shrunk.schedule);
}

#[test]
fn the_same_seed_finds_the_same_things_whatever_the_jobs() {
    let mut env = envelope("replicas");
    env.sabotage = Some(Sabotage::IgnoreBreaker);
    let one = run(&env, 12, 1);
    let two = run(&env, 12, 2);
    assert_eq!(one, two);
    assert!(!one.findings.is_empty(), "a comparison of two empty results would prove nothing");
}

#[test]
fn guidance_draws_the_kinds_with_pairs_left_more_often() {
    let env = envelope("replicas");
    let g = &env.generator;
    // Crash has reached every state in 640 runs; partition none in as many.
    let mut found = run(&env, 0, 1);
    for state in explore::STATES {
        found.coverage.insert(("crash".to_owned(), state), 1);
    }
    found.runs = 640;
    found.runs_with_kind.insert("crash", 640);
    found.runs_with_kind.insert("partition", 640);
    let guide = explore::Guide::after(g, &found);
    let weight = |k: Kind| guide.weights.iter().find(|(x, _)| *x == k).map(|&(_, w)| w);
    assert_eq!(weight(Kind::Crash), Some(1), "nothing left to reach");
    let partition = weight(Kind::Partition).expect("allowed");
    let hold = weight(Kind::Hold).expect("allowed");
    assert!(1 < partition && partition < hold, "left pairs weigh, less after many runs: {guide:?}");
    // Drawn: the heavy kinds take a larger share of the faults than they do unguided.
    let share = |guide: &explore::Guide, kind: Kind| {
        let faults: Vec<Kind> = (0..400).flat_map(|r| g.schedule_with(9, r, guide)).map(|p| p.kind).collect();
        faults.iter().filter(|&&k| k == kind).count() as f64 / faults.len() as f64
    };
    let none = explore::Guide::default();
    assert!(share(&guide, Kind::Crash) < share(&none, Kind::Crash) / 2.0, "{guide:?}");
    assert!(share(&guide, Kind::Hold) > share(&none, Kind::Hold), "{guide:?}");
    // An empty guide is the unguided draw.
    assert_eq!(g.schedule_with(9, 3, &none), g.schedule(9, 3));
}

#[test]
fn a_guided_exploration_is_the_same_for_any_jobs_and_a_printed_run_is_the_run_made() {
    let env = envelope("payments");
    // 70 runs: the last 6 are drawn under the guide of the first 64.
    let (one, two) = (run(&env, 70, 1), run(&env, 70, 2));
    assert_eq!(one, two);
    // A printed run is drawn under the guide of the batches before it.
    let guide = explore::Guide::after(&env.generator, &run(&env, 64, 2));
    let seed = env.scenario.scenario.seed;
    let indices: Vec<u64> = (0..70).collect();
    let printed = explore::schedule_at(&env, &indices, 66, options(&env, 1)).expect("runs").expect("a run");
    assert_eq!(printed, env.generator.schedule_with(seed, 66, &guide));
    assert!((64..70).any(|i| env.generator.schedule_with(seed, i, &guide) != env.generator.schedule(seed, i)));
    // Before the first batch ends, there is no guide yet.
    let first = explore::schedule_at(&env, &indices, 5, options(&env, 2)).expect("runs").expect("a run");
    assert_eq!(first, env.generator.schedule(seed, 5));
}

#[test]
fn correct_clients_are_explored_without_a_finding() {
    for name in ["replicas", "quorum", "tiers", "payments"] {
        let found = run(&envelope(name), 24, 2);
        assert_eq!(found.runs, 24);
        assert!(found.findings.is_empty(), "{name}: {:?}", found.findings);
        // Coverage grows with the runs, and its last figure is the pairs reached.
        assert!(found.growth.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1), "{:?}", found.growth);
        assert_eq!(found.growth.last(), Some(&(24, found.coverage.len())));
        if name != "quorum" {
            // A crashed server's session ends while the crash lasts.
            assert!(found.coverage.contains_key(&("crash".to_owned(), "disconnected")), "{name}: {:?}", found.coverage);
        }
    }
}

#[test]
fn an_envelope_is_refused_by_run_and_a_scenario_by_explore() {
    let path = format!("{}/../envelopes/replicas.toml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("read");
    let e = gauntlet_sim::file::parse(&path, &text).expect_err("an envelope is not run as a scenario");
    assert!(e.line > 1, "{e}");
    let scenario = format!("{}/../scenarios/steady-state.toml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&scenario).expect("read");
    assert!(Envelope::parse(&scenario, &text).is_err());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Property: every schedule the generator draws, for any seed and run, is a valid scenario
    /// file (so every run and every shrink step can be replayed with `gauntlet run`).
    #[test]
    fn every_generated_schedule_is_a_valid_scenario_file(seed in proptest::prelude::any::<u64>(), run in proptest::prelude::any::<u64>()) {
        for name in ["replicas", "quorum", "tiers", "payments"] {
            let env = envelope(name);
            let schedule = env.generator.schedule(seed, run);
            let (lo, hi) = env.generator.faults;
            proptest::prop_assert!((lo as usize..=hi as usize).contains(&schedule.len()));
            if let Err(e) = env.file_for(&schedule, "a generated run") {
                proptest::prop_assert!(false, "{name}: {e}\n{}", env.render(&schedule, ""));
            }
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Property: whatever numbers an `[explore]` table holds, the envelope is refused with a
    /// position or accepted, never a panic; and an accepted one only draws valid files.
    #[test]
    fn any_explore_table_is_refused_or_draws_valid_files(
        faults in (0u32..40, 0u32..40),
        at in (0u64..100_000, 0u64..100_000),
        lasts in (0u64..100_000, 0u64..100_000),
        latency in (0u64..10_000_000, 0u64..10_000_000),
        rate in (-1.0f64..2.0, -1.0f64..2.0),
        run in proptest::prelude::any::<u64>(),
    ) {
        let base = std::fs::read_to_string(format!("{}/../envelopes/replicas.toml", env!("CARGO_MANIFEST_DIR")))
            .expect("read");
        let table = format!(
            "[explore]\nfaults = [{}, {}]\nat = [\"{}ms\", \"{}ms\"]\nfor = [\"{}ms\", \"{}ms\"]\n\
             latency = [\"{}ms\", \"{}ms\"]\nrate = [{:?}, {:?}]\n",
            faults.0, faults.1, at.0, at.1, lasts.0, lasts.1, latency.0, latency.1, rate.0, rate.1
        );
        let text = format!("{}{table}", &base[..base.find("[explore]").expect("an explore table")]);
        match Envelope::parse("fuzz.toml", &text) {
            Err(e) => proptest::prop_assert!(e.line > 0 && e.col > 0, "{e}"),
            Ok(env) => {
                let schedule = env.generator.schedule(7, run);
                if let Err(e) = env.file_for(&schedule, "") {
                    proptest::prop_assert!(false, "{e}\n{}", env.render(&schedule, ""));
                }
            }
        }
    }
}
