//! The scenario reader under fuzzing: arbitrary bytes, and structure-aware mutations of every
//! bundled scenario (values swapped for hostile ones, lines dropped, doubled or cut), through the
//! parser and validator. Properties: nothing panics; a file is either accepted or rejected with a
//! position inside it; an accepted file stays within the documented limits and makes a client
//! configuration the engine accepts.
//!
//! CI runs proptest's default budget (256 cases per property). For a longer local run:
//! `PROPTEST_CASES=200000 cargo test --release -p gauntlet-sim --test fuzz`. A crash found here
//! becomes a file in `tests/scenarios/broken/` with the error line it must produce.

use gauntlet_core::policy::{Engine, ServerEntry};
use gauntlet_sim::file::{self, MAX_FAULTS, MAX_SERVERS, ScenarioFile};
use proptest::prelude::*;

/// Values a mutation puts where a file had one: edges of every range, wrong types, huge and
/// tiny durations, overflow bait.
const HOSTILE: &[&str] = &[
    "0",
    "-1",
    "1",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "9223372036854775807",
    "1e308",
    "-1e308",
    "nan",
    "inf",
    "0.5",
    "1.0000001",
    "\"\"",
    "\"0s\"",
    "\"1ns\"",
    "\"2ns\"",
    "\"99999999999h\"",
    "\"18446744073709551615s\"",
    "\"25h\"",
    "\"-5s\"",
    "\"x\"",
    "\"> 1\"",
    "\"< 0ms\"",
    "\">= 0\"",
    "\"<= 0.0000001ms\"",
    "[]",
    "[\"g\", \"g\"]",
    "{}",
    "{ quorum = 0 }",
    "{ poisson = 100000 }",
    "{ callers = 1025 }",
    "true",
    "\"never\"",
    "\"on-collision\"",
    "\"restart\"",
    "\"g@0\"",
    "\"g@1e-300\"",
    "{ constant = \"99999999999h\" }",
    "{ after = \"1ns\", percentile = 0.5 }",
    "\"${\"",
    "\"${steps.\"",
    "\"${steps.a.b[18446744073709551616]}\"",
    "\"${input}${input}$${\"",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    "{ path = \"steps.a\", equals = 1, exists = true }",
    "{ value = 1, tool = \"t\" }",
];

fn bundled() -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the bundled scenarios")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files.into_iter().map(|p| (p.display().to_string(), std::fs::read_to_string(&p).expect("readable"))).collect()
}

/// One edit of a file's lines.
#[derive(Clone, Debug)]
enum Mutation {
    /// The value of the n-th `key = value` line becomes a hostile one.
    Value(usize, usize),
    /// The n-th line goes.
    Drop(usize),
    /// The n-th line appears twice.
    Double(usize),
    /// The text ends at this byte (on a character boundary).
    Cut(usize),
    /// These bytes (made text) are inserted at the start of the n-th line.
    Insert(usize, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 0..HOSTILE.len()).prop_map(|(n, v)| Mutation::Value(n, v)),
        1 => any::<usize>().prop_map(Mutation::Drop),
        1 => any::<usize>().prop_map(Mutation::Double),
        1 => any::<usize>().prop_map(Mutation::Cut),
        1 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..12)).prop_map(|(n, b)| Mutation::Insert(n, b)),
    ]
}

fn apply(text: &str, m: &Mutation) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    if lines.is_empty() {
        return text.to_owned();
    }
    let at = |n: usize| n % lines.len();
    match m {
        Mutation::Value(n, v) => {
            let assignments: Vec<usize> = (0..lines.len()).filter(|&i| lines[i].contains(" = ")).collect();
            if let Some(&i) = assignments.get(n % assignments.len().max(1)) {
                let key = lines[i].split(" = ").next().unwrap_or_default().to_owned();
                lines[i] = format!("{key} = {}", HOSTILE[*v]);
            }
        }
        Mutation::Drop(n) => {
            lines.remove(at(*n));
        }
        Mutation::Double(n) => {
            let i = at(*n);
            lines.insert(i, lines[i].clone());
        }
        Mutation::Cut(n) => {
            let joined = lines.join("\n");
            let mut end = n % (joined.len() + 1);
            while !joined.is_char_boundary(end) {
                end -= 1;
            }
            return joined[..end].to_owned();
        }
        Mutation::Insert(n, bytes) => {
            let i = at(*n);
            lines[i] = format!("{}{}", String::from_utf8_lossy(bytes), lines[i]);
        }
    }
    lines.join("\n")
}

/// The properties every input must keep.
fn check(name: &str, text: &str) -> Result<(), TestCaseError> {
    match file::parse(name, text) {
        Err(e) => {
            let lines = text.lines().count().max(1);
            prop_assert_eq!(&e.file, name);
            prop_assert!(e.line >= 1 && e.line <= lines + 1, "{} is outside the file ({} lines)", e, lines);
            prop_assert!(e.col >= 1, "{}", e);
            prop_assert!(!e.message.is_empty());
        }
        Ok(f) => accepted(&f)?,
    }
    Ok(())
}

/// An accepted file is within the limits and gives a client configuration the engine takes.
fn accepted(f: &ScenarioFile) -> Result<(), TestCaseError> {
    let s = &f.scenario;
    let servers: u64 = s.fleet.iter().map(|g| u64::from(g.count)).sum();
    prop_assert!((1..=u64::from(MAX_SERVERS)).contains(&servers), "{servers} servers");
    prop_assert!(s.faults.len() <= MAX_FAULTS);
    prop_assert!(!f.seeds.is_empty() && !f.variants.is_empty());
    for variant in &f.variants {
        let config = gauntlet_sim::world::client_config(&f.scenario(f.seeds[0], variant));
        let entries: Vec<ServerEntry> = config
            .servers
            .iter()
            .map(|s| ServerEntry { name: s.name.clone(), weight: s.weight, priority: s.priority, trusted: s.trusted })
            .collect();
        let engine = Engine::new(config.policy, &entries, None);
        prop_assert!(engine.is_ok(), "an accepted scenario makes a client the engine refuses: {:?}", engine.err());
    }
    Ok(())
}

proptest! {
    /// Arbitrary bytes, read as the CLI reads a file (lossy where not UTF-8), never panic the
    /// reader, and every error is placed inside the input.
    #[test]
    fn arbitrary_bytes_are_accepted_or_rejected_with_a_position_never_a_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..2_048),
    ) {
        check("fuzz.toml", &String::from_utf8_lossy(&bytes))?;
    }

    /// Every bundled scenario, edited one to four times: accepted within the limits, or rejected
    /// with a position; never a panic.
    #[test]
    fn mutated_bundled_scenarios_are_accepted_within_limits_or_rejected_with_a_position(
        file in any::<prop::sample::Index>(),
        edits in prop::collection::vec(mutation(), 1..5),
    ) {
        let files = bundled();
        let (name, text) = &files[file.index(files.len())];
        let mut text = text.clone();
        for m in &edits {
            text = apply(&text, m);
        }
        check(name, &text)?;
    }
}

proptest! {
    /// The example workflow file, edited one to four times: accepted, or rejected with a
    /// position inside it; never a panic. An accepted file's workflow is a DAG: a planner run
    /// over it, every call answered, starts each step once.
    #[test]
    fn mutated_workflow_files_are_accepted_as_dags_or_rejected_with_a_position(
        edits in prop::collection::vec(mutation(), 1..5),
    ) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/flows/remember.toml");
        let mut text = std::fs::read_to_string(path).expect("the example flow");
        for m in &edits {
            text = apply(&text, m);
        }
        match gauntlet_sim::flow_file::parse_flow("flow.toml", &text) {
            Err(e) => {
                prop_assert!(e.line >= 1 && e.line <= text.lines().count().max(1) + 1, "{}", e);
                prop_assert!(e.col >= 1);
            }
            Ok(f) => {
                let (status, _) = gauntlet_core::workflow::reference(&f.workflow, f.inputs.clone(), |_, _, _| {
                    Some(serde_json::json!({ "text": "x" }))
                });
                // A reference that reads a key the answer lacks fails its step: still an end.
                prop_assert!(matches!(status, gauntlet_core::workflow::Status::Completed | gauntlet_core::workflow::Status::Compensated));
            }
        }
    }
}

#[test]
fn every_bundled_scenario_passes_the_fuzz_properties_unmutated() {
    for (name, text) in bundled() {
        let f = file::parse(&name, &text).unwrap_or_else(|e| panic!("{e}"));
        accepted(&f).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
