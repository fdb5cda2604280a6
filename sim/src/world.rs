//! A scenario's world: the turmoil simulation with one host per simulated server, the client's
//! configuration, and the random streams the simulator itself draws from.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use gauntlet_client::config::{Config, Redactor, ServerConfig, TransportSpec};
use gauntlet_client::{ConnectError, Connected, Connector, HandlerToken};
use gauntlet_core::SeededRng;
use gauntlet_core::policy::{BreakerMode, Period, Policy};

use crate::log::SimError;
use crate::scenario::{Sabotage, Scenario};
use crate::server::{self, Answers, FlowCalls, Knobs, PORT, Receipts, SimServer};

/// The client's host name.
pub const CLIENT: &str = "client";
/// A fixed epoch, so no wall-clock value enters a run.
const EPOCH_SECS: u64 = 1_700_000_000;
/// The network's one-way latency outside latency faults.
pub(crate) const BASE_LATENCY: Duration = Duration::from_millis(1);

/// The simulator's own random streams, derived from the scenario's seed by number (the client's
/// are the engine's, `gauntlet_core::policy::streams`, from the same seed).
pub mod streams {
    /// The workload: arrivals and the tool mix.
    pub const WORKLOAD: u64 = 3;
    /// The first simulated server's behaviour (latency, errors); server `i` draws from
    /// `SERVER + i`.
    pub const SERVER: u64 = 1_000;
}

/// Dials simulated servers over turmoil's network.
pub(crate) struct TurmoilConnector;

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
    match scenario.sabotage {
        Some(Sabotage::IgnoreBreaker) => policy.breaker.mode = BreakerMode::Shadow,
        Some(Sabotage::ReplayUnsafe) => {
            for (tool, _) in &scenario.workload.mix {
                policy.tools.entry(tool.clone()).or_default().idempotent = Some(true);
            }
        }
        Some(
            Sabotage::FirstAsMajority | Sabotage::SkipCompensation | Sabotage::RerunJournaled | Sabotage::AckOnSend,
        )
        | None => {}
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
    Config { servers, policy, ignored: Vec::new() }
}

/// A scenario's turmoil world: the simulation with one host per server, the receipt log of
/// their unsafe side effects, and each server's fault knobs.
pub(crate) struct World<'a> {
    pub(crate) sim: turmoil::Sim<'a>,
    pub(crate) receipts: Receipts,
    pub(crate) answers: Answers,
    pub(crate) flow_calls: FlowCalls,
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
    let flow_calls: FlowCalls = Arc::default();
    let mut knobs = BTreeMap::new();
    let mut list_changed = BTreeMap::new();
    for (i, (name, group)) in scenario.servers().into_iter().enumerate() {
        let server = SimServer {
            name: name.clone(),
            group: group.clone(),
            rng: Arc::new(Mutex::new(root.derive(streams::SERVER + i as u64))),
            receipts: receipts.clone(),
            knobs: Arc::default(),
            slots: Arc::new(tokio::sync::Semaphore::new(group.capacity.unwrap_or(u32::MAX >> 3) as usize)),
            waiting: Arc::default(),
            answers: answers.clone(),
            flow_calls: flow_calls.clone(),
            list_changed: Arc::default(),
            started: Arc::default(),
            booted: Arc::default(),
        };
        knobs.insert(name.clone(), server.knobs.clone());
        list_changed.insert(name.clone(), server.list_changed.clone());
        sim.host(name.as_str(), move || server::serve(server.clone()));
    }
    World { sim, receipts, answers, flow_calls, knobs, list_changed }
}

/// One turmoil step; `true` once every client host has finished. A failure names the seed.
pub(crate) fn step(sim: &mut turmoil::Sim<'_>, scenario: &Scenario) -> Result<bool, SimError> {
    sim.step().map_err(|e| SimError::Turmoil {
        scenario: scenario.name.clone(),
        seed: scenario.seed,
        message: e.to_string(),
    })
}
