//! What a simulated run is: the fleet, the client's policy, the workload, the faults.
//!
//! These are checked Rust values; the TOML scenario format (a later layer) validates into them.

use std::time::Duration;

use gauntlet_core::aggregate::Aggregation;
use gauntlet_core::balance::Strategy;
use gauntlet_core::policy::Policy;

/// How long a simulated server takes to answer a tool call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ServiceTime {
    /// Always this long.
    Constant(Duration),
    /// Uniform in `[low, high]`.
    Uniform(Duration, Duration),
    /// Log-normal with this median and 99th percentile.
    LogNormal {
        /// The median.
        median: Duration,
        /// The 99th percentile (≥ median).
        p99: Duration,
    },
    /// Pareto (a heavy tail) with this minimum and shape `alpha` (> 1; smaller is heavier).
    Pareto {
        /// The smallest service time.
        min: Duration,
        /// The shape.
        alpha: f64,
    },
}

/// One tool a simulated server offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimTool {
    /// Its name.
    pub name: String,
    /// `readOnlyHint` as the server announces it.
    pub read_only: bool,
    /// `idempotentHint` as the server announces it (a lying server may claim it).
    pub idempotent: bool,
    /// Whether calling it twice really changes the world twice (checked by the simulator,
    /// whatever the server announces).
    pub truly_unsafe: bool,
}

impl SimTool {
    /// A read-only, idempotent tool.
    pub fn safe(name: &str) -> SimTool {
        SimTool { name: name.to_owned(), read_only: true, idempotent: true, truly_unsafe: false }
    }

    /// A tool with side effects that its server applies once per idempotency key (a workflow
    /// step's key), announced idempotent: honestly so.
    pub fn deduplicated(name: &str) -> SimTool {
        SimTool { name: name.to_owned(), read_only: false, idempotent: true, truly_unsafe: false }
    }

    /// Whether its server applies a call once per idempotency key.
    pub fn deduplicates(&self) -> bool {
        self.idempotent && !self.read_only && !self.truly_unsafe
    }

    /// A tool with side effects, announced honestly (no hints).
    pub fn unsafe_(name: &str) -> SimTool {
        SimTool { name: name.to_owned(), read_only: false, idempotent: false, truly_unsafe: true }
    }
}

/// The MCP protocol era a simulated server speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProtocolEra {
    /// `initialize` only; `server/discover` is "method not found".
    Legacy,
    /// `server/discover` (2026-07-28) only.
    Modern,
    /// Both: the client picks.
    #[default]
    Both,
}

/// A group of identical simulated servers.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerGroup {
    /// The group's name; servers are named `{group}-{i}`.
    pub group: String,
    /// The client's replica set these servers join (`None`: the group's own name). Groups
    /// sharing one back each other up, preferred by priority; their tools are exposed as
    /// `{replica_set}__{tool}`.
    pub replica_set: Option<String>,
    /// How many servers.
    pub count: u32,
    /// Their priority tier (higher preferred).
    pub priority: u32,
    /// Their tools.
    pub tools: Vec<SimTool>,
    /// Their service time.
    pub service: ServiceTime,
    /// Probability that a call ends in a JSON-RPC internal error.
    pub error_rate: f64,
    /// Probability that a call gets a wrong answer (a byzantine server).
    pub wrong_rate: f64,
    /// Calls served at once (`None`: unbounded); more wait in a queue of `queue`, beyond which
    /// the server answers "overloaded" at once.
    pub capacity: Option<u32>,
    /// The queue behind `capacity`.
    pub queue: u32,
    /// The client's weight for each server of the group (weighted balancers).
    pub weight: u32,
    /// The client's tags for them (route rules).
    pub tags: Vec<String>,
    /// The protocol era they speak.
    pub era: ProtocolEra,
    /// Slow start: after a restart (the end of a crash) a server answers
    /// [`COLD_FACTOR`](crate::server::COLD_FACTOR) times slower, ramping down to normal over
    /// this long. Servers are warm when the run begins.
    pub warmup: Option<Duration>,
}

impl ServerGroup {
    /// The client's replica set of these servers.
    pub fn replica_set(&self) -> &str {
        self.replica_set.as_deref().unwrap_or(&self.group)
    }

    /// `count` servers named `{group}-{i}` offering `tools`, answering in `service`, with no
    /// errors, no capacity limit, weight 1, priority 0, both eras.
    pub fn new(group: &str, count: u32, tools: Vec<SimTool>, service: ServiceTime) -> ServerGroup {
        ServerGroup {
            group: group.to_owned(),
            replica_set: None,
            count,
            priority: 0,
            tools,
            service,
            error_rate: 0.0,
            wrong_rate: 0.0,
            capacity: None,
            queue: 0,
            weight: 1,
            tags: Vec::new(),
            era: ProtocolEra::Both,
            warmup: None,
        }
    }
}

/// How calls arrive.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Arrivals {
    /// Poisson arrivals at this rate per simulated second (open loop).
    Poisson(f64),
    /// This many callers, each calling again as soon as its call ends (closed loop).
    Callers(u32),
}

/// The workload.
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    /// How calls arrive.
    pub arrivals: Arrivals,
    /// Tools to call, by exposed name (`group__tool`), and their relative weights.
    pub mix: Vec<(String, u32)>,
    /// Each call's deadline.
    pub deadline: Duration,
    /// Send every call to all replicas of its first tier and aggregate the answers
    /// (`None`: one server answers each call).
    pub aggregate: Option<Aggregation>,
    /// A closed-loop caller's pause after each call. A call that ended with no simulated time
    /// passing is followed by at least one tick, so simulated time moves.
    pub think: Duration,
    /// An affinity key for each call, for consistent hashing (`None`: calls carry none).
    pub affinity: Option<Affinity>,
}

/// How calls' affinity keys are drawn: one of `keys` keys, uniformly or by a Zipf law.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Affinity {
    /// How many distinct keys.
    pub keys: u32,
    /// `Some(s)`: key `k` (from 1) is drawn with weight `1 / k^s`; `None`: uniformly.
    pub zipf: Option<f64>,
}

/// What a fault does while it lasts.
#[derive(Clone, Debug, PartialEq)]
pub enum FaultKind {
    /// The client and the target cannot exchange anything (segments are dropped).
    Partition,
    /// Nothing from the client reaches the target; answers would still flow back.
    OneWay,
    /// Messages between the client and the target are held (a long pause) and delivered
    /// when the fault ends.
    Hold,
    /// The target crashes; it restarts (bounces) when the fault ends.
    Crash,
    /// The link between the client and the target gains this much latency.
    Latency(Duration),
    /// Messages on the link are lost with this probability.
    Loss(f64),
    /// The target's calls fail with this probability (an error burst).
    Brownout(f64),
    /// The target answers wrongly.
    Byzantine,
    /// One tool of the target gains this much service time (a gray failure).
    SlowTool(String, Duration),
    /// The target offers these tools instead of its group's, and tells its clients
    /// (`notifications/tools/list_changed`) at the start and at the end.
    ListChange(Vec<SimTool>),
}

impl FaultKind {
    /// The kind's name, as scenario files spell it.
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::OneWay => "one-way",
            FaultKind::Hold => "hold",
            FaultKind::Crash => "crash",
            FaultKind::Latency(_) => "latency",
            FaultKind::Loss(_) => "loss",
            FaultKind::Brownout(_) => "brownout",
            FaultKind::Byzantine => "byzantine",
            FaultKind::SlowTool(..) => "slow-tool",
            FaultKind::ListChange(_) => "list-change",
        }
    }
}

/// A fault on the timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    /// When it starts, from the start of the run.
    pub at: Duration,
    /// How long it lasts.
    pub duration: Duration,
    /// What it does.
    pub kind: FaultKind,
    /// Which servers: a server's name, a group's name, or `group@fraction` (the first
    /// `ceil(fraction × count)` servers of the group).
    pub target: String,
}

/// A named span of the workload, for per-phase figures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhaseSpec {
    /// Its name.
    pub name: String,
    /// Its start, from the start of the workload.
    pub from: Duration,
    /// Its end.
    pub to: Duration,
}

/// A deliberately broken client, to prove a checker can fail. Never for real scenarios.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sabotage {
    /// Breakers only watch (shadow mode): calls go to servers whose breaker is open.
    IgnoreBreaker,
    /// Aggregated calls take the first answer while claiming a majority.
    FirstAsMajority,
    /// The client vouches for every tool of the workload as idempotent, so retries and hedges
    /// replay unsafe tools whose calls may have run.
    ReplayUnsafe,
    /// A failed workflow ends `compensated` without running its compensations.
    SkipCompensation,
    /// Resuming a workflow forgets its journaled results and runs every step again.
    RerunJournaled,
    /// A workflow step counts as done as soon as its call is sent, so its dependents start
    /// before its result exists.
    AckOnSend,
}

impl Sabotage {
    /// Every sabotage, in order.
    pub const ALL: [Sabotage; 6] = [
        Sabotage::IgnoreBreaker,
        Sabotage::FirstAsMajority,
        Sabotage::ReplayUnsafe,
        Sabotage::SkipCompensation,
        Sabotage::RerunJournaled,
        Sabotage::AckOnSend,
    ];

    /// As scenario files and `--sabotage` spell it.
    pub fn name(self) -> &'static str {
        match self {
            Sabotage::IgnoreBreaker => "ignore-breaker",
            Sabotage::FirstAsMajority => "first-as-majority",
            Sabotage::ReplayUnsafe => "replay-unsafe",
            Sabotage::SkipCompensation => "skip-compensation",
            Sabotage::RerunJournaled => "rerun-journaled",
            Sabotage::AckOnSend => "ack-on-send",
        }
    }

    /// The sabotage called `name`.
    pub fn named(name: &str) -> Option<Sabotage> {
        Sabotage::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// A scenario's workflow (its `[workflow]` table), checked. Two are equal when their
/// definitions (by digest) and inputs are.
#[derive(Clone, Debug)]
pub struct SimFlow(pub std::sync::Arc<crate::flow_file::FlowFile>);

impl PartialEq for SimFlow {
    fn eq(&self, other: &SimFlow) -> bool {
        self.0.workflow.digest() == other.0.workflow.digest() && self.0.inputs == other.0.inputs
    }
}

/// A complete simulated run.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// Its name.
    pub name: String,
    /// The root seed: turmoil's, the servers', the client's and the workload's streams all
    /// derive from it.
    pub seed: u64,
    /// How long calls are issued for.
    pub duration: Duration,
    /// turmoil's tick: shorter is more precise and slower (an idle tick costs ~6 µs of wall
    /// time with 4 hosts; 1 ms resolves millisecond latencies).
    pub tick: Duration,
    /// The fleet.
    pub fleet: Vec<ServerGroup>,
    /// The client's policy (the scenario's `[client]` table). Its `seed` and `deadline` are
    /// the scenario's: see [`client_config`](crate::world::client_config).
    pub policy: Policy,
    /// Whether the client trusts the servers' tool annotations.
    pub trusted: bool,
    /// The workload.
    pub workload: Workload,
    /// The fault timeline.
    pub faults: Vec<Fault>,
    /// Named phases (empty: derived from the faults, see [`Scenario::phases`]).
    pub phases: Vec<PhaseSpec>,
    /// Liveness: after the last fault ends, the client must serve normally again within this.
    pub recovery_bound: Duration,
    /// A deliberately broken client (tests of the checkers only).
    pub sabotage: Option<Sabotage>,
    /// A workflow workload: each "call" of the workload is a run of this workflow (`None`: the
    /// workload calls the tools of its mix).
    pub workflow: Option<SimFlow>,
    /// Keep every call's record in the report ([`RunReport::calls`](crate::RunReport::calls)),
    /// for a test or an analysis of its own: memory then grows with the calls issued. Off by
    /// default, and never set by a scenario file: the figures do not need them.
    pub keep_calls: bool,
}

impl Scenario {
    /// A scenario with this fleet and workload, one seed, no faults, default policy, a 1 ms
    /// tick and a 10 s recovery bound.
    pub fn new(name: &str, seed: u64, duration: Duration, fleet: Vec<ServerGroup>, workload: Workload) -> Scenario {
        Scenario {
            name: name.to_owned(),
            seed,
            duration,
            tick: Duration::from_millis(1),
            fleet,
            policy: Policy::default(),
            trusted: true,
            workload,
            faults: Vec::new(),
            phases: Vec::new(),
            recovery_bound: Duration::from_secs(10),
            sabotage: None,
            workflow: None,
            keep_calls: false,
        }
    }

    /// The balancing strategy the policy names.
    pub fn strategy(&self) -> Strategy {
        self.policy.balancer
    }

    /// When the last fault ends (`None` without faults).
    pub fn last_heal(&self) -> Option<Duration> {
        self.faults.iter().map(|f| f.at + f.duration).max()
    }

    /// The phases: the scenario's own, or `warm-up` (until the first fault), `fault` (until
    /// the last one ends) and `recovery` (to the end); `steady` for a run without faults.
    pub fn phases(&self) -> Vec<PhaseSpec> {
        if !self.phases.is_empty() {
            return self.phases.clone();
        }
        let phase = |name: &str, from: Duration, to: Duration| PhaseSpec { name: name.to_owned(), from, to };
        let (Some(first), Some(last)) = (self.faults.iter().map(|f| f.at).min(), self.last_heal()) else {
            return vec![phase("steady", Duration::ZERO, self.duration)];
        };
        let last = last.min(self.duration);
        let mut out = Vec::new();
        if !first.is_zero() {
            out.push(phase("warm-up", Duration::ZERO, first));
        }
        out.push(phase("fault", first, last));
        if last < self.duration {
            out.push(phase("recovery", last, self.duration));
        }
        out
    }

    /// Every server's name and group, in fleet order.
    pub fn servers(&self) -> Vec<(String, &ServerGroup)> {
        self.fleet.iter().flat_map(|g| (0..g.count).map(move |i| (format!("{}-{i}", g.group), g))).collect()
    }

    /// The servers a fault's `target` names, in fleet order.
    pub fn targets(&self, target: &str) -> Vec<String> {
        if let Some((group, fraction)) = target.split_once('@') {
            let fraction: f64 = fraction.parse().unwrap_or(0.0);
            let Some(g) = self.fleet.iter().find(|g| g.group == group) else { return Vec::new() };
            let n = (fraction.clamp(0.0, 1.0) * f64::from(g.count)).ceil() as u32;
            return (0..n).map(|i| format!("{group}-{i}")).collect();
        }
        self.servers().into_iter().filter(|(n, g)| n == target || g.group == target).map(|(n, _)| n).collect()
    }
}
