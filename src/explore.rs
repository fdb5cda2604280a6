//! `gauntlet explore`: an envelope's runs over generated fault schedules, the findings by
//! signature, each shrunk and written as a scenario file (the engine is `gauntlet_sim::explore`).

use std::io::Write;

use anyhow::Context;
use gauntlet_sim::explore::{self, Envelope, Kind};
use gauntlet_sim::scenario::Sabotage;

/// The most runs one invocation makes.
const MAX_RUNS: u64 = 1_000_000;

/// Something was found: exit code 1.
#[derive(Debug)]
pub(crate) struct Found(usize);

impl std::fmt::Display for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} finding(s); each is written as a scenario file that fails the same way", self.0)
    }
}

impl std::error::Error for Found {}

/// The (fault kind × client state) pairs reached: how many runs reached each, and how the
/// number of pairs grew with the runs.
fn coverage_table(out: &mut impl Write, envelope: &Envelope, found: &explore::Exploration) -> std::io::Result<()> {
    let kinds: Vec<Kind> = Kind::ALL.iter().copied().filter(|k| envelope.generator.kinds.contains(k)).collect();
    let growth: Vec<String> = found.growth.iter().map(|(runs, pairs)| format!("{pairs} after {runs}")).collect();
    writeln!(
        out,
        "coverage: {} of {} (fault kind x client state) pairs reached; {} (each cell: runs that reached it)",
        found.coverage.len(),
        kinds.len() * explore::STATES.len(),
        growth.join(", ")
    )?;
    write!(out, "  {:<10}", "fault")?;
    for state in explore::STATES {
        write!(out, " {state:>17}")?;
    }
    writeln!(out)?;
    for k in kinds {
        write!(out, "  {:<10}", k.name())?;
        for state in explore::STATES {
            let n = found.coverage.get(&(k.name().to_owned(), state)).copied().unwrap_or(0);
            write!(out, " {n:>17}")?;
        }
        writeln!(out)?;
    }
    Ok(())
}

pub(crate) fn explore(args: &crate::args::ExploreArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let name = args.file.display().to_string();
    let text = std::fs::read_to_string(&args.file).with_context(|| format!("{name}: cannot be read"))?;
    let mut envelope = Envelope::parse(&name, &text).map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(s) = &args.sabotage {
        let all: Vec<&str> = Sabotage::ALL.iter().map(|s| s.name()).collect();
        envelope.sabotage =
            Some(Sabotage::named(s).ok_or_else(|| anyhow::anyhow!("--sabotage `{s}`: one of {}", all.join(", ")))?);
    }
    let seed = args.seed.unwrap_or(envelope.scenario.scenario.seed);
    if let Some(run) = args.print_run {
        let note = format!("Run {run} of `gauntlet explore {name} --seed {seed}`.");
        write!(out, "{}", envelope.render(&envelope.generator.schedule(seed, run), &note))?;
        return Ok(());
    }
    if !(1..=MAX_RUNS).contains(&args.runs) {
        anyhow::bail!("--runs must be in 1..={MAX_RUNS}");
    }
    let (k, n) = match &args.shard {
        Some(s) => crate::suite::parse_shard(s)?,
        None => (1, 1),
    };
    let indices: Vec<u64> = (0..args.runs).filter(|i| i % n as u64 == (k - 1) as u64).collect();
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from)).max(1);
    let shard_note = args.shard.as_ref().map(|s| format!(" (shard {s})")).unwrap_or_default();
    writeln!(out, "exploring {name}: {} runs{shard_note}, seed {seed}, {jobs} jobs", indices.len())?;
    let found = explore::explore(&envelope, seed, &indices, jobs).map_err(|e| anyhow::anyhow!("{e}"))?;
    writeln!(out, "runs: {}, clean: {}, findings: {}", found.runs, found.clean, found.findings.len())?;
    let kinds: Vec<String> = Kind::ALL
        .iter()
        .filter(|k| envelope.generator.kinds.contains(k))
        .map(|k| format!("{} {}", k.name(), found.runs_with_kind.get(k.name()).copied().unwrap_or(0)))
        .collect();
    writeln!(out, "runs with each kind: {}", kinds.join(", "))?;
    coverage_table(out, &envelope, &found)?;
    if found.findings.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    for (i, f) in found.findings.values().enumerate() {
        let shrunk = explore::shrink(&envelope, &f.schedule, &f.signature).map_err(|e| anyhow::anyhow!("{e}"))?;
        let path = args.out.join(format!("finding-{}.toml", i + 1));
        let scaled = shrunk.scale.describe(&envelope);
        let scaled = if scaled.is_empty() { String::new() } else { format!("\nScaled down: {}.", scaled.join(", ")) };
        let note = format!(
            "Found by `gauntlet explore {name} --seed {seed}` (run {}, {} faults), shrunk in {} runs to {} fault(s).{scaled}\n\
             It fails with: {}\nReproduce: gauntlet run {}",
            f.first_run,
            f.schedule.len(),
            shrunk.runs,
            shrunk.schedule.len(),
            f.signature,
            path.display()
        );
        std::fs::write(&path, envelope.render_scaled(&shrunk.schedule, &shrunk.scale, &note))
            .with_context(|| format!("writing {}", path.display()))?;
        writeln!(
            out,
            "  {:<48} {:>5} runs (first: run {}), {} -> {} fault(s): gauntlet run {}",
            f.signature,
            f.count,
            f.first_run,
            f.schedule.len(),
            shrunk.schedule.len(),
            path.display()
        )?;
    }
    Err(Found(found.findings.len()).into())
}
