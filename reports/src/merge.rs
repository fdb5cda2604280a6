//! Results directories merged into one: the runs of every shard of a CI matrix, checked against
//! what the invocations meant to run.
//!
//! Each `--out` directory holds a run's results JSON per run and a [`Manifest`]: the runs of the
//! whole invocation (every shard's, not only its own) and which shard it was. Merging the
//! directories gives the runs in the invocation's order, and names every run that is missing
//! (a shard that never uploaded) or present twice (a shard uploaded twice, or two invocations
//! mixed).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::RunResult;

/// The manifest's file name in a results directory.
pub const MANIFEST: &str = "manifest.json";
/// The manifest format this version writes and reads.
pub const FORMAT: u32 = 1;

/// One run of an invocation: scenario × run (strategy or variant) × seed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RunId {
    /// The scenario's name.
    pub scenario: String,
    /// The run's key: its variant, or its strategy.
    pub run: String,
    /// The seed.
    pub seed: u64,
}

impl RunId {
    /// The id of `r`.
    pub fn of(r: &RunResult) -> RunId {
        RunId { scenario: r.scenario.clone(), run: r.key().to_owned(), seed: r.seed }
    }
}

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} [{}] seed {}", self.scenario, self.run, self.seed)
    }
}

/// What an invocation wrote beside its results.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The manifest format ([`FORMAT`]).
    pub format: u32,
    /// The invocation's title (`Gauntlet suite`).
    pub title: String,
    /// `K/N` when it ran one shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// Every run of the invocation, all shards together, in the order they are made.
    pub runs: Vec<RunId>,
}

/// One directory's contents.
#[derive(Clone, Debug)]
pub struct Input {
    /// Where it came from, for messages.
    pub name: String,
    /// Its manifest, if it had one.
    pub manifest: Option<Manifest>,
    /// Its runs.
    pub runs: Vec<RunResult>,
}

/// What a merge found wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A run an invocation meant to make is in no directory.
    Missing(RunId),
    /// A run is in more than one directory (or twice in one): where.
    Duplicate(RunId, Vec<String>),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Missing(id) => write!(f, "missing: {id} (in the manifest, in no directory)"),
            Problem::Duplicate(id, dirs) => write!(f, "duplicate: {id} (in {})", dirs.join(" and ")),
        }
    }
}

/// The merged runs, and what was wrong.
#[derive(Clone, Debug)]
pub struct Merged {
    /// The title of the first manifest, if any.
    pub title: Option<String>,
    /// Every run once, in the invocations' order (runs no manifest lists come last, sorted).
    pub runs: Vec<RunResult>,
    /// Missing and duplicate runs.
    pub problems: Vec<Problem>,
}

/// Merges `inputs`: see the module's documentation. Of a duplicate, the first is kept.
pub fn merge(inputs: Vec<Input>) -> Merged {
    let mut order: Vec<RunId> = Vec::new();
    let mut listed: std::collections::BTreeSet<RunId> = std::collections::BTreeSet::new();
    let mut title = None;
    for m in inputs.iter().filter_map(|i| i.manifest.as_ref()) {
        title.get_or_insert_with(|| m.title.clone());
        for id in &m.runs {
            if listed.insert(id.clone()) {
                order.push(id.clone());
            }
        }
    }
    let mut found: BTreeMap<RunId, (RunResult, Vec<String>)> = BTreeMap::new();
    for input in inputs {
        for r in input.runs {
            let id = RunId::of(&r);
            match found.get_mut(&id) {
                Some((_, dirs)) => dirs.push(input.name.clone()),
                None => {
                    found.insert(id, (r, vec![input.name.clone()]));
                }
            }
        }
    }
    let mut problems = Vec::new();
    for (id, (_, dirs)) in &found {
        if dirs.len() > 1 {
            problems.push(Problem::Duplicate(id.clone(), dirs.clone()));
        }
    }
    let mut runs = Vec::with_capacity(found.len());
    for id in &order {
        match found.remove(id) {
            Some((r, _)) => runs.push(r),
            None => problems.push(Problem::Missing(id.clone())),
        }
    }
    // Runs no manifest lists (directories written before manifests), in id order.
    runs.extend(found.into_values().map(|(r, _)| r));
    Merged { title, runs, problems }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(scenario: &str, seed: u64) -> RunResult {
        let json = format!(
            r#"{{"scenario":"{scenario}","file":"","seed":{seed},"strategy":"p2c","digest":"d{seed}","verdict":"pass",
            "calls":{{"offered":1,"total":1,"ok":1,"wrong":0,"failed":0,"lost":0,"tool_errors":0}},"attempts":1,
            "retry_amplification":1.0,"latency":{{}},"recovery_ms":null,"phases":[],"servers":[],"series":[],
            "events":[],"violations":[],"expectations":[]}}"#
        );
        serde_json::from_str(&json).expect("a minimal run")
    }

    fn manifest(ids: &[(&str, u64)], shard: &str) -> Manifest {
        Manifest {
            format: FORMAT,
            title: "t".to_owned(),
            shard: Some(shard.to_owned()),
            runs: ids
                .iter()
                .map(|(s, seed)| RunId { scenario: (*s).to_owned(), run: "p2c".to_owned(), seed: *seed })
                .collect(),
        }
    }

    #[test]
    fn shards_merge_in_the_invocation_s_order_and_a_missing_one_is_named() {
        let all = [("a", 1), ("b", 1), ("c", 1)];
        let one = Input { name: "s1".into(), manifest: Some(manifest(&all, "1/3")), runs: vec![run("a", 1)] };
        let three = Input { name: "s3".into(), manifest: Some(manifest(&all, "3/3")), runs: vec![run("c", 1)] };
        let m = merge(vec![three, one]);
        let names: Vec<&str> = m.runs.iter().map(|r| r.scenario.as_str()).collect();
        assert_eq!(names, ["a", "c"]);
        let missing = RunId { scenario: "b".into(), run: "p2c".into(), seed: 1 };
        assert_eq!(m.problems, [Problem::Missing(missing)]);
    }

    #[test]
    fn a_run_in_two_directories_is_named_with_both_and_kept_once() {
        let all = [("a", 1)];
        let x = Input { name: "x".into(), manifest: Some(manifest(&all, "1/1")), runs: vec![run("a", 1)] };
        let y = Input { name: "y".into(), manifest: Some(manifest(&all, "1/1")), runs: vec![run("a", 1)] };
        let m = merge(vec![x, y]);
        assert_eq!(m.runs.len(), 1);
        let id = RunId { scenario: "a".into(), run: "p2c".into(), seed: 1 };
        assert_eq!(m.problems, [Problem::Duplicate(id, vec!["x".into(), "y".into()])]);
    }
}
