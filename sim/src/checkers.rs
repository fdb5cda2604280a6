//! The checkers every run passes through: safety (nothing lost, no deadline missed, no unsafe
//! side effect twice, no attempt through an open breaker, no minority answer passed off as the
//! majority's). Liveness (recovery) is judged in `run` from the recorder's figure.

use std::collections::BTreeMap;
use std::time::Duration;

use gauntlet_client::Event as ClientEvent;
use gauntlet_core::breaker::Phase;
use gauntlet_reports::Violation;

use crate::log::{CallEnd, CallRecord, micros};

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
