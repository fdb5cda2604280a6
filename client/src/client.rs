//! [`MultiServerClient`]: many MCP servers behind one federated, resilient client.
//!
//! Every decision is the engine's (`gauntlet_core::policy::Engine`); this crate does I/O. The
//! engine sits behind one mutex, locked once per decision point of a call and never across an
//! `.await`. The call pipeline is in `call`, aggregated fan-out in `fanout`, connection
//! supervision in `upstream`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gauntlet_core::breaker::Phase;
use gauntlet_core::outcome::Outcome;
use gauntlet_core::policy::{Engine, EngineError, ServerEntry, Sink, streams};
use gauntlet_core::retry::GiveUp;
use gauntlet_core::{SeededRng, ServerId};
use rmcp::model::CallToolResult;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::session::{self, Notice, Progress};
use crate::shared::{ConnectFuture, Connector, HandlerToken, Observer, Shared};
use crate::supervise;
use crate::upstream::{LinkState, Upstream};

/// The connector of the configured transports (stdio, Streamable HTTP, TCP).
/// Each HTTP server has one HTTP client for all its sessions, so connections are reused.
#[derive(Debug, Default)]
pub struct ConfiguredTransports {
    http: crate::http::Clients,
}

impl Connector for ConfiguredTransports {
    fn connect<'a>(&'a self, server: &'a crate::config::ServerConfig, handler: HandlerToken) -> ConnectFuture<'a> {
        Box::pin(session::connect(server, handler.0, &self.http))
    }
}

/// Per-call options.
#[derive(Clone, Debug, Default)]
pub struct CallOptions {
    /// The deadline of the whole logical call; the policy's `deadline` when `None`.
    pub deadline: Option<Duration>,
    /// An affinity key for consistent hashing.
    pub affinity: Option<u64>,
    /// Where to send the call's progress notifications, under the caller's token.
    pub progress: Option<(String, mpsc::UnboundedSender<Progress>)>,
    /// An idempotency key, sent in the request's `_meta` under
    /// [`IDEMPOTENCY_META`](gauntlet_core::workflow::IDEMPOTENCY_META) with every attempt
    /// (retries and hedges carry the same key), so a server that deduplicates by it applies the
    /// call once.
    pub idempotency_key: Option<String>,
}

/// A logical call that succeeded (the tool may still have answered `isError: true`).
#[derive(Clone, Debug)]
pub struct CallReport {
    /// The tool's result.
    pub result: CallToolResult,
    /// The server that answered (empty for a cached answer).
    pub server: String,
    /// Attempts sent, hedges included.
    pub attempts: u32,
    /// Servers tried, in order.
    pub tried: Vec<String>,
    /// Time from the call to its answer.
    pub latency: Duration,
    /// Whether a hedge was sent.
    pub hedged: bool,
    /// Whether the answer came from the cache.
    pub cached: bool,
}

/// A logical call that failed. Every logical call ends in exactly one report or error.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CallError {
    /// No exposed tool has that name.
    #[error("no tool named `{0}`")]
    UnknownTool(String),
    /// The tool exists but no server may serve it (all unavailable or none routed).
    #[error("no available server for `{tool}` (tried: {tried:?})")]
    NoServer {
        /// The exposed tool.
        tool: String,
        /// Servers tried before none was left.
        tried: Vec<String>,
    },
    /// The attempts failed and the policy gave up.
    #[error("`{tool}` failed after {attempts} attempt(s) on {tried:?}: last outcome {last}, gave up: {reason:?}")]
    Failed {
        /// The exposed tool.
        tool: String,
        /// Attempts sent.
        attempts: u32,
        /// The last attempt's outcome.
        last: Outcome,
        /// Why no further attempt was made.
        reason: GiveUp,
        /// Servers tried, in order.
        tried: Vec<String>,
    },
    /// A fan-out call's answers could not be aggregated.
    #[error("aggregation failed: {0}")]
    Aggregate(#[from] gauntlet_core::aggregate::AggregateError),
}

/// One exposed tool in the federated catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolEntry {
    /// The exposed name.
    pub exposed: String,
    /// The tool's own name on its servers.
    pub tool: String,
    /// The replica group.
    pub group: String,
    /// Server names, tier by tier.
    pub servers: Vec<String>,
    /// Whether the client will replay it (trusted read-only or idempotent).
    pub replayable: bool,
}

/// One server's state, for display.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerStatus {
    /// Its name.
    pub name: String,
    /// Its transport kind.
    pub transport: &'static str,
    /// Its connection.
    pub link: LinkState,
    /// Its protocol era, once connected.
    pub era: Option<session::Era>,
    /// Health checks say it is up.
    pub healthy: bool,
    /// Its breaker's state.
    pub breaker: Phase,
    /// Whether outlier detection ejected it.
    pub ejected: bool,
    /// Tools it lists.
    pub tools: usize,
    /// Connections made so far.
    pub connects: u32,
}

/// The longest [`MultiServerClient::shutdown`] waits for its connections to close.
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(3);

/// A resilient client of many MCP servers.
pub struct MultiServerClient {
    pub(crate) shared: Arc<Shared>,
    shutdown: CancellationToken,
    /// The supervisors, one per server: [`shutdown`](Self::shutdown) waits for them.
    supervisors: tokio_util::task::TaskTracker,
}

impl std::fmt::Debug for MultiServerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiServerClient").field("servers", &self.shared.upstreams.len()).finish_non_exhaustive()
    }
}

impl Drop for MultiServerClient {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl MultiServerClient {
    /// Starts connecting to every configured server over its configured transport. Returns at
    /// once; see [`wait_ready`](Self::wait_ready). Needs a tokio runtime.
    pub fn start(config: Config) -> MultiServerClient {
        MultiServerClient::start_with(config, ConfiguredTransports::default())
    }

    /// Starts with a custom [`Connector`] (the simulator's turmoil streams, tests' in-memory
    /// pipes).
    pub fn start_with(config: Config, connector: impl Connector) -> MultiServerClient {
        MultiServerClient::start_observed(config, connector, None)
    }

    /// Starts with a custom [`Connector`] and an [`Observer`] of every event the engine reports
    /// (breaker transitions, ejections, reconnects, failovers, attempts).
    ///
    /// # Panics
    /// If `config` was assembled by hand with values [`Config::parse`] would refuse (a policy
    /// whose keys do not fit together, a weight outside `1..=65536`): that is a programmer
    /// error, and every config the crate's own readers produce is checked.
    pub fn start_observed(config: Config, connector: impl Connector, observer: Option<Observer>) -> MultiServerClient {
        let entries: Vec<ServerEntry> = config
            .servers
            .iter()
            .map(|s| ServerEntry { name: s.name.clone(), weight: s.weight, priority: s.priority, trusted: s.trusted })
            .collect();
        let sink = observer.map(|o| -> Sink { Box::new(move |e| o(e)) });
        let engine = match Engine::new(config.policy.clone(), &entries, sink) {
            Ok(engine) => engine,
            // `Config::parse` checks the policy and every weight; a hand-built config that
            // skipped it is a programmer error.
            Err(e @ (EngineError::Policy(_) | EngineError::Fleet(_))) => panic!("an unchecked config: {e}"),
        };
        let root = SeededRng::new(config.policy.seed);
        let upstreams: Vec<Upstream> =
            config.servers.iter().enumerate().map(|(i, s)| Upstream::new(ServerId(i as u32), s.clone())).collect();
        let n = upstreams.len();
        let (notices, mut notice_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            config,
            epoch: tokio::time::Instant::now(),
            upstreams,
            notices,
            progress: Arc::default(),
            connector: Box::new(connector),
            engine: Mutex::new(engine),
            calls: std::sync::atomic::AtomicU64::new(0),
        });
        let shutdown = CancellationToken::new();
        let supervisors = tokio_util::task::TaskTracker::new();
        for i in 0..n {
            let rng = root.derive(streams::SUPERVISOR + i as u64);
            supervisors.spawn(supervise::supervise(shared.clone(), i, rng, shutdown.clone()));
        }
        supervisors.close();
        // `list_changed` notifications ask the server's supervisor to list its tools again.
        let s = shared.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            loop {
                let notice = tokio::select! {
                    biased;
                    _ = stop.cancelled() => return,
                    n = notice_rx.recv() => n,
                };
                match notice {
                    Some(Notice::ToolsChanged(id)) => s.upstreams[id.index()].relist.notify_one(),
                    None => return,
                }
            }
        });
        MultiServerClient { shared, shutdown, supervisors }
    }

    /// Waits until every server has connected or failed at least once, or `timeout` passes.
    pub async fn wait_ready(&self, timeout: Duration) {
        self.wait_until(timeout, || false).await;
    }

    /// Waits until `tool` is in the catalog (a replica offering it is ready), or every server has
    /// settled, or `timeout` has passed: calls to it need not wait for a slow server's handshake.
    pub async fn wait_for_tool(&self, tool: &str, timeout: Duration) {
        self.wait_until(timeout, || self.shared.engine().routes().any(|(r, _)| r.exposed == tool)).await;
    }

    /// Polls until `done`, or every server has settled, or `timeout` has passed.
    async fn wait_until(&self, timeout: Duration, done: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            let settled = self.shared.upstreams.iter().all(|u| u.status.lock().expect("status lock").settled);
            if done() || settled {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops every connection: the calls in flight fail, the cancellations of abandoned
    /// requests are sent, sessions close and child processes are killed. Waits for that, at
    /// most [`SHUTDOWN_WAIT`].
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(SHUTDOWN_WAIT, self.supervisors.wait()).await;
    }

    /// The federated catalog, by exposed name.
    pub fn catalog(&self) -> Vec<ToolEntry> {
        let engine = self.shared.engine();
        engine
            .routes()
            .map(|(r, kind)| ToolEntry {
                exposed: r.exposed.clone(),
                tool: r.tool.clone(),
                group: engine.catalog().get(&r.exposed).map(|e| e.group.clone()).unwrap_or_default(),
                servers: r.tiers.iter().flat_map(|t| self.shared.names(t)).collect(),
                replayable: kind.is_replayable(),
            })
            .collect()
    }

    /// Whether the client may replay calls of the exposed tool `tool` (trusted read-only or
    /// idempotent); `None` when no such tool is exposed.
    pub fn replayable(&self, tool: &str) -> Option<bool> {
        let engine = self.shared.engine();
        engine.routes().find(|(r, _)| r.exposed == tool).map(|(_, kind)| kind.is_replayable())
    }

    /// Tools left out of the catalog, with reasons (names escaped).
    pub fn skipped_tools(&self) -> Vec<String> {
        self.shared.engine().catalog().skipped().iter().map(ToString::to_string).collect()
    }

    /// Every server's state.
    pub fn servers(&self) -> Vec<ServerStatus> {
        let engine = self.shared.engine();
        self.shared
            .upstreams
            .iter()
            .map(|up| {
                let status = up.status.lock().expect("status lock");
                let availability = engine.fleet().state(up.id).availability();
                ServerStatus {
                    name: up.config.name.clone(),
                    transport: up.config.transport.kind(),
                    link: status.link.clone(),
                    era: status.era,
                    healthy: availability.healthy,
                    breaker: engine.breaker(up.id).phase(),
                    ejected: availability.ejected,
                    tools: up.tools.lock().expect("tools lock").as_ref().map_or(0, Vec::len),
                    connects: status.connects,
                }
            })
            .collect()
    }

    /// The last bytes a stdio server wrote to its stderr (lossy UTF-8), for diagnostics.
    pub fn stderr_tail(&self, server: &str) -> Option<String> {
        let up = self.shared.upstreams.iter().find(|u| u.config.name == server)?;
        let kept = up.stderr.lock().expect("stderr lock").clone()?;
        let bytes = kept.lock().expect("stderr bytes lock").clone();
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Metrics in the Prometheus text format: the engine's counters and latency summaries, and
    /// the servers' state as gauges (connected and healthy per server and in all, breaker state).
    pub fn prometheus(&self) -> String {
        use std::fmt::Write as _;
        let mut out = self.shared.engine().metrics().prometheus();
        let servers = self.servers();
        let ready = servers.iter().filter(|s| matches!(s.link, LinkState::Ready)).count();
        let healthy = servers.iter().filter(|s| matches!(s.link, LinkState::Ready) && s.healthy).count();
        let _ = writeln!(
            out,
            "# HELP gauntlet_servers Servers configured.\n# TYPE gauntlet_servers gauge\ngauntlet_servers {}",
            servers.len()
        );
        let _ = writeln!(
            out,
            "# HELP gauntlet_servers_ready Servers with a ready session.\n# TYPE gauntlet_servers_ready gauge\n\
             gauntlet_servers_ready {ready}"
        );
        let _ = writeln!(
            out,
            "# HELP gauntlet_servers_healthy Servers ready and passing health checks.\n\
             # TYPE gauntlet_servers_healthy gauge\ngauntlet_servers_healthy {healthy}"
        );
        let _ = writeln!(
            out,
            "# HELP gauntlet_server_up Whether each server has a ready session (1) or not (0).\n\
             # TYPE gauntlet_server_up gauge"
        );
        for s in &servers {
            let up = u8::from(matches!(s.link, LinkState::Ready));
            let _ = writeln!(out, "gauntlet_server_up{{server=\"{}\"}} {up}", gauntlet_core::metrics::escape(&s.name));
        }
        let _ = writeln!(
            out,
            "# HELP gauntlet_breaker_open Each server's breaker state: 0 closed, 1 half-open, 2 open.\n\
             # TYPE gauntlet_breaker_open gauge"
        );
        for s in &servers {
            let state = match s.breaker {
                Phase::Closed => 0,
                Phase::HalfOpen => 1,
                Phase::Open => 2,
            };
            let _ = writeln!(
                out,
                "gauntlet_breaker_open{{server=\"{}\"}} {state}",
                gauntlet_core::metrics::escape(&s.name)
            );
        }
        out
    }

    /// Per-server latency at `quantile` and attempt counts, by server name.
    pub fn server_latency(&self, quantile: f64) -> Vec<(String, u64, u64, Option<Duration>)> {
        let engine = self.shared.engine();
        self.shared
            .upstreams
            .iter()
            .map(|up| {
                let m = engine.metrics().server(up.id);
                (
                    up.config.name.clone(),
                    m.attempts(),
                    m.count(Outcome::Success) + m.count(Outcome::ToolError),
                    m.latency(quantile),
                )
            })
            .collect()
    }
}
