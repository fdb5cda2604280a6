//! What the call pipeline and the connection supervisors share: the configuration, the
//! upstreams, and the engine behind its one mutex.
//!
//! The engine is only ever locked for a decision or a record, never across an `.await`.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use gauntlet_core::policy::{Engine, Event};
use gauntlet_core::route::{ServerTools, ToolHints, ToolInfo};
use gauntlet_core::{ServerId, Time};
use tokio::sync::mpsc;

use crate::config::Config;
use crate::session::{self, ConnectError, Handler, Notice, ProgressRoutes};
use crate::upstream::{LinkState, Upstream};

/// A connect in progress: the session, once the handshake is done.
pub type ConnectFuture<'a> = Pin<Box<dyn Future<Output = Result<session::Connected, ConnectError>> + Send + 'a>>;

/// Opens connections. The default uses each server's configured transport; the simulator
/// supplies one that dials turmoil streams.
pub trait Connector: Send + Sync + 'static {
    /// Connects to `server` and completes the MCP handshake over the returned session.
    fn connect<'a>(&'a self, server: &'a crate::config::ServerConfig, handler: HandlerToken) -> ConnectFuture<'a>;
}

/// The client's notification handler for one connection, handed to a [`Connector`].
pub struct HandlerToken(pub(crate) Handler);

impl std::fmt::Debug for HandlerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("HandlerToken").field(&self.0.server).finish()
    }
}

impl HandlerToken {
    /// Completes the MCP handshake over a byte stream (how a custom connector finishes).
    pub async fn handshake<R, W>(self, read: R, write: W) -> Result<session::Connected, ConnectError>
    where
        R: tokio::io::AsyncRead + Send + Unpin + 'static,
        W: tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        let running = session::connect_io(self.0, read, write).await?;
        Ok(session::Connected { running, child: None, stderr: None })
    }
}

/// Receives every [`Event`], in decision order. Called with the engine locked: keep it short
/// and never call back into the client.
pub type Observer = Arc<dyn Fn(&Event) + Send + Sync>;

pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) epoch: tokio::time::Instant,
    pub(crate) upstreams: Vec<Upstream>,
    pub(crate) notices: mpsc::UnboundedSender<Notice>,
    pub(crate) progress: ProgressRoutes,
    pub(crate) connector: Box<dyn Connector>,
    pub(crate) engine: Mutex<Engine>,
    /// Logical calls begun: each call's correlation id in logs.
    pub(crate) calls: std::sync::atomic::AtomicU64,
}

impl Shared {
    pub(crate) fn engine(&self) -> MutexGuard<'_, Engine> {
        self.engine.lock().expect("engine lock")
    }

    pub(crate) fn now(&self) -> Time {
        Time::from_nanos(u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    pub(crate) fn to_instant(&self, t: Time) -> tokio::time::Instant {
        self.epoch + Duration::from_nanos(t.as_nanos())
    }

    pub(crate) fn name(&self, id: ServerId) -> &str {
        &self.config.servers[id.index()].name
    }

    pub(crate) fn names(&self, ids: &[ServerId]) -> Vec<String> {
        ids.iter().map(|&id| self.name(id).to_owned()).collect()
    }

    pub(crate) fn health_timeout(&self) -> Duration {
        self.config.policy.health.timeout.get()
    }

    pub(crate) fn next_health_check(&self, id: ServerId) -> tokio::time::Instant {
        let next = self.engine().next_check(id);
        self.to_instant(next)
    }

    /// Records an active check; returns whether the server is healthy afterwards.
    pub(crate) fn record_check(&self, id: ServerId, ok: bool) -> bool {
        let now = self.now();
        self.engine().record_check(id, ok, now)
    }

    /// An upstream connected or went down.
    pub(crate) fn on_link_change(&self, id: ServerId) {
        let ready = matches!(self.upstreams[id.index()].status.lock().expect("status lock").link, LinkState::Ready);
        let now = self.now();
        self.engine().link(id, ready, now);
    }

    /// A server's tool list changed: rebuild the catalog, routes and balancers.
    pub(crate) fn on_tools_change(&self) {
        let servers: Vec<ServerTools> = self.upstreams.iter().filter_map(server_tools).collect();
        let mut engine = self.engine();
        if let Err(e) = engine.set_tools(&servers) {
            tracing::error!(error = %e, "cannot build the tool catalog; keeping the previous one");
            return;
        }
        for skipped in engine.catalog().skipped() {
            tracing::warn!(%skipped, "tool left out of the catalog");
        }
    }
}

/// What the engine needs to know of one connected server's tools.
fn server_tools(up: &Upstream) -> Option<ServerTools> {
    let tools = up.tools.lock().expect("tools lock").clone()?;
    let list_changed = up.status.lock().expect("status lock").list_changed;
    let mut s = ServerTools::new(up.id, &up.config.name, &[]);
    s.group = up.config.group.clone();
    s.priority = up.config.priority;
    s.tags = up.config.tags.iter().cloned().collect();
    if list_changed {
        s.capabilities.insert("tools.listChanged".to_owned());
    }
    s.tools = tools
        .iter()
        .map(|t| {
            let a = t.annotations.as_ref();
            ToolInfo {
                name: t.name.to_string(),
                hints: ToolHints {
                    read_only: a.and_then(|a| a.read_only_hint).unwrap_or(false),
                    idempotent: a.and_then(|a| a.idempotent_hint).unwrap_or(false),
                },
            }
        })
        .collect();
    Some(s)
}
