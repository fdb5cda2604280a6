//! Gauntlet's core: the pure, deterministic decisions a resilient multi-server MCP client makes.
//!
//! Both the real client (`gauntlet-client`) and the simulator (`gauntlet-sim`) drive these
//! decisions; nothing here does I/O, reads a clock or draws OS entropy, and nothing needs an
//! async runtime. That is what makes every decision benchmarkable in nanoseconds, property-
//! testable without a runtime, and reproducible from a seed.
//!
//! The seams:
//! - **Time** is a value, [`Time`], passed to every decision that needs it.
//! - **Randomness** is a [`SeededRng`] (ChaCha8: portable across platforms and versions)
//!   passed in by the caller, derived from one root seed per run.
//! - **Servers** are dense [`ServerId`]s into a [`Fleet`] of per-server state. No hash-map
//!   iteration order reaches a decision.
//!
//! The mechanisms, one module each:
//! - [`balance`]: which server of a replica set takes the next call.
//! - [`route`]: the federated tool catalog, and which servers may serve a tool.
//! - [`breaker`]: may this call go to that server ([`outcome`] says what counts as failure).
//! - [`outlier`]: take a misbehaving server out of rotation for a while.
//! - [`retry`]: whether to try again, when and where, within a budget.
//! - [`hedge`]: when to send a backup request, and which answer wins.
//! - [`aggregate`]: one answer from several servers' (first, fastest, all, majority, quorum).
//! - [`cache`]: TTL + LRU answers for tool lists and read-only results.
//! - [`health`]: active checks with jitter, combined with passive signals.
//! - [`metrics`]: per-server counters and HDR histograms, Prometheus text.
//!
//! [`policy`] puts them together: the typed [`Policy`](policy::Policy) a user writes, and the
//! [`Engine`](policy::Engine) that owns every mechanism's state and makes each decision of a
//! call. The client and the simulator drive that engine; they decide nothing themselves.
//!
//! ```
//! use gauntlet_core::balance::{Balancer, P2c, PeakEwma, PickContext};
//! use gauntlet_core::{Fleet, LatencyConfig, SeededRng, ServerSpec, Time};
//! use std::time::Duration;
//!
//! let mut fleet = Fleet::new(LatencyConfig::default());
//! let ids: Vec<_> = ["a", "b", "c"].iter().map(|n| fleet.add(n, ServerSpec::default()).unwrap()).collect();
//! let mut balancer = P2c::new(PeakEwma);
//! let mut rng = SeededRng::new(42);
//! let now = Time::from_secs(1);
//! let id = balancer.pick(&fleet.view(&ids), &PickContext::at(now), &mut rng).unwrap();
//! fleet.begin(id);
//! fleet.end(id, Duration::from_millis(12), now + Duration::from_millis(12));
//! ```

pub mod aggregate;
pub mod balance;
pub mod breaker;
pub mod cache;
pub mod fleet;
pub mod health;
pub mod hedge;
pub mod latency;
pub mod metrics;
pub mod outcome;
pub mod outlier;
pub mod policy;
pub mod retry;
pub mod rng;
pub mod route;
pub mod testing;
pub mod time;
pub mod workflow;

pub use fleet::{Fleet, FleetView, LatencyConfig, ServerId, ServerSpec};
pub use rng::SeededRng;
pub use time::Time;
