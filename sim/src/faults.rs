//! The fault timeline: applies each fault to the world when it starts and undoes it when it
//! ends, from the outer step loop (crash, bounce and link settings exist only on `&mut Sim`),
//! and merges the faults with the client's events into the run's timeline.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gauntlet_client::Event as ClientEvent;
use gauntlet_reports::{Event, What};

use crate::log::micros;
use crate::scenario::{Fault, FaultKind, Scenario};
use crate::server::Knobs;
use crate::world::{BASE_LATENCY, CLIENT};

/// Every fault of a scenario, whether it has started and ended, and the events it made.
pub(crate) struct Faults<'s> {
    scenario: &'s Scenario,
    faults: Vec<(&'s Fault, bool, bool)>,
    /// Offset of every fault's `at` (the workload starts after the connect grace).
    offset: Duration,
    pub(crate) events: Vec<Event>,
}

impl<'s> Faults<'s> {
    pub(crate) fn new(scenario: &'s Scenario, offset: Duration) -> Faults<'s> {
        Faults {
            scenario,
            faults: scenario.faults.iter().map(|f| (f, false, false)).collect(),
            offset,
            events: Vec::new(),
        }
    }

    /// Starts and ends the faults due at the simulation's current time.
    pub(crate) fn apply(
        &mut self,
        sim: &mut turmoil::Sim<'_>,
        knobs: &BTreeMap<String, Arc<Mutex<Knobs>>>,
        list_changed: &BTreeMap<String, Arc<tokio::sync::Notify>>,
    ) {
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
        let now = sim.elapsed();
        let log_time = micros(now.saturating_sub(self.offset));
        for (fault, started, ended) in &mut self.faults {
            let begin = self.offset + fault.at;
            let end = begin + fault.duration;
            if !*started && now >= begin {
                *started = true;
                for host in self.scenario.targets(&fault.target) {
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
                    self.events.push(fault_event(log_time, true, &host, &fault.kind));
                }
            }
            if *started && !*ended && now >= end {
                *ended = true;
                for host in self.scenario.targets(&fault.target) {
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
                    self.events.push(fault_event(log_time, false, &host, &fault.kind));
                }
            }
        }
    }
}

fn fault_event(t_us: u64, started: bool, server: &str, fault: &FaultKind) -> Event {
    let fault = fault.name().to_owned();
    let what = if started { What::FaultStart { fault } } else { What::FaultEnd { fault } };
    Event { t_us, server: server.to_owned(), what }
}

/// The run's timeline: faults and the client's events but its attempts, merged in time order
/// (faults first within a tick: they are applied before the step that the client reacts in).
pub(crate) fn timeline(faults: Vec<Event>, client: &[(u64, ClientEvent)], names: &[String]) -> Vec<Event> {
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
