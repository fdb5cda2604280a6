//! The fleet: dense server ids and the per-server state every decision reads.
//!
//! Servers are numbered densely from zero ([`ServerId`]) and their state lives in a `Vec`, so a
//! lookup is an index, never a hash. Ids are never reused: a server that leaves is *retired*
//! and stays unavailable. Every change that can alter a pick (a server joins, retires, becomes
//! (un)healthy, its breaker opens or closes, it is ejected or restored, its weight or priority
//! changes) bumps the fleet's [`epoch`](Fleet::epoch). Balancers cache derived structures (the
//! list of available servers, an EDF heap, a Maglev table) keyed by that epoch, which is what
//! keeps a pick O(1) or O(log n) while availability changes stay explicit events.
//!
//! Latency is tracked as a *Peak-EWMA* (Finagle's `PeakEwma`, also linkerd's and tower's): an
//! observation above the estimate replaces it at once (react to trouble immediately), one below
//! it is blended in with weight `1 - exp(-Δt / decay)` (forgive slowly, by elapsed time rather
//! than by call count, so a quiet server is not judged on stale samples). Reading the estimate
//! also decays it towards zero with the same constant: a server that has not answered for a
//! while looks cheap again and gets re-sampled, which is how a balancer notices recovery.

use std::time::Duration;

use crate::time::{Time, nanos_of};

/// A server's dense index in its [`Fleet`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct ServerId(pub u32);

impl ServerId {
    /// The id as a `usize` index.
    #[inline]
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl std::fmt::Display for ServerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s{}", self.0)
    }
}

/// The largest weight a server may have. Bounded so that weighted scheduling stays exact in
/// fixed-point arithmetic (see `balance::weighted`).
pub const MAX_WEIGHT: u32 = 65_536;

/// What a server is configured as when it joins.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ServerSpec {
    /// Relative share of traffic for weighted balancers, `1..=MAX_WEIGHT`.
    pub weight: u32,
    /// Priority tier: higher is preferred (see `balance::Priority`).
    pub priority: u32,
}

impl Default for ServerSpec {
    fn default() -> Self {
        ServerSpec { weight: 1, priority: 0 }
    }
}

/// How latency estimates behave, shared by the recorder and by the balancers that read them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LatencyConfig {
    /// The Peak-EWMA time constant. 10 s is Finagle's and linkerd's default: long enough to
    /// smooth one slow call, short enough to forgive a server within a few seconds of quiet.
    pub decay: Duration,
    /// The estimate of a server that has never answered. 100 ms is deliberately pessimistic
    /// relative to healthy MCP tool calls (single-digit ms), so new servers are probed, not
    /// flooded; slow start covers the ramp.
    pub default_rtt: Duration,
}

impl Default for LatencyConfig {
    fn default() -> Self {
        LatencyConfig { decay: Duration::from_secs(10), default_rtt: Duration::from_millis(100) }
    }
}

/// The reasons a server can be unavailable. Each is set by its own mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Availability {
    /// Active and passive health checks say it is up.
    pub healthy: bool,
    /// Its circuit breaker is open (half-open counts as not open: probes are admitted by the
    /// breaker's permit, after the pick).
    pub breaker_open: bool,
    /// Outlier detection has ejected it.
    pub ejected: bool,
    /// It left the fleet for good.
    pub retired: bool,
}

impl Availability {
    const UP: Availability = Availability { healthy: true, breaker_open: false, ejected: false, retired: false };

    /// Whether a balancer may pick the server.
    #[inline]
    pub fn is_available(self) -> bool {
        self.healthy && !self.breaker_open && !self.ejected && !self.retired
    }
}

/// One server's state, as balancers read it.
#[derive(Clone, Debug)]
pub struct ServerState {
    weight: u32,
    priority: u32,
    outstanding: u32,
    availability: Availability,
    /// When the server joined or last became available again, if it should ramp up.
    ramp_from: Option<Time>,
    /// A stable hash of the server's name (for consistent hashing across processes).
    identity: u64,
    ewma_nanos: f64,
    ewma_stamp: Time,
    sampled: bool,
}

impl ServerState {
    /// Its configured weight.
    #[inline]
    pub fn weight(&self) -> u32 {
        self.weight
    }
    /// Its priority tier (higher is preferred).
    #[inline]
    pub fn priority(&self) -> u32 {
        self.priority
    }
    /// Calls sent to it and not yet finished.
    #[inline]
    pub fn outstanding(&self) -> u32 {
        self.outstanding
    }
    /// Why it is or is not available.
    #[inline]
    pub fn availability(&self) -> Availability {
        self.availability
    }
    /// Whether a balancer may pick it.
    #[inline]
    pub fn is_available(&self) -> bool {
        self.availability.is_available()
    }
    /// When it started ramping up (joined late, or recovered), if it did.
    #[inline]
    pub fn ramp_from(&self) -> Option<Time> {
        self.ramp_from
    }
    /// A stable hash of its name.
    #[inline]
    pub fn identity(&self) -> u64 {
        self.identity
    }

    /// Its Peak-EWMA latency estimate at `now`, in nanoseconds, decayed towards zero for the
    /// time since the last observation. `default_rtt` until the first observation.
    #[inline]
    pub fn latency_nanos(&self, now: Time, config: &LatencyConfig) -> f64 {
        self.decayed_latency(now, &Decay::new(config))
    }

    #[inline]
    fn decayed_latency(&self, now: Time, decay: &Decay) -> f64 {
        if !self.sampled {
            return decay.default_rtt_nanos;
        }
        let idle = now.as_nanos().saturating_sub(self.ewma_stamp.as_nanos());
        if idle == 0 {
            return self.ewma_nanos;
        }
        self.ewma_nanos * decay.weight(idle)
    }

    #[inline]
    fn observe(&mut self, rtt: Duration, now: Time, decay: &Decay) {
        let rtt = nanos_of(rtt) as f64;
        if !self.sampled || rtt > self.ewma_nanos {
            self.ewma_nanos = rtt;
        } else {
            let elapsed = now.as_nanos().saturating_sub(self.ewma_stamp.as_nanos());
            let w = decay.weight(elapsed);
            self.ewma_nanos = self.ewma_nanos * w + rtt * (1.0 - w);
        }
        self.sampled = true;
        self.ewma_stamp = self.ewma_stamp.max(now);
    }
}

/// A [`LatencyConfig`] prepared for the hot path: the decay as a reciprocal, so a read is a
/// multiplication instead of a division.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Decay {
    per_nano: f64,
    default_rtt_nanos: f64,
}

impl Decay {
    fn new(config: &LatencyConfig) -> Decay {
        Decay {
            per_nano: 1.0 / nanos_of(config.decay).max(1) as f64,
            default_rtt_nanos: nanos_of(config.default_rtt) as f64,
        }
    }

    /// `exp(-elapsed / decay)`: the weight the old estimate keeps after `elapsed` nanoseconds.
    ///
    /// On a busy server `x = elapsed / decay` is tiny (microseconds against seconds), where the
    /// Taylor series `1 − x + x²/2 − x³/6` is exact to within `x⁴/24 < 5·10⁻¹⁰` and several
    /// times cheaper than `exp`; beyond `x = 0.01` it is `exp` itself.
    #[inline]
    fn weight(&self, elapsed_nanos: u64) -> f64 {
        let x = elapsed_nanos as f64 * self.per_nano;
        if x < 0.01 { 1.0 - x * (1.0 - x * (0.5 - x * (1.0 / 6.0))) } else { (-x).exp() }
    }
}

/// Errors from changing a fleet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FleetError {
    /// A weight outside `1..=MAX_WEIGHT`.
    #[error("weight {0} is outside 1..={MAX_WEIGHT}")]
    Weight(u32),
    /// More servers than ids.
    #[error("a fleet holds at most {} servers", u32::MAX)]
    Full,
}

/// Every server's state, indexed by [`ServerId`].
#[derive(Clone, Debug)]
pub struct Fleet {
    servers: Vec<ServerState>,
    epoch: u64,
    latency: LatencyConfig,
    decay: Decay,
}

impl Fleet {
    /// An empty fleet with the given latency settings.
    pub fn new(latency: LatencyConfig) -> Fleet {
        Fleet { servers: Vec::new(), epoch: 0, latency, decay: Decay::new(&latency) }
    }

    /// Adds a server present from the start: it takes its full share at once.
    pub fn add(&mut self, name: &str, spec: ServerSpec) -> Result<ServerId, FleetError> {
        self.push(name, spec, None)
    }

    /// Adds a server that joins a running fleet at `now`: it ramps up under slow start.
    pub fn join(&mut self, name: &str, spec: ServerSpec, now: Time) -> Result<ServerId, FleetError> {
        self.push(name, spec, Some(now))
    }

    fn push(&mut self, name: &str, spec: ServerSpec, ramp_from: Option<Time>) -> Result<ServerId, FleetError> {
        if spec.weight == 0 || spec.weight > MAX_WEIGHT {
            return Err(FleetError::Weight(spec.weight));
        }
        let id = ServerId(u32::try_from(self.servers.len()).map_err(|_| FleetError::Full)?);
        self.servers.push(ServerState {
            weight: spec.weight,
            priority: spec.priority,
            outstanding: 0,
            availability: Availability::UP,
            ramp_from,
            identity: xxhash_rust::xxh3::xxh3_64(name.as_bytes()),
            ewma_nanos: 0.0,
            ewma_stamp: Time::ZERO,
            sampled: false,
        });
        self.epoch += 1;
        Ok(id)
    }

    /// How many servers were ever added (retired ones included).
    pub fn len(&self) -> usize {
        self.servers.len()
    }

    /// Whether no server was ever added.
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    /// All ids, in order.
    pub fn ids(&self) -> impl ExactSizeIterator<Item = ServerId> + '_ {
        (0..self.servers.len() as u32).map(ServerId)
    }

    /// The state of `id`. Panics on an id this fleet never issued (a programmer error).
    #[inline]
    pub fn state(&self, id: ServerId) -> &ServerState {
        &self.servers[id.index()]
    }

    /// The latency settings.
    pub fn latency_config(&self) -> &LatencyConfig {
        &self.latency
    }

    /// `id`'s Peak-EWMA latency estimate at `now`, in nanoseconds (see
    /// [`ServerState::latency_nanos`]); the fast form balancers use.
    #[inline]
    pub fn latency_nanos(&self, id: ServerId, now: Time) -> f64 {
        self.servers[id.index()].decayed_latency(now, &self.decay)
    }

    /// Changes in this number tell balancers to rebuild what they cache.
    #[inline]
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// A view of `members` (one replica set) for a balancer.
    #[inline]
    pub fn view<'a>(&'a self, members: &'a [ServerId]) -> FleetView<'a> {
        FleetView { fleet: self, members, epoch: self.epoch }
    }

    /// Marks the server healthy or not.
    pub fn set_healthy(&mut self, id: ServerId, healthy: bool, now: Time) {
        self.update(id, now, |a| a.healthy = healthy);
    }

    /// Records whether the server's breaker is open.
    pub fn set_breaker_open(&mut self, id: ServerId, open: bool, now: Time) {
        self.update(id, now, |a| a.breaker_open = open);
    }

    /// Records whether outlier detection has ejected the server.
    pub fn set_ejected(&mut self, id: ServerId, ejected: bool, now: Time) {
        self.update(id, now, |a| a.ejected = ejected);
    }

    /// The server leaves the fleet for good.
    pub fn retire(&mut self, id: ServerId, now: Time) {
        self.update(id, now, |a| a.retired = true);
    }

    /// Changes the server's weight.
    pub fn set_weight(&mut self, id: ServerId, weight: u32) -> Result<(), FleetError> {
        if weight == 0 || weight > MAX_WEIGHT {
            return Err(FleetError::Weight(weight));
        }
        let s = &mut self.servers[id.index()];
        if s.weight != weight {
            s.weight = weight;
            self.epoch += 1;
        }
        Ok(())
    }

    fn update(&mut self, id: ServerId, now: Time, change: impl FnOnce(&mut Availability)) {
        let s = &mut self.servers[id.index()];
        let before = s.availability;
        change(&mut s.availability);
        if s.availability == before {
            return;
        }
        if !before.is_available() && s.availability.is_available() {
            // Recovered: ramp up again rather than take a full share of a cold cache at once.
            s.ramp_from = Some(now);
        }
        self.epoch += 1;
    }

    /// A call was sent to `id`.
    #[inline]
    pub fn begin(&mut self, id: ServerId) {
        let s = &mut self.servers[id.index()];
        s.outstanding = s.outstanding.saturating_add(1);
    }

    /// A call to `id` that took `rtt` finished at `now` (whatever its outcome: a fast failure
    /// is still a latency sample; breakers and outlier detection judge outcomes).
    #[inline]
    pub fn end(&mut self, id: ServerId, rtt: Duration, now: Time) {
        let s = &mut self.servers[id.index()];
        debug_assert!(s.outstanding > 0, "end() without begin() for {id}");
        s.outstanding = s.outstanding.saturating_sub(1);
        s.observe(rtt, now, &self.decay);
    }

    /// A call to `id` was abandoned (cancelled, or lost with its connection) with no sample.
    #[inline]
    pub fn abandon(&mut self, id: ServerId) {
        let s = &mut self.servers[id.index()];
        debug_assert!(s.outstanding > 0, "abandon() without begin() for {id}");
        s.outstanding = s.outstanding.saturating_sub(1);
    }
}

/// What a balancer sees: the fleet's state and the members of one replica set.
///
/// The pair (`epoch`, `members`) identifies the view's content: a balancer instance serves one
/// replica set, and whoever changes that set's membership must bump the fleet's epoch (adding
/// or retiring servers does).
#[derive(Clone, Copy, Debug)]
pub struct FleetView<'a> {
    fleet: &'a Fleet,
    members: &'a [ServerId],
    epoch: u64,
}

impl<'a> FleetView<'a> {
    /// The same fleet with other members, identified by `epoch` (used by balancers that wrap
    /// another and hand it a derived set, e.g. one priority tier).
    pub fn with_members(&self, members: &'a [ServerId], epoch: u64) -> FleetView<'a> {
        FleetView { fleet: self.fleet, members, epoch }
    }

    /// The servers a pick chooses among (available or not).
    #[inline]
    pub fn members(&self) -> &'a [ServerId] {
        self.members
    }

    /// Identifies the content of this view; see the type's docs.
    #[inline]
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The whole fleet.
    #[inline]
    pub fn fleet(&self) -> &'a Fleet {
        self.fleet
    }

    /// The state of one server.
    #[inline]
    pub fn state(&self, id: ServerId) -> &'a ServerState {
        self.fleet.state(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_server() -> (Fleet, ServerId) {
        let mut fleet = Fleet::new(LatencyConfig::default());
        let id = fleet.add("a", ServerSpec::default()).unwrap();
        (fleet, id)
    }

    #[test]
    fn peak_ewma_jumps_to_a_slower_sample_at_once() {
        let (mut fleet, id) = one_server();
        let cfg = *fleet.latency_config();
        fleet.begin(id);
        fleet.end(id, Duration::from_millis(10), Time::from_secs(1));
        fleet.begin(id);
        fleet.end(id, Duration::from_millis(90), Time::from_secs(1));
        let est = fleet.state(id).latency_nanos(Time::from_secs(1), &cfg);
        assert_eq!(est, 90_000_000.0);
    }

    #[test]
    fn peak_ewma_forgets_a_peak_by_elapsed_time() {
        let (mut fleet, id) = one_server();
        let cfg = *fleet.latency_config();
        fleet.begin(id);
        fleet.end(id, Duration::from_millis(100), Time::from_secs(1));
        fleet.begin(id);
        // One decay constant later, a fast sample keeps e^-1 of the old estimate.
        fleet.end(id, Duration::from_millis(10), Time::from_secs(11));
        let est = fleet.state(id).latency_nanos(Time::from_secs(11), &cfg) / 1e6;
        let expected = 100.0 * (-1.0f64).exp() + 10.0 * (1.0 - (-1.0f64).exp());
        assert!((est - expected).abs() < 1e-6, "{est} vs {expected}");
    }

    #[test]
    fn the_fast_decay_weight_agrees_with_exp() {
        let decay = Duration::from_secs(10);
        let fast = Decay::new(&LatencyConfig { decay, ..LatencyConfig::default() });
        for nanos in [0u64, 1, 1_000, 1_000_000, 99_999_999, 100_000_000, 5_000_000_000, 60_000_000_000] {
            let exact = (-(nanos as f64) / 1e10).exp();
            assert!((fast.weight(nanos) - exact).abs() < 1e-9, "{nanos}");
        }
    }

    #[test]
    fn an_unsampled_server_reports_the_default_rtt() {
        let (fleet, id) = one_server();
        let cfg = *fleet.latency_config();
        assert_eq!(fleet.state(id).latency_nanos(Time::from_secs(5), &cfg), 100e6);
    }

    #[test]
    fn availability_changes_bump_the_epoch_and_no_ops_do_not() {
        let (mut fleet, id) = one_server();
        let e0 = fleet.epoch();
        fleet.set_healthy(id, true, Time::ZERO);
        assert_eq!(fleet.epoch(), e0);
        fleet.set_breaker_open(id, true, Time::ZERO);
        assert_eq!(fleet.epoch(), e0 + 1);
        assert!(!fleet.state(id).is_available());
    }

    #[test]
    fn a_recovered_server_starts_ramping_from_its_recovery() {
        let (mut fleet, id) = one_server();
        assert_eq!(fleet.state(id).ramp_from(), None);
        fleet.set_ejected(id, true, Time::from_secs(1));
        fleet.set_ejected(id, false, Time::from_secs(4));
        assert_eq!(fleet.state(id).ramp_from(), Some(Time::from_secs(4)));
    }

    #[test]
    fn weights_outside_the_bound_are_rejected() {
        let mut fleet = Fleet::new(LatencyConfig::default());
        assert_eq!(fleet.add("z", ServerSpec { weight: 0, priority: 0 }), Err(FleetError::Weight(0)));
        let big = MAX_WEIGHT + 1;
        assert_eq!(fleet.add("z", ServerSpec { weight: big, priority: 0 }), Err(FleetError::Weight(big)));
    }
}
