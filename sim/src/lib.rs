//! `gauntlet-sim`: deterministic turmoil fleets of faulty MCP servers, driving Gauntlet's real
//! client.
//!
//! Each simulated server is an rmcp server on its own turmoil host ([`server`]); the client
//! host runs `gauntlet_client::MultiServerClient` over turmoil streams and the workload; the
//! outer `Sim::step` loop applies the fault timeline (partitions, crashes and restarts, latency)
//! because those verbs exist only on `&mut Sim`. Every logical call is recorded, every run is
//! checked (nothing lost, no unsafe side effect twice, deadlines hold) and hashed: the same
//! scenario and seed give the same digest, in any process.

pub mod baseline;
pub mod checkers;
pub mod disk;
pub mod expect;
pub mod explore;
mod faults;
pub mod file;
pub mod flow_file;
mod flows;
mod log;
pub mod parallel;
pub mod record;
pub mod run;
pub mod scenario;
pub mod server;
mod verdict;
mod workload;
pub mod world;

pub use gauntlet_reports::Violation;
pub use log::{CallEnd, CallRecord, Failure, Figures, RunReport, SimError};
pub use record::summarize;
pub use run::run;
pub use scenario::{
    Affinity, Arrivals, Fault, FaultKind, PhaseSpec, ProtocolEra, Sabotage, Scenario, ServerGroup, ServiceTime,
    SimTool, Workload,
};
pub use workload::MAX_CALLS;

/// Whether this build seeds tokio's scheduling randomness: built with `--cfg tokio_unstable`
/// (the workspace's `.cargo/config.toml` sets it), turmoil seeds each simulated host's runtime
/// from the scenario's seed. Without it, a `tokio::select!` without `biased;` starts from a
/// per-process random branch; rmcp's connection task has one, so a run whose tasks keep several
/// calls in flight on one connection (a workflow's parallel steps) can differ between processes.
pub const SCHEDULER_SEEDED: bool = cfg!(tokio_unstable);
