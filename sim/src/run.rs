//! One simulated run: build the world, drive the real client, apply the faults from the outer
//! step loop; the recorder checks and hashes the run as it goes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gauntlet_client::{Event as ClientEvent, MultiServerClient, Observer};
use gauntlet_core::SeededRng;
use gauntlet_core::aggregate::Aggregation;

use crate::faults::Faults;
use crate::log::{RunReport, SimError, micros};
use crate::record::Recorder;
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
    let World { mut sim, receipts, answers, flow_calls, knobs, list_changed } = world(scenario, limit);

    // The majority checker reads the servers' answers (the scenario's aggregation, not the one a
    // sabotaged client uses).
    let majority = matches!(scenario.workload.aggregate, Some(Aggregation::Majority));
    let recorder = Arc::new(Mutex::new(Recorder::new(scenario, names, majority.then(|| answers.clone()))));
    let mut workload = scenario.workload.clone();
    if scenario.sabotage == Some(Sabotage::FirstAsMajority) && workload.aggregate.is_some() {
        workload.aggregate = Some(Aggregation::First);
    }
    let duration = scenario.duration;
    let workload_rng = root.derive(streams::WORKLOAD);
    let client_recorder = recorder.clone();
    let offered = Arc::new(Mutex::new(0u64));
    let client_offered = offered.clone();
    let (client_down, down) = tokio::sync::watch::channel(false);
    let runs: crate::flows::Runs = Arc::default();
    let steps: crate::flows::Steps = Arc::new(Mutex::new(crate::flows::steps(scenario.workflow.as_ref())));
    let flow = scenario.workflow.as_ref().map(|f| f.0.clone());
    let (sabotage, client_runs, client_steps) = (scenario.sabotage, runs.clone(), steps.clone());
    sim.client(CLIENT, async move {
        let origin = tokio::time::Instant::now();
        let events = client_recorder.clone();
        let observer: Observer = Arc::new(move |event: &ClientEvent| {
            let t = micros(tokio::time::Instant::now().saturating_duration_since(origin + CONNECT_GRACE));
            events.lock().expect("recorder").client_event(t, event);
        });
        if let Some(flow) = flow {
            // The first client connects within the grace; the runs start at the grace exactly.
            let client =
                Arc::new(MultiServerClient::start_observed(config.clone(), TurmoilConnector, Some(observer.clone())));
            client.wait_ready(CONNECT_GRACE).await;
            tokio::time::sleep_until(origin + CONNECT_GRACE).await;
            let rig = crate::flows::Rig {
                client,
                config,
                flow,
                workload,
                duration,
                rng: workload_rng,
                recorder: client_recorder,
                observer,
                down,
                disk: crate::disk::SimDisk::new(),
                sabotage,
                runs: client_runs,
                steps: client_steps,
            };
            let n = crate::flows::drive(rig).await;
            *client_offered.lock().expect("offered") = n;
            return Ok(());
        }
        let client = Arc::new(MultiServerClient::start_observed(config, TurmoilConnector, Some(observer)));
        client.wait_ready(CONNECT_GRACE).await;
        // The workload starts at the grace exactly, so that every time in the log and every
        // fault's `at` count from the same instant.
        tokio::time::sleep_until(origin + CONNECT_GRACE).await;
        let n = drive(client, workload, duration, workload_rng, client_recorder).await;
        *client_offered.lock().expect("offered") = n;
        Ok(())
    });

    let mut faults = Faults::new(scenario, CONNECT_GRACE);
    loop {
        faults.apply(&mut sim, &knobs, &list_changed, &client_down);
        if step(&mut sim, scenario)? {
            break;
        }
    }
    // The world (and the memory of its hosts) goes before the report is built.
    drop(sim);
    let offered = *offered.lock().expect("offered");
    let receipts = receipts.lock().expect("receipts");
    let mut report = recorder.lock().expect("recorder").finish(scenario, offered, faults.events, &receipts);
    if let Some(flow) = &scenario.workflow {
        let runs = runs.lock().expect("runs");
        let calls = flow_calls.lock().expect("flow calls");
        report.violations.extend(crate::flows::check(&flow.0, &runs, &calls));
        report.steps = steps.lock().expect("steps").clone();
    }
    Ok(report)
}
