//! What a run records: each logical call and how it ended, the client's events, the report of
//! the whole run, and its digest.

use std::collections::BTreeMap;
use std::time::Duration;

use gauntlet_client::{CallError, Event as ClientEvent};
use gauntlet_core::aggregate::AggregateError;
use gauntlet_core::outcome::Outcome;
use gauntlet_core::retry::GiveUp;
use gauntlet_reports::{Event, Violation};

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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunReport {
    /// The scenario's name.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// The balancing strategy.
    pub strategy: String,
    /// Every logical call, by id.
    pub calls: Vec<CallRecord>,
    /// Calls the workload offered: an open-loop schedule's arrivals within the run, or the
    /// calls closed-loop callers issued.
    pub offered: u64,
    /// The timeline: faults and the client's breaker transitions, ejections, reconnects and
    /// failovers, in order.
    pub events: Vec<Event>,
    /// Attempts sent, in total.
    pub attempts: u64,
    /// Time from the last fault's end until the client served normally again, in µs.
    pub recovery_us: Option<u64>,
    /// Broken rules (empty: the run is safe).
    pub violations: Vec<Violation>,
    /// The hash of the run's log, as hex.
    pub digest: String,
}

impl RunReport {
    /// Calls that ended with a result.
    pub fn ok(&self) -> usize {
        self.calls.iter().filter(|c| c.is_ok()).count()
    }

    /// The fraction of calls that ended with a result.
    pub fn success_rate(&self) -> f64 {
        if self.calls.is_empty() { 1.0 } else { self.ok() as f64 / self.calls.len() as f64 }
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

/// What the client host writes while a run goes: every call, and the client's events with
/// their time in µs.
#[derive(Default)]
pub(crate) struct Log {
    pub(crate) calls: BTreeMap<u64, CallRecord>,
    /// The client's events, with their time in µs.
    pub(crate) client: Vec<(u64, ClientEvent)>,
    /// Calls the workload offered (scheduled to arrive within the run).
    pub(crate) offered: u64,
}

/// `d` in whole microseconds (saturating).
pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The hash of a run's log: every call (id order) and every timeline event, as their typed
/// values print (`Debug`), never as prose meant for people.
pub fn digest(calls: &[CallRecord], events: &[Event]) -> String {
    use std::fmt::Write;
    let mut text = String::new();
    for c in calls {
        let _ = writeln!(text, "{} {} {} {:?} {} {:?}", c.id, c.tool, c.start_us, c.end_us, c.attempts, c.end);
    }
    for e in events {
        let _ = writeln!(text, "{} {} {:?}", e.t_us, e.server, e.what);
    }
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(text.as_bytes()))
}
