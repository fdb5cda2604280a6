//! The policy engine: one typed policy, and one engine that makes every decision of a call.
//!
//! - [`Policy`] is what a user writes, the same serde type in a client's JSON config
//!   (`"gauntlet": { … }`) and a scenario's `[client]` table: every mechanism of this crate
//!   is configurable there, with documented defaults and checked ranges ([`values`]).
//! - [`Engine`] owns the fleet, a balancer per route and tier, the breakers, outlier detection,
//!   health, the retry budget, the hedger, the result cache, the metrics and the seeded random
//!   streams. Its methods are the decision points of a call ([`Engine::begin`],
//!   [`Engine::pick`], [`Engine::hedge`], [`Engine::finish`], [`Engine::cancel`]); it reports
//!   what it decided as typed [`Event`]s to a sink the caller provides.
//!
//! Why one engine: a layer that re-implements a decision drifts from the one that is tested and
//! measured. With the engine, the client's per-call path, the simulator's and the benches' are
//! the same code.

mod engine;
mod event;
mod schema;
pub mod values;

pub use engine::{
    Attempt, BeginError, Call, Engine, EngineError, Hedge, MAX_EXCLUDED, MAX_FAN_OUT, Next, POLL_EVERY, ServerEntry,
    streams,
};
pub use event::{Event, Sink};
pub use schema::{
    BreakerMode, BreakerPolicy, BreakerWindow, BudgetPolicy, CachePolicy, HealthPolicy, HedgePolicy, MAX_ENTRIES,
    MOVED, OutlierPolicy, PeakEwmaPolicy, Policy, PolicyError, ReconnectPolicy, RetryPolicy, RoutePolicy,
    SlowStartPolicy, ToolPolicy, moved,
};
pub use values::{Count, Fraction, MAX_PERIOD, Period, Ratio};
