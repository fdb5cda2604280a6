//! What a run records: each logical call and how it ended, and the report of the whole run.

use std::time::Duration;

use gauntlet_client::CallError;
use gauntlet_core::aggregate::AggregateError;
use gauntlet_core::outcome::Outcome;
use gauntlet_core::retry::GiveUp;
use gauntlet_reports::{Bucket, Calls, Event, Latency, Phase, Server, Violation};

/// How one logical call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallEnd {
    /// A result (`tool_error`: the tool said `isError: true`).
    Ok {
        /// The server that answered (of an aggregated call: the first agreeing one).
        server: String,
        /// Whether the tool answered `isError: true`.
        tool_error: bool,
        /// An aggregated call's answer text.
        answer: Option<String>,
        /// Whether the answer was the honest one (a byzantine server's is not).
        correct: bool,
    },
    /// The client gave up.
    Failed(Failure),
}

/// Why a logical call failed, typed: what the digest hashes (never an error's wording).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The tool was not in the catalog.
    UnknownTool,
    /// No server could take it.
    NoServer,
    /// The attempts failed and the policy gave up.
    GaveUp {
        /// The last attempt's outcome.
        last: Outcome,
        /// Why no further attempt was made.
        reason: GiveUp,
    },
    /// Every replica failed (an aggregated call).
    AllFailed,
    /// No answer reached the quorum (an aggregated call).
    NoQuorum,
    /// Two answers each reached a low quorum (an aggregated call).
    Split,
    /// A workflow run (a workflow workload's "call") ended without completing.
    Workflow(gauntlet_core::workflow::Status),
    /// A workflow run stopped because its journal failed.
    Journal,
}

impl From<&CallError> for Failure {
    fn from(e: &CallError) -> Failure {
        match e {
            CallError::UnknownTool(_) => Failure::UnknownTool,
            CallError::NoServer { .. } => Failure::NoServer,
            CallError::Failed { last, reason, .. } => Failure::GaveUp { last: *last, reason: *reason },
            CallError::Aggregate(AggregateError::AllFailed(_)) => Failure::AllFailed,
            CallError::Aggregate(AggregateError::NoQuorum { .. }) => Failure::NoQuorum,
            CallError::Aggregate(AggregateError::Split { .. }) => Failure::Split,
        }
    }
}

/// One logical call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRecord {
    /// Its id (also the `call` argument the servers see).
    pub id: u64,
    /// The exposed tool.
    pub tool: String,
    /// When it started, in simulated microseconds since the run began.
    pub start_us: u64,
    /// When it ended; `None` if it never did (a lost call).
    pub end_us: Option<u64>,
    /// Attempts sent (retries and hedges included; an aggregated call counts one).
    pub attempts: u32,
    /// How it ended.
    pub end: Option<CallEnd>,
}

impl CallRecord {
    /// A call that started at `start_us` and has not ended.
    pub fn started(id: u64, tool: &str, start_us: u64) -> CallRecord {
        CallRecord { id, tool: tool.to_owned(), start_us, end_us: None, attempts: 0, end: None }
    }

    /// Whether it ended with a correct result.
    pub fn is_ok(&self) -> bool {
        matches!(self.end, Some(CallEnd::Ok { correct: true, .. }))
    }

    /// How long it took, if it ended.
    pub fn took_us(&self) -> Option<u64> {
        Some(self.end_us?.saturating_sub(self.start_us))
    }
}

/// What a run produced.
#[derive(Clone, Debug, PartialEq)]
pub struct RunReport {
    /// The scenario's name.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// The balancing strategy.
    pub strategy: String,
    /// Every logical call, by the time it ended and then by id (calls that never did last); kept
    /// only when the scenario asks ([`Scenario::keep_calls`](crate::Scenario::keep_calls)):
    /// the figures never need them.
    pub calls: Vec<CallRecord>,
    /// Calls the workload offered: an open-loop schedule's arrivals within the run, or the
    /// calls closed-loop callers issued.
    pub offered: u64,
    /// Calls the workload issued.
    pub issued: u64,
    /// Counts and latencies, overall, per phase, per server and over time.
    pub figures: Figures,
    /// The timeline: faults and the client's breaker transitions, ejections, reconnects and
    /// failovers, in order (at most [`MAX_EVENTS`](crate::record::MAX_EVENTS)).
    pub events: Vec<Event>,
    /// Events the timeline left out (beyond its bounds).
    pub events_dropped: u64,
    /// Attempts sent, in total.
    pub attempts: u64,
    /// Of those, hedges (backups of an attempt still in flight).
    pub hedges: u64,
    /// The run's simulated duration, in ms.
    pub duration_ms: f64,
    /// Time from the last fault's end until the client served normally again, in µs.
    pub recovery_us: Option<u64>,
    /// Broken rules (empty: the run is safe).
    pub violations: Vec<Violation>,
    /// The hash of the run's log, as hex.
    pub digest: String,
    /// A workflow scenario's steps: what happened to each, over every run (not in the digest:
    /// the calls it counts are).
    pub steps: Vec<gauntlet_reports::WorkflowStep>,
}

/// A run's figures, folded in as each call ended.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Figures {
    /// Call counts.
    pub calls: Calls,
    /// Latency of the calls that returned a correct result.
    pub latency: Latency,
    /// Attempts per call sent (calls that never left the client do not count): 1 when nothing
    /// was retried or hedged.
    pub retry_amplification: f64,
    /// Per phase.
    pub phases: Vec<Phase>,
    /// Per server.
    pub servers: Vec<Server>,
    /// Per time bucket (by start time).
    pub series: Vec<Bucket>,
}

impl RunReport {
    /// Calls that ended with a correct result.
    pub fn ok(&self) -> u64 {
        self.figures.calls.ok
    }

    /// The fraction of calls that ended with a correct result (1 with no call).
    pub fn success_rate(&self) -> f64 {
        self.figures.calls.success_rate()
    }
}

/// Why a run could not complete.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The scenario cannot be run this way (the throughput baseline needs callers).
    #[error("scenario `{scenario}`: {message}")]
    Config {
        /// The scenario.
        scenario: String,
        /// What is wrong.
        message: String,
    },
    /// turmoil stopped the run (a host failed, or the step limit was reached).
    #[error("scenario `{scenario}` seed {seed}: the simulation failed: {message}")]
    Turmoil {
        /// The scenario.
        scenario: String,
        /// The seed, to replay it.
        seed: u64,
        /// turmoil's message.
        message: String,
    },
}

/// `d` in whole microseconds (saturating).
pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
