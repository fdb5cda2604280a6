//! The throughput baseline: the same turmoil world and simulated servers, called with raw rmcp
//! (round-robin over one peer per server) by the same closed-loop callers, without Gauntlet.
//! `benches/sim.rs` runs it beside [`run`](crate::run()) to report their ratio.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rmcp::model::{CallToolRequestParams, JsonObject};
use rmcp::{ClientHandler, ClientLifecycleMode, ClientServiceExt};
use serde_json::json;

use crate::log::SimError;
use crate::scenario::{Arrivals, Scenario};
use crate::server::PORT;
use crate::world::{self, CLIENT};

#[derive(Clone, Default)]
struct Raw;
impl ClientHandler for Raw {}

/// Runs `scenario`'s fleet and closed-loop workload with raw rmcp; returns the calls answered.
/// Faults, deadlines and retries are not part of the baseline.
pub fn run_raw(scenario: &Scenario) -> Result<u64, SimError> {
    let Arrivals::Callers(callers) = scenario.workload.arrivals else {
        return Err(SimError::Config { scenario: scenario.name.clone(), message: "the baseline needs callers".into() });
    };
    let mut sim = world::world(scenario, scenario.duration + Duration::from_secs(30)).sim;
    let servers = scenario.servers();
    let names: Vec<String> = servers.iter().map(|(n, _)| n.clone()).collect();
    let tools: Vec<String> = scenario
        .workload
        .mix
        .iter()
        .map(|(t, _)| t.split_once("__").map_or(t.as_str(), |(_, t)| t).to_owned())
        .collect();
    let answered = Arc::new(AtomicU64::new(0));
    let counter = answered.clone();
    let duration = scenario.duration;
    sim.client(CLIENT, async move {
        let mut peers = Vec::new();
        for name in &names {
            let stream = turmoil::net::TcpStream::connect((name.as_str(), PORT)).await?;
            let lifecycle = ClientLifecycleMode::Auto {
                preferred_versions: vec![rmcp::model::ProtocolVersion::V_2026_07_28],
                legacy_version: Some(rmcp::model::ProtocolVersion::LATEST_WITH_INITIALIZE),
            };
            let running = Raw.serve_with_lifecycle(stream, lifecycle).await?;
            peers.push(running);
        }
        let peers: Arc<Vec<_>> = Arc::new(peers.iter().map(|r| r.peer().clone()).collect());
        let start = tokio::time::Instant::now();
        let next = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..callers {
            let (peers, next, tools, counter) = (peers.clone(), next.clone(), tools.clone(), counter.clone());
            tasks.push(tokio::spawn(async move {
                while start.elapsed() < duration {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let tool = tools[(i as usize) % tools.len()].clone();
                    let args = JsonObject::from_iter([("call".to_owned(), json!(i))]);
                    let params = CallToolRequestParams::new(tool).with_arguments(args);
                    if peers[(i as usize) % peers.len()].call_tool(params).await.is_ok() {
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
        Ok(())
    });
    while !world::step(&mut sim, scenario)? {}
    Ok(answered.load(Ordering::Relaxed))
}
