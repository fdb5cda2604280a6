//! One simulated run: build the turmoil world, drive the real client, apply the faults from
//! the outer step loop, record every call, check the run, hash its log.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use gauntlet_client::config::{Config, Redactor, ServerConfig, TransportSpec};
use gauntlet_client::{
    CallError, CallOptions, ConnectError, Connected, Connector, Event as ClientEvent, HandlerToken, MultiServerClient,
    Observer,
};
use gauntlet_core::SeededRng;
use gauntlet_core::aggregate::AggregateError;
use gauntlet_core::aggregate::Aggregation;
use gauntlet_core::breaker::Phase;
use gauntlet_core::outcome::Outcome;
use gauntlet_core::policy::{BreakerMode, Period, Policy};
use gauntlet_core::retry::GiveUp;
use gauntlet_reports::{Event, Violation, What};
use serde_json::{Value, json};

use crate::record;
use crate::scenario::{Arrivals, FaultKind, Sabotage, Scenario};
use crate::server::{self, Answers, Knobs, PORT, Receipts, SimServer};

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
        /// The server that answered (of an aggregated call: the first agreeing one).
        server: String,
        /// Whether the tool answered `isError: true`.
        tool_error: bool,
        /// An aggregated call's answer text.
        answer: Option<String>,
    },
    /// The client gave up.
    Failed(Failure),
}

/// Why a logical call failed, typed: what the digest hashes (never an error's wording).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The tool was not in the catalog.
    UnknownTool,
    /// No server could take it.
    NoServer,
    /// The attempts failed and the policy gave up.
    GaveUp {
        /// The last attempt's outcome.
        last: Outcome,
        /// Why no further attempt was made.
        reason: GiveUp,
    },
    /// Every replica failed (an aggregated call).
    AllFailed,
    /// No answer reached the quorum (an aggregated call).
    NoQuorum,
    /// Two answers each reached a low quorum (an aggregated call).
    Split,
}

impl From<&CallError> for Failure {
    fn from(e: &CallError) -> Failure {
        match e {
            CallError::UnknownTool(_) => Failure::UnknownTool,
            CallError::NoServer { .. } => Failure::NoServer,
            CallError::Failed { last, reason, .. } => Failure::GaveUp { last: *last, reason: *reason },
            CallError::Aggregate(AggregateError::AllFailed(_)) => Failure::AllFailed,
            CallError::Aggregate(AggregateError::NoQuorum { .. }) => Failure::NoQuorum,
            CallError::Aggregate(AggregateError::Split { .. }) => Failure::Split,
        }
    }
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
    /// Attempts sent (retries and hedges included; an aggregated call counts one).
    pub attempts: u32,
    /// How it ended.
    pub end: Option<CallEnd>,
}

impl CallRecord {
    /// A call that started at `start_us` and has not ended.
    pub fn started(id: u64, tool: &str, start_us: u64) -> CallRecord {
        CallRecord { id, tool: tool.to_owned(), start_us, end_us: None, attempts: 0, end: None }
    }

    /// Whether it ended with a result.
    pub fn is_ok(&self) -> bool {
        matches!(self.end, Some(CallEnd::Ok { .. }))
    }

    /// How long it took, if it ended.
    pub fn took_us(&self) -> Option<u64> {
        Some(self.end_us?.saturating_sub(self.start_us))
    }
}

/// What a run produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunReport {
    /// The scenario's name.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// The balancing strategy.
    pub strategy: String,
    /// Every logical call, by id.
    pub calls: Vec<CallRecord>,
    /// The timeline: faults and the client's breaker transitions, ejections, reconnects and
    /// failovers, in order.
    pub events: Vec<Event>,
    /// Attempts sent, in total.
    pub attempts: u64,
    /// Time from the last fault's end until the client served normally again, in µs.
    pub recovery_us: Option<u64>,
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
    /// The client's events, with their time in µs.
    client: Vec<(u64, ClientEvent)>,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The client configuration of a scenario: one TCP server per simulated server, sorted by name,
/// and the scenario's policy with the scenario's seed and the workload's deadline (so that
/// aggregated calls, which take the policy's deadline, have the workload's too).
pub fn client_config(scenario: &Scenario) -> Config {
    let policy = Policy {
        seed: scenario.seed,
        deadline: Period::new(scenario.workload.deadline).unwrap_or(scenario.policy.deadline),
        ..scenario.policy.clone()
    };
    let mut policy = policy;
    if scenario.sabotage == Some(Sabotage::IgnoreBreaker) {
        policy.breaker.mode = BreakerMode::Shadow;
    }
    let mut servers: Vec<ServerConfig> = scenario
        .servers()
        .into_iter()
        .map(|(name, group)| ServerConfig {
            transport: TransportSpec::Tcp { address: format!("{name}:{PORT}") },
            group: Some(group.replica_set().to_owned()),
            weight: group.weight,
            priority: group.priority,
            tags: group.tags.clone(),
            trusted: scenario.trusted,
            connect_timeout: policy.connect_timeout.get(),
            call_timeout: policy.call_timeout.get(),
            max_concurrency: policy.max_concurrency.get(),
            queue: policy.queue.get(),
            redact: Redactor::default(),
            name,
        })
        .collect();
    servers.sort_by(|a, b| a.name.cmp(&b.name));
    Config { servers, policy }
}

/// A scenario's turmoil world: the simulation with one host per server, the receipt log of
/// their unsafe side effects, and each server's fault knobs.
pub(crate) struct World<'a> {
    pub(crate) sim: turmoil::Sim<'a>,
    pub(crate) receipts: Receipts,
    pub(crate) answers: Answers,
    pub(crate) knobs: BTreeMap<String, Arc<Mutex<Knobs>>>,
    pub(crate) list_changed: BTreeMap<String, Arc<tokio::sync::Notify>>,
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
    let answers: Answers = Arc::default();
    let mut knobs = BTreeMap::new();
    let mut list_changed = BTreeMap::new();
    for (i, (name, group)) in scenario.servers().into_iter().enumerate() {
        let server = SimServer {
            name: name.clone(),
            group: group.clone(),
            rng: Arc::new(Mutex::new(root.derive(1_000 + i as u64))),
            receipts: receipts.clone(),
            knobs: Arc::default(),
            slots: Arc::new(tokio::sync::Semaphore::new(group.capacity.unwrap_or(u32::MAX >> 3) as usize)),
            waiting: Arc::default(),
            answers: answers.clone(),
            list_changed: Arc::default(),
            started: Arc::default(),
            booted: Arc::default(),
        };
        knobs.insert(name.clone(), server.knobs.clone());
        list_changed.insert(name.clone(), server.list_changed.clone());
        sim.host(name.as_str(), move || server::serve(server.clone()));
    }
    World { sim, receipts, answers, knobs, list_changed }
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
    let config = client_config(scenario);
    // The client names servers by their index in its configuration (sorted by name).
    let names: Vec<String> = config.servers.iter().map(|s| s.name.clone()).collect();
    let root = SeededRng::new(scenario.seed);
    let deadline = scenario.workload.deadline;
    let limit = CONNECT_GRACE + scenario.duration + deadline + Duration::from_secs(30);
    let World { mut sim, receipts, answers, knobs, list_changed } = world(scenario, limit);

    let log = Arc::new(Mutex::new(Log::default()));
    let mut workload = scenario.workload.clone();
    if scenario.sabotage == Some(Sabotage::FirstAsMajority) && workload.aggregate.is_some() {
        workload.aggregate = Some(Aggregation::First);
    }
    let duration = scenario.duration;
    let workload_rng = root.derive(3);
    let client_log = log.clone();
    sim.client(CLIENT, async move {
        let origin = tokio::time::Instant::now();
        let events = client_log.clone();
        let observer: Observer = Arc::new(move |event: &ClientEvent| {
            let t = micros(tokio::time::Instant::now().saturating_duration_since(origin + CONNECT_GRACE));
            events.lock().expect("log").client.push((t, *event));
        });
        let client = Arc::new(MultiServerClient::start_observed(config, TurmoilConnector, Some(observer)));
        client.wait_ready(CONNECT_GRACE).await;
        // The workload starts at the grace exactly, so that every time in the log and every
        // fault's `at` count from the same instant.
        tokio::time::sleep_until(origin + CONNECT_GRACE).await;
        drive(client, workload, duration, workload_rng, client_log).await;
        Ok(())
    });

    let mut faults: Vec<_> = scenario.faults.iter().map(|f| (f, false, false)).collect();
    let mut fault_events = Vec::new();
    let hosts_of = |target: &str| scenario.targets(target);
    let knob = |host: &str, change: &dyn Fn(&mut Knobs)| {
        if let Some(k) = knobs.get(host) {
            change(&mut k.lock().expect("knobs"));
        }
    };
    let tell = |host: &str| {
        if let Some(n) = list_changed.get(host) {
            n.notify_one();
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
                        FaultKind::ListChange(tools) => {
                            knob(&host, &|k| k.tools = Some(tools.clone()));
                            tell(&host);
                        }
                    }
                    fault_events.push(fault_event(log_time, true, &host, &fault.kind));
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
                        FaultKind::ListChange(_) => {
                            knob(&host, &|k| k.tools = None);
                            tell(&host);
                        }
                    }
                    fault_events.push(fault_event(log_time, false, &host, &fault.kind));
                }
            }
        }
        if step(&mut sim, scenario)? {
            break;
        }
    }

    let Log { calls, client } = std::mem::take(&mut *log.lock().expect("log"));
    let calls: Vec<CallRecord> = calls.into_values().collect();
    let events = timeline(fault_events, &client, &names);
    let receipts = receipts.lock().expect("receipts").clone();
    let mut violations = check(&calls, &receipts, deadline, scenario.tick);
    violations.extend(check_breakers(&client, &names));
    if matches!(scenario.workload.aggregate, Some(Aggregation::Majority)) {
        violations.extend(check_majority(&calls, &answers.lock().expect("answers")));
    }
    let first_fault = scenario.faults.iter().map(|f| f.at).min().unwrap_or_default();
    let recovery_us =
        scenario.last_heal().and_then(|heal| record::recovery_us(&calls, micros(first_fault), micros(heal)));
    if let Some(heal) = scenario.last_heal()
        && recovery_us.is_none_or(|r| r > micros(scenario.recovery_bound))
        && heal + scenario.recovery_bound <= scenario.duration
    {
        violations.push(Violation::NotRecovered { bound_us: micros(scenario.recovery_bound) });
    }
    let digest = digest(&calls, &events);
    Ok(RunReport {
        scenario: scenario.name.clone(),
        seed: scenario.seed,
        strategy: scenario.strategy().name().to_owned(),
        attempts: calls.iter().map(|c| u64::from(c.attempts)).sum(),
        calls,
        events,
        recovery_us,
        violations,
        digest,
    })
}

fn fault_event(t_us: u64, started: bool, server: &str, fault: &FaultKind) -> Event {
    let fault = fault.name().to_owned();
    let what = if started { What::FaultStart { fault } } else { What::FaultEnd { fault } };
    Event { t_us, server: server.to_owned(), what }
}

/// The run's timeline: faults and the client's events but its attempts, merged in time order
/// (faults first within a tick: they are applied before the step that the client reacts in).
fn timeline(faults: Vec<Event>, client: &[(u64, ClientEvent)], names: &[String]) -> Vec<Event> {
    let name = |id: gauntlet_core::ServerId| names.get(id.index()).cloned().unwrap_or_default();
    let from_client = client.iter().filter_map(|(t, e)| {
        let (server, what) = match *e {
            ClientEvent::Connected { server } => (server, What::Connected),
            ClientEvent::Disconnected { server } => (server, What::Disconnected),
            ClientEvent::Breaker { server, from, to } => (server, What::Breaker { from, to }),
            ClientEvent::Ejected { server, ejected: true } => (server, What::Ejected),
            ClientEvent::Ejected { server, ejected: false } => (server, What::Restored),
            ClientEvent::Failover { from, to } => (from, What::Failover { to: name(to) }),
            ClientEvent::Sent { .. } => return None,
        };
        Some(Event { t_us: *t, server: name(server), what })
    });
    let mut events: Vec<Event> = faults.into_iter().chain(from_client).collect();
    // A stable sort keeps each source's own order.
    events.sort_by_key(|e| e.t_us);
    events
}

/// The safety checks of every run on its calls: every call ended, within its deadline, and no
/// truly unsafe call took effect twice.
pub fn check(
    calls: &[CallRecord],
    receipts: &BTreeMap<u64, u32>,
    deadline: Duration,
    tick: Duration,
) -> Vec<Violation> {
    let mut out = Vec::new();
    for c in calls {
        match c.took_us() {
            None => out.push(Violation::Lost { call: c.id }),
            Some(took) => {
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

/// No attempt passes an open breaker, and a half-open one admits probes only: replays the
/// client's events in order, tracking each server's breaker state.
pub fn check_breakers(events: &[(u64, ClientEvent)], names: &[String]) -> Vec<Violation> {
    let mut state: Vec<Phase> = vec![Phase::Closed; names.len()];
    let mut out = Vec::new();
    for (t, e) in events {
        match e {
            ClientEvent::Breaker { server, to, .. } if server.index() < state.len() => state[server.index()] = *to,
            ClientEvent::Sent { server, probe, .. } if server.index() < state.len() => {
                let s = state[server.index()];
                if s == Phase::Open || (s == Phase::HalfOpen && !probe) {
                    out.push(Violation::BreakerBypassed { server: names[server.index()].clone(), t_us: *t, state: s });
                }
            }
            _ => {}
        }
    }
    out
}

/// A majority answer is never a minority's: the answer an aggregated call returned must be
/// the one more than half of the servers that answered it gave (as the servers recorded them).
pub fn check_majority(calls: &[CallRecord], answers: &BTreeMap<u64, Vec<(String, String)>>) -> Vec<Violation> {
    let mut out = Vec::new();
    for c in calls {
        let Some(CallEnd::Ok { answer: Some(answer), .. }) = &c.end else { continue };
        let given = answers.get(&c.id).map(Vec::as_slice).unwrap_or_default();
        let agreeing = given.iter().filter(|(_, a)| a == answer).count();
        if agreeing * 2 <= given.len() {
            out.push(Violation::MinorityAnswer { call: c.id, agreeing, answered: given.len() });
        }
    }
    out
}

/// The hash of a run's log: every call (id order) and every timeline event, as their typed
/// values print (`Debug`), never as prose meant for people.
pub fn digest(calls: &[CallRecord], events: &[Event]) -> String {
    use std::fmt::Write;
    let mut text = String::new();
    for c in calls {
        let _ = writeln!(text, "{} {} {} {:?} {} {:?}", c.id, c.tool, c.start_us, c.end_us, c.attempts, c.end);
    }
    for e in events {
        let _ = writeln!(text, "{} {} {:?}", e.t_us, e.server, e.what);
    }
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(text.as_bytes()))
}

/// Attempts a failed call sent.
fn failed_attempts(e: &CallError) -> u32 {
    match e {
        CallError::Failed { attempts, .. } => *attempts,
        CallError::NoServer { tried, .. } => u32::try_from(tried.len()).unwrap_or(u32::MAX),
        CallError::UnknownTool(_) | CallError::Aggregate(_) => 0,
    }
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
            let (client, log, deadline, aggregate) =
                (client.clone(), log.clone(), workload.deadline, workload.aggregate);
            async move {
                let started = tokio::time::Instant::now();
                log.lock().expect("log").calls.insert(id, CallRecord::started(id, &tool, micros(started - start)));
                let mut args = serde_json::Map::from_iter([("call".to_owned(), json!(id))]);
                let (attempts, end) = match aggregate {
                    None => {
                        let options = CallOptions { deadline: Some(deadline), ..CallOptions::default() };
                        match client.call_tool_with(&tool, args, options).await {
                            Ok(r) => (
                                r.attempts,
                                CallEnd::Ok {
                                    server: r.server,
                                    tool_error: r.result.is_error == Some(true),
                                    answer: None,
                                },
                            ),
                            Err(e) => (failed_attempts(&e), CallEnd::Failed(Failure::from(&e))),
                        }
                    }
                    Some(aggregation) => {
                        // Servers record their answers to calls marked `fanout` for the checker.
                        args.insert("fanout".to_owned(), json!(true));
                        match client.call_all(&tool, args, aggregation).await {
                            Ok((value, agreeing)) => {
                                let answer = value.pointer("/content/0/text").and_then(Value::as_str);
                                let server = agreeing.into_iter().next().unwrap_or_default();
                                (1, CallEnd::Ok { server, tool_error: false, answer: answer.map(str::to_owned) })
                            }
                            Err(e) => (1, CallEnd::Failed(Failure::from(&e))),
                        }
                    }
                };
                let mut log = log.lock().expect("log");
                let record = log.calls.get_mut(&id).expect("recorded at start");
                record.end_us = Some(micros(tokio::time::Instant::now() - start));
                record.attempts = attempts;
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
