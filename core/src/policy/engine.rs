//! The engine: every decision of a logical call, in one synchronous type.
//!
//! The client holds one `Engine` behind one mutex and asks it at each decision point of a call;
//! it does only I/O. The benches and the allocation test drive this same type, so what they
//! measure is what runs.
//!
//! One call, as the engine sees it:
//!
//! ```text
//! begin(tool)          route lookup, retry budget deposit         → Call
//! pick(&mut call)      time-driven transitions, balancer per tier,
//!                      breaker permit, fleet.begin                → Attempt
//! hedge(&mut call)     hedger delay, cap and budget, untried pick → Wait | Send(Attempt) | Never
//! finish(&mut call, attempt, outcome)
//!                      fleet, breaker, outlier, health, metrics,
//!                      hedger; then the retry decision           → Done | Wait | Retry | GiveUp
//! cancel(attempt)      an abandoned attempt (a hedge's loser)
//! ```
//!
//! Each of these takes `now` and draws randomness only from the engine's own named streams,
//! derived from the policy's seed ([`streams`]), so the same inputs give the same decisions.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::event::{Event, Sink};
use super::schema::{BreakerMode, Policy};
use crate::balance::{Balancer, BalancerConfig, PickContext};
use crate::breaker::{Breaker, Permit, Phase, State as BreakerState, Transition};
use crate::cache::{CacheKey, TtlCache, is_cacheable};
use crate::fleet::{Fleet, FleetError, ServerId, ServerSpec};
use crate::health::Health;
use crate::hedge::{HedgeDecision, Hedger, NoHedge};
use crate::metrics::Metrics;
use crate::outcome::{Classifier, Outcome, Verdict};
use crate::outlier::{Ejection, OutlierDetector};
use crate::retry::{Attempt as RetryAttempt, CallKind, Decision, GiveUp, RetryBudget, RetryConfig, Tried};
use crate::rng::SeededRng;
use crate::route::{Catalog, CatalogConfig, CatalogError, Route, RouteTable, ServerTools, ToolHints};
use crate::time::Time;

/// The engine's random streams, each derived from the policy's seed by its number. One place
/// for the numbers, so no two consumers ever share a stream by accident.
pub mod streams {
    /// Health-check jitter.
    pub const HEALTH: u64 = 1;
    /// Balancer picks.
    pub const PICK: u64 = 2;
    /// Retry backoff jitter.
    pub const RETRY: u64 = 3;
    /// The first of the I/O layer's per-server streams (reconnect backoff): server `i` draws
    /// from `SUPERVISOR + i`.
    pub const SUPERVISOR: u64 = 100;
}

/// How often breakers and ejections are re-examined for time-driven transitions.
pub const POLL_EVERY: Duration = Duration::from_millis(50);

/// The most servers one pick may pass over (tried, or refused by their breaker) before it
/// gives up. Bounds the stack array that makes picking allocation-free.
pub const MAX_EXCLUDED: usize = 64;

/// The largest fan-out of one aggregated call.
pub const MAX_FAN_OUT: usize = 16;

/// One server, as the engine is told of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerEntry {
    /// Its name.
    pub name: String,
    /// Weight for weighted balancing, `1..=MAX_WEIGHT`.
    pub weight: u32,
    /// Priority (higher preferred).
    pub priority: u32,
    /// Whether its tool annotations are believed.
    pub trusted: bool,
}

/// Why the engine cannot be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    /// The policy's values do not fit together.
    #[error(transparent)]
    Policy(#[from] super::schema::PolicyError),
    /// A server cannot join the fleet.
    #[error(transparent)]
    Fleet(#[from] FleetError),
}

/// Why a call could not begin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BeginError {
    /// No exposed tool has that name.
    UnknownTool,
}

/// A logical call in progress. Plain data on the caller's stack: no allocation.
#[derive(Clone, Debug)]
pub struct Call {
    exposed: Arc<str>,
    tool: Arc<str>,
    route: usize,
    generation: u64,
    kind: CallKind,
    hedges: bool,
    started: Time,
    deadline: Time,
    affinity: Option<u64>,
    tried: Tried,
    attempts: u32,
    extra: u32,
    in_flight: u32,
    sent_at: Time,
    previous_delay: Duration,
    last: Option<ServerId>,
}

impl Call {
    /// The exposed name called.
    pub fn exposed(&self) -> &Arc<str> {
        &self.exposed
    }

    /// The tool's own name, sent upstream.
    pub fn tool(&self) -> &Arc<str> {
        &self.tool
    }

    /// What kind of call it is (decides replays).
    pub fn kind(&self) -> CallKind {
        self.kind
    }

    /// When it began.
    pub fn started(&self) -> Time {
        self.started
    }

    /// When it must have ended.
    pub fn deadline(&self) -> Time {
        self.deadline
    }

    /// Attempts sent, hedges included.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Whether a backup may ever be sent for this call (hedging on, the tool replayable and
    /// not opted out). When `false`, asking [`Engine::hedge`] is pointless.
    pub fn may_hedge(&self) -> bool {
        self.hedges
    }

    /// Whether a hedge was sent.
    pub fn hedged(&self) -> bool {
        self.extra > 0
    }
}

/// One attempt, from its pick to its [`Engine::finish`] or [`Engine::cancel`].
#[must_use = "an attempt must be finished or cancelled, or its breaker permit and in-flight count leak"]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// The server it goes to.
    pub server: ServerId,
    /// The tier it was picked from.
    pub tier: u32,
    /// When it was sent.
    pub started: Time,
    permit: Permit,
}

/// What to do after an attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// The call has its answer.
    Done,
    /// Another attempt of the call is still in flight: wait for it.
    Wait,
    /// Try again after this long.
    Retry(Duration),
    /// Stop; the call failed.
    GiveUp(GiveUp),
}

/// What to do about a backup request now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hedge {
    /// Ask again after this long.
    Wait(Duration),
    /// Send this backup.
    Send(Attempt),
    /// No backup for this call now (and, but for `Budget`, not later).
    Never(NoHedge),
}

struct RouteState {
    route: Route,
    exposed: Arc<str>,
    tool: Arc<str>,
    kind: CallKind,
    hedges: bool,
    retry: RetryConfig,
    /// One balancer per tier.
    balancers: Vec<Box<dyn Balancer + Send>>,
}

/// The decision state of a multi-server client. See the [policy module](crate::policy) for
/// the decision points of a call.
pub struct Engine {
    policy: Policy,
    balancer: BalancerConfig,
    classifier: Classifier,
    enforce_breakers: bool,
    servers: Vec<ServerEntry>,
    fleet: Fleet,
    breakers: Vec<Breaker>,
    health: Vec<Health>,
    outlier: OutlierDetector,
    budget: RetryBudget,
    hedger: Option<Hedger>,
    cache: TtlCache<CacheKey, Value>,
    metrics: Metrics,
    pick_rng: SeededRng,
    retry_rng: SeededRng,
    health_rng: SeededRng,
    catalog: Catalog,
    routes: Vec<RouteState>,
    by_name: BTreeMap<Arc<str>, usize>,
    generation: u64,
    next_poll: Time,
    ejections: Vec<Ejection>,
    connected: Vec<bool>,
    sink: Option<Sink>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("servers", &self.servers.len())
            .field("routes", &self.routes.len())
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine for `servers` under `policy`, at time zero. Every server starts unavailable
    /// until [`link`](Self::link) says it is connected. Events go to `sink`.
    pub fn new(policy: Policy, servers: &[ServerEntry], sink: Option<Sink>) -> Result<Engine, EngineError> {
        policy.check()?;
        let root = SeededRng::new(policy.seed);
        let mut health_rng = root.derive(streams::HEALTH);
        let mut fleet = Fleet::new(policy.latency_config());
        let mut metrics = Metrics::new();
        let mut health = Vec::with_capacity(servers.len());
        for s in servers {
            let id = fleet.add(&s.name, ServerSpec { weight: s.weight, priority: s.priority })?;
            fleet.set_healthy(id, false, Time::ZERO);
            metrics.add_server(id, &s.name);
            health.push(Health::new(policy.health_config(), Time::ZERO, &mut health_rng));
        }
        let n = servers.len();
        let breaker = policy.breaker_config();
        let capacity = NonZeroUsize::new(policy.cache.capacity.get() as usize).unwrap_or(NonZeroUsize::MIN);
        Ok(Engine {
            balancer: BalancerConfig {
                strategy: policy.balancer,
                priority_threshold: Some(policy.priority_threshold.get()),
                slow_start: policy.slow_start_config(),
            },
            classifier: Classifier::default(),
            enforce_breakers: policy.breaker.mode == BreakerMode::Enforce,
            servers: servers.to_vec(),
            fleet,
            breakers: (0..n).map(|_| Breaker::new(breaker, Time::ZERO)).collect(),
            health,
            outlier: OutlierDetector::new(policy.outlier_config(), n, Time::ZERO),
            budget: RetryBudget::new(policy.budget_config()),
            hedger: policy.hedge_config().map(Hedger::new),
            cache: TtlCache::new(capacity),
            metrics,
            pick_rng: root.derive(streams::PICK),
            retry_rng: root.derive(streams::RETRY),
            health_rng,
            catalog: Catalog::default(),
            routes: Vec::new(),
            by_name: BTreeMap::new(),
            generation: 0,
            next_poll: Time::ZERO,
            // Room for every server, so a review never allocates.
            ejections: Vec::with_capacity(n),
            connected: vec![false; n],
            sink,
            policy,
        })
    }

    /// The policy it runs.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The servers, by id.
    pub fn servers(&self) -> &[ServerEntry] {
        &self.servers
    }

    /// Per-server state (availability, load, latency).
    pub fn fleet(&self) -> &Fleet {
        &self.fleet
    }

    /// A server's breaker state.
    pub fn breaker(&self, id: ServerId) -> BreakerState {
        self.breakers[id.index()].state()
    }

    /// Counters and latency histograms.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The federated catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Every route, by exposed name, with whether the client replays calls to it.
    pub fn routes(&self) -> impl Iterator<Item = (&Route, CallKind)> {
        self.by_name.values().map(|&i| (&self.routes[i].route, self.routes[i].kind))
    }

    /// Bumped whenever the catalog is rebuilt.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    fn emit(&mut self, event: Event) {
        if let Some(sink) = &mut self.sink {
            sink(&event);
        }
    }

    // ---- The catalog and the servers' links.

    /// Rebuilds the catalog, routes and balancers from every connected server's tools, with the
    /// policy's namespacing, fallback groups and route rules. The result cache is cleared.
    pub fn set_tools(&mut self, servers: &[ServerTools]) -> Result<(), CatalogError> {
        // A fallback group none of whose servers is connected yet backs nothing up for now; it is
        // not an error (the configuration names only groups it has, checked where it is read).
        let present: std::collections::BTreeSet<&str> = servers.iter().map(ServerTools::group_name).collect();
        let fallbacks = self
            .policy
            .fallbacks
            .iter()
            .filter(|f| present.contains(f.group.as_str()))
            .filter_map(|f| {
                let then: Vec<String> = f.then.iter().filter(|g| present.contains(g.as_str())).cloned().collect();
                (!then.is_empty()).then(|| crate::route::Fallback { group: f.group.clone(), then })
            })
            .collect();
        let config = CatalogConfig { namespacing: self.policy.namespacing, fallbacks };
        let catalog = Catalog::build(servers, &config)?;
        let table = RouteTable::new(&catalog, &self.policy.route_rules());
        self.routes = table
            .routes()
            .map(|route| {
                let trusted = route.tiers.iter().flatten().all(|id| self.servers[id.index()].trusted);
                let kind = if self.policy.vouches_idempotent(&route.exposed) {
                    // Replayable on the configuration's word; cached only on a trusted server's.
                    let hints = ToolHints { read_only: route.hints.read_only && trusted, idempotent: true };
                    CallKind::Tool { hints, trusted: true }
                } else {
                    CallKind::Tool { hints: route.hints, trusted }
                };
                RouteState {
                    exposed: Arc::from(route.exposed.as_str()),
                    tool: Arc::from(route.tool.as_str()),
                    kind,
                    hedges: self.policy.hedges(&route.exposed),
                    retry: self.policy.retry_config(Some(&route.exposed)),
                    balancers: route.tiers.iter().map(|_| self.balancer.build()).collect(),
                    route: route.clone(),
                }
            })
            .collect();
        self.by_name = self.routes.iter().enumerate().map(|(i, r)| (r.exposed.clone(), i)).collect();
        self.catalog = catalog;
        self.generation += 1;
        self.cache.clear();
        Ok(())
    }

    /// A server's session became ready (`true`) or ended (`false`). A ready server starts
    /// healthy, and its breaker, if open, goes half-open; one with no session is unavailable.
    pub fn link(&mut self, id: ServerId, ready: bool, now: Time) {
        if ready {
            self.health[id.index()] = Health::new(self.policy.health_config(), now, &mut self.health_rng);
        }
        self.fleet.set_healthy(id, ready, now);
        if self.connected[id.index()] != ready {
            self.connected[id.index()] = ready;
            self.emit(if ready { Event::Connected { server: id } } else { Event::Disconnected { server: id } });
            // A breaker opened by the session that ended need not wait out its open time: the new
            // session's handshake is evidence, and half-open probes check it.
            if ready && let Some(t) = self.breakers[id.index()].half_open_now(now) {
                self.on_breaker(id, t, now);
            }
        }
    }

    /// When the server's next active check is due.
    pub fn next_check(&self, id: ServerId) -> Time {
        self.health[id.index()].next_check()
    }

    /// An active check ended; returns whether the server is healthy afterwards.
    pub fn record_check(&mut self, id: ServerId, ok: bool, now: Time) -> bool {
        if let Some(healthy) = self.health[id.index()].record_check(ok, now, &mut self.health_rng) {
            self.fleet.set_healthy(id, healthy, now);
        }
        self.health[id.index()].is_healthy()
    }

    // ---- Time-driven transitions.

    /// Breakers leaving open, ejections ending: at most once per [`POLL_EVERY`].
    pub fn poll(&mut self, now: Time) {
        if now < self.next_poll {
            return;
        }
        self.next_poll = now + POLL_EVERY;
        for i in 0..self.breakers.len() {
            if let Some(t) = self.breakers[i].poll(now) {
                self.on_breaker(ServerId(i as u32), t, now);
            }
        }
        let mut ejections = std::mem::take(&mut self.ejections);
        self.outlier.review(now, &mut ejections);
        for e in ejections.drain(..) {
            self.on_ejection(e, now);
        }
        self.ejections = ejections;
    }

    fn on_breaker(&mut self, id: ServerId, t: Transition, now: Time) {
        if self.enforce_breakers {
            self.fleet.set_breaker_open(id, t.to.phase() == Phase::Open, now);
        }
        self.emit(Event::Breaker { server: id, from: t.from.phase(), to: t.to.phase() });
    }

    fn on_ejection(&mut self, e: Ejection, now: Time) {
        let (server, ejected) = match e {
            Ejection::Eject { server, .. } => (server, true),
            Ejection::Restore { server } => (server, false),
        };
        self.fleet.set_ejected(server, ejected, now);
        self.emit(Event::Ejected { server, ejected });
    }

    // ---- One call.

    /// Begins a call to `exposed`, due to end by `deadline` (the policy's when `None`).
    pub fn begin(
        &mut self,
        exposed: &str,
        deadline: Option<Duration>,
        affinity: Option<u64>,
        now: Time,
    ) -> Result<Call, BeginError> {
        let (name, &route) = self.by_name.get_key_value(exposed).ok_or(BeginError::UnknownTool)?;
        let r = &self.routes[route];
        self.budget.deposit(now);
        Ok(Call {
            exposed: name.clone(),
            tool: r.tool.clone(),
            route,
            generation: self.generation,
            kind: r.kind,
            hedges: r.hedges && r.kind.is_replayable(),
            started: now,
            deadline: now + deadline.unwrap_or(self.policy.deadline.get()),
            affinity,
            tried: Tried::new(),
            attempts: 0,
            extra: 0,
            in_flight: 0,
            sent_at: now,
            previous_delay: Duration::ZERO,
            last: None,
        })
    }

    /// Re-finds the call's route after a catalog rebuild. `false`: the tool is gone.
    fn resolve(&mut self, call: &mut Call) -> bool {
        if call.generation == self.generation {
            return true;
        }
        let Some(&route) = self.by_name.get(&*call.exposed) else { return false };
        call.route = route;
        call.generation = self.generation;
        call.tool = self.routes[route].tool.clone();
        true
    }

    /// Picks the call's next server, tier by tier, preferring servers it has not tried, and
    /// takes that server's breaker permit; a server whose breaker refuses is passed over.
    /// `None`: no server may take it.
    pub fn pick(&mut self, call: &mut Call, now: Time) -> Option<Attempt> {
        self.poll(now);
        let attempt = self.pick_where(call, now, true).or_else(|| self.pick_where(call, now, false))?;
        if let Some(previous) = call.last
            && previous != attempt.server
        {
            self.emit(Event::Failover { from: previous, to: attempt.server });
        }
        call.last = Some(attempt.server);
        call.sent_at = now;
        self.sent(call, attempt, false);
        Some(attempt)
    }

    fn sent(&mut self, call: &mut Call, attempt: Attempt, hedge: bool) {
        call.tried.push(attempt.server);
        call.attempts += 1;
        call.in_flight += 1;
        self.emit(Event::Sent { server: attempt.server, probe: attempt.permit.is_probe(), tier: attempt.tier, hedge });
    }

    fn pick_where(&mut self, call: &mut Call, now: Time, untried_only: bool) -> Option<Attempt> {
        if !self.resolve(call) {
            return None;
        }
        let mut excluded = [ServerId(0); MAX_EXCLUDED];
        let mut len = 0;
        if untried_only {
            for &id in call.tried.as_slice() {
                excluded[len] = id;
                len += 1;
            }
        }
        let tiers = self.routes[call.route].route.tiers.len();
        for t in 0..tiers {
            loop {
                let state = &mut self.routes[call.route];
                let tier = &state.route.tiers[t];
                let ctx = PickContext { now, affinity: call.affinity, exclude: &excluded[..len] };
                let Some(id) = state.balancers[t].pick(&self.fleet.view(tier), &ctx, &mut self.pick_rng) else {
                    break;
                };
                if let Some(permit) = self.permit(id, now) {
                    self.metrics.record_pick(self.balancer.strategy, t);
                    return Some(Attempt { server: id, tier: t as u32, started: now, permit });
                }
                if len == MAX_EXCLUDED {
                    return None;
                }
                excluded[len] = id;
                len += 1;
            }
        }
        None
    }

    /// The breaker's leave for one attempt on `id`. Time-driven transitions are applied (and
    /// announced) first, so observers see every state an attempt was sent under. In shadow
    /// mode a refusal is counted and ignored.
    fn permit(&mut self, id: ServerId, now: Time) -> Option<Permit> {
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
        Some(permit)
    }

    /// Whether to send a backup for `call` now, whose latest attempt is still in flight. The
    /// hedger's delay, its cap on backups and the shared budget decide; a backup goes only to
    /// a server the call has not tried.
    pub fn hedge(&mut self, call: &mut Call, now: Time) -> Hedge {
        let Some(hedger) = self.hedger.as_ref().filter(|_| call.hedges) else {
            return Hedge::Never(if call.kind.is_replayable() { NoHedge::Off } else { NoHedge::Unsafe });
        };
        let elapsed = now.saturating_since(call.sent_at);
        match hedger.decide(call.kind, elapsed, call.extra, now, call.deadline, &mut self.budget) {
            HedgeDecision::Wait(d) => Hedge::Wait(d),
            HedgeDecision::Never(why) => Hedge::Never(why),
            HedgeDecision::Send => {
                self.poll(now);
                // The budget's token is spent even when no untried server is left: the
                // decision to hedge was made, and a fleet that small rarely hedges.
                let Some(attempt) = self.pick_where(call, now, true) else {
                    return Hedge::Never(NoHedge::NoServer);
                };
                call.extra += 1;
                self.metrics.record_hedge(attempt.server);
                self.sent(call, attempt, true);
                Hedge::Send(attempt)
            }
        }
    }

    /// Records an attempt's end everywhere, then decides what the call does next. `sent`:
    /// whether the request left (a failure before sending is always safe to retry).
    pub fn finish(&mut self, call: &mut Call, attempt: Attempt, outcome: Outcome, sent: bool, now: Time) -> Next {
        self.record(attempt, outcome, now);
        call.in_flight = call.in_flight.saturating_sub(1);
        if matches!(outcome, Outcome::Success | Outcome::ToolError) {
            return Next::Done;
        }
        if call.in_flight > 0 {
            return Next::Wait;
        }
        let expected = self.metrics.server(attempt.server).latency(0.5).unwrap_or(Duration::ZERO);
        let a = RetryAttempt {
            kind: call.kind,
            outcome,
            sent,
            attempts: call.attempts,
            previous_delay: call.previous_delay,
            now,
            deadline: call.deadline,
            expected_latency: expected,
        };
        let retry = if self.resolve(call) { self.routes[call.route].retry } else { self.policy.retry_config(None) };
        match retry.decide(&a, &mut self.budget, &mut self.retry_rng) {
            Decision::Retry { after } => {
                call.previous_delay = after;
                self.metrics.record_retry(attempt.server);
                Next::Retry(after)
            }
            Decision::GiveUp(reason) => Next::GiveUp(reason),
        }
    }

    /// Records an attempt's end with no decision for its call (an aggregated call's answers:
    /// a fan-out is not retried).
    pub fn end(&mut self, attempt: Attempt, outcome: Outcome, now: Time) {
        self.record(attempt, outcome, now);
    }

    /// Records an attempt abandoned before its answer (a hedge's loser, a call whose caller
    /// went away). Nothing is decided for its call.
    pub fn cancel(&mut self, attempt: Attempt, now: Time) {
        self.record(attempt, Outcome::Cancelled, now);
    }

    fn record(&mut self, attempt: Attempt, outcome: Outcome, now: Time) {
        let server = attempt.server;
        let latency = now.saturating_since(attempt.started);
        let verdict = self.classifier.classify(outcome);
        if matches!(outcome, Outcome::Cancelled | Outcome::Rejected) {
            self.fleet.abandon(server);
        } else {
            self.fleet.end(server, latency, now);
        }
        if let Some(t) = self.breakers[server.index()].record(attempt.permit, verdict, latency, now) {
            self.on_breaker(server, t, now);
        }
        if let Some(e) = self.outlier.record(server, verdict, now) {
            self.on_ejection(e, now);
        }
        if let Some(healthy) = self.health[server.index()].record_call(verdict) {
            self.fleet.set_healthy(server, healthy, now);
        }
        self.metrics.record_attempt(server, outcome, latency);
        if verdict == Verdict::Success
            && let Some(h) = self.hedger.as_mut()
        {
            h.observe(latency);
        }
    }

    /// Attempts on every available server of the call's first tier (at most [`MAX_FAN_OUT`]),
    /// each under its breaker's permit, for an aggregated call.
    pub fn fan_out(&mut self, call: &mut Call, now: Time, out: &mut Vec<Attempt>) {
        self.poll(now);
        if !self.resolve(call) {
            return;
        }
        let Some(tier) = self.routes[call.route].route.tiers.first() else { return };
        let mut ids = [ServerId(0); MAX_FAN_OUT];
        let mut n = 0;
        for &id in tier.iter().take(MAX_FAN_OUT) {
            ids[n] = id;
            n += 1;
        }
        for &id in &ids[..n] {
            if !self.fleet.state(id).is_available() {
                continue;
            }
            if let Some(permit) = self.permit(id, now) {
                let attempt = Attempt { server: id, tier: 0, started: now, permit };
                self.sent(call, attempt, false);
                out.push(attempt);
            }
        }
    }

    // ---- The result cache.

    /// Whether answers to `call` may come from, and go to, the cache.
    pub fn caches(&self, call: &Call) -> bool {
        self.policy.cache.ttl.is_some() && is_cacheable(call.kind)
    }

    /// A cached answer for `key`, if fresh.
    pub fn cached(&mut self, key: &CacheKey, now: Time) -> Option<Value> {
        self.cache.get(key, now).cloned()
    }

    /// Keeps a successful answer for the policy's TTL.
    pub fn store(&mut self, key: CacheKey, value: Value, now: Time) {
        if let Some(ttl) = self.policy.cache.ttl {
            self.cache.insert(key, value, ttl.get(), now);
        }
    }
}
