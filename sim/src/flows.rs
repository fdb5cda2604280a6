//! The workflow workload: runs of a scenario's workflow started on the workload's schedule,
//! executed by the real client's executor with its real journal (redb) on the client host's
//! simulated disk; the client's host crashes and restarts when the scenario says; the workflow
//! checkers judge every run against what the servers saw.
//!
//! Each run is one "call" of the recorder (start to end, so the figures, expectations and
//! charts are about workflow runs): completed and equal to an uninterrupted run's output is a
//! correct answer; anything else is a failure with its status.
//!
//! A crash of the client's host (fault `crash` with target `client`) aborts every run in
//! flight, drops the client (its connections close) and loses what the journal had not synced.
//! At the restart a new client starts, opens the journal on the same disk and resumes every run
//! it had started: from the journal when the run's start is durable, from the beginning when it
//! is not (the users asked for the run; the crashed client never acknowledged it). Runs the
//! workload schedules while the host is down start at the restart.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gauntlet_client::config::Config;
use gauntlet_client::flow::{
    self, FlowEvent, FlowEventKind, FlowOptions, FlowReport, FlowSabotage, RedbJournal, SharedJournal,
};
use gauntlet_client::{MultiServerClient, Observer};
use gauntlet_core::SeededRng;
use gauntlet_core::workflow::{Status, Workflow, reference};
use gauntlet_reports::Violation;
use gauntlet_reports::WorkflowStep;
use serde_json::Value;
use tokio::sync::{Notify, mpsc, watch};

use crate::disk::SimDisk;
use crate::flow_file::FlowFile;
use crate::log::{CallEnd, Failure, micros};
use crate::record::Recorder;
use crate::scenario::{Arrivals, Sabotage, Workload};
use crate::server::{FlowLog, flow_result};
use crate::workload::MAX_CALLS;
use crate::world::TurmoilConnector;

/// How long a restarted client may take to connect before it resumes its runs.
const RESTART_GRACE: Duration = Duration::from_secs(2);

/// What the client side knows of each run when the simulation ends.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct RunOutcome {
    pub(crate) status: Option<Status>,
    pub(crate) resumed: bool,
    /// Steps whose result was their fallback's.
    pub(crate) fallbacks: Vec<usize>,
    pub(crate) diverged: bool,
}

/// The runs, by id.
pub(crate) type Runs = Arc<Mutex<BTreeMap<u64, RunOutcome>>>;

/// What happened to each step, over every run.
pub(crate) type Steps = Arc<Mutex<Vec<WorkflowStep>>>;

/// A workflow scenario's steps, counted from zero (none for another scenario).
pub(crate) fn steps(flow: Option<&crate::scenario::SimFlow>) -> Vec<WorkflowStep> {
    flow.map_or_else(Vec::new, |f| {
        f.0.workflow.steps().iter().map(|s| WorkflowStep { name: s.name.clone(), ..WorkflowStep::default() }).collect()
    })
}

/// Counts an executor's event against its step.
fn tally(steps: &Steps, event: &FlowEvent) {
    let mut steps = steps.lock().expect("steps");
    let Some(step) = steps.get_mut(event.step) else { return };
    let count = match event.kind {
        FlowEventKind::Started => &mut step.sent,
        FlowEventKind::Done { fallback: false } => &mut step.done,
        FlowEventKind::Done { fallback: true } => &mut step.fallback,
        FlowEventKind::Skipped => &mut step.skipped,
        FlowEventKind::Failed => &mut step.failed,
        FlowEventKind::Unknown => &mut step.unknown,
        FlowEventKind::Cancelled => &mut step.cancelled,
        FlowEventKind::Compensated => &mut step.compensated,
        FlowEventKind::CompensationFailed => &mut step.compensation_failed,
        // Counted where the step's compensation ends; a run's end is not a step's.
        FlowEventKind::Compensating | FlowEventKind::Ended(_) => return,
    };
    *count = count.saturating_add(1);
}

/// Everything the driver needs.
pub(crate) struct Rig {
    /// The client, connected; its successors after a crash are started from `config`.
    pub(crate) client: Arc<MultiServerClient>,
    pub(crate) config: Config,
    pub(crate) flow: Arc<FlowFile>,
    pub(crate) workload: Workload,
    pub(crate) duration: Duration,
    pub(crate) rng: SeededRng,
    pub(crate) recorder: Arc<Mutex<Recorder>>,
    pub(crate) observer: Observer,
    pub(crate) down: watch::Receiver<bool>,
    pub(crate) disk: SimDisk,
    pub(crate) sabotage: Option<Sabotage>,
    pub(crate) runs: Runs,
    pub(crate) steps: Steps,
}

fn flow_sabotage(s: Option<Sabotage>) -> Option<FlowSabotage> {
    match s? {
        Sabotage::SkipCompensation => Some(FlowSabotage::SkipCompensation),
        Sabotage::RerunJournaled => Some(FlowSabotage::RerunJournaled),
        Sabotage::AckOnSend => Some(FlowSabotage::AckOnSend),
        Sabotage::IgnoreBreaker | Sabotage::FirstAsMajority | Sabotage::ReplayUnsafe => None,
    }
}

/// A run's inputs: the file's, and the run's number as `input.run`.
fn inputs(flow: &FlowFile, run: u64) -> Value {
    let mut inputs = flow.inputs.clone();
    if let Value::Object(map) = &mut inputs {
        map.insert("run".to_owned(), Value::from(run));
    }
    inputs
}

/// What an uninterrupted run of `workflow` on `inputs` outputs, taking its fallback at the
/// steps in `fallbacks` (the servers' answers are [`flow_result`]).
fn expected(workflow: &Workflow, inputs: Value, fallbacks: &[usize]) -> Option<Value> {
    let (status, output) = reference(workflow, inputs, |step, tool, args| {
        let primary = &workflow.steps()[step].call.tool;
        if fallbacks.contains(&step) && tool == primary {
            return None;
        }
        // Servers answer under their own tool name, without the group the client prefixes.
        let own = tool.rsplit_once("__").map_or(tool, |(_, t)| t);
        Some(flow::step_value(&flow_result(own, args.as_object())))
    });
    (status == Status::Completed).then_some(output).flatten()
}

/// Runs the workload until its schedule ends and every run has ended; returns the runs offered.
pub(crate) async fn drive(rig: Rig) -> u64 {
    let start = tokio::time::Instant::now();
    let Rig {
        client: first,
        config,
        flow,
        workload,
        duration,
        rng,
        recorder,
        observer,
        mut down,
        disk,
        sabotage,
        runs,
        steps,
    } = rig;
    let (tx, mut rx) = mpsc::unbounded_channel::<u64>();
    // Runs started and not ended, for closed-loop arrivals; notified when one ends.
    let active = Arc::new((Mutex::new(0u32), Notify::new()));
    // The users: they ask for runs on schedule whether or not the client's host is up.
    let users = {
        let active = active.clone();
        let mut rng = rng;
        tokio::spawn(async move {
            let mut next = 0u64;
            let mut offered = 0u64;
            match workload.arrivals {
                Arrivals::Poisson(rate) => {
                    let mut due = Duration::ZERO;
                    loop {
                        let u = rng.unit();
                        due = due.saturating_add(Duration::from_secs_f64(-(1.0 - u).ln() / rate.max(1e-9)));
                        if due >= duration || next >= MAX_CALLS {
                            break;
                        }
                        tokio::time::sleep_until(start + due).await;
                        *active.0.lock().expect("active") += 1;
                        next += 1;
                        offered += 1;
                        let _ = tx.send(next);
                    }
                }
                Arrivals::Callers(n) => {
                    while start.elapsed() < duration && next < MAX_CALLS {
                        let notified = active.1.notified();
                        let free = *active.0.lock().expect("active") < n;
                        if free {
                            *active.0.lock().expect("active") += 1;
                            next += 1;
                            offered += 1;
                            let _ = tx.send(next);
                        } else {
                            tokio::select! {
                                biased;
                                () = notified => {}
                                () = tokio::time::sleep_until(start + duration) => {}
                            }
                        }
                    }
                }
            }
            offered
        })
    };
    let observer_of_steps: flow::FlowObserver = Arc::new(move |event: &FlowEvent| tally(&steps, event));
    let options =
        FlowOptions { sabotage: flow_sabotage(sabotage), observer: Some(observer_of_steps), ..FlowOptions::default() };
    let t_us = move || micros(tokio::time::Instant::now().saturating_duration_since(start));
    let mut open = true;
    let mut epoch = 0u32;
    let mut first = Some(first);
    'epochs: loop {
        let client = match first.take() {
            Some(client) => client,
            None => {
                Arc::new(MultiServerClient::start_observed(config.clone(), TurmoilConnector, Some(observer.clone())))
            }
        };
        let journal: SharedJournal = match RedbJournal::on(disk.handle()) {
            Ok(j) => Arc::new(Mutex::new(j)),
            // The journal cannot open: nothing can run (every open run is reported lost).
            Err(_) => break,
        };
        let mut tasks = tokio::task::JoinSet::new();
        let spawn_run =
            |tasks: &mut tokio::task::JoinSet<(u64, Result<FlowReport, flow::FlowError>)>, id: u64, resume: bool| {
                let (client, journal, flow, options) = (client.clone(), journal.clone(), flow.clone(), options.clone());
                tasks.spawn(async move {
                    let result = if resume {
                        flow::resume(&client, &flow.workflow, id, &journal, &options).await
                    } else {
                        flow::run(&client, &flow.workflow, id, inputs(&flow, id), &journal, &options).await
                    };
                    (id, result)
                });
            };
        if epoch > 0 {
            client.wait_ready(RESTART_GRACE).await;
            // Every run this client's predecessor started and did not see end.
            let unfinished: Vec<u64> =
                runs.lock().expect("runs").iter().filter(|(_, r)| r.status.is_none()).map(|(&id, _)| id).collect();
            for id in unfinished {
                let journaled = journal.lock().expect("journal").records(id).is_ok_and(|r| !r.is_empty());
                if journaled {
                    runs.lock().expect("runs").entry(id).or_default().resumed = true;
                }
                spawn_run(&mut tasks, id, journaled);
            }
        }
        loop {
            if !open && tasks.is_empty() {
                break 'epochs;
            }
            tokio::select! {
                biased;
                true = crashed(&mut down) => {
                    // The host crashed: its process and everything in it is gone.
                    tasks.abort_all();
                    while tasks.join_next().await.is_some() {}
                    // The disk first: the dead process's handles fail from here on.
                    disk.crash(0);
                    drop(journal);
                    drop(client);
                    restarted(&mut down).await;
                    epoch += 1;
                    continue 'epochs;
                }
                id = rx.recv(), if open => match id {
                    Some(id) => {
                        recorder.lock().expect("recorder").start(id, 0, t_us(), None);
                        runs.lock().expect("runs").insert(id, RunOutcome::default());
                        spawn_run(&mut tasks, id, false);
                    }
                    None => open = false,
                },
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    let Ok((id, result)) = done else { continue };
                    end_run(&flow, id, result, &runs, &recorder, t_us());
                    let mut n = active.0.lock().expect("active");
                    *n = n.checked_sub(1).expect("a run ends once, after it was counted as started");
                    drop(n);
                    active.1.notify_one();
                }
            }
        }
    }
    users.await.unwrap_or(0)
}

/// Waits until the client's host is down; `false` if the flag is gone (the run is ending).
async fn crashed(down: &mut watch::Receiver<bool>) -> bool {
    down.wait_for(|d| *d).await.is_ok()
}

/// Waits until the client's host is up again.
async fn restarted(down: &mut watch::Receiver<bool>) {
    let _ = down.wait_for(|d| !*d).await;
}

/// Records how run `id` ended.
fn end_run(
    flow: &FlowFile,
    id: u64,
    result: Result<FlowReport, flow::FlowError>,
    runs: &Runs,
    recorder: &Arc<Mutex<Recorder>>,
    t_us: u64,
) {
    let mut runs = runs.lock().expect("runs");
    let outcome = runs.entry(id).or_default();
    // A run counts as one call with one attempt, plus every attempt beyond the first of each
    // of its tool calls: retry amplification is then (runs + retries and hedges) / runs.
    let mut attempts = 1;
    let end = match result {
        Ok(report) => {
            attempts += report.attempts.saturating_sub(report.calls);
            outcome.status = Some(report.status);
            outcome.fallbacks = report.steps.iter().enumerate().filter(|(_, s)| s.fallback).map(|(i, _)| i).collect();
            match report.status {
                Status::Completed => {
                    let want = expected(&flow.workflow, inputs(flow, id), &outcome.fallbacks);
                    outcome.diverged = report.output != want;
                    CallEnd::Ok { server: String::new(), tool_error: false, answer: None, correct: !outcome.diverged }
                }
                other => CallEnd::Failed(Failure::Workflow(other)),
            }
        }
        Err(_) => {
            outcome.status = Some(Status::CompensationFailed);
            CallEnd::Failed(Failure::Journal)
        }
    };
    recorder.lock().expect("recorder").end(id, t_us, attempts, end);
}

/// The workflow checkers, run on every run of a workflow workload: no unsafe step took effect
/// twice; a run that ended compensated left no step's effect without its compensation; every
/// completed run's output equals an uninterrupted run's; no step reached a server before the
/// result of a step it depends on existed. (That every run ends is the recorder's: a run that
/// never ends is a lost call.)
pub(crate) fn check(flow: &FlowFile, runs: &BTreeMap<u64, RunOutcome>, calls: &FlowLog) -> Vec<Violation> {
    let workflow = &flow.workflow;
    let mut violations = Vec::new();
    let key = |run: u64, step: usize, suffix: &str| flow::key(run, &workflow.steps()[step].name, suffix);
    for (&run, outcome) in runs {
        for (i, s) in workflow.steps().iter().enumerate() {
            for suffix in ["", "/fallback"] {
                if let Some(k) = calls.keys.get(&key(run, i, suffix))
                    && k.truly_unsafe
                    && k.executed > 1
                {
                    violations.push(Violation::WorkflowEffectTwice { run, step: s.name.clone(), times: k.executed });
                }
            }
            if outcome.status == Some(Status::Compensated) && s.compensate.is_some() {
                let took_effect = ["", "/fallback"]
                    .iter()
                    .any(|suffix| calls.keys.get(&key(run, i, suffix)).is_some_and(|k| k.executed > 0));
                let undone = calls.keys.get(&key(run, i, "/undo")).is_some_and(|k| k.executed > 0);
                if took_effect && !undone {
                    violations.push(Violation::NotCompensated { run, step: s.name.clone() });
                }
            }
            // Dependencies: the step's first call arrived after each dependency's first answer.
            if let Some(sent) = calls.keys.get(&key(run, i, "")) {
                for &d in workflow.deps(i) {
                    let d = d as usize;
                    if outcome.fallbacks.contains(&d) && !calls.keys.contains_key(&key(run, d, "/fallback")) {
                        // A fallback value: no server made it.
                        continue;
                    }
                    let Some(dep) = calls.keys.get(&key(run, d, "")) else { continue };
                    let answered = [dep.answered, calls.keys.get(&key(run, d, "/fallback")).and_then(|f| f.answered)]
                        .into_iter()
                        .flatten()
                        .min();
                    if answered.is_none_or(|a| a > sent.received) {
                        violations.push(Violation::DependencyBroken {
                            run,
                            step: s.name.clone(),
                            dependency: workflow.steps()[d].name.clone(),
                        });
                    }
                }
            }
        }
        if outcome.diverged {
            violations.push(Violation::WorkflowDiverged { run, resumed: outcome.resumed });
        }
    }
    violations
}
