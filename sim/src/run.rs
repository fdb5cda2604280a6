//! One simulated run: build the world, drive the real client, apply the faults from the outer
//! step loop, then check the run and hash its log.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gauntlet_client::{Event as ClientEvent, MultiServerClient, Observer};
use gauntlet_core::SeededRng;
use gauntlet_core::aggregate::Aggregation;
use gauntlet_reports::Violation;

use crate::checkers::{check, check_breakers, check_majority};
use crate::faults::{Faults, timeline};
use crate::log::{CallRecord, Log, RunReport, SimError, digest, micros};
use crate::record;
use crate::scenario::{Sabotage, Scenario};
use crate::workload::drive;
use crate::world::{CLIENT, TurmoilConnector, World, client_config, step, streams, world};

/// How long the client may take to connect before the workload starts.
const CONNECT_GRACE: Duration = Duration::from_secs(2);

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
    let workload_rng = root.derive(streams::WORKLOAD);
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

    let mut faults = Faults::new(scenario, CONNECT_GRACE);
    loop {
        faults.apply(&mut sim, &knobs, &list_changed);
        if step(&mut sim, scenario)? {
            break;
        }
    }

    let Log { calls, client, offered } = std::mem::take(&mut *log.lock().expect("log"));
    let calls: Vec<CallRecord> = calls.into_values().collect();
    let events = timeline(faults.events, &client, &names);
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
    // Offered load is delivered, or the shortfall is reported.
    let issued = calls.len() as u64;
    if issued.saturating_mul(100) < offered.saturating_mul(99) {
        violations.push(Violation::Shortfall { offered, issued });
    }
    let digest = digest(&calls, &events);
    Ok(RunReport {
        scenario: scenario.name.clone(),
        seed: scenario.seed,
        strategy: scenario.strategy().name().to_owned(),
        attempts: calls.iter().map(|c| u64::from(c.attempts)).sum(),
        offered,
        calls,
        events,
        recovery_us,
        violations,
        digest,
    })
}
