//! One simulated run: build the turmoil world, drive the real client, apply the faults from
//! the outer step loop, record every call, check the run, hash its log.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use gauntlet_client::config::{Config, ServerConfig, TransportSpec};
use gauntlet_client::{CallError, CallOptions, ConnectError, Connected, Connector, HandlerToken, MultiServerClient};
use gauntlet_core::SeededRng;
use serde_json::json;

use crate::scenario::{Arrivals, FaultKind, Scenario};
use crate::server::{self, Knobs, PORT, Receipts, SimServer};

/// The client's host name.
pub const CLIENT: &str = "client";
/// A fixed epoch, so no wall-clock value enters a run.
const EPOCH_SECS: u64 = 1_700_000_000;
/// The network's one-way latency outside latency faults.
const BASE_LATENCY: Duration = Duration::from_millis(1);
/// How long the client may take to connect before the workload starts.
const CONNECT_GRACE: Duration = Duration::from_secs(2);
/// The most calls one run issues: a limit on everything, and a guard against a workload
/// that spins.
pub const MAX_CALLS: u64 = 2_000_000;
/// A closed-loop caller whose call ended in no simulated time waits this long before the next
/// (otherwise simulated time would never advance: turmoil moves time between steps only).
const MIN_THINK: Duration = Duration::from_millis(1);

/// Dials simulated servers over turmoil's network.
struct TurmoilConnector;

impl Connector for TurmoilConnector {
    fn connect<'a>(
        &'a self,
        server: &'a ServerConfig,
        handler: HandlerToken,
    ) -> Pin<Box<dyn Future<Output = Result<Connected, ConnectError>> + Send + 'a>> {
        Box::pin(async move {
            let TransportSpec::Tcp { address } = &server.transport else {
                return Err(ConnectError::Handshake("simulated servers are reached over tcp".to_owned()));
            };
            let stream = turmoil::net::TcpStream::connect(address.as_str())
                .await
                .map_err(|source| ConnectError::Tcp { address: address.clone(), source })?;
            let (read, write) = tokio::io::split(stream);
            handler.handshake(read, write).await
        })
    }
}

/// How one logical call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallEnd {
    /// A result (`tool_error`: the tool said `isError: true`).
    Ok {
        /// The server that answered.
        server: String,
        /// Attempts sent.
        attempts: u32,
        /// Whether the tool answered `isError: true`.
        tool_error: bool,
    },
    /// The client gave up; the error's text.
    Failed(String),
}

/// One logical call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRecord {
    /// Its id (also the `call` argument the servers see).
    pub id: u64,
    /// The exposed tool.
    pub tool: String,
    /// When it started, in simulated microseconds since the run began.
    pub start_us: u64,
    /// When it ended; `None` if it never did (a lost call).
    pub end_us: Option<u64>,
    /// How it ended.
    pub end: Option<CallEnd>,
}

/// A broken rule of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// A call never ended.
    Lost {
        /// Its id.
        call: u64,
    },
    /// A truly unsafe call's side effect happened more than once.
    DuplicateSideEffect {
        /// Its id.
        call: u64,
        /// How many times it happened.
        times: u32,
    },
    /// A call ended after its deadline (beyond one tick of slack).
    DeadlineMissed {
        /// Its id.
        call: u64,
        /// How long it took, in microseconds.
        took_us: u64,
    },
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Violation::Lost { call } => write!(f, "call {call} never ended"),
            Violation::DuplicateSideEffect { call, times } => {
                write!(f, "call {call} to an unsafe tool took effect {times} times")
            }
            Violation::DeadlineMissed { call, took_us } => {
                write!(f, "call {call} ended after {took_us} us, past its deadline")
            }
        }
    }
}

/// What a run produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunReport {
    /// The scenario's name.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// Every logical call, by id.
    pub calls: Vec<CallRecord>,
    /// The fault events, in order: `(time_us, description)`.
    pub events: Vec<(u64, String)>,
    /// Broken rules (empty: the run is safe).
    pub violations: Vec<Violation>,
    /// The hash of the run's log, as hex.
    pub digest: String,
}

impl RunReport {
    /// Calls that ended with a result.
    pub fn ok(&self) -> usize {
        self.calls.iter().filter(|c| matches!(c.end, Some(CallEnd::Ok { .. }))).count()
    }

    /// The fraction of calls that ended with a result.
    pub fn success_rate(&self) -> f64 {
        if self.calls.is_empty() { 1.0 } else { self.ok() as f64 / self.calls.len() as f64 }
    }

    /// The command that replays this run.
    pub fn reproduce(&self) -> String {
        format!("gauntlet run <file> --seed {}  # scenario {}", self.seed, self.scenario)
    }
}

/// Why a run could not complete.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The scenario does not make a valid client configuration.
    #[error("scenario `{scenario}`: {message}")]
    Config {
        /// The scenario.
        scenario: String,
        /// What is wrong.
        message: String,
    },
    /// turmoil stopped the run (a host failed, or the step limit was reached).
    #[error("scenario `{scenario}` seed {seed}: the simulation failed: {message}")]
    Turmoil {
        /// The scenario.
        scenario: String,
        /// The seed, to replay it.
        seed: u64,
        /// turmoil's message.
        message: String,
    },
}

#[derive(Default)]
struct Log {
    calls: BTreeMap<u64, CallRecord>,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The client configuration of a scenario.
pub fn client_config(scenario: &Scenario) -> Result<Config, SimError> {
    let servers: serde_json::Map<_, _> = scenario
        .servers()
        .into_iter()
        .map(|(name, group)| {
            let entry = json!({
                "type": "tcp",
                "address": format!("{name}:{PORT}"),
                "group": group.group,
                "priority": group.priority,
                "trusted": scenario.trusted,
            });
            (name, entry)
        })
        .collect();
    let mut policy = scenario.policy.clone();
    if let Some(map) = policy.as_object_mut() {
        map.entry("seed").or_insert(json!(scenario.seed));
    }
    let text = json!({"mcpServers": servers, "gauntlet": policy}).to_string();
    Config::parse(&text, &|_| None)
        .map_err(|e| SimError::Config { scenario: scenario.name.clone(), message: e.to_string() })
}

/// A scenario's turmoil world: the simulation with one host per server, the receipt log of
/// their unsafe side effects, and each server's fault knobs.
pub(crate) struct World<'a> {
    pub(crate) sim: turmoil::Sim<'a>,
    pub(crate) receipts: Receipts,
    pub(crate) knobs: BTreeMap<String, Arc<Mutex<Knobs>>>,
}

/// Builds `scenario`'s world (fixed epoch, turmoil seeded from the scenario, every server's
/// stream derived from the root seed), failing loudly once `limit` of simulated time passes.
pub(crate) fn world<'a>(scenario: &Scenario, limit: Duration) -> World<'a> {
    let root = SeededRng::new(scenario.seed);
    let mut sim = turmoil::Builder::new()
        .simulation_duration(limit)
        .tick_duration(scenario.tick)
        .rng_seed(scenario.seed)
        .epoch(UNIX_EPOCH + Duration::from_secs(EPOCH_SECS))
        .min_message_latency(BASE_LATENCY)
        .max_message_latency(BASE_LATENCY)
        .build();
    let receipts: Receipts = Arc::default();
    let mut knobs = BTreeMap::new();
    for (i, (name, group)) in scenario.servers().into_iter().enumerate() {
        let server = SimServer {
            name: name.clone(),
            group: group.clone(),
            rng: Arc::new(Mutex::new(root.derive(1_000 + i as u64))),
            receipts: receipts.clone(),
            knobs: Arc::default(),
            slots: Arc::new(tokio::sync::Semaphore::new(group.capacity.unwrap_or(u32::MAX >> 3) as usize)),
            waiting: Arc::default(),
        };
        knobs.insert(name.clone(), server.knobs.clone());
        sim.host(name.as_str(), move || server::serve(server.clone()));
    }
    World { sim, receipts, knobs }
}

/// One turmoil step; `true` once every client host has finished. A failure names the seed.
pub(crate) fn step(sim: &mut turmoil::Sim<'_>, scenario: &Scenario) -> Result<bool, SimError> {
    sim.step().map_err(|e| SimError::Turmoil {
        scenario: scenario.name.clone(),
        seed: scenario.seed,
        message: e.to_string(),
    })
}

/// Runs `scenario` to completion.
pub fn run(scenario: &Scenario) -> Result<RunReport, SimError> {
    let config = client_config(scenario)?;
    let root = SeededRng::new(scenario.seed);
    let deadline = scenario.workload.deadline;
    let limit = CONNECT_GRACE + scenario.duration + deadline + Duration::from_secs(30);
    let World { mut sim, receipts, knobs } = world(scenario, limit);

    let log = Arc::new(Mutex::new(Log::default()));
    let workload = scenario.workload.clone();
    let duration = scenario.duration;
    let workload_rng = root.derive(3);
    let client_log = log.clone();
    sim.client(CLIENT, async move {
        let origin = tokio::time::Instant::now();
        let client = Arc::new(MultiServerClient::start_with(config, TurmoilConnector));
        client.wait_ready(CONNECT_GRACE).await;
        // The workload starts at the grace exactly, so that every time in the log and every
        // fault's `at` count from the same instant.
        tokio::time::sleep_until(origin + CONNECT_GRACE).await;
        drive(client, workload, duration, workload_rng, client_log).await;
        Ok(())
    });

    let mut faults: Vec<_> = scenario.faults.iter().map(|f| (f, false, false)).collect();
    let mut events = Vec::new();
    let hosts_of = |target: &str| scenario.targets(target);
    let knob = |host: &str, change: &dyn Fn(&mut Knobs)| {
        if let Some(k) = knobs.get(host) {
            change(&mut k.lock().expect("knobs"));
        }
    };
    loop {
        // Faults are offset by the connect grace: `at` counts from when the workload starts,
        // and so do the event times.
        let now = sim.elapsed();
        let log_time = micros(now.saturating_sub(CONNECT_GRACE));
        for (fault, started, ended) in &mut faults {
            let begin = CONNECT_GRACE + fault.at;
            let end = begin + fault.duration;
            if !*started && now >= begin {
                *started = true;
                for host in hosts_of(&fault.target) {
                    match &fault.kind {
                        FaultKind::Partition => sim.partition(CLIENT, host.as_str()),
                        FaultKind::OneWay => sim.partition_oneway(CLIENT, host.as_str()),
                        FaultKind::Hold => sim.hold(CLIENT, host.as_str()),
                        FaultKind::Crash => sim.crash(host.as_str()),
                        FaultKind::Latency(extra) => sim.set_link_latency(CLIENT, host.as_str(), BASE_LATENCY + *extra),
                        FaultKind::Loss(p) => sim.set_link_fail_rate(CLIENT, host.as_str(), *p),
                        FaultKind::Brownout(p) => knob(&host, &|k| k.error_rate = Some(*p)),
                        FaultKind::Byzantine => knob(&host, &|k| k.byzantine = true),
                        FaultKind::SlowTool(tool, extra) => {
                            knob(&host, &|k| k.slow_tool = Some((tool.clone(), *extra)));
                        }
                    }
                    events.push((log_time, format!("start {:?} {host}", fault.kind)));
                }
            }
            if *started && !*ended && now >= end {
                *ended = true;
                for host in hosts_of(&fault.target) {
                    match &fault.kind {
                        FaultKind::Partition | FaultKind::OneWay => sim.repair(CLIENT, host.as_str()),
                        FaultKind::Hold => sim.release(CLIENT, host.as_str()),
                        FaultKind::Crash => sim.bounce(host.as_str()),
                        FaultKind::Latency(_) => sim.set_link_latency(CLIENT, host.as_str(), BASE_LATENCY),
                        FaultKind::Loss(_) => sim.set_link_fail_rate(CLIENT, host.as_str(), 0.0),
                        FaultKind::Brownout(_) => knob(&host, &|k| k.error_rate = None),
                        FaultKind::Byzantine => knob(&host, &|k| k.byzantine = false),
                        FaultKind::SlowTool(..) => knob(&host, &|k| k.slow_tool = None),
                    }
                    events.push((log_time, format!("end {:?} {host}", fault.kind)));
                }
            }
        }
        if step(&mut sim, scenario)? {
            break;
        }
    }

    let calls: Vec<CallRecord> = log.lock().expect("log").calls.values().cloned().collect();
    let receipts = receipts.lock().expect("receipts").clone();
    let violations = check(&calls, &receipts, deadline, scenario.tick);
    let digest = digest(&calls, &events);
    Ok(RunReport { scenario: scenario.name.clone(), seed: scenario.seed, calls, events, violations, digest })
}

/// The safety checks of every run.
pub fn check(
    calls: &[CallRecord],
    receipts: &BTreeMap<u64, u32>,
    deadline: Duration,
    tick: Duration,
) -> Vec<Violation> {
    let mut out = Vec::new();
    for c in calls {
        match c.end_us {
            None => out.push(Violation::Lost { call: c.id }),
            Some(end) => {
                let took = end.saturating_sub(c.start_us);
                if took > micros(deadline + tick * 2) {
                    out.push(Violation::DeadlineMissed { call: c.id, took_us: took });
                }
            }
        }
    }
    for (&call, &times) in receipts {
        if times > 1 {
            out.push(Violation::DuplicateSideEffect { call, times });
        }
    }
    out
}

/// The hash of a run's log: every call (id order) and every fault event, as text.
pub fn digest(calls: &[CallRecord], events: &[(u64, String)]) -> String {
    let mut text = String::new();
    for c in calls {
        text.push_str(&format!("{} {} {} {:?} {:?}\n", c.id, c.tool, c.start_us, c.end_us, c.end));
    }
    for (t, e) in events {
        text.push_str(&format!("{t} {e}\n"));
    }
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(text.as_bytes()))
}

/// Issues the workload's calls until `duration`, then waits for every call to end.
async fn drive(
    client: Arc<MultiServerClient>,
    workload: crate::scenario::Workload,
    duration: Duration,
    rng: SeededRng,
    log: Arc<Mutex<Log>>,
) {
    let start = tokio::time::Instant::now();
    let rng = Arc::new(Mutex::new(rng));
    let next_id = Arc::new(Mutex::new(0u64));
    let total: u32 = workload.mix.iter().map(|(_, w)| *w).sum::<u32>().max(1);
    let call = {
        let (client, log, workload) = (client.clone(), log.clone(), workload.clone());
        move |tool: String, id: u64| {
            let (client, log, deadline) = (client.clone(), log.clone(), workload.deadline);
            async move {
                let started = tokio::time::Instant::now();
                log.lock().expect("log").calls.insert(
                    id,
                    CallRecord { id, tool: tool.clone(), start_us: micros(started - start), end_us: None, end: None },
                );
                let args = serde_json::Map::from_iter([("call".to_owned(), json!(id))]);
                let options = CallOptions { deadline: Some(deadline), ..CallOptions::default() };
                let end = match client.call_tool_with(&tool, args, options).await {
                    Ok(r) => CallEnd::Ok {
                        server: r.server,
                        attempts: r.attempts,
                        tool_error: r.result.is_error == Some(true),
                    },
                    Err(
                        e @ (CallError::Failed { .. }
                        | CallError::NoServer { .. }
                        | CallError::UnknownTool(_)
                        | CallError::Aggregate(_)),
                    ) => CallEnd::Failed(e.to_string()),
                };
                let mut log = log.lock().expect("log");
                let record = log.calls.get_mut(&id).expect("recorded at start");
                record.end_us = Some(micros(tokio::time::Instant::now() - start));
                record.end = Some(end);
            }
        }
    };
    let pick_tool = {
        let (rng, mix) = (rng.clone(), workload.mix.clone());
        move || {
            let mut x = rng.lock().expect("rng").below(total);
            for (tool, w) in &mix {
                if x < *w {
                    return tool.clone();
                }
                x -= w;
            }
            mix.last().map(|(t, _)| t.clone()).unwrap_or_default()
        }
    };
    let new_id = move || {
        let mut n = next_id.lock().expect("ids");
        (*n < MAX_CALLS).then(|| {
            *n += 1;
            *n
        })
    };
    let mut tasks = Vec::new();
    match workload.arrivals {
        Arrivals::Callers(n) => {
            for _ in 0..n {
                let (call, pick_tool, new_id) = (call.clone(), pick_tool.clone(), new_id.clone());
                tasks.push(tokio::spawn(async move {
                    while start.elapsed() < duration {
                        let Some(id) = new_id() else { break };
                        let began = tokio::time::Instant::now();
                        call(pick_tool(), id).await;
                        if began.elapsed() < MIN_THINK {
                            tokio::time::sleep(MIN_THINK).await;
                        }
                    }
                }));
            }
        }
        Arrivals::Poisson(rate) => {
            while start.elapsed() < duration {
                let u = rng.lock().expect("rng").unit();
                let gap = Duration::from_secs_f64(-(1.0 - u).ln() / rate.max(1e-9));
                tokio::time::sleep(gap).await;
                if start.elapsed() >= duration {
                    break;
                }
                let Some(id) = new_id() else { break };
                tasks.push(tokio::spawn(call(pick_tool(), id)));
            }
        }
    }
    for t in tasks {
        let _ = t.await;
    }
}
