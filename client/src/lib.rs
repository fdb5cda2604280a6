//! `gauntlet-client`: a resilient multi-server MCP client over `rmcp`, driven by
//! `gauntlet-core`'s policy engine.
//!
//! - [`config`]: the `mcpServers` JSON shape plus Gauntlet's `gauntlet` policy section,
//!   checked once.
//! - [`MultiServerClient`]: connects to every server (stdio child processes, Streamable HTTP,
//!   TCP, or any byte stream through a [`Connector`]), in either protocol era, federates their
//!   tools into one catalog, and runs every call through the engine's routing, balancing,
//!   breaking, retrying, hedging and aggregation.
//!
//! The layout follows the roles: `client` (the public API), `call` (the pipeline of one call),
//! `fanout` (aggregated calls that race), `supervise` (connection supervision), `upstream`
//! (one server's state), `session` (rmcp sessions and transports), `http` (the HTTP client
//! per server: connection reuse, TLS, message limits), `shared` (the state they
//! share, the engine behind its mutex).
//!
//! Time comes from `tokio::time` only (simulated under turmoil), randomness from the engine's
//! streams seeded by the policy, and every `select!` is `biased;`, so the same seed gives the
//! same decisions.

mod call;
mod client;
pub mod config;
mod fanout;
pub mod flow;
mod http;
mod session;
mod shared;
mod supervise;
mod upstream;

pub use client::{
    CallError, CallOptions, CallReport, ConfiguredTransports, MultiServerClient, SHUTDOWN_WAIT, ServerStatus, ToolEntry,
};
pub use gauntlet_core::policy::{Event, MAX_FAN_OUT};
pub use http::{MAX_CA_CERTS, MAX_CA_FILE_BYTES};
pub use session::{ConnectError, Connected, Era, MAX_MESSAGE_BYTES, Progress, STDERR_KEEP_BYTES};
pub use shared::{ConnectFuture, Connector, HandlerToken, Observer};
pub use upstream::{LinkState, MAX_PAGES, MAX_TOOLS, RECYCLE_AFTER_TIMEOUTS};
