//! The fault timeline: which faults are active on each host, what they add up to, and applying
//! that to the world from the outer step loop (crash, bounce and link settings exist only on
//! `&mut Sim`); then the faults merged with the client's events into the run's timeline.
//!
//! Faults compose. A host's state is recomputed from every fault active on it whenever one
//! starts or ends, and only the difference is applied, so the end of one fault never undoes
//! another still running:
//! - partition, one-way, hold, crash and byzantine hold while any fault of the kind covers the
//!   host (a `restart` inside a `crash` does not bring the server back);
//! - latency faults add up; loss and brownout rates combine as independent chances,
//!   `1 − Π(1 − p)`;
//! - slow-tool faults all apply (two on one tool add their extra time);
//! - of overlapping tool-list changes, the one started last holds; when it ends, the one before
//!   it holds again.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gauntlet_client::Event as ClientEvent;
use gauntlet_reports::{Event, What};

use crate::log::micros;
use crate::scenario::{Fault, FaultKind, Scenario, SimTool};
use crate::server::Knobs;
use crate::world::{BASE_LATENCY, CLIENT};

/// What the faults active on one host add up to. The default is a healthy host.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Afflictions {
    pub(crate) partitioned: bool,
    pub(crate) one_way: bool,
    pub(crate) held: bool,
    pub(crate) crashed: bool,
    pub(crate) extra_latency: Duration,
    pub(crate) loss: f64,
    pub(crate) error_rate: Option<f64>,
    pub(crate) byzantine: bool,
    pub(crate) slow_tools: Vec<(String, Duration)>,
    pub(crate) tools: Option<Vec<SimTool>>,
}

impl Afflictions {
    /// The state that `active` faults put a host in, given in the order they started.
    pub(crate) fn of<'a>(active: impl IntoIterator<Item = &'a FaultKind>) -> Afflictions {
        let mut a = Afflictions::default();
        let (mut pass, mut ok) = (1.0f64, None::<f64>);
        for kind in active {
            match kind {
                FaultKind::Partition => a.partitioned = true,
                FaultKind::OneWay => a.one_way = true,
                FaultKind::Hold => a.held = true,
                FaultKind::Crash => a.crashed = true,
                FaultKind::Latency(extra) => a.extra_latency = a.extra_latency.saturating_add(*extra),
                FaultKind::Loss(p) => pass *= 1.0 - p,
                FaultKind::Brownout(p) => ok = Some(ok.unwrap_or(1.0) * (1.0 - p)),
                FaultKind::Byzantine => a.byzantine = true,
                FaultKind::SlowTool(tool, extra) => a.slow_tools.push((tool.clone(), *extra)),
                FaultKind::ListChange(tools) => a.tools = Some(tools.clone()),
            }
        }
        a.loss = 1.0 - pass;
        a.error_rate = ok.map(|ok| 1.0 - ok);
        a
    }
}

/// One host's fault, its window in simulated time (offset applied), and where it stands.
struct Scheduled<'s> {
    fault: &'s Fault,
    host: String,
    begin: Duration,
    end: Duration,
    started: bool,
    ended: bool,
}

/// Every fault of a scenario, per host, and the events it made.
pub(crate) struct Faults<'s> {
    scheduled: Vec<Scheduled<'s>>,
    /// What has been applied to each host.
    applied: BTreeMap<String, Afflictions>,
    /// Offset of every fault's `at` (the workload starts after the connect grace).
    offset: Duration,
    pub(crate) events: Vec<Event>,
}

impl<'s> Faults<'s> {
    pub(crate) fn new(scenario: &'s Scenario, offset: Duration) -> Faults<'s> {
        let mut scheduled = Vec::new();
        for fault in &scenario.faults {
            let begin = offset.saturating_add(fault.at);
            let end = begin.saturating_add(fault.duration);
            // The client's host is a target of its own: only a crash reaches it (see `apply`).
            let hosts = if fault.target == CLIENT { vec![CLIENT.to_owned()] } else { scenario.targets(&fault.target) };
            for host in hosts {
                scheduled.push(Scheduled { fault, host, begin, end, started: false, ended: false });
            }
        }
        // Start order decides which tool-list change holds; ties keep the file's order.
        scheduled.sort_by_key(|s| s.begin);
        Faults { scheduled, applied: BTreeMap::new(), offset, events: Vec::new() }
    }

    /// Starts and ends the faults due at `now`; returns each host whose state changed, with
    /// its state before and after.
    pub(crate) fn step(&mut self, now: Duration) -> Vec<(String, Afflictions, Afflictions)> {
        let log_time = micros(now.saturating_sub(self.offset));
        let mut touched: Vec<String> = Vec::new();
        for s in &mut self.scheduled {
            if !s.started && now >= s.begin {
                s.started = true;
                self.events.push(fault_event(log_time, true, &s.host, &s.fault.kind));
                touched.push(s.host.clone());
            }
            if s.started && !s.ended && now >= s.end {
                s.ended = true;
                self.events.push(fault_event(log_time, false, &s.host, &s.fault.kind));
                touched.push(s.host.clone());
            }
        }
        touched.sort();
        touched.dedup();
        let mut changes = Vec::new();
        for host in touched {
            let active = self.scheduled.iter().filter(|s| s.host == host && s.started && !s.ended);
            let now_state = Afflictions::of(active.map(|s| &s.fault.kind));
            let before = self.applied.get(&host).cloned().unwrap_or_default();
            if now_state != before {
                self.applied.insert(host.clone(), now_state.clone());
                changes.push((host, before, now_state));
            }
        }
        changes
    }

    /// Starts and ends the faults due at the simulation's current time, applying what changed
    /// on each host.
    pub(crate) fn apply(
        &mut self,
        sim: &mut turmoil::Sim<'_>,
        knobs: &BTreeMap<String, Arc<Mutex<Knobs>>>,
        list_changed: &BTreeMap<String, Arc<tokio::sync::Notify>>,
        client_down: &tokio::sync::watch::Sender<bool>,
    ) {
        for (host, before, after) in self.step(sim.elapsed()) {
            let h = host.as_str();
            if h == CLIENT {
                // The client's process is crashed and restarted by the workload's driver (it
                // holds the client and its journal), told through this flag.
                if before.crashed != after.crashed {
                    client_down.send_replace(after.crashed);
                }
                continue;
            }
            if (before.partitioned, before.one_way) != (after.partitioned, after.one_way) {
                sim.repair(CLIENT, h);
                if after.partitioned {
                    sim.partition(CLIENT, h);
                } else if after.one_way {
                    sim.partition_oneway(CLIENT, h);
                }
            }
            if before.held != after.held {
                if after.held { sim.hold(CLIENT, h) } else { sim.release(CLIENT, h) }
            }
            if before.crashed != after.crashed {
                if after.crashed { sim.crash(h) } else { sim.bounce(h) }
            }
            if before.extra_latency != after.extra_latency {
                sim.set_link_latency(CLIENT, h, BASE_LATENCY.saturating_add(after.extra_latency));
            }
            if before.loss != after.loss {
                sim.set_link_fail_rate(CLIENT, h, after.loss);
            }
            if let Some(k) = knobs.get(h) {
                let mut k = k.lock().expect("knobs");
                k.error_rate = after.error_rate;
                k.byzantine = after.byzantine;
                k.slow_tools.clone_from(&after.slow_tools);
                k.tools.clone_from(&after.tools);
            }
            if before.tools != after.tools
                && let Some(n) = list_changed.get(h)
            {
                n.notify_one();
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;

    use super::{Afflictions, Faults};
    use crate::scenario::{Arrivals, Fault, FaultKind, Scenario, ServerGroup, ServiceTime, SimTool, Workload};

    fn kind() -> impl Strategy<Value = FaultKind> {
        prop_oneof![
            Just(FaultKind::Partition),
            Just(FaultKind::OneWay),
            Just(FaultKind::Hold),
            Just(FaultKind::Crash),
            Just(FaultKind::Byzantine),
            (1u64..500).prop_map(|ms| FaultKind::Latency(Duration::from_millis(ms))),
            (1u32..=10).prop_map(|k| FaultKind::Loss(f64::from(k) / 10.0)),
            (1u32..=10).prop_map(|k| FaultKind::Brownout(f64::from(k) / 10.0)),
            (1u64..500).prop_map(|ms| FaultKind::SlowTool("t".to_owned(), Duration::from_millis(ms))),
            (0usize..3).prop_map(|n| FaultKind::ListChange((0..n).map(|i| SimTool::safe(&format!("t{i}"))).collect())),
        ]
    }

    fn scenario(faults: Vec<Fault>) -> Scenario {
        let fleet =
            vec![ServerGroup::new("g", 2, vec![SimTool::safe("t")], ServiceTime::Constant(Duration::from_millis(1)))];
        let workload = Workload {
            arrivals: Arrivals::Callers(1),
            mix: vec![("g__t".to_owned(), 1)],
            deadline: Duration::from_secs(1),
            aggregate: None,
            think: Duration::ZERO,
            affinity: None,
        };
        let mut s = Scenario::new("compose", 1, Duration::from_secs(10), fleet, workload);
        s.faults = faults;
        s
    }

    /// The reference: at `t`, the faults whose window covers `t`, in start order (ties in
    /// file order), added up.
    fn reference(s: &Scenario, host: &str, t: Duration) -> Afflictions {
        let mut covering: Vec<(usize, &Fault)> = s
            .faults
            .iter()
            .enumerate()
            .filter(|(_, f)| s.targets(&f.target).iter().any(|h| h == host))
            .filter(|(_, f)| f.at <= t && t < f.at + f.duration)
            .collect();
        covering.sort_by_key(|(i, f)| (f.at, *i));
        Afflictions::of(covering.into_iter().map(|(_, f)| &f.kind))
    }

    proptest! {
        /// Faults on one host stack: whatever overlaps, after every tick each host is in the
        /// state the faults covering that instant add up to, never one an inner fault's end
        /// left behind.
        #[test]
        fn overlapping_faults_leave_each_host_in_the_state_the_covering_faults_add_up_to(
            raw in prop::collection::vec((kind(), 0u64..100, 1u64..60, prop::sample::select(vec!["g", "g-0", "g-1", "g@0.5"])), 1..8),
        ) {
            let faults: Vec<Fault> = raw
                .into_iter()
                .map(|(kind, at, len, target)| Fault {
                    at: Duration::from_millis(at * 10),
                    duration: Duration::from_millis(len * 10),
                    kind,
                    target: target.to_owned(),
                })
                .collect();
            let s = scenario(faults);
            let mut timeline = Faults::new(&s, Duration::ZERO);
            let mut state: std::collections::BTreeMap<String, Afflictions> = Default::default();
            for tick in 0..=200u64 {
                let now = Duration::from_millis(tick * 10);
                for (host, before, after) in timeline.step(now) {
                    prop_assert_eq!(state.get(&host).cloned().unwrap_or_default(), before);
                    state.insert(host, after);
                }
                for host in ["g-0", "g-1"] {
                    let have = state.get(host).cloned().unwrap_or_default();
                    prop_assert_eq!(have, reference(&s, host, now), "{} at {:?}", host, now);
                }
            }
        }
    }

    #[test]
    fn an_inner_partition_ending_does_not_heal_an_outer_one_and_a_restart_does_not_end_a_crash() {
        let f = |at: u64, len: u64, kind: FaultKind| Fault {
            at: Duration::from_secs(at),
            duration: Duration::from_secs(len),
            kind,
            target: "g-0".to_owned(),
        };
        let s = scenario(vec![
            f(1, 6, FaultKind::Partition),
            f(2, 1, FaultKind::Partition),
            f(1, 6, FaultKind::Crash),
            f(3, 1, FaultKind::Crash),
        ]);
        let mut timeline = Faults::new(&s, Duration::ZERO);
        let mut last = Afflictions::default();
        for secs in 0..=8 {
            for (_, _, after) in timeline.step(Duration::from_secs(secs)) {
                last = after;
            }
            let covered = (1..7).contains(&secs);
            assert_eq!((last.partitioned, last.crashed), (covered, covered), "at {secs} s");
        }
    }

    #[test]
    fn latencies_add_rates_combine_as_independent_chances_and_the_latest_tool_list_holds() {
        let ms = Duration::from_millis;
        let a = Afflictions::of(&[
            FaultKind::Latency(ms(100)),
            FaultKind::Latency(ms(50)),
            FaultKind::Brownout(0.5),
            FaultKind::Brownout(0.5),
            FaultKind::Loss(0.2),
            FaultKind::ListChange(vec![SimTool::safe("a")]),
            FaultKind::ListChange(vec![SimTool::safe("b")]),
            FaultKind::SlowTool("t".to_owned(), ms(10)),
            FaultKind::SlowTool("t".to_owned(), ms(20)),
        ]);
        assert_eq!(a.extra_latency, ms(150));
        assert_eq!(a.error_rate, Some(0.75));
        assert!((a.loss - 0.2).abs() < 1e-12);
        assert_eq!(a.tools, Some(vec![SimTool::safe("b")]));
        assert_eq!(a.slow_tools, vec![("t".to_owned(), ms(10)), ("t".to_owned(), ms(20))]);
        assert_eq!(Afflictions::of(&[]), Afflictions::default());
    }
}
