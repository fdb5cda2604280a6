//! What the engine tells its caller: the decisions and state changes a timeline, a checker or a
//! dashboard needs, typed, in the order they were made.

use serde::{Deserialize, Serialize};

use crate::breaker::Phase;
use crate::fleet::ServerId;

/// One event. Servers are named by their [`ServerId`] (their index in the engine's fleet).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Event {
    /// A session to the server is ready (first connect or reconnect).
    Connected {
        /// The server.
        server: ServerId,
    },
    /// The session to the server ended.
    Disconnected {
        /// The server.
        server: ServerId,
    },
    /// The server's breaker changed state.
    Breaker {
        /// The server.
        server: ServerId,
        /// The state before.
        from: Phase,
        /// The state after.
        to: Phase,
    },
    /// Outlier detection ejected the server (`true`) or let it back (`false`).
    Ejected {
        /// The server.
        server: ServerId,
        /// Ejected or restored.
        ejected: bool,
    },
    /// An attempt was sent to the server under a breaker permit.
    Sent {
        /// The server.
        server: ServerId,
        /// Whether the permit was a half-open probe.
        probe: bool,
        /// The tier it was picked from (0: the preferred one; fallback groups come later).
        tier: u32,
        /// Whether it is a hedge (a backup of an attempt still in flight).
        hedge: bool,
    },
    /// A logical call moved on from a server that failed it to another one.
    Failover {
        /// The server that failed the attempt.
        from: ServerId,
        /// The server of the next attempt.
        to: ServerId,
    },
}

/// Receives every [`Event`], in decision order, while the engine decides: keep it short.
pub type Sink = Box<dyn FnMut(&Event) + Send>;
