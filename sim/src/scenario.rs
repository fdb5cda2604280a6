//! What a simulated run is: the fleet, the client's policy, the workload, the faults.
//!
//! These are checked Rust values; the TOML scenario format (a later layer) validates into them.

use std::time::Duration;

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

    /// A tool with side effects, announced honestly (no hints).
    pub fn unsafe_(name: &str) -> SimTool {
        SimTool { name: name.to_owned(), read_only: false, idempotent: false, truly_unsafe: true }
    }
}

/// A group of identical simulated servers.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerGroup {
    /// The group's name; servers are named `{group}-{i}`.
    pub group: String,
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
    /// The client's `gauntlet` policy section, as JSON (see `gauntlet_client::config`).
    pub policy: serde_json::Value,
    /// Whether the client trusts the servers' tool annotations.
    pub trusted: bool,
    /// The workload.
    pub workload: Workload,
    /// The fault timeline.
    pub faults: Vec<Fault>,
}

impl Scenario {
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
