//! A workflow's progress: which steps may start, what they read, what is left to undo; the
//! journal's records and how a journal folds back into progress.
//!
//! This is the planner: pure, synchronous, no I/O. The executor (in `gauntlet-client`) asks it
//! for the next step, does the call, tells it the outcome, and writes each record to the
//! journal first.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::definition::{Fallback, Workflow};
use super::expr::{EvalError, Scope, Template};

/// Where a step is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepState {
    /// Some dependency has not finished.
    Waiting,
    /// Its dependencies finished; not started.
    Ready,
    /// Its call is in flight.
    Running,
    /// It has a result (its call's or its fallback's).
    Done,
    /// Its condition did not hold; its result is `null`.
    Skipped,
    /// It failed, and so did the workflow.
    Failed,
    /// Its call was sent and no answer came: it may or may not have taken effect.
    Unknown,
    /// It was done, then compensated.
    Undone,
}

/// Why a step failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum StepFailure {
    /// The tool answered with `isError: true`.
    ToolError,
    /// The client gave up on the call (its servers failed or none was available) knowing it
    /// had no effect: it was refused, never sent, or answered with an error.
    CallFailed,
    /// The call was sent and never answered, and the client may replay its tool: it may have
    /// run, so its compensation runs if the workflow fails.
    MayHaveRun,
    /// A reference in its arguments has no value.
    Missing {
        /// The path.
        path: String,
    },
}

/// How a workflow ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Every step done or skipped.
    Completed,
    /// A step failed; every completed step with a compensation was compensated.
    Compensated,
    /// A step's outcome is unknown (an unsafe call sent, no answer): the workflow is parked,
    /// nothing more is done, and the step is reported.
    Unknown,
    /// A step failed and a compensation failed too.
    CompensationFailed,
}

/// One journal record of one workflow run. A run's records, in order, are its whole state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "record")]
pub enum Record {
    /// The run began: the definition's digest and its inputs.
    Started {
        /// The workflow's name.
        workflow: String,
        /// [`Workflow::digest`].
        digest: u64,
        /// The inputs.
        inputs: Value,
    },
    /// The step's call is about to be sent (durable before an unsafe call is sent).
    Intent {
        /// The step.
        step: u32,
    },
    /// The step has its result (durable before any dependent sees it).
    Done {
        /// The step.
        step: u32,
        /// Its result.
        result: Value,
        /// Whether the result is its fallback's.
        fallback: bool,
    },
    /// The step's condition did not hold.
    Skipped {
        /// The step.
        step: u32,
    },
    /// The step failed.
    Failed {
        /// The step.
        step: u32,
        /// Why.
        failure: StepFailure,
    },
    /// The step's outcome is unknown.
    Unknown {
        /// The step.
        step: u32,
    },
    /// The step's compensation is about to be sent.
    UndoIntent {
        /// The step.
        step: u32,
    },
    /// The step's compensation answered.
    Undone {
        /// The step.
        step: u32,
    },
    /// The run ended.
    Ended {
        /// How.
        status: Status,
        /// Its output, when it completed.
        output: Option<Value>,
    },
}

/// What the executor does next with a step [`Progress::next`] handed it.
#[derive(Clone, Debug, PartialEq)]
pub enum Start {
    /// Send this step's call with these arguments.
    Call {
        /// The step.
        step: usize,
        /// Its evaluated arguments.
        args: Value,
    },
    /// Its condition did not hold: it is skipped (journal it).
    Skipped {
        /// The step.
        step: usize,
    },
    /// Its arguments could not be evaluated: it failed (journal it).
    Invalid {
        /// The step.
        step: usize,
        /// Why.
        error: EvalError,
    },
}

/// Why a journal cannot be resumed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResumeError {
    /// The journal has no record of this run.
    #[error("the journal has no record of this run")]
    Empty,
    /// The journal does not begin with `started`.
    #[error("the journal's first record is not `started`")]
    NoStart,
    /// The journal was written by another definition.
    #[error(
        "the journal was written by workflow `{workflow}` with digest {found:016x}; this definition's is {expected:016x}"
    )]
    Changed {
        /// The journal's workflow.
        workflow: String,
        /// The journal's digest.
        found: u64,
        /// This definition's.
        expected: u64,
    },
    /// A record names a step the definition does not have.
    #[error("a record names step {0}, which the definition does not have")]
    UnknownStep(u32),
}

/// A workflow run's progress.
#[derive(Clone, Debug)]
pub struct Progress<'w> {
    workflow: &'w Workflow,
    inputs: Value,
    state: Vec<StepState>,
    results: Vec<Option<Value>>,
    fallback: Vec<bool>,
    /// Failed steps whose call may have run (their compensation runs).
    maybe_ran: Vec<bool>,
    /// Each waiting step's unfinished dependencies.
    waiting: Vec<u32>,
    ready: VecDeque<u32>,
    running: u32,
    /// Done steps, in the order they finished.
    done: Vec<u32>,
    failed: bool,
    compensation_failed: bool,
}

impl Scope for Progress<'_> {
    fn input(&self) -> &Value {
        &self.inputs
    }

    fn result(&self, i: usize) -> Option<&Value> {
        self.results.get(i)?.as_ref()
    }
}

const NULL: Value = Value::Null;

impl<'w> Progress<'w> {
    /// A new run of `workflow` on `inputs`: every step without dependencies is ready.
    pub fn new(workflow: &'w Workflow, inputs: Value) -> Progress<'w> {
        let n = workflow.steps().len();
        let mut p = Progress {
            workflow,
            inputs,
            state: vec![StepState::Waiting; n],
            results: vec![None; n],
            fallback: vec![false; n],
            maybe_ran: vec![false; n],
            waiting: vec![0; n],
            ready: VecDeque::new(),
            running: 0,
            done: Vec::new(),
            failed: false,
            compensation_failed: false,
        };
        p.rebuild();
        p
    }

    /// Recomputes what waits on what from the steps' states (after a fold).
    fn rebuild(&mut self) {
        self.ready.clear();
        self.running = 0;
        for &i in self.workflow.order() {
            let i = i as usize;
            match self.state[i] {
                StepState::Waiting | StepState::Ready => {
                    let left = self.workflow.deps(i).iter().filter(|&&d| !self.finished(d as usize)).count();
                    self.waiting[i] = left as u32;
                    if left == 0 {
                        self.state[i] = StepState::Ready;
                        self.ready.push_back(i as u32);
                    } else {
                        self.state[i] = StepState::Waiting;
                    }
                }
                StepState::Running => self.running += 1,
                _ => {}
            }
        }
    }

    fn finished(&self, i: usize) -> bool {
        matches!(self.state[i], StepState::Done | StepState::Skipped | StepState::Undone)
    }

    /// The workflow.
    pub fn workflow(&self) -> &'w Workflow {
        self.workflow
    }

    /// The inputs.
    pub fn inputs(&self) -> &Value {
        &self.inputs
    }

    /// Step `i`'s state.
    pub fn state(&self, i: usize) -> StepState {
        self.state[i]
    }

    /// Whether step `i`'s result is its fallback's.
    pub fn fell_back(&self, i: usize) -> bool {
        self.fallback[i]
    }

    /// Steps in flight.
    pub fn running(&self) -> u32 {
        self.running
    }

    /// Whether a step failed (no step starts any more).
    pub fn has_failed(&self) -> bool {
        self.failed
    }

    /// The steps whose outcome is unknown.
    pub fn unknown(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.state.len()).filter(|&i| self.state[i] == StepState::Unknown)
    }

    /// The next step to start, while fewer than the workflow's bound are running and no step
    /// has failed or is unknown. A step whose condition does not hold is skipped here; one whose
    /// arguments cannot be evaluated fails here.
    pub fn next_step(&mut self) -> Option<Start> {
        if self.failed || self.unknown().next().is_some() || self.running >= self.workflow.max_parallel() {
            return None;
        }
        let i = self.ready.pop_front()? as usize;
        let step = &self.workflow.steps()[i];
        if let Some(when) = &step.when
            && !when.holds(self)
        {
            self.finish(i, StepState::Skipped, Some(NULL));
            return Some(Start::Skipped { step: i });
        }
        match step.call.args.eval(self) {
            Ok(args) => {
                self.state[i] = StepState::Running;
                self.running += 1;
                Some(Start::Call { step: i, args })
            }
            Err(error) => {
                self.state[i] = StepState::Failed;
                self.failed = true;
                Some(Start::Invalid { step: i, error })
            }
        }
    }

    /// Evaluates a template of the workflow (a fallback's or compensation's arguments).
    pub fn eval(&self, template: &Template) -> Result<Value, EvalError> {
        template.eval(self)
    }

    /// Step `i`'s fallback, if it has one.
    pub fn fallback(&self, i: usize) -> Option<&'w Fallback> {
        self.workflow.steps()[i].fallback.as_ref()
    }

    fn finish(&mut self, i: usize, state: StepState, result: Option<Value>) {
        debug_assert!(self.finished_state(state), "a step finishes in a finished state");
        self.state[i] = state;
        self.results[i] = result;
        if state == StepState::Done {
            self.done.push(i as u32);
        }
        for &j in self.workflow.dependents(i) {
            let j = j as usize;
            if self.state[j] == StepState::Waiting {
                self.waiting[j] -= 1;
                if self.waiting[j] == 0 {
                    self.state[j] = StepState::Ready;
                    self.ready.push_back(j as u32);
                }
            }
        }
    }

    fn finished_state(&self, state: StepState) -> bool {
        matches!(state, StepState::Done | StepState::Skipped)
    }

    fn end_running(&mut self, i: usize) {
        assert_eq!(self.state[i], StepState::Running, "only a running step ends");
        self.running -= 1;
    }

    /// Step `i` answered (or fell back): its dependents may start.
    pub fn complete(&mut self, i: usize, result: Value, fallback: bool) {
        self.end_running(i);
        self.fallback[i] = fallback;
        self.finish(i, StepState::Done, Some(result));
    }

    /// Step `i` failed: the workflow fails. A step whose call may have run is compensated
    /// like a done one.
    pub fn fail(&mut self, i: usize, failure: &StepFailure) {
        self.end_running(i);
        self.state[i] = StepState::Failed;
        self.failed = true;
        if *failure == StepFailure::MayHaveRun {
            self.maybe_ran[i] = true;
            self.done.push(i as u32);
        }
    }

    /// Step `i`'s outcome is unknown: the workflow is parked.
    pub fn lose(&mut self, i: usize) {
        self.end_running(i);
        self.state[i] = StepState::Unknown;
    }

    /// Step `i`'s call was cancelled (another step failed): it did not run.
    pub fn cancel(&mut self, i: usize) {
        self.end_running(i);
        self.state[i] = StepState::Ready;
    }

    /// Whether nothing is running and nothing more will start.
    pub fn is_settled(&self) -> bool {
        self.running == 0 && (self.failed || self.unknown().next().is_some() || self.ready.is_empty())
    }

    /// The compensations to run now: done steps that have one, latest finished first.
    pub fn compensations(&self) -> Vec<usize> {
        if !self.failed || self.unknown().next().is_some() {
            return Vec::new();
        }
        self.done
            .iter()
            .rev()
            .map(|&i| i as usize)
            .filter(|&i| self.undoable(i) && self.workflow.steps()[i].compensate.is_some())
            .collect()
    }

    fn undoable(&self, i: usize) -> bool {
        self.state[i] == StepState::Done || (self.state[i] == StepState::Failed && self.maybe_ran[i])
    }

    /// Step `i`'s compensation answered.
    pub fn undone(&mut self, i: usize) {
        assert!(self.undoable(i), "only a done step, or a failed one that may have run, is undone");
        self.state[i] = StepState::Undone;
    }

    /// A compensation failed for good.
    pub fn compensation_failed(&mut self) {
        self.compensation_failed = true;
    }

    /// How the run ends, once settled and compensated: `None` while it has more to do.
    pub fn status(&self) -> Option<Status> {
        if !self.is_settled() {
            return None;
        }
        if self.unknown().next().is_some() {
            return Some(Status::Unknown);
        }
        if self.failed {
            if self.compensation_failed {
                return Some(Status::CompensationFailed);
            }
            return self.compensations().is_empty().then_some(Status::Compensated);
        }
        Some(Status::Completed)
    }

    /// The run's output: the workflow's `output` template, or every step's result by name.
    pub fn output(&self) -> Result<Value, EvalError> {
        match self.workflow.output() {
            Some(t) => t.eval(self),
            None => Ok(Value::Object(
                self.workflow
                    .steps()
                    .iter()
                    .zip(&self.results)
                    .map(|(s, r)| (s.name.clone(), r.clone().unwrap_or(Value::Null)))
                    .collect(),
            )),
        }
    }

    /// Folds a run's journal back into its progress. A step whose intent was written with no
    /// outcome after it is run again when `replayable(tool)` says its tool may be replayed, and
    /// is unknown otherwise. Returns the progress and, if the run had ended, its status.
    pub fn resume(
        workflow: &'w Workflow,
        records: &[Record],
        replayable: impl Fn(&str) -> bool,
    ) -> Result<(Progress<'w>, Option<Status>), ResumeError> {
        let (first, rest) = records.split_first().ok_or(ResumeError::Empty)?;
        let Record::Started { workflow: name, digest, inputs } = first else { return Err(ResumeError::NoStart) };
        if *digest != workflow.digest() {
            return Err(ResumeError::Changed { workflow: name.clone(), found: *digest, expected: workflow.digest() });
        }
        let mut p = Progress::new(workflow, inputs.clone());
        let n = workflow.steps().len();
        let check = |s: u32| if (s as usize) < n { Ok(s as usize) } else { Err(ResumeError::UnknownStep(s)) };
        let mut ended = None;
        for r in rest {
            match r {
                Record::Started { .. } => return Err(ResumeError::NoStart),
                Record::Intent { step } => {
                    let i = check(*step)?;
                    p.state[i] = StepState::Running;
                }
                Record::Done { step, result, fallback } => {
                    let i = check(*step)?;
                    p.fallback[i] = *fallback;
                    p.state[i] = StepState::Done;
                    p.results[i] = Some(result.clone());
                    p.done.push(i as u32);
                }
                Record::Skipped { step } => {
                    let i = check(*step)?;
                    p.state[i] = StepState::Skipped;
                    p.results[i] = Some(Value::Null);
                }
                Record::Failed { step, failure } => {
                    let i = check(*step)?;
                    p.state[i] = StepState::Failed;
                    p.failed = true;
                    if *failure == StepFailure::MayHaveRun {
                        p.maybe_ran[i] = true;
                        p.done.push(i as u32);
                    }
                }
                Record::Unknown { step } => {
                    p.state[check(*step)?] = StepState::Unknown;
                }
                Record::UndoIntent { step } => {
                    check(*step)?;
                }
                Record::Undone { step } => {
                    let i = check(*step)?;
                    p.state[i] = StepState::Undone;
                }
                Record::Ended { status, .. } => ended = Some(*status),
            }
        }
        for i in 0..n {
            if p.state[i] == StepState::Running {
                let tool = &workflow.steps()[i].call.tool;
                p.state[i] = if replayable(tool) { StepState::Ready } else { StepState::Unknown };
            }
        }
        p.rebuild();
        Ok((p, ended))
    }
}

/// The reference run of a workflow: every step answered by `answer(tool, args)` (`None`: the
/// call fails), one step at a time in the planner's order, compensations included. What an
/// uninterrupted run ends with, for checkers and tests.
pub fn reference(
    workflow: &Workflow,
    inputs: Value,
    mut answer: impl FnMut(usize, &str, &Value) -> Option<Value>,
) -> (Status, Option<Value>) {
    let mut p = Progress::new(workflow, inputs);
    while let Some(start) = p.next_step() {
        match start {
            Start::Skipped { .. } | Start::Invalid { .. } => {}
            Start::Call { step, args } => match answer(step, &workflow.steps()[step].call.tool, &args) {
                Some(v) => p.complete(step, v, false),
                None => match p.fallback(step) {
                    Some(Fallback::Value(v)) => p.complete(step, v.clone(), true),
                    Some(Fallback::Call(c)) => {
                        let fallback = p.eval(&c.args).ok().and_then(|a| answer(step, &c.tool, &a));
                        match fallback {
                            Some(v) => p.complete(step, v, true),
                            None => p.fail(step, &StepFailure::CallFailed),
                        }
                    }
                    None => p.fail(step, &StepFailure::CallFailed),
                },
            },
        }
    }
    for i in p.compensations() {
        p.undone(i);
    }
    let status = p.status().unwrap_or(Status::CompensationFailed);
    let output = (status == Status::Completed).then(|| p.output().ok()).flatten();
    (status, output)
}
