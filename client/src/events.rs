//! What the client tells an observer: the decisions and state changes a timeline, a checker or
//! a dashboard needs, in the order they were made.
//!
//! Events are emitted while the client holds its decision lock, so their order is the order of
//! the decisions (a breaker's transition comes before the first attempt it allows). Servers are
//! named by their index in [`Config::servers`](crate::config::Config::servers), which keeps
//! emitting cheap; no event carries a secret.

use std::sync::Arc;

/// One observed event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// A session to the server is ready (first connect or reconnect).
    Connected {
        /// The server's index.
        server: usize,
    },
    /// The session to the server ended; the supervisor will reconnect with backoff.
    Disconnected {
        /// The server's index.
        server: usize,
    },
    /// The server's breaker changed state (`closed`, `open`, `half-open`).
    Breaker {
        /// The server's index.
        server: usize,
        /// The state before.
        from: &'static str,
        /// The state after.
        to: &'static str,
    },
    /// Outlier detection ejected the server (`true`) or let it back (`false`).
    Ejected {
        /// The server's index.
        server: usize,
        /// Ejected or restored.
        ejected: bool,
    },
    /// An attempt was sent to the server under a breaker permit.
    Sent {
        /// The server's index.
        server: usize,
        /// Whether the permit was a half-open probe.
        probe: bool,
        /// The priority tier it was picked from (0: the preferred one).
        tier: usize,
    },
    /// A logical call moved on from a server that failed it to another one.
    Failover {
        /// The server that failed the attempt.
        from: usize,
        /// The server of the next attempt.
        to: usize,
    },
}

/// Receives every [`ClientEvent`]. Called with the client's decision lock held: keep it short
/// and never call back into the client.
pub type Observer = Arc<dyn Fn(&ClientEvent) + Send + Sync>;
