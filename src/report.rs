//! `gauntlet report` and `gauntlet diff`: results directories in, one report or a comparison out.
//!
//! Results directories are input from anywhere (a CI artifact, a colleague's run): every file is
//! read with a size bound and parsed as data; a file that is not results JSON is an error naming
//! it and its line and column (exit 2), never a panic.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use gauntlet_reports::diff::{Thresholds, diff as compare_runs};
use gauntlet_reports::merge::{self, Input, MANIFEST, Manifest, Merged};
use gauntlet_reports::{RunResult, Verdict};

use crate::args::{DiffArgs, ReportArgs};
use crate::suite::{self, program};

/// The largest results file read (a run keeps at most 100,000 events: far below this).
pub(crate) const MAX_FILE: u64 = 256 * 1024 * 1024;
/// The most results files read from one directory.
pub(crate) const MAX_FILES: usize = 1_000_000;

/// A merge that misses runs or holds some twice (exit code 1).
#[derive(Debug, thiserror::Error)]
#[error("the merged results are incomplete: {0} problem(s) listed above")]
pub(crate) struct Incomplete(pub(crate) usize);

/// The head regressed against the baseline (exit code 1).
#[derive(Debug, thiserror::Error)]
#[error("{0} run(s) regressed or went missing")]
pub(crate) struct Regressed(usize);

pub(crate) fn read_bounded(path: &Path) -> anyhow::Result<String> {
    let len = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?.len();
    if len > MAX_FILE {
        bail!("{}: {len} bytes is more than a results file may hold ({MAX_FILE})", path.display());
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    String::from_utf8(bytes)
        .map_err(|e| anyhow::anyhow!("{}: not UTF-8 (at byte {})", path.display(), e.utf8_error().valid_up_to()))
}

pub(crate) fn parse<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> anyhow::Result<T> {
    serde_json::from_str(text).map_err(|e| {
        // The position leads the message, as in every bad-input error; not again at its end.
        let message = e.to_string();
        let message = message.strip_suffix(&format!(" at line {} column {}", e.line(), e.column())).unwrap_or(&message);
        anyhow::anyhow!("{}:{}:{}: {message}", path.display(), e.line(), e.column())
    })
}

/// A results directory: its manifest (if any) and every `*.json` run in it, by file name.
pub(crate) fn load_dir(dir: &Path) -> anyhow::Result<Input> {
    if !dir.is_dir() {
        bail!("{} is not a results directory", dir.display());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .take(MAX_FILES.saturating_add(1))
        .collect();
    if files.len() > MAX_FILES {
        bail!("{} holds more than {MAX_FILES} results files", dir.display());
    }
    files.sort();
    let mut manifest: Option<Manifest> = None;
    let mut runs = Vec::new();
    for path in files {
        let text = read_bounded(&path)?;
        if path.file_name().is_some_and(|n| n == MANIFEST) {
            let m: Manifest = parse(&path, &text)?;
            if m.format != merge::FORMAT {
                bail!("{}: manifest format {} (this version reads {})", path.display(), m.format, merge::FORMAT);
            }
            manifest = Some(m);
        } else {
            runs.push(parse::<RunResult>(&path, &text)?);
        }
    }
    if manifest.is_none() && runs.is_empty() {
        bail!("{} holds no results (*.json)", dir.display());
    }
    Ok(Input { name: dir.display().to_string(), manifest, runs })
}

fn load_merged(dirs: &[PathBuf]) -> anyhow::Result<Merged> {
    let inputs = dirs.iter().map(|d| load_dir(d)).collect::<anyhow::Result<Vec<_>>>()?;
    Ok(merge::merge(inputs))
}

/// `gauntlet report`.
pub(crate) fn report(args: &ReportArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let merged = load_merged(&args.dirs)?;
    let title = args.title.clone().or_else(|| merged.title.clone()).unwrap_or_else(|| "Gauntlet report".to_owned());
    let runs = &merged.runs;
    let failed: Vec<&RunResult> = runs.iter().filter(|r| r.verdict == Verdict::Fail).collect();
    let program = program();
    for r in &failed {
        writeln!(out, "{}", gauntlet_reports::summary_line(r))?;
        suite::print_failure(r, &program, out)?;
    }
    let notes: Vec<String> = merged.problems.iter().map(ToString::to_string).collect();
    for n in &notes {
        writeln!(out, "{n}")?;
    }
    writeln!(
        out,
        "{} runs from {} director{}: {} passed, {} failed",
        runs.len(),
        args.dirs.len(),
        if args.dirs.len() == 1 { "y" } else { "ies" },
        runs.len() - failed.len(),
        failed.len()
    )?;
    suite::write_html(&args.html, &title, runs, None, &notes)?;
    writeln!(out, "report: {}", args.html.display())?;
    if let Some(dir) = &args.out {
        let manifest = Manifest {
            format: merge::FORMAT,
            title: title.clone(),
            shard: None,
            runs: runs.iter().map(merge::RunId::of).collect(),
        };
        suite::write_dir(dir, runs, &manifest)?;
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, gauntlet_reports::junit("gauntlet", runs))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if !notes.is_empty() {
        return Err(Incomplete(notes.len()).into());
    }
    if !failed.is_empty() {
        return Err(suite::Failed::new(failed.len(), runs.len()).into());
    }
    Ok(())
}

/// `gauntlet diff`.
pub(crate) fn diff(args: &DiffArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let mut thresholds = match &args.thresholds {
        Some(path) => {
            let text = read_bounded(path)?;
            Thresholds::parse_file(&path.display().to_string(), &text).map_err(|m| anyhow::anyhow!(m))?
        }
        None => Thresholds::default(),
    };
    if let Some(spec) = &args.max_regression {
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("--max-regression: `{item}` is not `metric=limit` (e.g. p99=10%)"))?;
            thresholds.set(k.trim(), v).map_err(|m| anyhow::anyhow!("--max-regression: {m}"))?;
        }
    }
    let base = load_merged(std::slice::from_ref(&args.base))?;
    let head = load_merged(std::slice::from_ref(&args.head))?;
    for (side, m) in [("base", &base), ("head", &head)] {
        for p in &m.problems {
            writeln!(out, "{side}: {p}")?;
        }
    }
    let d = compare_runs(&base.runs, &head.runs, &thresholds);
    let text = d.markdown(&args.base.display().to_string(), &args.head.display().to_string());
    write!(out, "{text}")?;
    if let Some(path) = &args.markdown {
        std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.html {
        let title = format!("Gauntlet diff: {} against {}", args.head.display(), args.base.display());
        suite::write_html(path, &title, &head.runs, Some(&base.runs), &[])?;
    }
    if d.regressed() {
        let n = d.count(gauntlet_reports::diff::Status::Regressed) + d.count(gauntlet_reports::diff::Status::Missing);
        return Err(Regressed(n).into());
    }
    Ok(())
}
