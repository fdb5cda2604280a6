//! `gauntlet flow run`: a workflow file against real servers, journaled, resumable.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use gauntlet_client::MultiServerClient;
use gauntlet_client::config::Config;
use gauntlet_client::flow::{FlowEvent, FlowEventKind, FlowOptions, FlowReport, RedbJournal, SharedJournal};
use gauntlet_core::workflow::{Record, Status, StepState};
use gauntlet_sim::flow_file::{FlowFile, parse_flow};
use serde_json::Value;

/// The most `--input`s.
const MAX_INPUTS: usize = 1_000;

/// A checked `flow run`.
#[derive(Debug)]
pub(crate) struct Settings {
    flow: FlowFile,
    config: Config,
    journal: PathBuf,
    resume: bool,
    ready_timeout: Duration,
}

impl TryFrom<crate::args::FlowRunArgs> for Settings {
    type Error = anyhow::Error;

    fn try_from(raw: crate::args::FlowRunArgs) -> anyhow::Result<Settings> {
        let file = raw.file.display().to_string();
        let text = std::fs::read_to_string(&raw.file).with_context(|| format!("reading {file}"))?;
        let mut flow = parse_flow(&file, &text)?;
        if raw.inputs.len() > MAX_INPUTS {
            anyhow::bail!("more than {MAX_INPUTS} --input");
        }
        for input in &raw.inputs {
            let (key, value) = input.split_once('=').with_context(|| format!("--input `{input}`: write KEY=VALUE"))?;
            let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
            if let Value::Object(map) = &mut flow.inputs {
                map.insert(key.to_owned(), value);
            }
        }
        let path = raw.config.display().to_string();
        let text = std::fs::read_to_string(&raw.config).with_context(|| format!("reading {path}"))?;
        let mut config = Config::parse(&text, &|var| std::env::var(var).ok()).with_context(|| path.clone())?;
        config.rebase(raw.config.parent().unwrap_or_else(|| std::path::Path::new("."))).with_context(|| path)?;
        crate::redact_logs(&config.redactor());
        let ready_timeout = humantime::parse_duration(&raw.ready_timeout)
            .with_context(|| format!("--ready-timeout `{}`", raw.ready_timeout))?;
        let (journal, resume) = match (raw.resume, raw.journal) {
            (Some(j), _) => (j, true),
            (None, Some(j)) => (j, false),
            (None, None) => (raw.file.with_extension("journal"), false),
        };
        if resume && !journal.exists() {
            anyhow::bail!("--resume {}: no such journal", journal.display());
        }
        Ok(Settings { flow, config, journal, resume, ready_timeout })
    }
}

/// A run that did not complete: exit code 1.
#[derive(Debug)]
pub(crate) struct Unfinished(pub(crate) String);

impl std::fmt::Display for Unfinished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unfinished {}

pub(crate) fn run(settings: Settings, out: &mut impl Write) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(flow(settings, out))
}

async fn flow(settings: Settings, out: &mut impl Write) -> anyhow::Result<()> {
    let workflow = &settings.flow.workflow;
    let opened =
        RedbJournal::open(&settings.journal).with_context(|| format!("journal {}", settings.journal.display()))?;
    let journal: SharedJournal = Arc::new(Mutex::new(opened));
    // Which runs to resume: every run in the journal without an end.
    let runs: Vec<u64> = if settings.resume {
        let mut j = journal.lock().expect("journal");
        let mut open = Vec::new();
        for run in j.runs()? {
            let records = j.records(run)?;
            if !records.iter().any(|r| matches!(r, Record::Ended { .. })) {
                open.push(run);
            }
        }
        open
    } else {
        Vec::new()
    };
    if settings.resume && runs.is_empty() {
        writeln!(out, "{}: every run in it has ended; nothing to resume", settings.journal.display())?;
        return Ok(());
    }
    let client = MultiServerClient::start(settings.config);
    client.wait_ready(settings.ready_timeout).await;
    let names: Vec<String> = workflow.steps().iter().map(|s| s.name.clone()).collect();
    let width = names.iter().map(String::len).max().unwrap_or(0);
    let observer: gauntlet_client::flow::FlowObserver = Arc::new(move |e: &FlowEvent| {
        let what = match &e.kind {
            FlowEventKind::Started => "started".to_owned(),
            FlowEventKind::Done { fallback: false } => "done".to_owned(),
            FlowEventKind::Done { fallback: true } => "done (fallback)".to_owned(),
            FlowEventKind::Skipped => "skipped (condition)".to_owned(),
            FlowEventKind::Failed => "failed".to_owned(),
            FlowEventKind::Unknown => "outcome unknown".to_owned(),
            FlowEventKind::Cancelled => "cancelled".to_owned(),
            FlowEventKind::Compensating => "compensating".to_owned(),
            FlowEventKind::Compensated => "compensated".to_owned(),
            FlowEventKind::CompensationFailed => "compensation failed".to_owned(),
            FlowEventKind::Ended(_) => return,
        };
        let name = names.get(e.step).map_or("?", String::as_str);
        let _ = writeln!(std::io::stderr(), "  {name:<width$}  {what}");
    });
    let options = FlowOptions { observer: Some(observer), ..FlowOptions::default() };
    let mut reports = Vec::new();
    if settings.resume {
        for run in runs {
            writeln!(out, "resuming run {run:016x} from {}", settings.journal.display())?;
            reports.push(gauntlet_client::flow::resume(&client, workflow, run, &journal, &options).await?);
        }
    } else {
        let run = run_id(workflow.digest(), &settings.flow.inputs);
        writeln!(out, "run {run:016x} of `{}`, journal {}", workflow.name(), settings.journal.display())?;
        let inputs = settings.flow.inputs.clone();
        reports.push(gauntlet_client::flow::run(&client, workflow, run, inputs, &journal, &options).await?);
    }
    client.shutdown().await;
    let mut unfinished = Vec::new();
    for report in &reports {
        print_report(out, report, width)?;
        if report.status != Status::Completed {
            unfinished.push(format!("run {:016x} {}", report.run, status_name(report.status)));
        }
    }
    if unfinished.is_empty() {
        Ok(())
    } else {
        Err(Unfinished(format!("{}; resume with --resume {}", unfinished.join(", "), settings.journal.display()))
            .into())
    }
}

/// A run id: the definition, the inputs and the moment, so two runs of one file differ (their
/// idempotency keys must not collide on a server that remembers them).
fn run_id(digest: u64, inputs: &Value) -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    let seed = format!("{digest}:{inputs}:{now}:{}", std::process::id());
    xxhash_rust::xxh3::xxh3_64(seed.as_bytes())
}

fn status_name(status: Status) -> &'static str {
    match status {
        Status::Completed => "completed",
        Status::Compensated => "failed and compensated",
        Status::Unknown => "parked: a step's outcome is unknown",
        Status::CompensationFailed => "failed, and a compensation failed",
    }
}

fn print_report(out: &mut impl Write, report: &FlowReport, width: usize) -> anyhow::Result<()> {
    writeln!(
        out,
        "run {:016x}: {}{}",
        report.run,
        status_name(report.status),
        if report.resumed { " (resumed)" } else { "" }
    )?;
    for s in &report.steps {
        let state = match s.state {
            StepState::Done if s.fallback => "done (fallback)",
            StepState::Done => "done",
            StepState::Skipped => "skipped",
            StepState::Undone => "compensated",
            StepState::Unknown => "UNKNOWN: may or may not have taken effect",
            StepState::Failed => "failed",
            StepState::Waiting | StepState::Ready => "not run",
            StepState::Running => "running",
        };
        writeln!(out, "  {:<width$}  {state}", s.name)?;
    }
    if let Some(output) = &report.output {
        writeln!(out, "output: {}", serde_json::to_string_pretty(output)?)?;
    }
    Ok(())
}
