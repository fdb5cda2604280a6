//! The fleets, loads and step of Gauntlet's balance benches, without a clock: what
//! [`bench`](super::bench) (criterion) and `gauntlet::bench` (ratios from alternated rounds) time,
//! for any strategy, built-in or a user's.

use std::time::Duration;

use crate::balance::{Balancer, PickContext};
use crate::fleet::{Fleet, LatencyConfig, ServerId, ServerSpec};
use crate::rng::SeededRng;
use crate::time::Time;

/// The fleet sizes benched.
pub const SIZES: [u32; 4] = [3, 10, 100, 1_000];
/// The seed of every bench's generator.
pub const SEED: u64 = 0x6a09_e667_f3bc_c908;
/// When the fleets' latency samples were taken; the steps go on from here.
pub const START: Time = Time::from_secs(60);
/// One server in this many is hot under skewed load.
pub const HOT_EVERY: u32 = 10;
/// A hot server's calls in flight.
pub const HOT_IN_FLIGHT: u32 = 16;
/// A hot server's latency sample.
pub const HOT_LATENCY: Duration = Duration::from_millis(250);
/// Every other server's latency sample.
pub const LATENCY: Duration = Duration::from_millis(5);

/// How the fleet is loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Load {
    /// Every server one call in flight and the same latency.
    Uniform,
    /// One server in [`HOT_EVERY`] hot: [`HOT_IN_FLIGHT`] calls in flight, a [`HOT_LATENCY`]
    /// sample; the others as under `Uniform`.
    Skewed,
}

impl Load {
    /// Both loads.
    pub const ALL: [Load; 2] = [Load::Uniform, Load::Skewed];

    /// Its name in bench ids.
    pub fn name(self) -> &'static str {
        match self {
            Load::Uniform => "uniform",
            Load::Skewed => "skewed",
        }
    }
}

/// `n` servers with weights 1..=8 under `load`, and their ids.
pub fn fleet(n: u32, load: Load) -> (Fleet, Vec<ServerId>) {
    let mut fleet = Fleet::new(LatencyConfig::default());
    let ids: Vec<_> = (0..n)
        .map(|i| {
            fleet
                .add(&format!("server-{i}"), ServerSpec { weight: 1 + i % 8, priority: 0 })
                .expect("weights 1..=8 are in range")
        })
        .collect();
    for (i, &id) in (0..).zip(&ids) {
        let hot = load == Load::Skewed && i % HOT_EVERY == HOT_EVERY / 2;
        let (in_flight, sample) = if hot { (HOT_IN_FLIGHT, HOT_LATENCY) } else { (1, LATENCY) };
        // One call ends with the sample; the rest stay in flight.
        for _ in 0..=in_flight {
            fleet.begin(id);
        }
        fleet.end(id, sample, START);
    }
    (fleet, ids)
}

/// One pick at `tick` µs after [`START`] and its call's record: the per-call work a balancer
/// adds to the hot path.
pub fn pick_and_record(
    fleet: &mut Fleet,
    ids: &[ServerId],
    balancer: &mut dyn Balancer,
    rng: &mut SeededRng,
    tick: u64,
) {
    let now = START + Duration::from_micros(tick);
    let ctx = PickContext::at(now).with_affinity(tick);
    let id = balancer.pick(&fleet.view(ids), &ctx, rng).expect("every server is available");
    fleet.begin(id);
    fleet.end(id, Duration::from_micros(300 + tick % 700), now);
}
