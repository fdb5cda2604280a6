//! The results model: what one simulated run produced, as plain serde data.
//!
//! The simulator fills it; renderers read it; `gauntlet report` and `gauntlet diff` read it back
//! from JSON.
//! Times are milliseconds from the start of the workload, as `f64` (microsecond precision);
//! no wall-clock value appears anywhere.

use gauntlet_core::breaker::Phase as BreakerPhase;
use serde::{Deserialize, Serialize};

/// The verdict of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Every checker and every expectation held.
    Pass,
    /// A checker found a violation, or an expectation failed.
    Fail,
}

/// How many logical calls ended how.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Calls {
    /// Calls the workload offered: an open-loop schedule's arrivals within the run, or the calls
    /// closed-loop callers issued.
    #[serde(default)]
    pub offered: u64,
    /// Calls issued.
    pub total: u64,
    /// Calls that got a correct result (`isError` results included: the tool answered).
    pub ok: u64,
    /// Calls that got a result that was wrong (a byzantine server's): never counted as ok.
    #[serde(default)]
    pub wrong: u64,
    /// Calls the client gave up on.
    pub failed: u64,
    /// Calls that never ended (a checker violation).
    pub lost: u64,
    /// Results with `isError: true`.
    pub tool_errors: u64,
}

impl Calls {
    /// `ok / total`, 1 when nothing was issued.
    pub fn success_rate(&self) -> f64 {
        if self.total == 0 { 1.0 } else { self.ok as f64 / self.total as f64 }
    }

    /// `ok / (ok + wrong)`: of the answers the client returned, the share that was right; 1
    /// when none was returned.
    pub fn correct_rate(&self) -> f64 {
        let answered = self.ok + self.wrong;
        if answered == 0 { 1.0 } else { self.ok as f64 / answered as f64 }
    }
}

/// Latency percentiles of successful calls, in milliseconds (`None` with no such call).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// The median.
    pub p50: Option<f64>,
    /// The 90th percentile.
    pub p90: Option<f64>,
    /// The 99th percentile.
    pub p99: Option<f64>,
    /// The 99.9th percentile.
    pub p999: Option<f64>,
    /// The largest.
    pub max: Option<f64>,
    /// The mean.
    pub mean: Option<f64>,
}

/// One phase of a run (warm-up, fault, recovery, or the scenario's own).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    /// Its name.
    pub name: String,
    /// Its start, in ms.
    pub from_ms: f64,
    /// Its end, in ms.
    pub to_ms: f64,
    /// Calls that started in it.
    pub calls: Calls,
    /// Their latency.
    pub latency: Latency,
    /// With affinity keys, and for a phase after the first: of the keys served both in the first
    /// phase and in this one, the share served by another server here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys_moved: Option<f64>,
    /// Correct answers by server, for the calls that started in it (servers that gave none are
    /// left out).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub answered_by: std::collections::BTreeMap<String, u64>,
}

/// One simulated server's share of the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Server {
    /// Its name.
    pub name: String,
    /// Its group.
    pub group: String,
    /// Logical calls it answered.
    pub answered: u64,
    /// Their latency, end to end.
    pub latency: Latency,
}

/// One step of a workflow scenario, over every run: how often each thing happened to it (from
/// the executor's events; a run resumed after a crash of the client's host can send a step
/// again, and counts it again).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowStep {
    /// Its name.
    pub name: String,
    /// Its call was sent.
    pub sent: u64,
    /// It got its result (its own call's).
    pub done: u64,
    /// It got its fallback's result.
    pub fallback: u64,
    /// Its condition did not hold.
    pub skipped: u64,
    /// It failed.
    pub failed: u64,
    /// It was sent and never answered: its run was parked.
    pub unknown: u64,
    /// It was cancelled because another step failed.
    pub cancelled: u64,
    /// Its compensation answered.
    pub compensated: u64,
    /// Its compensation failed for good.
    pub compensation_failed: u64,
}

/// One time bucket of the run, for plots.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// The bucket's start, in ms.
    pub t_ms: f64,
    /// Calls started in it.
    pub started: u64,
    /// Of those, calls that got a result.
    pub ok: u64,
    /// Of those, calls that failed or were lost.
    pub failed: u64,
    /// Their median latency, in ms.
    pub p50_ms: Option<f64>,
    /// Their 99th percentile, in ms.
    pub p99_ms: Option<f64>,
    /// Correct answers per server, in the order of the run's `servers` (absent in results
    /// written before it was kept: empty).
    #[serde(default)]
    pub answered: Vec<u64>,
}

/// One entry of the event timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// When, in µs from the start of the workload.
    pub t_us: u64,
    /// The server concerned.
    pub server: String,
    /// What happened.
    #[serde(flatten)]
    pub what: What,
}

/// What an [`Event`] says happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum What {
    /// A fault began (`fault`: its kind as scenario files spell it).
    FaultStart {
        /// The fault's kind.
        fault: String,
    },
    /// A fault ended.
    FaultEnd {
        /// The fault's kind.
        fault: String,
    },
    /// The server's breaker changed state.
    Breaker {
        /// The state before.
        from: BreakerPhase,
        /// The state after.
        to: BreakerPhase,
    },
    /// Outlier detection ejected the server.
    Ejected,
    /// Outlier detection let it back.
    Restored,
    /// The client's session to it became ready.
    Connected,
    /// The client's session to it ended.
    Disconnected,
    /// A call moved on from this server, which failed it, to another.
    Failover {
        /// The server of the next attempt.
        to: String,
    },
}

/// A broken rule of a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Violation {
    /// A call never ended.
    Lost {
        /// Its id.
        call: u64,
        /// When it started, in µs (absent in results written before it was kept).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_us: Option<u64>,
    },
    /// A truly unsafe call's side effect happened more than once.
    DuplicateSideEffect {
        /// Its id.
        call: u64,
        /// How many times it happened.
        times: u32,
    },
    /// A call ended after its deadline (beyond one tick of slack).
    DeadlineMissed {
        /// Its id.
        call: u64,
        /// How long it took, in microseconds.
        took_us: u64,
        /// When it started, in µs (absent in results written before it was kept).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_us: Option<u64>,
    },
    /// An attempt went to a server whose breaker was open, or was not a probe while it was
    /// half-open.
    BreakerBypassed {
        /// The server.
        server: String,
        /// When, in µs.
        t_us: u64,
        /// The breaker's state then.
        state: BreakerPhase,
    },
    /// An aggregated call returned an answer that most answering servers did not give.
    MinorityAnswer {
        /// Its id.
        call: u64,
        /// Servers that gave the returned answer.
        agreeing: usize,
        /// Servers that answered.
        answered: usize,
        /// When it started, in µs (absent in results written before it was kept).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_us: Option<u64>,
    },
    /// After the last fault ended, the client did not serve normally again within the bound.
    NotRecovered {
        /// The bound, in µs.
        bound_us: u64,
    },
    /// The workload issued fewer calls than it offered (more than 1 % short).
    Shortfall {
        /// Calls offered (scheduled within the run).
        offered: u64,
        /// Calls issued.
        issued: u64,
    },
    /// More violations of the per-call rules than a run lists: how many more there were.
    Unlisted {
        /// Violations not listed.
        count: u64,
    },
    /// A workflow step's call to a truly unsafe tool took effect more than once.
    WorkflowEffectTwice {
        /// The workflow run.
        run: u64,
        /// The step.
        step: String,
        /// How many times it took effect.
        times: u32,
    },
    /// A workflow that ended compensated left the effect of a step without its compensation.
    NotCompensated {
        /// The workflow run.
        run: u64,
        /// The step.
        step: String,
    },
    /// A completed workflow's output differs from that of an uninterrupted run on the same
    /// inputs (taking the same fallbacks).
    WorkflowDiverged {
        /// The workflow run.
        run: u64,
        /// Whether it was resumed from its journal after a crash.
        resumed: bool,
    },
    /// A step's call reached a server before the result of a step it depends on existed.
    DependencyBroken {
        /// The workflow run.
        run: u64,
        /// The step.
        step: String,
        /// The dependency whose result did not exist yet.
        dependency: String,
    },
    /// The run could not complete (the simulation stopped it); why, for people.
    Stopped {
        /// The simulation's reason.
        reason: String,
    },
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Violation::Lost { call, .. } => write!(f, "call {call} never ended"),
            Violation::DuplicateSideEffect { call, times } => {
                write!(f, "call {call} to an unsafe tool took effect {times} times")
            }
            Violation::DeadlineMissed { call, took_us, .. } => {
                write!(f, "call {call} ended after {took_us} us, past its deadline")
            }
            Violation::BreakerBypassed { server, t_us, state } => {
                write!(f, "an attempt went to {server} at {t_us} us while its breaker was {state}")
            }
            Violation::MinorityAnswer { call, agreeing, answered, .. } => {
                write!(f, "call {call} returned an answer {agreeing} of {answered} servers gave, as the majority's")
            }
            Violation::NotRecovered { bound_us } => {
                write!(f, "the client did not recover within {} ms of the last fault's end", bound_us / 1_000)
            }
            Violation::Shortfall { offered, issued } => {
                write!(f, "the workload offered {offered} calls and issued {issued}")
            }
            Violation::WorkflowEffectTwice { run, step, times } => {
                write!(f, "workflow run {run}: step `{step}` took effect {times} times")
            }
            Violation::NotCompensated { run, step } => {
                write!(f, "workflow run {run} ended compensated but step `{step}`'s effect was not compensated")
            }
            Violation::WorkflowDiverged { run, resumed } => write!(
                f,
                "workflow run {run}{}: its output differs from an uninterrupted run's",
                if *resumed { " (resumed after a crash)" } else { "" }
            ),
            Violation::DependencyBroken { run, step, dependency } => {
                write!(f, "workflow run {run}: step `{step}` was sent before `{dependency}`'s result existed")
            }
            Violation::Unlisted { count } => write!(f, "{count} more violations of the per-call rules, not listed"),
            Violation::Stopped { reason } => write!(f, "the run stopped: {reason}"),
        }
    }
}

/// One expectation of the scenario, checked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Expectation {
    /// What is measured (`success_rate`, `p99`, `recovery`, …).
    pub name: String,
    /// What was expected, as written (`>= 0.999`).
    pub expected: String,
    /// What was measured, in the same unit.
    pub measured: String,
    /// Whether it held.
    pub pass: bool,
}

/// Everything one run (scenario × strategy × seed) produced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// The scenario's name.
    pub scenario: String,
    /// The scenario's file, as given on the command line (empty when built in code).
    pub file: String,
    /// The seed.
    /// The scenario's description (its hypothesis), as the file gives it (absent in results
    /// written before it was kept).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The run's simulated duration, in ms (0 in results written before it was kept).
    #[serde(default)]
    pub duration_ms: f64,
    pub seed: u64,
    /// The balancing strategy of this run.
    pub strategy: String,
    /// The variant of the scenario's policy this run is: a `[[variant]]`'s name, or the
    /// strategy's for a `[matrix]` of balancers and for a file with neither (empty in results
    /// written before variants existed).
    #[serde(default)]
    pub variant: String,
    /// The run's digest: the hash of its event log.
    pub digest: String,
    /// Pass or fail.
    pub verdict: Verdict,
    /// Call counts.
    pub calls: Calls,
    /// Attempts sent (hedges and retries included).
    pub attempts: u64,
    /// Of those, hedges: backups of an attempt still in flight (absent in results written
    /// before it was kept: 0).
    #[serde(default)]
    pub hedges: u64,
    /// Attempts per call sent (calls that found no server to send to are not counted): 1 when
    /// nothing was retried or hedged.
    pub retry_amplification: f64,
    /// Latency of successful calls.
    pub latency: Latency,
    /// Time from the last fault's end until the client served normally again, in ms
    /// (`None` with no fault, or if it never did).
    pub recovery_ms: Option<f64>,
    /// Per phase.
    pub phases: Vec<Phase>,
    /// Per server.
    pub servers: Vec<Server>,
    /// Time-bucketed series.
    pub series: Vec<Bucket>,
    /// The event timeline.
    pub events: Vec<Event>,
    /// Events the timeline left out because a run keeps a bounded number (failovers first).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub events_dropped: u64,
    /// Broken safety or liveness rules.
    pub violations: Vec<Violation>,
    /// The scenario's expectations, checked.
    pub expectations: Vec<Expectation>,
    /// A workflow scenario's steps, in the order written (absent for other scenarios, and in
    /// results written before it was kept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<WorkflowStep>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl RunResult {
    /// Whether the run is a `[[variant]]` (named apart from its strategy).
    pub fn is_named_variant(&self) -> bool {
        !self.variant.is_empty() && self.variant != self.strategy
    }

    /// How the run is named: its strategy, or its variant and the variant's strategy.
    pub fn label(&self) -> String {
        if self.is_named_variant() { format!("{}: {}", self.variant, self.strategy) } else { self.strategy.clone() }
    }

    /// The name that tells it apart from the file's other runs of a seed: its variant's, or its
    /// strategy's.
    pub fn key(&self) -> &str {
        if self.variant.is_empty() { &self.strategy } else { &self.variant }
    }

    /// The command that replays this run, with the stock `gauntlet` binary.
    pub fn reproduce(&self) -> String {
        self.reproduce_with("gauntlet")
    }

    /// The command that replays this run with `program` (a binary built on the library, whose
    /// strategies the stock one does not have).
    pub fn reproduce_with(&self, program: &str) -> String {
        let file = if self.file.is_empty() { "<scenario.toml>" } else { &self.file };
        if self.is_named_variant() {
            format!("{program} run {file} --seed {} --variant {}", self.seed, self.variant)
        } else {
            format!("{program} run {file} --seed {} --strategy {}", self.seed, self.strategy)
        }
    }

    /// The expectations that failed.
    pub fn failed_expectations(&self) -> impl Iterator<Item = &Expectation> {
        self.expectations.iter().filter(|e| !e.pass)
    }
}
