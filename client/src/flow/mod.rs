//! Workflows over the multi-server client: the executor and its journal.
//!
//! The planner is `gauntlet_core::workflow` (what may start, what it reads, what to undo); this
//! module does the I/O. [`run`] starts a run, [`resume`] continues one from its journal. Each
//! step's call goes through [`MultiServerClient`](crate::MultiServerClient) with the step's
//! deadline and an idempotency key in `_meta` (`{run}/{step}`, the same on every attempt,
//! `/fallback` and `/undo` for its fallback's and compensation's calls).
//!
//! Write-ahead: a step's intent is journaled before its call is sent (synced when the client
//! may not replay the tool), its result is synced before any dependent starts, and so is every
//! compensation's intent and end. A step whose call was sent and never answered is retried only
//! if the client may replay its tool; otherwise it is *unknown*, the run is parked and the step
//! reported. When a step fails, no new step starts, calls of replayable steps in flight are
//! cancelled, calls that may not be replayed are let finish (so their effect is known), and then
//! the compensations run, latest-finished step first.

mod execute;
mod journal;

pub use execute::{
    COMPENSATION_ATTEMPTS, FlowError, FlowEvent, FlowEventKind, FlowObserver, FlowOptions, FlowReport, FlowSabotage,
    StepReport, key, resume, run, step_value,
};
pub use journal::{Journal, JournalError, MAX_RECORDS, RedbJournal, SharedJournal};
