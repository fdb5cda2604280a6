//! Workflows: steps across servers, with dependencies, conditions, fallbacks and
//! compensations, planned here and executed by the client.
//!
//! A workflow is a DAG of steps, each calling an exposed tool with arguments templated from the
//! inputs and earlier results ([`expr`]). [`definition`] checks a definition once (every
//! reference resolves, no cycle: a cycle is named with the steps it blocks). [`progress`] is the
//! planner: it hands out ready steps up to the workflow's bound, skips steps whose condition
//! fails, records outcomes, lists compensations latest-first when a step fails, and folds a
//! journal back into progress on resume.
//!
//! The journal protocol follows the durable-execution engines (Step Functions, Conductor,
//! DBOS): a declarative DAG resumes by folding its records, not by replaying code; the
//! definition's digest is kept with the run and a changed definition is refused; an unsafe
//! step's intent is durable before its call is sent and a step's result before a dependent sees
//! it; a step sent with no answer is retried only if the client may replay its tool, and is
//! otherwise *unknown*: the run is parked and the step reported, never resent blindly.

pub mod definition;
pub mod expr;
pub mod progress;

pub use definition::{
    Builder, Call, CallSpec, DEFAULT_PARALLEL, DefinitionError, Fallback, FallbackSpec, Spec, Step, StepSpec, WhenSpec,
    Workflow,
};
pub use expr::{Condition, EvalError, Path, Scope, SyntaxError, Template, Test};
pub use progress::{Progress, Record, ResumeError, Start, Status, StepFailure, StepState, reference};

/// The `_meta` key under which a call's idempotency key travels. The MCP specification has no
/// standard field, so it is a vendor key; a step's key is the same for every attempt of it.
pub const IDEMPOTENCY_META: &str = "dev.gauntlet/idempotency-key";
