//! The executor: a workflow run's steps through the client, its records through the journal.

use std::sync::Arc;
use std::time::Duration;

use gauntlet_core::outcome::Outcome;
use gauntlet_core::workflow::{
    Call, Fallback, Progress, Record, ResumeError, Start, Status, Step, StepFailure, StepState, Workflow,
};
use rmcp::model::CallToolResult;
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::journal::{JournalError, SharedJournal};
use crate::client::{CallError, CallOptions, MultiServerClient};

/// How many times a compensation is sent before the run is reported `compensation-failed`
/// (compensations must be idempotent: every attempt carries the same key).
pub const COMPENSATION_ATTEMPTS: u32 = 3;

/// What happened to a step, as it happens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlowEventKind {
    /// Its call was sent.
    Started,
    /// It has its result (its fallback's when `fallback`).
    Done {
        /// Whether the fallback stood in.
        fallback: bool,
    },
    /// Its condition did not hold.
    Skipped,
    /// It failed.
    Failed,
    /// Its call was sent and never answered: the run is parked.
    Unknown,
    /// It was cancelled because another step failed.
    Cancelled,
    /// Its compensation was sent.
    Compensating,
    /// Its compensation answered.
    Compensated,
    /// Its compensation failed for good.
    CompensationFailed,
    /// The run ended (`step` is 0).
    Ended(Status),
}

/// One event of one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowEvent {
    /// The run.
    pub run: u64,
    /// The step, by index in the definition.
    pub step: usize,
    /// What happened.
    pub kind: FlowEventKind,
}

/// Receives every event of a run, in order.
pub type FlowObserver = Arc<dyn Fn(&FlowEvent) + Send + Sync>;

/// A deliberately broken executor, for proving that the simulator's checkers can fail.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowSabotage {
    /// A failed run ends `compensated` without running its compensations.
    SkipCompensation,
    /// Resume forgets every step's result and runs the whole workflow again.
    RerunJournaled,
    /// A step is taken as done as soon as its call is sent: dependents start before its
    /// answer exists (and read `null`).
    AckOnSend,
}

/// How runs are executed.
#[derive(Clone, Default)]
pub struct FlowOptions {
    /// Bounds the steps in flight across every run sharing it (each workflow's own bound
    /// applies too).
    pub permits: Option<Arc<Semaphore>>,
    /// Receives the runs' events.
    pub observer: Option<FlowObserver>,
    #[doc(hidden)]
    pub sabotage: Option<FlowSabotage>,
}

impl std::fmt::Debug for FlowOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowOptions").field("permits", &self.permits).field("sabotage", &self.sabotage).finish()
    }
}

/// One step at the end of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct StepReport {
    /// Its name.
    pub name: String,
    /// Where it ended.
    pub state: StepState,
    /// Whether its fallback stood in.
    pub fallback: bool,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq)]
pub struct FlowReport {
    /// The run.
    pub run: u64,
    /// How it ended.
    pub status: Status,
    /// Its output, when it completed.
    pub output: Option<Value>,
    /// Every step.
    pub steps: Vec<StepReport>,
    /// Whether it was resumed from a journal.
    pub resumed: bool,
    /// Tool calls it made (steps, fallbacks and compensations; this process's only, when
    /// resumed).
    pub calls: u32,
    /// Attempts those calls sent (retries and hedges included).
    pub attempts: u32,
}

impl FlowReport {
    /// The steps whose outcome is unknown, by name.
    pub fn unknown(&self) -> impl Iterator<Item = &str> {
        self.steps.iter().filter(|s| s.state == StepState::Unknown).map(|s| s.name.as_str())
    }
}

/// Why a run could not be executed.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// The journal failed: the run stopped where it was (its journal says where).
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The journal cannot be resumed under this definition.
    #[error(transparent)]
    Resume(#[from] ResumeError),
}

/// The idempotency key of run `run`'s step `step` (`suffix`: `""`, `"/fallback"`, `"/undo"`).
pub fn key(run: u64, step: &str, suffix: &str) -> String {
    format!("{run:016x}/{step}{suffix}")
}

/// A step's result as templates read it: the MCP result, plus `text`, its first text block.
pub fn step_value(result: &CallToolResult) -> Value {
    let mut value = serde_json::to_value(result).unwrap_or(Value::Null);
    let text = result.content.iter().find_map(|c| c.as_text()).map(|t| t.text.clone());
    if let (Value::Object(map), Some(text)) = (&mut value, text) {
        map.insert("text".to_owned(), Value::String(text));
    }
    value
}

/// Runs `workflow` on `inputs` as run `run`, journaling it.
pub async fn run(
    client: &MultiServerClient,
    workflow: &Workflow,
    run: u64,
    inputs: Value,
    journal: &SharedJournal,
    options: &FlowOptions,
) -> Result<FlowReport, FlowError> {
    append(
        journal,
        run,
        &Record::Started { workflow: workflow.name().to_owned(), digest: workflow.digest(), inputs: inputs.clone() },
        true,
    )?;
    let progress = Progress::new(workflow, inputs);
    execute(client, progress, run, journal, options, false).await
}

/// Continues run `run` of `workflow` from its journal: steps with a journaled result are not
/// run again; a step sent without a journaled outcome is run again only if the client may
/// replay its tool, and is reported unknown otherwise. A run that had ended is reported as it
/// ended.
pub async fn resume(
    client: &MultiServerClient,
    workflow: &Workflow,
    run: u64,
    journal: &SharedJournal,
    options: &FlowOptions,
) -> Result<FlowReport, FlowError> {
    let mut records = journal.lock().expect("journal").records(run)?;
    if options.sabotage == Some(FlowSabotage::RerunJournaled) {
        records.truncate(1);
    }
    let replayable = |tool: &str| client.replayable(tool).unwrap_or(false);
    let (progress, ended) = Progress::resume(workflow, &records, replayable)?;
    if let Some(status) = ended {
        let output = records.iter().rev().find_map(|r| match r {
            Record::Ended { output, .. } => Some(output.clone()),
            _ => None,
        });
        return Ok(report(&progress, run, status, output.flatten(), true, &Tally::default()));
    }
    execute(client, progress, run, journal, options, true).await
}

fn append(journal: &SharedJournal, run: u64, record: &Record, sync: bool) -> Result<(), JournalError> {
    journal.lock().expect("journal").append(run, record, sync)
}

/// Calls and attempts of one run, counted as they end.
#[derive(Debug, Default)]
struct Tally {
    calls: std::sync::atomic::AtomicU32,
    attempts: std::sync::atomic::AtomicU32,
}

impl Tally {
    fn add(&self, attempts: u32) {
        use std::sync::atomic::Ordering::Relaxed;
        self.calls.fetch_add(1, Relaxed);
        self.attempts.fetch_add(attempts, Relaxed);
    }
}

fn report(
    progress: &Progress<'_>,
    run: u64,
    status: Status,
    output: Option<Value>,
    resumed: bool,
    tally: &Tally,
) -> FlowReport {
    let steps = progress
        .workflow()
        .steps()
        .iter()
        .enumerate()
        .map(|(i, s)| StepReport { name: s.name.clone(), state: progress.state(i), fallback: progress.fell_back(i) })
        .collect();
    let calls = tally.calls.load(std::sync::atomic::Ordering::Relaxed);
    let attempts = tally.attempts.load(std::sync::atomic::Ordering::Relaxed);
    FlowReport { run, status, output, steps, resumed, calls, attempts }
}

/// How a step's call (and its fallback) ended.
enum StepEnd {
    Answered { value: Value, fallback: bool },
    Failed(StepFailure),
    Unknown,
    Cancelled,
}

/// How one call ended, as a step sees it.
enum CallEnd {
    Answered(Value),
    /// No effect, or one that may be repeated.
    Failed(StepFailure),
    /// Sent, and may have taken effect.
    Unknown,
}

/// One call with the step's deadline and key; a failure is retried up to `retries` times when
/// the client may replay the tool or the call was never sent.
async fn call(
    client: &MultiServerClient,
    tally: &Tally,
    call: &Call,
    args: Value,
    key: String,
    deadline: Option<Duration>,
    retries: u32,
) -> CallEnd {
    let replayable = client.replayable(&call.tool).unwrap_or(false);
    let Value::Object(args) = args else {
        return CallEnd::Failed(StepFailure::Missing { path: "args (not an object)".to_owned() });
    };
    let mut left = retries;
    loop {
        let options = CallOptions { deadline, idempotency_key: Some(key.clone()), ..CallOptions::default() };
        let result = client.call_tool_with(&call.tool, args.clone(), options).await;
        tally.add(match &result {
            Ok(r) => r.attempts,
            Err(CallError::Failed { attempts, .. }) => *attempts,
            Err(_) => 0,
        });
        let end = match result {
            Ok(r) if r.result.is_error == Some(true) => CallEnd::Failed(StepFailure::ToolError),
            Ok(r) => return CallEnd::Answered(step_value(&r.result)),
            Err(CallError::UnknownTool(_) | CallError::NoServer { .. } | CallError::Aggregate(_)) => {
                CallEnd::Failed(StepFailure::CallFailed)
            }
            Err(CallError::Failed { last, .. }) => match last {
                // The server answered "no", or the call never left: no effect to fear.
                Outcome::ToolError | Outcome::RpcError(_) | Outcome::Rejected => {
                    CallEnd::Failed(StepFailure::CallFailed)
                }
                Outcome::Success | Outcome::Timeout | Outcome::Transport | Outcome::Malformed | Outcome::Cancelled => {
                    if replayable {
                        CallEnd::Failed(StepFailure::MayHaveRun)
                    } else {
                        CallEnd::Unknown
                    }
                }
            },
        };
        match end {
            CallEnd::Failed(_) if left > 0 => left -= 1,
            end => return end,
        }
    }
}

/// A step: its call, then its fallback if the call failed (never if its outcome is unknown).
async fn step(
    client: &MultiServerClient,
    tally: &Tally,
    s: &Step,
    fallback: Option<(Fallback, Option<Value>)>,
    args: Value,
    run: u64,
) -> StepEnd {
    let (name, deadline, retries) = (s.name.as_str(), s.deadline, s.retries);
    match call(client, tally, &s.call, args, key(run, name, ""), deadline, retries).await {
        CallEnd::Answered(value) => StepEnd::Answered { value, fallback: false },
        CallEnd::Unknown => StepEnd::Unknown,
        CallEnd::Failed(failure) => match fallback {
            None => StepEnd::Failed(failure),
            Some((Fallback::Value(v), _)) => StepEnd::Answered { value: v, fallback: true },
            Some((Fallback::Call(c), Some(args))) => {
                match call(client, tally, &c, args, key(run, name, "/fallback"), deadline, retries).await {
                    CallEnd::Answered(value) => StepEnd::Answered { value, fallback: true },
                    CallEnd::Unknown => StepEnd::Unknown,
                    CallEnd::Failed(failure) => StepEnd::Failed(failure),
                }
            }
            Some((Fallback::Call(_), None)) => StepEnd::Failed(failure),
        },
    }
}

/// A step in flight: its index and how it ended.
type StepFuture<'a> = std::pin::Pin<Box<dyn Future<Output = (usize, StepEnd)> + Send + 'a>>;

/// The first step to end, polling every step in flight in the order they started on each wake.
/// Not a `FuturesUnordered`: that polls whichever was woken first, and when a server's session
/// dies rmcp wakes its callers in a per-process random order, so two steps of one run on that
/// session would reach the engine in a different order in every process.
async fn next_end(in_flight: &mut Vec<StepFuture<'_>>) -> (usize, StepEnd) {
    let (out, index) = std::future::poll_fn(|cx| {
        for (k, f) in in_flight.iter_mut().enumerate() {
            if let std::task::Poll::Ready(out) = f.as_mut().poll(cx) {
                return std::task::Poll::Ready((out, k));
            }
        }
        std::task::Poll::Pending
    })
    .await;
    drop(in_flight.remove(index));
    out
}

async fn execute(
    client: &MultiServerClient,
    mut progress: Progress<'_>,
    run: u64,
    journal: &SharedJournal,
    options: &FlowOptions,
    resumed: bool,
) -> Result<FlowReport, FlowError> {
    let workflow = progress.workflow();
    let emit = |step: usize, kind: FlowEventKind| {
        if let Some(observer) = &options.observer {
            observer(&FlowEvent { run, step, kind });
        }
    };
    let tally = Tally::default();
    // The steps in flight, polled in the order they started (see `next_end`).
    let mut in_flight: Vec<StepFuture<'_>> = Vec::new();
    // Cancels the calls that may be replayed once a step fails.
    let cancel = CancellationToken::new();
    // Steps the broken executor took as done when sent.
    let mut acked: Vec<usize> = Vec::new();
    loop {
        if progress.has_failed() || progress.unknown().next().is_some() {
            cancel.cancel();
        }
        while let Some(start) = progress.next_step() {
            match start {
                Start::Skipped { step } => {
                    append(journal, run, &Record::Skipped { step: step as u32 }, false)?;
                    emit(step, FlowEventKind::Skipped);
                }
                Start::Invalid { step, error } => {
                    let failure = StepFailure::Missing { path: error.to_string() };
                    append(journal, run, &Record::Failed { step: step as u32, failure }, true)?;
                    emit(step, FlowEventKind::Failed);
                }
                Start::Call { step: i, args } => {
                    let s = &workflow.steps()[i];
                    let replayable = client.replayable(&s.call.tool).unwrap_or(false);
                    append(journal, run, &Record::Intent { step: i as u32 }, !replayable)?;
                    emit(i, FlowEventKind::Started);
                    let fallback = progress.fallback(i).map(|f| {
                        let args = match f {
                            Fallback::Call(c) => progress.eval(&c.args).ok(),
                            Fallback::Value(_) => None,
                        };
                        (f.clone(), args)
                    });
                    let (permits, cancel, tally) = (options.permits.clone(), cancel.clone(), &tally);
                    let eager = options.sabotage == Some(FlowSabotage::AckOnSend);
                    in_flight.push(Box::pin(async move {
                        let _permit = match &permits {
                            Some(p) => p.clone().acquire_owned().await.ok(),
                            None => None,
                        };
                        let work = step(client, tally, s, fallback, args, run);
                        let end = if replayable && !eager {
                            tokio::select! {
                                biased;
                                () = cancel.cancelled() => StepEnd::Cancelled,
                                end = work => end,
                            }
                        } else {
                            work.await
                        };
                        (i, end)
                    }));
                    if eager {
                        // The broken executor: done before the answer exists.
                        acked.push(i);
                        append(
                            journal,
                            run,
                            &Record::Done { step: i as u32, result: Value::Null, fallback: false },
                            true,
                        )?;
                        progress.complete(i, Value::Null, false);
                        emit(i, FlowEventKind::Done { fallback: false });
                    }
                }
            }
        }
        if in_flight.is_empty() {
            break;
        }
        let (i, end) = next_end(&mut in_flight).await;
        if acked.contains(&i) {
            continue;
        }
        match end {
            StepEnd::Answered { value, fallback } => {
                append(journal, run, &Record::Done { step: i as u32, result: value.clone(), fallback }, true)?;
                progress.complete(i, value, fallback);
                emit(i, FlowEventKind::Done { fallback });
            }
            StepEnd::Failed(failure) => {
                progress.fail(i, &failure);
                append(journal, run, &Record::Failed { step: i as u32, failure }, true)?;
                emit(i, FlowEventKind::Failed);
            }
            StepEnd::Unknown => {
                append(journal, run, &Record::Unknown { step: i as u32 }, true)?;
                progress.lose(i);
                emit(i, FlowEventKind::Unknown);
            }
            StepEnd::Cancelled => {
                progress.cancel(i);
                emit(i, FlowEventKind::Cancelled);
            }
        }
    }
    if options.sabotage != Some(FlowSabotage::SkipCompensation) {
        for i in progress.compensations() {
            let s = &workflow.steps()[i];
            let Some(undo) = &s.compensate else { continue };
            append(journal, run, &Record::UndoIntent { step: i as u32 }, true)?;
            emit(i, FlowEventKind::Compensating);
            let args = progress.eval(&undo.args).unwrap_or(Value::Null);
            let mut undone = false;
            for _ in 0..COMPENSATION_ATTEMPTS {
                if let CallEnd::Answered(_) =
                    call(client, &tally, undo, args.clone(), key(run, &s.name, "/undo"), s.deadline, 0).await
                {
                    undone = true;
                    break;
                }
            }
            if undone {
                append(journal, run, &Record::Undone { step: i as u32 }, true)?;
                progress.undone(i);
                emit(i, FlowEventKind::Compensated);
            } else {
                progress.compensation_failed();
                emit(i, FlowEventKind::CompensationFailed);
            }
        }
    }
    let status = match progress.status() {
        Some(status) => status,
        // Only the broken executor leaves compensations behind.
        None => Status::Compensated,
    };
    let output = (status == Status::Completed).then(|| progress.output().ok()).flatten();
    append(journal, run, &Record::Ended { status, output: output.clone() }, true)?;
    emit(0, FlowEventKind::Ended(status));
    Ok(report(&progress, run, status, output, resumed, &tally))
}
