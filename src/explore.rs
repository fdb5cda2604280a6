//! `gauntlet explore`: an envelope's runs over generated fault schedules, the findings by
//! signature, each shrunk and written as a scenario file (the engine is `gauntlet_sim::explore`);
//! and `--merge`, which sums the summaries of several explorations (a CI matrix's shards).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use gauntlet_sim::explore::{self, Envelope, Kind, Options};
use gauntlet_sim::scenario::Sabotage;
use serde::{Deserialize, Serialize};

/// The most runs one invocation makes.
const MAX_RUNS: u64 = 1_000_000;
/// Runs when neither `--runs` nor `--time` is given.
const DEFAULT_RUNS: u64 = 200;
/// The most missing shards a merge names (it counts them all).
const MISSING_NAMED: usize = 10;
/// The summary each exploration writes into its `--out` directory.
const SUMMARY: &str = "exploration.json";

/// Something was found: exit code 1.
#[derive(Debug)]
pub(crate) struct Found(usize);

impl std::fmt::Display for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} finding(s); each is written as a scenario file that fails the same way", self.0)
    }
}

impl std::error::Error for Found {}

/// What one exploration (or a merge of several) made and found: `DIR/exploration.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Summary {
    /// The envelope, as named on the command line.
    envelope: String,
    /// The generator's seed.
    seed: u64,
    /// Whether generation was steered by coverage.
    guided: bool,
    /// The fault kinds the envelope allows.
    kinds: Vec<String>,
    /// The deliberately broken client explored, if any.
    sabotage: Option<String>,
    /// The shards summed (`K/N`; `1/1` for an unsharded exploration).
    shards: Vec<String>,
    /// Runs made.
    runs: u64,
    /// Runs with no finding.
    clean: u64,
    /// Per fault kind allowed: runs whose schedule had it.
    runs_with_kind: BTreeMap<String, u64>,
    /// Per fault kind, per client state: runs that reached the pair.
    coverage: BTreeMap<String, BTreeMap<String, u64>>,
    /// Pairs reached after the first 1, 10, 100, … runs (not kept by a merge).
    growth: Vec<(u64, usize)>,
    /// By signature.
    findings: Vec<FindingSummary>,
}

/// One finding in a [`Summary`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FindingSummary {
    signature: String,
    /// Runs that showed it.
    count: u64,
    /// The lowest run index that showed it.
    first_run: u64,
    /// The shrunk scenario files written for it (one per shard that found it).
    files: Vec<String>,
}

impl Summary {
    fn pairs(&self) -> usize {
        self.coverage.values().map(BTreeMap::len).sum()
    }
}

/// The (fault kind × client state) pairs reached: how many runs reached each, and how the
/// number of pairs grew with the runs.
fn coverage_table(out: &mut impl Write, kinds: &[String], summary: &Summary) -> std::io::Result<()> {
    let growth: Vec<String> = summary.growth.iter().map(|(runs, pairs)| format!("{pairs} after {runs}")).collect();
    let growth = if growth.is_empty() { format!("after {} runs", summary.runs) } else { growth.join(", ") };
    writeln!(
        out,
        "coverage: {} of {} (fault kind x client state) pairs reached; {growth} (each cell: runs that reached it)",
        summary.pairs(),
        kinds.len() * explore::STATES.len(),
    )?;
    write!(out, "  {:<10}", "fault")?;
    for state in explore::STATES {
        write!(out, " {state:>17}")?;
    }
    writeln!(out)?;
    for k in kinds {
        write!(out, "  {k:<10}")?;
        for state in explore::STATES {
            let n = summary.coverage.get(k).and_then(|m| m.get(state)).copied().unwrap_or(0);
            write!(out, " {n:>17}")?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// Runs, kinds, coverage and findings, as `explore` and `--merge` print them.
fn print_summary(out: &mut impl Write, kinds: &[String], summary: &Summary, findings: usize) -> std::io::Result<()> {
    writeln!(out, "runs: {}, clean: {}, findings: {findings}", summary.runs, summary.clean)?;
    let per_kind: Vec<String> =
        kinds.iter().map(|k| format!("{k} {}", summary.runs_with_kind.get(k).copied().unwrap_or(0))).collect();
    writeln!(out, "runs with each kind: {}", per_kind.join(", "))?;
    coverage_table(out, kinds, summary)
}

fn write_summary(dir: &Path, summary: &Summary) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(SUMMARY);
    let text = serde_json::to_string_pretty(summary).context("the summary is JSON")?;
    std::fs::write(&path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

pub(crate) fn explore(args: &crate::args::ExploreArgs, out: &mut impl Write) -> anyhow::Result<()> {
    if !args.merge.is_empty() {
        return merge(&args.merge, out);
    }
    let Some(file) = &args.file else { bail!("an envelope or --merge is needed") };
    let name = file.display().to_string();
    let text = std::fs::read_to_string(file).with_context(|| format!("{name}: cannot be read"))?;
    let mut envelope = Envelope::parse(&name, &text).map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(s) = &args.sabotage {
        let all: Vec<&str> = Sabotage::ALL.iter().map(|s| s.name()).collect();
        envelope.sabotage =
            Some(Sabotage::named(s).ok_or_else(|| anyhow::anyhow!("--sabotage `{s}`: one of {}", all.join(", ")))?);
    }
    let seed = args.seed.unwrap_or(envelope.scenario.scenario.seed);
    let time = match &args.time {
        Some(t) => Some(humantime::parse_duration(t).map_err(|e| anyhow::anyhow!("--time {t}: {e}"))?),
        None => None,
    };
    let runs = match (args.runs, time, args.print_run) {
        (Some(n), _, _) => n,
        (None, Some(_), _) => MAX_RUNS,
        // A run's schedule depends only on the runs before it: printing run N needs N + 1.
        (None, None, Some(run)) => run.saturating_add(1).max(DEFAULT_RUNS),
        (None, None, None) => DEFAULT_RUNS,
    };
    if !(1..=MAX_RUNS).contains(&runs) {
        bail!("--runs must be in 1..={MAX_RUNS}");
    }
    let (k, n) = match &args.shard {
        Some(s) => crate::suite::parse_shard(s)?,
        None => (1, 1),
    };
    let indices: Vec<u64> = (0..runs).filter(|i| i % n as u64 == (k - 1) as u64).collect();
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from)).max(1);
    // `--time` is the one wall-clock bound: it decides how many runs, never what they do.
    let started = std::time::Instant::now();
    let out_of_time = move || time.is_some_and(|t| started.elapsed() >= t);
    let options = Options { seed, jobs, guided: !args.unguided, stop: time.is_some().then_some(&out_of_time as _) };
    let shard_flag = args.shard.as_ref().map(|s| format!(" --shard {s}")).unwrap_or_default();
    let guide_flag = if args.unguided { " --unguided" } else { "" };
    let sabotage_flag = args.sabotage.as_ref().map(|s| format!(" --sabotage {s}")).unwrap_or_default();
    if let Some(run) = args.print_run {
        let position = indices.binary_search(&run).map_err(|_| {
            anyhow::anyhow!("--print-run {run}: not a run of this exploration (its runs are {runs}, shard {k}/{n})")
        })?;
        let schedule = explore::schedule_at(&envelope, &indices, position, Options { stop: None, ..options })
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .ok_or_else(|| anyhow::anyhow!("--print-run {run}: not a run of this exploration"))?;
        let note =
            format!("Run {run} of `gauntlet explore {name} --seed {seed} --runs {runs}{shard_flag}{guide_flag}`.");
        write!(out, "{}", envelope.render(&schedule, &note))?;
        return Ok(());
    }
    let bound = match (args.runs, &args.time) {
        (Some(_), Some(t)) | (None, Some(t)) => format!("for {t} (at most {} runs)", indices.len()),
        (Some(_), None) | (None, None) => format!("{} runs", indices.len()),
    };
    let shard_note = args.shard.as_ref().map(|s| format!(" (shard {s})")).unwrap_or_default();
    let guided = if args.unguided { "unguided" } else { "guided" };
    writeln!(out, "exploring {name}: {bound}{shard_note}, seed {seed}, {guided}, {jobs} jobs")?;
    let found = explore::explore(&envelope, &indices, options).map_err(|e| anyhow::anyhow!("{e}"))?;
    if time.is_some() {
        // The runs made are the first `found.runs` of this shard: that many `--runs` replays them.
        let replay = indices.get((found.runs as usize).saturating_sub(1)).map_or(0, |i| i + 1);
        writeln!(
            out,
            "made {} runs; `gauntlet explore {name} --seed {seed} --runs {replay}{shard_flag}{guide_flag}{sabotage_flag}` replays them",
            found.runs
        )?;
    }
    let kinds: Vec<String> =
        Kind::ALL.iter().filter(|k| envelope.generator.kinds.contains(k)).map(|k| k.name().to_owned()).collect();
    let mut summary = Summary {
        envelope: name.clone(),
        seed,
        guided: !args.unguided,
        kinds: kinds.clone(),
        sabotage: args.sabotage.clone(),
        shards: vec![format!("{k}/{n}")],
        runs: found.runs,
        clean: found.clean,
        runs_with_kind: found.runs_with_kind.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect(),
        coverage: BTreeMap::new(),
        growth: found.growth.clone(),
        findings: Vec::new(),
    };
    for ((kind, state), runs) in &found.coverage {
        summary.coverage.entry(kind.clone()).or_default().insert((*state).to_owned(), *runs);
    }
    print_summary(out, &kinds, &summary, found.findings.len())?;
    let mut lines = Vec::new();
    for (i, f) in found.findings.values().enumerate() {
        let shrunk = explore::shrink(&envelope, &f.schedule, &f.signature).map_err(|e| anyhow::anyhow!("{e}"))?;
        let file =
            if n > 1 { format!("finding-{}-shard-{k}-of-{n}.toml", i + 1) } else { format!("finding-{}.toml", i + 1) };
        let path = args.out.join(&file);
        let scaled = shrunk.scale.describe(&envelope);
        let scaled = if scaled.is_empty() { String::new() } else { format!("\nScaled down: {}.", scaled.join(", ")) };
        let note = format!(
            "Found by `gauntlet explore {name} --seed {seed} --runs {runs}{shard_flag}{guide_flag}{sabotage_flag}` \
             (run {}, {} fault(s)), shrunk in {} runs to {} fault(s).{scaled}\n\
             It fails with: {}\nReproduce: gauntlet run {}",
            f.first_run,
            f.schedule.len(),
            shrunk.runs,
            shrunk.schedule.len(),
            f.signature,
            path.display()
        );
        std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
        std::fs::write(&path, envelope.render_scaled(&shrunk.schedule, &shrunk.scale, &note))
            .with_context(|| format!("writing {}", path.display()))?;
        lines.push(format!(
            "  {:<48} {:>5} runs (first: run {}), {} -> {} fault(s): gauntlet run {}",
            f.signature,
            f.count,
            f.first_run,
            f.schedule.len(),
            shrunk.schedule.len(),
            path.display()
        ));
        summary.findings.push(FindingSummary {
            signature: f.signature.clone(),
            count: f.count,
            first_run: f.first_run,
            files: vec![file],
        });
    }
    for line in lines {
        writeln!(out, "{line}")?;
    }
    write_summary(&args.out, &summary)?;
    if summary.findings.is_empty() { Ok(()) } else { Err(Found(summary.findings.len()).into()) }
}

/// `--merge DIR…`: the summaries of several explorations of one envelope and seed summed; the
/// findings by signature (counts added, the lowest first run, every file). A shard merged twice
/// (left out the second time) or missing is named, and exits 1 as a finding does.
fn merge(dirs: &[PathBuf], out: &mut impl Write) -> anyhow::Result<()> {
    let mut merged: Option<Summary> = None;
    let mut problems = Vec::new();
    for dir in dirs {
        let path = dir.join(SUMMARY);
        let s: Summary = crate::report::parse(&path, &crate::report::read_bounded(&path)?)?;
        // The first names what is merged; every summary, the first too, is then added to it.
        let m = merged.get_or_insert_with(|| Summary {
            shards: Vec::new(),
            runs: 0,
            clean: 0,
            runs_with_kind: BTreeMap::new(),
            coverage: BTreeMap::new(),
            growth: Vec::new(),
            findings: Vec::new(),
            ..s.clone()
        });
        if (&s.envelope, s.seed, s.guided, &s.sabotage, &s.kinds)
            != (&m.envelope, m.seed, m.guided, &m.sabotage, &m.kinds)
        {
            bail!(
                "{}: explores {} (seed {}, guided {}, sabotage {:?}), not {} (seed {}, guided {}, sabotage {:?}) as {} does",
                path.display(),
                s.envelope,
                s.seed,
                s.guided,
                s.sabotage,
                m.envelope,
                m.seed,
                m.guided,
                m.sabotage,
                dirs[0].join(SUMMARY).display()
            );
        }
        if let Some(twice) = s.shards.iter().find(|x| m.shards.contains(x)) {
            problems.push(format!("{}: shard {twice} is merged already (left out)", path.display()));
            continue;
        }
        m.shards.extend(s.shards);
        m.runs = m.runs.saturating_add(s.runs);
        m.clean = m.clean.saturating_add(s.clean);
        for (k, n) in s.runs_with_kind {
            let e = m.runs_with_kind.entry(k).or_insert(0);
            *e = e.saturating_add(n);
        }
        for (k, states) in s.coverage {
            for (state, n) in states {
                let e = m.coverage.entry(k.clone()).or_default().entry(state).or_insert(0);
                *e = e.saturating_add(n);
            }
        }
        for f in s.findings {
            let dir_files = f.files.iter().map(|x| dir.join(x).display().to_string());
            match m.findings.iter_mut().find(|g| g.signature == f.signature) {
                Some(g) => {
                    g.count = g.count.saturating_add(f.count);
                    g.first_run = g.first_run.min(f.first_run);
                    g.files.extend(dir_files);
                }
                None => m.findings.push(FindingSummary { files: dir_files.collect(), ..f }),
            }
        }
    }
    let Some(mut m) = merged else { bail!("--merge needs at least one directory") };
    m.findings.sort_by(|a, b| a.signature.cmp(&b.signature));
    // Shards of one split: every K of N present. N comes from a file: the missing are counted,
    // and only the first few named, however large N is.
    let mut split: BTreeMap<usize, std::collections::BTreeSet<usize>> = BTreeMap::new();
    for (k, n) in m.shards.iter().filter_map(|s| crate::suite::parse_shard(s).ok()) {
        split.entry(n).or_default().insert(k);
    }
    for (n, ks) in &split {
        let missing = n - ks.len();
        let named: Vec<String> =
            (1..=*n).filter(|k| !ks.contains(k)).take(MISSING_NAMED).map(|k| format!("{k}/{n}")).collect();
        if missing > named.len() {
            problems.push(format!("{missing} shards of {n} are missing: {}, …", named.join(", ")));
        } else {
            problems.extend(named.iter().map(|k| format!("shard {k} is missing")));
        }
    }
    writeln!(
        out,
        "merged {} exploration(s) of {} (seed {}): shards {}",
        dirs.len(),
        m.envelope,
        m.seed,
        m.shards.join(", ")
    )?;
    for p in &problems {
        writeln!(out, "{p}")?;
    }
    print_summary(out, &m.kinds, &m, m.findings.len())?;
    for f in &m.findings {
        writeln!(
            out,
            "  {:<48} {:>5} runs (first: run {}): {}",
            f.signature,
            f.count,
            f.first_run,
            f.files.join(", ")
        )?;
    }
    if !m.findings.is_empty() {
        return Err(Found(m.findings.len()).into());
    }
    if !problems.is_empty() {
        return Err(crate::report::Incomplete(problems.len()).into());
    }
    Ok(())
}
