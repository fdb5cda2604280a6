//! Retrying: whether to try again, when, and where.
//!
//! A failed attempt is retried only when all of these hold, checked in this order, and the
//! first that fails is the [`GiveUp`] reason:
//!
//! 1. the outcome is worth retrying (timeouts, transport and server errors, garbage, a local
//!    rejection; not a tool's own `isError` answer, not a caller mistake, not a cancellation);
//! 2. replaying is **safe**: the request never left the client, or it is a list/discover call,
//!    or the tool is marked `readOnlyHint` or `idempotentHint` by a server the client trusts
//!    ([`CallKind::is_replayable`]). A timed-out `transfer_funds` is never sent twice;
//! 3. attempts remain (`max_attempts` counts the first);
//! 4. the backoff delay ([`Backoff`]) plus the expected latency still fits before the call's
//!    overall deadline;
//! 5. the shared [`RetryBudget`] grants a withdrawal (checked last, so giving up for another
//!    reason never spends budget).
//!
//! The retry then goes to a server not yet tried whenever one exists: the policy engine keeps a
//! call's [`Tried`] set and passes it to the pick as exclusions (`policy::Engine::pick`).

mod backoff;
mod budget;

pub use backoff::{Backoff, Jitter};
pub use budget::{BUCKETS as BUDGET_BUCKETS, BudgetConfig, RetryBudget};

use std::time::Duration;

use crate::fleet::ServerId;
use crate::outcome::{CALLER_ERROR_CODES, Outcome};
use crate::rng::SeededRng;
use crate::route::ToolHints;
use crate::time::Time;

/// What kind of request is being retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallKind {
    /// `tools/list` and the other list calls: always safe to replay.
    List,
    /// `server/discover`, `initialize`, `ping`: always safe to replay.
    Discover,
    /// `tools/call`.
    Tool {
        /// The tool's merged hints.
        hints: ToolHints,
        /// Whether the client trusts the servers' hints (configured per server).
        trusted: bool,
    },
}

impl CallKind {
    /// Whether sending the request twice is safe.
    pub fn is_replayable(self) -> bool {
        match self {
            CallKind::List | CallKind::Discover => true,
            CallKind::Tool { hints, trusted } => trusted && (hints.read_only || hints.idempotent),
        }
    }
}

/// When and how often to retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryConfig {
    /// Attempts in all, the first included; 1 disables retries.
    pub max_attempts: u32,
    /// Delays between attempts.
    pub backoff: Backoff,
}

impl Default for RetryConfig {
    fn default() -> Self {
        // Three attempts: with a retry going to another server, two failures in a row on
        // independent replicas are rare enough; more only amplifies an outage.
        RetryConfig { max_attempts: 3, backoff: Backoff::default() }
    }
}

/// What the policy knows about the attempt that just failed.
#[derive(Clone, Copy, Debug)]
pub struct Attempt {
    /// The request's kind.
    pub kind: CallKind,
    /// How the attempt ended.
    pub outcome: Outcome,
    /// Whether the request may have reached the server (false for a refused connect or a
    /// local rejection: nothing was sent, so even an unsafe call may go again).
    pub sent: bool,
    /// Attempts made so far, this one included (≥ 1).
    pub attempts: u32,
    /// The delay before this attempt (zero for the first).
    pub previous_delay: Duration,
    /// The current time.
    pub now: Time,
    /// The logical call's deadline.
    pub deadline: Time,
    /// How long a further attempt is expected to take (e.g. the servers' median latency).
    pub expected_latency: Duration,
}

/// Why the policy stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GiveUp {
    /// The outcome is not worth retrying.
    NotRetryable,
    /// The request may have run, and replaying it is not known to be safe.
    Unsafe,
    /// No attempts left.
    Attempts,
    /// No time left before the deadline.
    Deadline,
    /// The retry budget is spent.
    Budget,
}

/// The policy's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Retry after this delay.
    Retry {
        /// How long to wait first.
        after: Duration,
    },
    /// Stop.
    GiveUp(GiveUp),
}

/// Whether `outcome` is worth another attempt (on another server).
pub fn is_retryable(outcome: Outcome) -> bool {
    match outcome {
        Outcome::Timeout | Outcome::Transport | Outcome::Malformed | Outcome::Rejected => true,
        Outcome::RpcError(code) => !CALLER_ERROR_CODES.contains(&code),
        Outcome::Success | Outcome::ToolError | Outcome::Cancelled => false,
    }
}

impl RetryConfig {
    /// Decides what follows a failed attempt; see the [module docs](self) for the order.
    pub fn decide(&self, attempt: &Attempt, budget: &mut RetryBudget, rng: &mut SeededRng) -> Decision {
        if !is_retryable(attempt.outcome) {
            return Decision::GiveUp(GiveUp::NotRetryable);
        }
        if attempt.sent && !attempt.kind.is_replayable() {
            return Decision::GiveUp(GiveUp::Unsafe);
        }
        if attempt.attempts >= self.max_attempts {
            return Decision::GiveUp(GiveUp::Attempts);
        }
        let after = self.backoff.delay(attempt.attempts - 1, attempt.previous_delay, rng);
        if attempt.now + after + attempt.expected_latency > attempt.deadline {
            return Decision::GiveUp(GiveUp::Deadline);
        }
        if !budget.withdraw(attempt.now) {
            return Decision::GiveUp(GiveUp::Budget);
        }
        Decision::Retry { after }
    }
}

/// The most servers a [`Tried`] set remembers.
pub const MAX_TRIED: usize = 8;

/// The servers a logical call has tried, on the stack.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tried {
    ids: [ServerId; MAX_TRIED],
    len: usize,
}

impl Tried {
    /// No server tried yet.
    pub fn new() -> Tried {
        Tried::default()
    }

    /// Remembers `id` (the oldest is forgotten beyond [`MAX_TRIED`]).
    pub fn push(&mut self, id: ServerId) {
        if self.as_slice().contains(&id) {
            return;
        }
        if self.len == MAX_TRIED {
            self.ids.copy_within(1.., 0);
            self.len -= 1;
        }
        self.ids[self.len] = id;
        self.len += 1;
    }

    /// The servers tried.
    pub fn as_slice(&self) -> &[ServerId] {
        &self.ids[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(outcome: Outcome, kind: CallKind) -> Attempt {
        Attempt {
            kind,
            outcome,
            sent: true,
            attempts: 1,
            previous_delay: Duration::ZERO,
            now: Time::from_secs(1),
            deadline: Time::from_secs(3),
            expected_latency: Duration::from_millis(20),
        }
    }

    const UNSAFE: CallKind = CallKind::Tool { hints: ToolHints { read_only: false, idempotent: false }, trusted: true };
    const READ_ONLY: CallKind =
        CallKind::Tool { hints: ToolHints { read_only: true, idempotent: false }, trusted: true };

    fn decide(a: &Attempt) -> Decision {
        RetryConfig::default().decide(a, &mut RetryBudget::new(BudgetConfig::default()), &mut SeededRng::new(1))
    }

    #[test]
    fn an_unsafe_tool_that_may_have_run_is_never_replayed() {
        assert_eq!(decide(&attempt(Outcome::Timeout, UNSAFE)), Decision::GiveUp(GiveUp::Unsafe));
        let never_sent = Attempt { sent: false, ..attempt(Outcome::Transport, UNSAFE) };
        assert!(matches!(decide(&never_sent), Decision::Retry { .. }));
    }

    #[test]
    fn hints_from_an_untrusted_server_do_not_make_a_tool_replayable() {
        let untrusted = CallKind::Tool { hints: ToolHints { read_only: true, idempotent: true }, trusted: false };
        assert_eq!(decide(&attempt(Outcome::Timeout, untrusted)), Decision::GiveUp(GiveUp::Unsafe));
        assert!(matches!(decide(&attempt(Outcome::Timeout, READ_ONLY)), Decision::Retry { .. }));
        assert!(matches!(decide(&attempt(Outcome::Timeout, CallKind::List)), Decision::Retry { .. }));
    }

    #[test]
    fn a_tool_error_or_a_caller_mistake_is_not_retried() {
        assert_eq!(decide(&attempt(Outcome::ToolError, READ_ONLY)), Decision::GiveUp(GiveUp::NotRetryable));
        assert_eq!(decide(&attempt(Outcome::RpcError(-32602), READ_ONLY)), Decision::GiveUp(GiveUp::NotRetryable));
    }

    #[test]
    fn no_retry_once_the_deadline_cannot_be_met() {
        let late = Attempt { now: Time::from_millis(2_990), ..attempt(Outcome::Timeout, READ_ONLY) };
        assert_eq!(decide(&late), Decision::GiveUp(GiveUp::Deadline));
        let last = Attempt { attempts: 3, ..attempt(Outcome::Timeout, READ_ONLY) };
        assert_eq!(decide(&last), Decision::GiveUp(GiveUp::Attempts));
    }

    #[test]
    fn giving_up_for_another_reason_spends_no_budget() {
        let mut budget = RetryBudget::new(BudgetConfig { ratio: 0.0, min_per_sec: 1, window: Duration::from_secs(1) });
        let mut rng = SeededRng::new(1);
        let policy = RetryConfig::default();
        assert_eq!(
            policy.decide(&attempt(Outcome::Timeout, UNSAFE), &mut budget, &mut rng),
            Decision::GiveUp(GiveUp::Unsafe)
        );
        assert!(matches!(
            policy.decide(&attempt(Outcome::Timeout, READ_ONLY), &mut budget, &mut rng),
            Decision::Retry { .. }
        ));
        assert_eq!(
            policy.decide(&attempt(Outcome::Timeout, READ_ONLY), &mut budget, &mut rng),
            Decision::GiveUp(GiveUp::Budget)
        );
    }
}
