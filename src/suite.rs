//! `gauntlet suite`, `run`, `compare` and `validate`: scenario files in, runs out.
//!
//! A run is one scenario × strategy × seed. The unit of work (and of sharding) is a scenario ×
//! seed with all of its strategies, because comparisons between strategies need them together.
//! Units run on as many threads as the machine has cores; output is printed in unit order, so
//! it is the same whatever the parallelism.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use gauntlet_core::balance::Strategy;
use gauntlet_reports::merge::{Manifest, RunId};
use gauntlet_reports::{RunResult, Verdict};
use gauntlet_sim::file::{self, ScenarioFile, Variant};

use crate::args::{CompareArgs, OutputArgs, RunArgs, SuiteArgs, ValidateArgs};
use crate::bundled::BUNDLED;

/// An expectation failed or a checker found a violation (exit code 1).
#[derive(Debug, thiserror::Error)]
#[error("{failed} of {total} runs failed")]
pub(crate) struct Failed {
    failed: usize,
    total: usize,
}

impl Failed {
    /// `failed` of `total` runs failed.
    pub(crate) fn new(failed: usize, total: usize) -> Failed {
        Failed { failed, total }
    }
}

/// The directory `gauntlet suite` runs when given no path.
pub(crate) const DEFAULT_DIR: &str = "scenarios";

/// Reads and checks scenario files: every `.toml` of each directory (sorted), each file given.
/// Prints every error (`file:line:col: message`) before failing, so one pass shows them all: a
/// file that cannot be read or is not UTF-8 is one error among the others.
pub(crate) fn load(paths: &[PathBuf], err: &mut impl Write) -> anyhow::Result<Vec<ScenarioFile>> {
    let mut sources: Vec<(String, Source)> = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            files.sort();
            if files.is_empty() {
                bail!("{} holds no scenario file (*.toml)", path.display());
            }
            for f in files {
                sources.push((f.display().to_string(), read(&f)?));
            }
        } else {
            sources.push((path.display().to_string(), read(path)?));
        }
    }
    parse_all(&sources, err)
}

/// A scenario file's text, or why it has none.
type Source = Result<String, String>;

/// The file's text; a file that cannot be read, or is not UTF-8, is a message naming where.
fn read(path: &Path) -> anyhow::Result<Source> {
    let name = path.display();
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => return Ok(Err(format!("{name}: cannot be read: {e}"))),
    };
    Ok(String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        // Valid up to here, so this prefix is text: its lines and characters give the position.
        let before = std::str::from_utf8(valid).unwrap_or_default();
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        let byte = e.as_bytes()[valid.len()];
        format!("{name}:{line}:{col}: the file is not UTF-8 (byte 0x{byte:02x} at offset {})", valid.len())
    }))
}

fn parse_all(sources: &[(String, Source)], err: &mut impl Write) -> anyhow::Result<Vec<ScenarioFile>> {
    let mut files = Vec::new();
    let mut bad = 0;
    for (name, source) in sources {
        let parsed = match source {
            Ok(text) => file::parse(name, text).map_err(|e| e.to_string()),
            Err(message) => Err(message.clone()),
        };
        match parsed {
            Ok(f) => files.push(f),
            Err(message) => {
                bad += 1;
                writeln!(err, "{message}")?;
            }
        }
    }
    if bad > 0 {
        bail!("{bad} scenario file(s) are invalid");
    }
    let mut names: Vec<(&str, &str)> = files.iter().map(|f| (f.scenario.name.as_str(), f.file.as_str())).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0].0 == w[1].0) {
        bail!("{} and {} both name their scenario `{}`", w[0].1, w[1].1, w[0].0);
    }
    Ok(files)
}

/// The suite's files: the paths given, else `scenarios/` if it exists here, else the bundled
/// copies compiled into the binary.
fn suite_files(paths: &[PathBuf], err: &mut impl Write) -> anyhow::Result<Vec<ScenarioFile>> {
    if !paths.is_empty() {
        return load(paths, err);
    }
    if Path::new(DEFAULT_DIR).is_dir() {
        return load(&[PathBuf::from(DEFAULT_DIR)], err);
    }
    bundled(err)
}

/// The bundled suite's files, compiled into the binary.
pub(crate) fn bundled(err: &mut impl Write) -> anyhow::Result<Vec<ScenarioFile>> {
    let sources: Vec<(String, Source)> =
        BUNDLED.iter().map(|(name, text)| ((*name).to_owned(), Ok((*text).to_owned()))).collect();
    parse_all(&sources, err)
}

/// `K/N`, 1-based.
pub(crate) fn parse_shard(text: &str) -> anyhow::Result<(usize, usize)> {
    let parsed = text.split_once('/').and_then(|(k, n)| Some((k.trim().parse().ok()?, n.trim().parse().ok()?)));
    match parsed {
        Some((k, n)) if n >= 1 && (1..=n).contains(&k) => Ok((k, n)),
        _ => bail!("--shard {text}: expected K/N with 1 <= K <= N, e.g. 2/4"),
    }
}

/// One unit of work: a file's scenario for one seed, under each of `variants`.
#[derive(Clone, Debug)]
pub(crate) struct Unit {
    pub(crate) file: usize,
    pub(crate) seed: u64,
    pub(crate) variants: Vec<Variant>,
}

/// Every unit of `files`, in file then seed order.
pub(crate) fn units(files: &[ScenarioFile]) -> Vec<Unit> {
    files
        .iter()
        .enumerate()
        .flat_map(|(i, f)| f.seeds.iter().map(move |&seed| Unit { file: i, seed, variants: f.variants.clone() }))
        .collect()
}

/// Shard `k` of `n` (1-based): every `n`-th unit from the `k`-th. Each unit is in exactly one.
pub(crate) fn shard(units: Vec<Unit>, k: usize, n: usize) -> Vec<Unit> {
    units.into_iter().enumerate().filter(|(i, _)| i % n == k - 1).map(|(_, u)| u).collect()
}

/// Runs one unit: each variant, then its expectations and comparisons.
pub(crate) fn run_unit(f: &ScenarioFile, unit: &Unit) -> Vec<RunResult> {
    f.run_seed(unit.seed, &unit.variants)
}

/// Runs `units` on `jobs` threads, with a progress bar on a terminal; results in unit order.
pub(crate) fn execute(files: &[ScenarioFile], units: &[Unit], jobs: usize) -> Vec<RunResult> {
    let total_runs: usize = units.iter().map(|u| u.variants.len()).sum();
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(total_runs as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} runs {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let done = gauntlet_sim::parallel::map_ordered(units, jobs, |unit| {
        let f = &files[unit.file];
        bar.set_message(f.scenario.name.clone());
        let runs = run_unit(f, unit);
        bar.inc(runs.len() as u64);
        runs
    });
    bar.finish_and_clear();
    done.into_iter().flatten().collect()
}

/// Prints each run's summary, digest, and for a failure what failed and how to replay it.
pub(crate) fn print_runs(runs: &[RunResult], program: &str, out: &mut impl Write) -> anyhow::Result<()> {
    for r in runs {
        writeln!(out, "{}", gauntlet_reports::summary_line(r))?;
        writeln!(out, "  digest: {}", r.digest)?;
        if r.verdict == Verdict::Fail {
            print_failure(r, program, out)?;
        }
    }
    Ok(())
}

/// The name this binary was started by (`gauntlet`, or a user's binary built on the library),
/// for reproduce lines.
pub(crate) fn program() -> String {
    std::env::args_os()
        .next()
        .and_then(|a| Path::new(&a).file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "gauntlet".to_owned())
}

/// The manifest of an invocation: every run of `all` (every shard's units), and the shard.
pub(crate) fn manifest(files: &[ScenarioFile], all: &[Unit], title: &str, shard: Option<String>) -> Manifest {
    let runs = all
        .iter()
        .flat_map(|u| {
            u.variants.iter().map(move |v| RunId {
                scenario: files[u.file].scenario.name.clone(),
                run: v.name.clone(),
                seed: u.seed,
            })
        })
        .collect();
    Manifest { format: gauntlet_reports::merge::FORMAT, title: title.to_owned(), shard, runs }
}

/// Writes a results directory: each run's JSON, the Markdown summary and the manifest.
pub(crate) fn write_dir(dir: &Path, runs: &[RunResult], manifest: &Manifest) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for r in runs {
        let path = dir.join(format!("{}.{}.seed-{}.json", r.scenario, r.key(), r.seed));
        std::fs::write(&path, gauntlet_reports::json(r)).with_context(|| format!("writing {}", path.display()))?;
    }
    let path = dir.join("summary.md");
    std::fs::write(&path, gauntlet_reports::markdown(&manifest.title, runs))
        .with_context(|| format!("writing {}", path.display()))?;
    let path = dir.join(gauntlet_reports::merge::MANIFEST);
    let text = serde_json::to_string_pretty(manifest).context("the manifest serializes")?;
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}

/// Writes the HTML report of `runs` to `path`.
pub(crate) fn write_html(
    path: &Path,
    title: &str,
    runs: &[RunResult],
    base: Option<&[RunResult]>,
    notes: &[String],
) -> anyhow::Result<()> {
    let program = program();
    let page = gauntlet_reports::Page { title, runs, base, notes, program: &program };
    std::fs::write(path, gauntlet_reports::html(&page)).with_context(|| format!("writing {}", path.display()))
}

/// Writes `--out`, `--junit` and `--html` files.
fn write_outputs(runs: &[RunResult], manifest: &Manifest, output: &OutputArgs) -> anyhow::Result<()> {
    if let Some(dir) = &output.out {
        write_dir(dir, runs, manifest)?;
    }
    if let Some(path) = &output.junit {
        std::fs::write(path, gauntlet_reports::junit("gauntlet", runs))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &output.html {
        write_html(path, &manifest.title, runs, None, &[])?;
    }
    Ok(())
}

fn jobs(output: &OutputArgs) -> anyhow::Result<usize> {
    match output.jobs {
        Some(0) => bail!("--jobs must be at least 1"),
        Some(n) => Ok(n),
        None => Ok(std::thread::available_parallelism().map_or(1, usize::from)),
    }
}

/// Runs the units, prints, writes, and fails if any run failed.
fn finish(
    files: &[ScenarioFile],
    units: &[Unit],
    manifest: &Manifest,
    output: &OutputArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let runs = execute(files, units, jobs(output)?);
    print_runs(&runs, &program(), out)?;
    let failed = runs.iter().filter(|r| r.verdict == Verdict::Fail).count();
    writeln!(out, "{} runs: {} passed, {failed} failed", runs.len(), runs.len() - failed)?;
    write_outputs(&runs, manifest, output)?;
    if failed > 0 {
        return Err(Failed { failed, total: runs.len() }.into());
    }
    Ok(())
}

/// `gauntlet suite`.
pub(crate) fn suite(args: &SuiteArgs, out: &mut impl Write, err: &mut impl Write) -> anyhow::Result<()> {
    let part = args.shard.as_deref().map(parse_shard).transpose()?;
    if args.seeds == Some(0) {
        bail!("--seeds must be at least 1");
    }
    let mut files = suite_files(&args.paths, err)?;
    if let Some(n) = args.seeds {
        files = files.into_iter().map(|f| f.with_seeds(n)).collect();
    }
    let all = units(&files);
    let manifest = manifest(&files, &all, "Gauntlet suite", args.shard.clone());
    let units = match part {
        Some((k, n)) => shard(all, k, n),
        None => all,
    };
    finish(&files, &units, &manifest, &args.output, out)
}

fn checked_strategy(name: &str) -> anyhow::Result<Strategy> {
    name.parse::<Strategy>().map_err(|e| anyhow::anyhow!("--strategy: {e}"))
}

/// `gauntlet run`.
pub(crate) fn run(args: &RunArgs, out: &mut impl Write, err: &mut impl Write) -> anyhow::Result<()> {
    if args.seeds == Some(0) {
        bail!("--seeds must be at least 1");
    }
    let mut f = load(std::slice::from_ref(&args.file), err)?.remove(0);
    if let Some(seed) = args.seed {
        f.seeds = vec![seed];
    }
    if let Some(n) = args.seeds {
        f = f.with_seeds(n);
    }
    if let (Some(_), Some(_)) = (&args.strategy, &args.variant) {
        bail!("--strategy and --variant: give one (a variant names its own strategy)");
    }
    if let Some(v) = &args.variant
        && !f.select_variant(v)
    {
        let names: Vec<&str> = f.variants.iter().map(|v| v.name.as_str()).collect();
        bail!("--variant {v}: {} has no variant `{v}`; it runs {}", f.file, names.join(", "));
    }
    if let Some(s) = &args.strategy {
        let strategy = checked_strategy(s)?;
        if f.has_named_variants() {
            bail!("--strategy {s}: {} runs [[variant]]s; choose one with --variant", f.file);
        }
        if !f.expect.compare.is_empty() && !f.variants.iter().any(|v| v.name == strategy.name()) {
            let matrix: Vec<&str> = f.variants.iter().map(|v| v.name.as_str()).collect();
            bail!(
                "--strategy {s}: {} compares the strategies of its matrix ({}); {s} is not one of them, so its comparisons could not run",
                f.file,
                matrix.join(", ")
            );
        }
        // With the strategies its comparisons need, so that a comparison replays too.
        f.select_strategy(strategy);
    }
    let files = [f];
    let title = format!("Gauntlet run: {}", files[0].scenario.name);
    let all = units(&files);
    finish(&files, &all, &manifest(&files, &all, &title, None), &args.output, out)
}

/// `gauntlet compare`: the same world and seed under each strategy, in one table per file.
pub(crate) fn compare(args: &CompareArgs, out: &mut impl Write, err: &mut impl Write) -> anyhow::Result<()> {
    let strategies: Vec<Strategy> =
        args.strategies.iter().map(|s| checked_strategy(s)).collect::<anyhow::Result<_>>()?;
    let mut files = load(&args.files, err)?;
    for f in &mut files {
        if f.has_named_variants() {
            if !strategies.is_empty() {
                bail!("--strategies: {} runs [[variant]]s, which name their own strategies", f.file);
            }
        } else if !strategies.is_empty() {
            f.variants = strategies.iter().map(|&s| f.variant_for(s)).collect();
        } else if f.variants.len() == 1 {
            f.variants = Strategy::all().into_iter().map(|s| f.variant_for(s)).collect();
        }
        f.seeds = vec![args.seed.unwrap_or(f.seeds[0])];
    }
    let all = units(&files);
    let runs = execute(&files, &all, jobs(&args.output)?);
    let ms = |v: Option<f64>| gauntlet_reports::ms(v);
    for f in &files {
        writeln!(out, "{} seed {}: {}", f.scenario.name, f.seeds[0], f.description)?;
        writeln!(
            out,
            "{:<20} {:>8} {:>9} {:>5} {:>9} {:>9} {:>9} {:>8} {:>9}  verdict",
            "strategy", "calls", "success", "lost", "p50", "p99", "p99.9", "retry x", "recovery"
        )?;
        for r in runs.iter().filter(|r| r.scenario == f.scenario.name) {
            writeln!(
                out,
                "{:<20} {:>8} {:>8.3}% {:>5} {:>9} {:>9} {:>9} {:>8.3} {:>9}  {}",
                r.label(),
                r.calls.total,
                r.calls.success_rate() * 100.0,
                r.calls.lost,
                ms(r.latency.p50),
                ms(r.latency.p99),
                ms(r.latency.p999),
                r.retry_amplification,
                ms(r.recovery_ms),
                if r.verdict == Verdict::Pass { "pass" } else { "FAIL" },
            )?;
        }
        writeln!(out)?;
    }
    let failed: Vec<&RunResult> = runs.iter().filter(|r| r.verdict == Verdict::Fail).collect();
    for r in &failed {
        writeln!(out, "{} [{}]:", r.scenario, r.label())?;
        print_failure(r, &program(), out)?;
    }
    write_outputs(&runs, &manifest(&files, &all, "Gauntlet compare", None), &args.output)?;
    if let Some(dir) = &args.output.out {
        let seeds: Vec<String> = files.iter().map(|f| format!("{} seed {}", f.scenario.name, f.seeds[0])).collect();
        let preamble = format!(
            "Machine: {} {}, {} cores. Seeds: {}. Simulated time: results do not depend on the machine's \
             speed; the same seed gives the same figures anywhere.",
            std::env::consts::OS,
            std::env::consts::ARCH,
            std::thread::available_parallelism().map_or(1, usize::from),
            seeds.join(", "),
        );
        let path = dir.join("compare.md");
        std::fs::write(&path, gauntlet_reports::comparison("Strategies compared", &preamble, &runs))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if !failed.is_empty() {
        return Err(Failed { failed: failed.len(), total: runs.len() }.into());
    }
    Ok(())
}

pub(crate) fn print_failure(r: &RunResult, program: &str, out: &mut impl Write) -> anyhow::Result<()> {
    for v in &r.violations {
        writeln!(out, "  violation: {v}")?;
    }
    for e in r.failed_expectations() {
        writeln!(out, "  expected {} {}, measured {}", e.name, e.expected, e.measured)?;
    }
    writeln!(out, "  reproduce: {}", r.reproduce_with(program))?;
    Ok(())
}

/// `gauntlet validate`.
pub(crate) fn validate(args: &ValidateArgs, out: &mut impl Write, err: &mut impl Write) -> anyhow::Result<()> {
    let files = load(&args.paths, err)?;
    for f in &files {
        let runs = f.seeds.len() * f.variants.len();
        writeln!(out, "ok: {}: {} ({runs} runs)", f.file, f.scenario.name)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_every_unit_exactly_once() {
        let units: Vec<Unit> = (0..23).map(|i| Unit { file: i / 3, seed: i as u64, variants: Vec::new() }).collect();
        for n in 1..=7 {
            let mut seen: Vec<(usize, u64)> =
                (1..=n).flat_map(|k| shard(units.clone(), k, n)).map(|u| (u.file, u.seed)).collect();
            seen.sort_unstable();
            let all: Vec<(usize, u64)> = units.iter().map(|u| (u.file, u.seed)).collect();
            assert_eq!(seen, all, "{n} shards");
        }
    }

    #[test]
    fn a_shard_is_k_of_n_with_k_between_1_and_n() {
        assert_eq!(parse_shard("2/4").expect("valid"), (2, 4));
        for bad in ["0/4", "5/4", "1/0", "x/2", "3"] {
            assert!(parse_shard(bad).is_err(), "{bad}");
        }
    }
}
