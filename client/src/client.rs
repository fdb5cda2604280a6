//! [`MultiServerClient`]: many MCP servers behind one federated, resilient client.
//!
//! Every decision comes from `gauntlet-core`; this module does I/O and bookkeeping. Policy
//! state (fleet, breakers, health, outlier detection, budget, hedger, metrics, catalog,
//! balancers, the seeded generator) sits behind one mutex that is only ever held for a
//! decision or a record, never across an `.await`.
//!
//! A logical call: route → pick (tier by tier, skipping servers already tried and servers
//! whose breaker refuses) → breaker permit → concurrency slot (bounded queue, rejects fast) →
//! call with a deadline → classify → record (fleet, breaker, outlier, health, metrics,
//! hedger) → retry or hedge per the core's policies → exactly one [`CallReport`] or
//! [`CallError`]. Dropping a call future cancels its upstream requests (rmcp sends
//! `notifications/cancelled`).

use std::collections::BTreeMap;
use std::future::Future;
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use gauntlet_core::aggregate::{self, Aggregation, Answer};
use gauntlet_core::balance::{Balancer, BalancerConfig, PickContext};
use gauntlet_core::breaker::{Breaker, BreakerConfig, Permit, State as BreakerState};
use gauntlet_core::cache::{CacheKey, TtlCache, is_cacheable};
use gauntlet_core::health::{Health, HealthConfig};
use gauntlet_core::hedge::{HedgeConfig, HedgeTrigger, Hedger};
use gauntlet_core::metrics::Metrics;
use gauntlet_core::outcome::{Classifier, Outcome, Verdict};
use gauntlet_core::outlier::{Ejection, OutlierConfig, OutlierDetector};
use gauntlet_core::retry::{Attempt, BudgetConfig, CallKind, Decision, GiveUp, RetryBudget, RetryConfig, Tried};
use gauntlet_core::route::{Catalog, CatalogConfig, Route, RouteTable, ServerTools, ToolHints, ToolInfo};
use gauntlet_core::{Fleet, LatencyConfig, SeededRng, ServerId, ServerSpec, Time};
use rmcp::model::{CallToolRequest, CallToolRequestParams, CallToolResult, ClientRequest, JsonObject, ServerResult};
use rmcp::service::{PeerRequestOptions, ServiceError};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ServerConfig};
use crate::events::{ClientEvent, Observer};
use crate::session::{self, ConnectError, Handler, Notice, Progress, ProgressRoutes, Session};
use crate::upstream::{self, LinkState, Upstream};

/// Opens connections. The default uses each server's configured transport; the simulator
/// supplies one that dials turmoil streams.
pub trait Connector: Send + Sync + 'static {
    /// Connects to `server` and completes the MCP handshake over the returned session.
    fn connect<'a>(
        &'a self,
        server: &'a ServerConfig,
        handler: HandlerToken,
    ) -> Pin<Box<dyn Future<Output = Result<session::Connected, ConnectError>> + Send + 'a>>;
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

/// The connector of the configured transports (stdio, Streamable HTTP, TCP).
#[derive(Debug, Default)]
pub struct ConfiguredTransports;

impl Connector for ConfiguredTransports {
    fn connect<'a>(
        &'a self,
        server: &'a ServerConfig,
        handler: HandlerToken,
    ) -> Pin<Box<dyn Future<Output = Result<session::Connected, ConnectError>> + Send + 'a>> {
        Box::pin(session::connect(server, handler.0))
    }
}

pub(crate) struct ConnectorBox(Box<dyn Connector>);

impl ConnectorBox {
    pub(crate) fn connect<'a>(
        &'a self,
        server: &'a ServerConfig,
        handler: Handler,
    ) -> Pin<Box<dyn Future<Output = Result<session::Connected, ConnectError>> + Send + 'a>> {
        self.0.connect(server, HandlerToken(handler))
    }
}

/// Decision state. Held only for decisions and records, never across an await.
struct Policy {
    fleet: Fleet,
    breakers: Vec<Breaker>,
    health: Vec<Health>,
    outlier: OutlierDetector,
    budget: RetryBudget,
    hedger: Option<Hedger>,
    metrics: Metrics,
    rng: SeededRng,
    classifier: Classifier,
    retry: RetryConfig,
    balancer: BalancerConfig,
    catalog: Arc<Catalog>,
    /// Each exposed tool's route, by exposed name, shared with the calls using it.
    routes: BTreeMap<String, Arc<Route>>,
    balancers: BTreeMap<String, Vec<Box<dyn Balancer + Send>>>,
    cache: TtlCache<CacheKey, CallToolResult>,
    next_poll: Time,
    ejections: Vec<Ejection>,
    /// Whether breakers refuse calls (`false`: shadow mode).
    enforce_breakers: bool,
    /// Whether each server has a ready session, as last announced to the observer.
    connected: Vec<bool>,
    observer: Option<Observer>,
}

impl Policy {
    fn emit(&self, event: ClientEvent) {
        if let Some(observer) = &self.observer {
            observer(&event);
        }
    }

    /// Applies a breaker transition to the fleet and announces it.
    fn on_breaker(&mut self, id: ServerId, t: gauntlet_core::breaker::Transition, now: Time) {
        if self.enforce_breakers {
            self.fleet.set_breaker_open(id, matches!(t.to, BreakerState::Open { .. }), now);
        }
        self.emit(ClientEvent::Breaker { server: id.index(), from: t.from.name(), to: t.to.name() });
    }

    fn on_ejection(&mut self, e: Ejection, now: Time) {
        let (server, ejected) = match e {
            Ejection::Eject { server, .. } => (server, true),
            Ejection::Restore { server } => (server, false),
        };
        self.fleet.set_ejected(server, ejected, now);
        self.emit(ClientEvent::Ejected { server: server.index(), ejected });
    }

    /// The breaker's leave for one attempt on `id`, picked from `tier`. Time-driven
    /// transitions are applied (and announced) first, so the observer sees every state an
    /// attempt was sent under. In shadow mode a refusal is counted and ignored.
    fn permit(&mut self, id: ServerId, tier: usize, now: Time) -> Option<Permit> {
        if let Some(t) = self.breakers[id.index()].poll(now) {
            self.on_breaker(id, t, now);
        }
        let permit = match self.breakers[id.index()].permit(now) {
            Ok(permit) => permit,
            Err(_) => {
                self.metrics.record_breaker_rejection(id);
                if self.enforce_breakers {
                    return None;
                }
                self.breakers[id.index()].bypass()
            }
        };
        self.fleet.begin(id);
        self.emit(ClientEvent::Sent { server: id.index(), probe: permit.is_probe(), tier });
        Some(permit)
    }
}

pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) epoch: tokio::time::Instant,
    pub(crate) upstreams: Vec<Upstream>,
    pub(crate) notices: mpsc::UnboundedSender<Notice>,
    pub(crate) progress: ProgressRoutes,
    pub(crate) connector: ConnectorBox,
    policy: Mutex<Policy>,
    health_config: HealthConfig,
    catalog_version: RwLock<u64>,
}

/// How often breakers and ejections are re-examined for time-driven transitions.
const POLL_EVERY: Duration = Duration::from_millis(50);
/// The largest fan-out of one aggregated call.
pub const MAX_FAN_OUT: usize = 16;

impl Shared {
    pub(crate) fn now(&self) -> Time {
        Time::from_nanos(u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    fn to_instant(&self, t: Time) -> tokio::time::Instant {
        self.epoch + Duration::from_nanos(t.as_nanos())
    }

    pub(crate) fn health_timeout(&self) -> Duration {
        self.health_config.timeout
    }

    pub(crate) fn next_health_check(&self, id: ServerId) -> tokio::time::Instant {
        let policy = self.policy.lock().expect("policy lock");
        self.to_instant(policy.health[id.index()].next_check())
    }

    /// Records an active check; returns whether the server is healthy afterwards.
    pub(crate) fn record_check(&self, id: ServerId, ok: bool, rng: &mut SeededRng) -> bool {
        let now = self.now();
        let mut policy = self.policy.lock().expect("policy lock");
        if let Some(healthy) = policy.health[id.index()].record_check(ok, now, rng) {
            policy.fleet.set_healthy(id, healthy, now);
        }
        policy.health[id.index()].is_healthy()
    }

    /// An upstream connected or went down.
    pub(crate) fn on_link_change(&self, id: ServerId) {
        let up = &self.upstreams[id.index()];
        let ready = matches!(up.status.lock().expect("status lock").link, LinkState::Ready);
        let now = self.now();
        let mut policy = self.policy.lock().expect("policy lock");
        // A server with no session is unavailable; a fresh session starts healthy.
        if ready {
            policy.health[id.index()] = Health::new(self.health_config, now, &mut policy.rng);
        }
        policy.fleet.set_healthy(id, ready, now);
        if policy.connected[id.index()] != ready {
            policy.connected[id.index()] = ready;
            let server = id.index();
            policy.emit(if ready { ClientEvent::Connected { server } } else { ClientEvent::Disconnected { server } });
        }
    }

    /// A server's tool list changed: rebuild the catalog, routes and balancers.
    pub(crate) fn on_tools_change(&self) {
        let servers: Vec<ServerTools> = self
            .upstreams
            .iter()
            .filter_map(|up| {
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
            })
            .collect();
        let config = CatalogConfig { namespacing: self.config.policy.namespacing, fallbacks: Vec::new() };
        let catalog = match Catalog::build(&servers, &config) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot build the tool catalog; keeping the previous one");
                return;
            }
        };
        for skipped in catalog.skipped() {
            tracing::warn!(%skipped, "tool left out of the catalog");
        }
        let routes = RouteTable::new(&catalog, &[]);
        let mut policy = self.policy.lock().expect("policy lock");
        let balancer = policy.balancer;
        policy.balancers =
            routes.routes().map(|r| (r.exposed.clone(), r.tiers.iter().map(|_| balancer.build()).collect())).collect();
        policy.routes = routes.routes().map(|r| (r.exposed.clone(), Arc::new(r.clone()))).collect();
        policy.catalog = Arc::new(catalog);
        policy.cache.clear();
        drop(policy);
        *self.catalog_version.write().expect("catalog version lock") += 1;
    }

    /// Time-driven transitions: breakers leaving open, ejections ending.
    fn poll(policy: &mut Policy, now: Time) {
        if now < policy.next_poll {
            return;
        }
        policy.next_poll = now + POLL_EVERY;
        for i in 0..policy.breakers.len() {
            if let Some(t) = policy.breakers[i].poll(now) {
                policy.on_breaker(ServerId(i as u32), t, now);
            }
        }
        let mut ejections = std::mem::take(&mut policy.ejections);
        policy.outlier.review(now, &mut ejections);
        for e in ejections.drain(..) {
            policy.on_ejection(e, now);
        }
        policy.ejections = ejections;
    }
}

/// Per-call options.
#[derive(Clone, Debug, Default)]
pub struct CallOptions {
    /// The deadline of the whole logical call; the configured default when `None`.
    pub deadline: Option<Duration>,
    /// An affinity key for consistent hashing.
    pub affinity: Option<u64>,
    /// Where to send the call's progress notifications, under the caller's token.
    pub progress: Option<(String, mpsc::UnboundedSender<Progress>)>,
}

/// A logical call that succeeded (the tool may still have answered `isError: true`).
#[derive(Clone, Debug)]
pub struct CallReport {
    /// The tool's result.
    pub result: CallToolResult,
    /// The server that answered.
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
    Aggregate(String),
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
    /// Its breaker state's name.
    pub breaker: &'static str,
    /// Whether outlier detection ejected it.
    pub ejected: bool,
    /// Tools it lists.
    pub tools: usize,
    /// Connections made so far.
    pub connects: u32,
}

/// The outcome of one attempt.
struct AttemptResult {
    server: ServerId,
    outcome: Outcome,
    sent: bool,
    latency: Duration,
    result: Option<CallToolResult>,
}

/// A resilient client of many MCP servers.
pub struct MultiServerClient {
    shared: Arc<Shared>,
    shutdown: CancellationToken,
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
        MultiServerClient::start_with(config, ConfiguredTransports)
    }

    /// Starts with a custom [`Connector`] (the simulator's turmoil streams, tests' in-memory
    /// pipes).
    pub fn start_with(config: Config, connector: impl Connector) -> MultiServerClient {
        MultiServerClient::start_observed(config, connector, None)
    }

    /// Starts with a custom [`Connector`] and an [`Observer`] of every breaker transition,
    /// ejection, reconnect, failover and attempt (see [`ClientEvent`]).
    pub fn start_observed(config: Config, connector: impl Connector, observer: Option<Observer>) -> MultiServerClient {
        let p = &config.policy;
        let root = SeededRng::new(p.seed);
        let mut fleet = Fleet::new(LatencyConfig::default());
        let epoch = tokio::time::Instant::now();
        let mut metrics = Metrics::new();
        let mut upstreams = Vec::new();
        // Failed calls are the breaker's and outlier detection's to judge (they recover in
        // seconds, through probes); health is the session and its active checks. Passive
        // health on call failures would take a server out until two active checks pass
        // (20 s at the default interval), long after its breaker let it back.
        let health_config =
            HealthConfig { interval: p.health_interval, passive_failures: None, ..HealthConfig::default() };
        let mut health_rng = root.derive(1);
        let mut health = Vec::new();
        let breaker_config = BreakerConfig {
            consecutive_failures: Some(p.breaker_failures),
            open_for: p.breaker_open_for,
            max_open_for: p.breaker_open_for.max(Duration::from_secs(60)),
            ..BreakerConfig::default()
        };
        for (i, server) in config.servers.iter().enumerate() {
            let spec = ServerSpec { weight: server.weight, priority: server.priority };
            let id = fleet.add(&server.name, spec).expect("weights are validated by Config");
            debug_assert_eq!(id.index(), i);
            // Unavailable until connected.
            fleet.set_healthy(id, false, Time::ZERO);
            metrics.add_server(id, &server.name);
            health.push(Health::new(health_config, Time::ZERO, &mut health_rng));
            upstreams.push(Upstream::new(id, server.clone()));
        }
        let n = config.servers.len();
        let policy = Policy {
            fleet,
            breakers: (0..n).map(|_| Breaker::new(breaker_config, Time::ZERO)).collect(),
            health,
            // Consecutive failures are the breaker's job (it recovers in seconds); ejection here
            // catches success-rate outliers the breaker's thresholds miss (gray failures), for
            // 10 s rather than Envoy's 30 s so recovery stays within seconds.
            outlier: OutlierDetector::new(
                OutlierConfig {
                    consecutive_failures: None,
                    base_ejection_time: Duration::from_secs(10),
                    ..OutlierConfig::default()
                },
                n,
                Time::ZERO,
            ),
            budget: RetryBudget::new(BudgetConfig { ratio: p.retry_budget, ..BudgetConfig::default() }),
            hedger: p
                .hedge_after
                .map(|d| Hedger::new(HedgeConfig { trigger: HedgeTrigger::After(d), ..HedgeConfig::default() })),
            metrics,
            rng: root.derive(2),
            classifier: Classifier::default(),
            retry: RetryConfig { max_attempts: p.max_attempts, ..RetryConfig::default() },
            balancer: BalancerConfig {
                strategy: p.balancer,
                priority_threshold: p.priority_threshold,
                slow_start: p.slow_start.map(|window| gauntlet_core::balance::SlowStartConfig {
                    window,
                    ..gauntlet_core::balance::SlowStartConfig::default()
                }),
            },
            catalog: Arc::new(Catalog::default()),
            routes: BTreeMap::new(),
            balancers: BTreeMap::new(),
            cache: TtlCache::new(NonZeroUsize::new(1_024).expect("non-zero")),
            next_poll: Time::ZERO,
            ejections: Vec::new(),
            enforce_breakers: p.breaker_enforce,
            connected: vec![false; n],
            observer,
        };
        let (notices, mut notice_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            config,
            epoch,
            upstreams,
            notices,
            progress: Arc::default(),
            connector: ConnectorBox(Box::new(connector)),
            policy: Mutex::new(policy),
            health_config,
            catalog_version: RwLock::new(0),
        });
        let shutdown = CancellationToken::new();
        for i in 0..n {
            tokio::spawn(upstream::supervise(shared.clone(), i, root.derive(100 + i as u64), shutdown.clone()));
        }
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
        MultiServerClient { shared, shutdown }
    }

    /// Waits until every server has connected or failed at least once, or `timeout` passes.
    pub async fn wait_ready(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            let settled = self.shared.upstreams.iter().all(|u| u.status.lock().expect("status lock").settled);
            if settled {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops every connection (child processes are killed).
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        tokio::task::yield_now().await;
    }

    /// The federated catalog, by exposed name.
    pub fn catalog(&self) -> Vec<ToolEntry> {
        let policy = self.shared.policy.lock().expect("policy lock");
        let names = |ids: &[ServerId]| {
            ids.iter().map(|id| self.shared.config.servers[id.index()].name.clone()).collect::<Vec<_>>()
        };
        policy
            .routes
            .values()
            .map(|r| ToolEntry {
                exposed: r.exposed.clone(),
                tool: r.tool.clone(),
                group: policy.catalog.get(&r.exposed).map(|e| e.group.clone()).unwrap_or_default(),
                servers: r.tiers.iter().flat_map(|t| names(t)).collect(),
                replayable: self.call_kind(r.hints, r.tiers.iter().flatten()).is_replayable(),
            })
            .collect()
    }

    /// Tools left out of the catalog, with reasons (names escaped).
    pub fn skipped_tools(&self) -> Vec<String> {
        let policy = self.shared.policy.lock().expect("policy lock");
        policy.catalog.skipped().iter().map(ToString::to_string).collect()
    }

    /// Every server's state.
    pub fn servers(&self) -> Vec<ServerStatus> {
        let policy = self.shared.policy.lock().expect("policy lock");
        self.shared
            .upstreams
            .iter()
            .map(|up| {
                let status = up.status.lock().expect("status lock");
                let state = policy.fleet.state(up.id);
                ServerStatus {
                    name: up.config.name.clone(),
                    transport: up.config.transport.kind(),
                    link: status.link.clone(),
                    era: status.era,
                    healthy: state.availability().healthy,
                    breaker: policy.breakers[up.id.index()].state().name(),
                    ejected: state.availability().ejected,
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

    /// Metrics in the Prometheus text format.
    pub fn prometheus(&self) -> String {
        self.shared.policy.lock().expect("policy lock").metrics.prometheus()
    }

    /// Per-server latency at `quantile` and attempt counts, by server name.
    pub fn server_latency(&self, quantile: f64) -> Vec<(String, u64, u64, Option<Duration>)> {
        let policy = self.shared.policy.lock().expect("policy lock");
        self.shared
            .upstreams
            .iter()
            .map(|up| {
                let m = policy.metrics.server(up.id);
                (
                    up.config.name.clone(),
                    m.attempts(),
                    m.count(Outcome::Success) + m.count(Outcome::ToolError),
                    m.latency(quantile),
                )
            })
            .collect()
    }

    fn call_kind<'a>(&self, hints: ToolHints, servers: impl IntoIterator<Item = &'a ServerId>) -> CallKind {
        let trusted = servers.into_iter().all(|id| self.shared.config.servers[id.index()].trusted);
        CallKind::Tool { hints, trusted }
    }

    /// Calls `tool` (an exposed name) with `arguments`.
    pub async fn call_tool(&self, tool: &str, arguments: JsonObject) -> Result<CallReport, CallError> {
        self.call_tool_with(tool, arguments, CallOptions::default()).await
    }

    /// Calls `tool` with options.
    pub async fn call_tool_with(
        &self,
        tool: &str,
        arguments: JsonObject,
        options: CallOptions,
    ) -> Result<CallReport, CallError> {
        let shared = &self.shared;
        let started = shared.now();
        let deadline = started + options.deadline.unwrap_or(shared.config.policy.deadline);
        let cache_ttl = shared.config.policy.result_cache_ttl;
        let (route, kind) = {
            let mut policy = shared.policy.lock().expect("policy lock");
            let Some(route) = policy.routes.get(tool).cloned() else {
                return Err(CallError::UnknownTool(tool.to_owned()));
            };
            policy.budget.deposit(started);
            let kind = self.call_kind(route.hints, route.tiers.iter().flatten());
            if cache_ttl.is_some() && is_cacheable(kind) {
                let key = CacheKey::call(tool, &Value::Object(arguments.clone()));
                if let Some(hit) = policy.cache.get(&key, started) {
                    return Ok(CallReport {
                        result: hit.clone(),
                        server: String::new(),
                        attempts: 0,
                        tried: Vec::new(),
                        latency: Duration::ZERO,
                        hedged: false,
                        cached: true,
                    });
                }
            }
            (route, kind)
        };
        let mut tried = Tried::new();
        // Every server sent to, in order (hedges included); names are resolved when reporting.
        let mut sent_to: Vec<ServerId> = Vec::with_capacity(2);
        let names =
            |ids: &[ServerId]| ids.iter().map(|id| shared.config.servers[id.index()].name.clone()).collect::<Vec<_>>();
        let hedging = shared.config.policy.hedge_after.is_some() && kind.is_replayable();
        let mut attempts = 0u32;
        let mut previous_delay = Duration::ZERO;
        let mut hedged = false;
        loop {
            let now = shared.now();
            let Some((first, permit)) = self.pick(tool, &route.tiers, &tried, options.affinity, now) else {
                return Err(CallError::NoServer { tool: tool.to_owned(), tried: names(&sent_to) });
            };
            if let Some(&previous) = sent_to.last()
                && previous != first
            {
                let policy = shared.policy.lock().expect("policy lock");
                policy.emit(ClientEvent::Failover { from: previous.index(), to: first.index() });
            }
            tried.push(first);
            sent_to.push(first);
            attempts += 1;
            let attempt = self.attempt(first, permit, &route, &arguments, deadline, &options);
            let hedge_delay = if hedging {
                let policy = shared.policy.lock().expect("policy lock");
                policy.hedger.as_ref().and_then(Hedger::delay)
            } else {
                None
            };
            let outcome = match hedge_delay {
                None => attempt.await,
                Some(delay) => {
                    let mut attempt = std::pin::pin!(attempt);
                    tokio::select! {
                        biased;
                        r = &mut attempt => r,
                        _ = tokio::time::sleep(delay) => {
                            match self.hedge(tool, &route.tiers, kind, &mut tried, options.affinity, deadline) {
                                None => attempt.await,
                                Some((second, permit2)) => {
                                    hedged = true;
                                    attempts += 1;
                                    sent_to.push(second);
                                    let backup = std::pin::pin!(self.attempt(second, permit2, &route, &arguments, deadline, &options));
                                    self.race(attempt, backup).await
                                }
                            }
                        }
                    }
                }
            };
            let now = shared.now();
            if matches!(outcome.outcome, Outcome::Success | Outcome::ToolError) {
                let result = outcome.result.expect("a success carries its result");
                if let Some(ttl) = cache_ttl.filter(|_| outcome.outcome == Outcome::Success && is_cacheable(kind)) {
                    let key = CacheKey::call(tool, &Value::Object(arguments.clone()));
                    shared.policy.lock().expect("policy lock").cache.insert(key, result.clone(), ttl, now);
                }
                return Ok(CallReport {
                    result,
                    server: shared.config.servers[outcome.server.index()].name.clone(),
                    attempts,
                    tried: names(&sent_to),
                    latency: now.saturating_since(started),
                    hedged,
                    cached: false,
                });
            }
            let decision = {
                let mut policy = shared.policy.lock().expect("policy lock");
                let p = &mut *policy;
                let expected = p.metrics.server(outcome.server).latency(0.5).unwrap_or(Duration::ZERO);
                let a = Attempt {
                    kind,
                    outcome: outcome.outcome,
                    sent: outcome.sent,
                    attempts,
                    previous_delay,
                    now,
                    deadline,
                    expected_latency: expected,
                };
                p.retry.decide(&a, &mut p.budget, &mut p.rng)
            };
            match decision {
                Decision::Retry { after } => {
                    previous_delay = after;
                    shared.policy.lock().expect("policy lock").metrics.record_retry(outcome.server);
                    tokio::time::sleep(after).await;
                }
                Decision::GiveUp(reason) => {
                    return Err(CallError::Failed {
                        tool: tool.to_owned(),
                        attempts,
                        last: outcome.outcome,
                        reason,
                        tried: names(&sent_to),
                    });
                }
            }
        }
    }

    /// Sends `tool` to every replica of its first tier (at most [`MAX_FAN_OUT`]) and
    /// aggregates the answers. Returns the aggregated value's JSON and the agreeing servers.
    pub async fn call_all(
        &self,
        tool: &str,
        arguments: JsonObject,
        aggregation: Aggregation,
    ) -> Result<(Value, Vec<String>), CallError> {
        let shared = &self.shared;
        let started = shared.now();
        let deadline = started + shared.config.policy.deadline;
        let route = {
            let policy = shared.policy.lock().expect("policy lock");
            policy.routes.get(tool).cloned().ok_or_else(|| CallError::UnknownTool(tool.to_owned()))?
        };
        let targets: Vec<(ServerId, Permit)> = {
            let mut policy = shared.policy.lock().expect("policy lock");
            let now = shared.now();
            let mut targets = Vec::new();
            for &id in route.tiers.first().into_iter().flatten().take(MAX_FAN_OUT) {
                if !policy.fleet.state(id).is_available() {
                    continue;
                }
                if let Some(permit) = policy.permit(id, 0, now) {
                    targets.push((id, permit));
                }
            }
            targets
        };
        if targets.is_empty() {
            return Err(CallError::NoServer { tool: tool.to_owned(), tried: Vec::new() });
        }
        let options = CallOptions::default();
        let mut pending: Vec<_> = targets
            .iter()
            .map(|&(id, permit)| Box::pin(self.attempt(id, permit, &route, &arguments, deadline, &options)))
            .collect();
        let mut answers = Vec::new();
        while !pending.is_empty() {
            let (r, _, rest) = futures_select_all(pending).await;
            pending = rest;
            let value = match (&r.outcome, r.result) {
                (Outcome::Success, Some(res)) => {
                    Ok(serde_json::to_value(&res).map_err(|e| e.to_string()).unwrap_or(Value::Null))
                }
                (o, _) => Err(o.to_string()),
            };
            answers.push(Answer { server: r.server, latency: r.latency, result: value });
        }
        let name = |id: ServerId| shared.config.servers[id.index()].name.clone();
        let agg = |e: aggregate::AggregateError| CallError::Aggregate(e.to_string());
        match aggregation {
            Aggregation::First => aggregate::first(&answers)
                .map(|a| (a.result.clone().unwrap_or_default(), vec![name(a.server)]))
                .map_err(agg),
            Aggregation::Fastest => aggregate::fastest(&answers)
                .map(|a| (a.result.clone().unwrap_or_default(), vec![name(a.server)]))
                .map_err(agg),
            Aggregation::All => aggregate::all(&answers)
                .map(|m| {
                    let values = m.answers.iter().map(|(_, v)| (*v).clone()).collect();
                    (Value::Array(values), m.answers.iter().map(|(s, _)| name(*s)).collect())
                })
                .map_err(agg),
            Aggregation::Majority => aggregate::majority(&answers)
                .map(|a| (a.value.clone(), a.agreeing.into_iter().map(name).collect()))
                .map_err(agg),
            Aggregation::Quorum(k) => aggregate::quorum(&answers, k)
                .map(|a| (a.value.clone(), a.agreeing.into_iter().map(name).collect()))
                .map_err(agg),
        }
    }

    /// Picks a server tier by tier, avoiding `tried`, and takes its breaker permit. Servers
    /// whose breaker refuses are skipped. When every server was tried, any will do.
    fn pick(
        &self,
        tool: &str,
        tiers: &[Vec<ServerId>],
        tried: &Tried,
        affinity: Option<u64>,
        now: Time,
    ) -> Option<(ServerId, Permit)> {
        let mut policy = self.shared.policy.lock().expect("policy lock");
        let p = &mut *policy;
        Shared::poll(p, now);
        for avoid_tried in [true, false] {
            let mut exclude: Vec<ServerId> = if avoid_tried { tried.as_slice().to_vec() } else { Vec::new() };
            for (t, tier) in tiers.iter().enumerate() {
                for _ in 0..tier.len() {
                    let ctx = PickContext { now, affinity, exclude: &exclude };
                    let balancer = p.balancers.get_mut(tool).and_then(|b| b.get_mut(t))?;
                    let Some(id) = balancer.pick(&p.fleet.view(tier), &ctx, &mut p.rng) else { break };
                    match p.permit(id, t, now) {
                        Some(permit) => {
                            p.metrics.record_pick(p.balancer.strategy, t);
                            return Some((id, permit));
                        }
                        None => exclude.push(id),
                    }
                }
            }
        }
        None
    }

    /// Picks a hedge target (a server not tried yet) if the policy allows a hedge now.
    fn hedge(
        &self,
        tool: &str,
        tiers: &[Vec<ServerId>],
        kind: CallKind,
        tried: &mut Tried,
        affinity: Option<u64>,
        deadline: Time,
    ) -> Option<(ServerId, Permit)> {
        let now = self.shared.now();
        {
            let mut policy = self.shared.policy.lock().expect("policy lock");
            let p = &mut *policy;
            let hedger = p.hedger.as_ref()?;
            let elapsed = hedger.delay().unwrap_or_default();
            match hedger.decide(kind, elapsed, 0, now, deadline, &mut p.budget) {
                gauntlet_core::hedge::HedgeDecision::Send => {}
                _ => return None,
            }
        }
        let (id, permit) = self.pick(tool, tiers, tried, affinity, now)?;
        if tried.as_slice().contains(&id) {
            // No untried server: a hedge to the same server buys nothing.
            self.finish(id, permit, Outcome::Cancelled, Duration::ZERO);
            return None;
        }
        tried.push(id);
        let mut policy = self.shared.policy.lock().expect("policy lock");
        policy.metrics.record_hedge(id);
        Some((id, permit))
    }

    /// Runs two attempts; the first success wins and the other is cancelled (dropped, which
    /// makes rmcp send `notifications/cancelled`) and recorded as such.
    async fn race(
        &self,
        mut a: Pin<&mut impl Future<Output = AttemptResult>>,
        mut b: Pin<&mut impl Future<Output = AttemptResult>>,
    ) -> AttemptResult {
        let first = tokio::select! {
            biased;
            r = &mut a => (r, true),
            r = &mut b => (r, false),
        };
        let (done, a_done) = first;
        if matches!(done.outcome, Outcome::Success | Outcome::ToolError) {
            // The loser is dropped with this function's frame; its attempt guard records it.
            return done;
        }
        if a_done { b.await } else { a.await }
    }

    /// One attempt on `server`, whose pick already took `permit` and called `Fleet::begin`.
    async fn attempt(
        &self,
        server: ServerId,
        permit: Permit,
        route: &Route,
        arguments: &JsonObject,
        deadline: Time,
        options: &CallOptions,
    ) -> AttemptResult {
        let mut guard = AttemptGuard { client: self, server, permit: Some(permit), started: self.shared.now() };
        let (outcome, sent, result) = self.send(server, route, arguments, deadline, options).await;
        let latency = self.shared.now().saturating_since(guard.started);
        let permit = guard.permit.take().expect("permit held until the attempt ends");
        self.finish(server, permit, outcome, latency);
        AttemptResult { server, outcome, sent, latency, result }
    }

    /// Records an attempt's end everywhere.
    fn finish(&self, server: ServerId, permit: Permit, outcome: Outcome, latency: Duration) {
        let now = self.shared.now();
        let mut policy = self.shared.policy.lock().expect("policy lock");
        let p = &mut *policy;
        let verdict = p.classifier.classify(outcome);
        if matches!(outcome, Outcome::Cancelled | Outcome::Rejected) {
            p.fleet.abandon(server);
        } else {
            p.fleet.end(server, latency, now);
        }
        if let Some(t) = p.breakers[server.index()].record(permit, verdict, latency, now) {
            p.on_breaker(server, t, now);
            tracing::info!(server = %self.shared.config.servers[server.index()].name, from = t.from.name(), to = t.to.name(), "breaker");
        }
        if let Some(e) = p.outlier.record(server, verdict, now) {
            p.on_ejection(e, now);
        }
        if let Some(healthy) = p.health[server.index()].record_call(verdict) {
            p.fleet.set_healthy(server, healthy, now);
        }
        p.metrics.record_attempt(server, outcome, latency);
        if verdict == Verdict::Success
            && let Some(h) = p.hedger.as_mut()
        {
            h.observe(latency);
        }
    }

    /// Sends one request and classifies its end. Returns (outcome, sent, result).
    async fn send(
        &self,
        server: ServerId,
        route: &Route,
        arguments: &JsonObject,
        deadline: Time,
        options: &CallOptions,
    ) -> (Outcome, bool, Option<CallToolResult>) {
        let shared = &self.shared;
        let up = &shared.upstreams[server.index()];
        // The attempt's deadline: the tool's own timeout, else the server's, never past the call's.
        let timeout = shared.config.policy.tool_timeouts.get(&route.exposed).copied().unwrap_or(up.config.call_timeout);
        let attempt_deadline = shared.to_instant(deadline).min(tokio::time::Instant::now() + timeout);
        // A concurrency slot, or a bounded wait for one.
        let _slot = match up.slots.try_acquire() {
            Ok(slot) => slot,
            Err(_) => {
                if up.waiting.load(Ordering::Relaxed) >= up.config.queue {
                    return (Outcome::Rejected, false, None);
                }
                up.waiting.fetch_add(1, Ordering::Relaxed);
                let slot = tokio::time::timeout_at(attempt_deadline, up.slots.acquire()).await;
                up.waiting.fetch_sub(1, Ordering::Relaxed);
                match slot {
                    Ok(Ok(slot)) => slot,
                    _ => return (Outcome::Rejected, false, None),
                }
            }
        };
        let Some(session) = up.session() else { return (Outcome::Transport, false, None) };
        let Some((seq, dead)) = session.in_flight.register() else { return (Outcome::Transport, false, None) };
        let _registration = Registration { session: &session, seq };
        let params = CallToolRequestParams::new(route.tool.clone()).with_arguments(arguments.clone());
        let mut progress = ProgressRoute { routes: &shared.progress, key: None };
        let call = async {
            match &options.progress {
                // rmcp's `call_tool` cancels upstream when dropped.
                None => session.peer.call_tool(params).await,
                // With progress, the request's handle is needed for the token rmcp assigned;
                // its cancellation on drop is then ours to send.
                Some((token, sink)) => {
                    let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
                    let handle =
                        session.peer.send_request_with_option(request, PeerRequestOptions::no_options()).await?;
                    let key = (server, session::token_key(&handle.progress_token));
                    shared.progress.lock().expect("progress lock").insert(key.clone(), (token.clone(), sink.clone()));
                    progress.key = Some(key);
                    let mut cancel = CancelOnDrop { peer: &session.peer, id: Some(handle.id.clone()) };
                    let response = handle.await_response().await;
                    cancel.id = None;
                    match response? {
                        ServerResult::CallToolResult(result) => Ok(result),
                        _ => Err(ServiceError::UnexpectedResponse),
                    }
                }
            }
        };
        let mut dead = dead;
        let response = tokio::select! {
            biased;
            _ = &mut dead => Err(None),
            r = call => r.map_err(Some),
            _ = tokio::time::sleep_until(attempt_deadline) => Err(Some(ServiceError::Timeout { timeout })),
        };
        match response {
            Ok(result) => {
                up.note_answer();
                let outcome = if result.is_error == Some(true) { Outcome::ToolError } else { Outcome::Success };
                (outcome, true, Some(result))
            }
            Err(None) => (Outcome::Transport, true, None),
            Err(Some(error)) => {
                let outcome = classify(&error);
                match outcome {
                    Outcome::Timeout => up.note_timeout(),
                    Outcome::Transport => {
                        // rmcp wakes callers of a dead connection in random order: wait for
                        // the supervisor, which fails them in request order.
                        let _ = tokio::time::timeout_at(attempt_deadline, &mut dead).await;
                    }
                    _ => up.note_answer(),
                }
                (outcome, true, None)
            }
        }
    }
}

/// Classifies an rmcp error.
fn classify(error: &ServiceError) -> Outcome {
    match error {
        ServiceError::McpError(e) => Outcome::RpcError(e.code.0),
        ServiceError::TransportSend(_) | ServiceError::TransportClosed => Outcome::Transport,
        ServiceError::Timeout { .. } => Outcome::Timeout,
        ServiceError::Cancelled { .. } => Outcome::Cancelled,
        _ => Outcome::Malformed,
    }
}

/// Records a dropped attempt (the loser of a hedge, or a call whose caller went away) as
/// cancelled, so every attempt has exactly one recorded end.
struct AttemptGuard<'a> {
    client: &'a MultiServerClient,
    server: ServerId,
    permit: Option<Permit>,
    started: Time,
}

impl Drop for AttemptGuard<'_> {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            let latency = self.client.shared.now().saturating_since(self.started);
            self.client.finish(self.server, permit, Outcome::Cancelled, latency);
        }
    }
}

struct Registration<'a> {
    session: &'a Session,
    seq: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.session.in_flight.unregister(self.seq);
    }
}

struct ProgressRoute<'a> {
    routes: &'a ProgressRoutes,
    key: Option<(ServerId, String)>,
}

/// Sends `notifications/cancelled` for a request abandoned before its answer.
struct CancelOnDrop<'a> {
    peer: &'a rmcp::Peer<rmcp::RoleClient>,
    id: Option<rmcp::model::RequestId>,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            let peer = self.peer.clone();
            let param =
                rmcp::model::CancelledNotificationParam::new(Some(id), Some("abandoned by the client".to_owned()));
            tokio::spawn(async move {
                let _ = peer.notify_cancelled(param).await;
            });
        }
    }
}

impl Drop for ProgressRoute<'_> {
    fn drop(&mut self) {
        if let Some(key) = &self.key {
            self.routes.lock().expect("progress lock").remove(key);
        }
    }
}

/// Waits for the first of `futures` (polled in order, so ties resolve by index), returning it,
/// its index and the rest.
async fn futures_select_all<F: Future + Unpin>(mut futures: Vec<F>) -> (F::Output, usize, Vec<F>) {
    let (out, index) = std::future::poll_fn(|cx| {
        for (i, f) in futures.iter_mut().enumerate() {
            if let std::task::Poll::Ready(out) = Pin::new(f).poll(cx) {
                return std::task::Poll::Ready((out, i));
            }
        }
        std::task::Poll::Pending
    })
    .await;
    drop(futures.remove(index));
    (out, index, futures)
}
