//! Random fleets for property tests.

use std::time::Duration;

use gauntlet_core::{Fleet, LatencyConfig, ServerId, ServerSpec, Time};
use proptest::prelude::*;

/// How a generated server is: weight, priority, availability, calls in flight, latency sample.
#[derive(Clone, Debug)]
pub(crate) struct ServerCase {
    pub weight: u32,
    pub priority: u32,
    /// 0: up; 1: unhealthy; 2: breaker open; 3: ejected; 4: retired.
    pub down: u8,
    pub outstanding: u32,
    pub latency_ms: Option<u32>,
    pub excluded: bool,
}

pub(crate) fn server_case(p_down: f64) -> impl Strategy<Value = ServerCase> {
    (
        1u32..=10,
        0u32..3,
        prop::bool::weighted(p_down),
        1u8..5,
        0u32..6,
        prop::option::of(1u32..500),
        prop::bool::weighted(0.15),
    )
        .prop_map(|(weight, priority, is_down, kind, outstanding, latency_ms, excluded)| ServerCase {
            weight,
            priority,
            down: if is_down { kind } else { 0 },
            outstanding,
            latency_ms,
            excluded,
        })
}

pub(crate) fn fleet_cases(max: usize) -> impl Strategy<Value = Vec<ServerCase>> {
    prop_oneof![
        prop::collection::vec(server_case(0.0), 0..max),
        prop::collection::vec(server_case(0.3), 0..max),
        prop::collection::vec(server_case(0.95), 0..max),
    ]
}

pub(crate) const NOW: Time = Time::from_secs(1_000);

/// Builds the fleet; returns it, its members and the excluded ones.
pub(crate) fn build(cases: &[ServerCase]) -> (Fleet, Vec<ServerId>, Vec<ServerId>) {
    let mut fleet = Fleet::new(LatencyConfig::default());
    let mut ids = Vec::new();
    let mut excluded = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let id = fleet.add(&format!("s{i}"), ServerSpec { weight: c.weight, priority: c.priority }).unwrap();
        if let Some(ms) = c.latency_ms {
            fleet.begin(id);
            fleet.end(id, Duration::from_millis(u64::from(ms)), NOW);
        }
        for _ in 0..c.outstanding {
            fleet.begin(id);
        }
        match c.down {
            1 => fleet.set_healthy(id, false, NOW),
            2 => fleet.set_breaker_open(id, true, NOW),
            3 => fleet.set_ejected(id, true, NOW),
            4 => fleet.retire(id, NOW),
            _ => {}
        }
        if c.excluded {
            excluded.push(id);
        }
        ids.push(id);
    }
    (fleet, ids, excluded)
}
