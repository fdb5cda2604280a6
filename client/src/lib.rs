//! `gauntlet-client`: a resilient multi-server MCP client over `rmcp`, driven by
//! `gauntlet-core`'s policies.
//!
//! - [`config`]: the `mcpServers` JSON shape plus Gauntlet's keys, checked once.
//! - [`MultiServerClient`]: connects to every server (stdio child processes, Streamable HTTP,
//!   TCP, or any byte stream through a [`Connector`]), in either protocol era, federates their
//!   tools into one catalog, and runs every call through the core's routing, balancing,
//!   breaking, retrying, hedging and aggregation.
//!
//! Time comes from `tokio::time` only (simulated under turmoil), randomness from the seeded
//! generator in the config, and every `select!` is `biased;`, so the same seed gives the
//! same decisions.

mod client;
pub mod config;
pub mod events;
mod session;
mod upstream;

pub use client::{
    CallError, CallOptions, CallReport, ConfiguredTransports, Connector, HandlerToken, MAX_FAN_OUT, MultiServerClient,
    ServerStatus, ToolEntry,
};
pub use events::{ClientEvent, Observer};
pub use session::{ConnectError, Connected, Era, MAX_MESSAGE_BYTES, Progress, STDERR_KEEP_BYTES};
pub use upstream::{LinkState, MAX_PAGES, MAX_TOOLS, RECYCLE_AFTER_TIMEOUTS};
