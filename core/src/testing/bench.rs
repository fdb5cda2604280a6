//! Bench any balancer beside the built-in ones (the `bench` feature, on criterion): the same
//! fleets, loads and steps as Gauntlet's own `balance` bench, which uses this module.
//!
//! - [`bench_strategies`]: groups `balance/<strategy>` (one pick) and
//!   `balance+record/<strategy>` (a pick and its call's record: begin, end with a latency
//!   sample), ids `<load>/<n>`, at n = 3, 10, 100, 1,000 available servers, under `uniform` and
//!   `skewed` load;
//! - [`alternated_ratio`]: a baseline strategy's time over yours for the same steps, from rounds
//!   run one after the other so that the machine's noise hits both alike.
//!
//! ```no_run
//! use criterion::Criterion;
//! use gauntlet_core::balance::Strategy;
//! use gauntlet_core::testing::bench::{Load, alternated_ratio, bench_strategies};
//!
//! fn benches(c: &mut Criterion, mine: Strategy) {
//!     bench_strategies(c, &[mine, Strategy::P2C_PEAK_EWMA]);
//!     let ratio = alternated_ratio(mine, Strategy::P2C_PEAK_EWMA, 1_000, Load::Uniform, 30, 50_000);
//!     println!("p2c-peak-ewma time / mine: {ratio}");
//! }
//! ```

use std::fmt;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};

use crate::balance::{Balancer, PickContext, Strategy};
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

/// Benches `step` for each of `strategies`, load and size, in groups named
/// `{prefix}/{strategy}`. `step` gets the fleet, its members, the balancer, the generator and a
/// tick that advances by one (a microsecond of simulated time) per iteration.
pub fn each_strategy(
    c: &mut Criterion,
    prefix: &str,
    strategies: &[Strategy],
    mut step: impl FnMut(&mut Fleet, &[ServerId], &mut dyn Balancer, &mut SeededRng, u64),
) {
    for &strategy in strategies {
        let mut group = c.benchmark_group(format!("{prefix}/{strategy}"));
        group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(2));
        for load in Load::ALL {
            for n in SIZES {
                let (mut fleet, ids) = fleet(n, load);
                let mut balancer = strategy.build();
                let mut rng = SeededRng::new(SEED);
                let mut tick = 0u64;
                group.bench_function(BenchmarkId::new(load.name(), n), |b| {
                    b.iter(|| {
                        tick += 1;
                        step(&mut fleet, &ids, balancer.as_mut(), &mut rng, tick);
                    });
                });
            }
        }
        group.finish();
    }
}

/// The `balance` and `balance+record` groups for each of `strategies` (built-in or registered).
pub fn bench_strategies(c: &mut Criterion, strategies: &[Strategy]) {
    each_strategy(c, "balance", strategies, |fleet, ids, balancer, rng, tick| {
        let ctx = PickContext::at(START + Duration::from_micros(tick)).with_affinity(tick);
        black_box(balancer.pick(black_box(&fleet.view(ids)), &ctx, rng));
    });
    each_strategy(c, "balance+record", strategies, pick_and_record);
}

/// The median and the 10th and 90th percentiles of a set of measurements.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// The median.
    pub median: f64,
    /// The 10th percentile.
    pub p10: f64,
    /// The 90th percentile.
    pub p90: f64,
}

impl Spread {
    /// The spread of `values` (all zero when there are none).
    pub fn of(mut values: Vec<f64>) -> Spread {
        if values.is_empty() {
            return Spread { median: 0.0, p10: 0.0, p90: 0.0 };
        }
        values.sort_by(f64::total_cmp);
        let at = |q: usize| values[(values.len() - 1) * q / 100];
        Spread { median: at(50), p10: at(10), p90: at(90) }
    }
}

impl fmt::Display for Spread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Two decimals, or three significant digits for a ratio under 0.1 (0.0025, not 0.00).
        let decimals = if self.median > 0.0 && self.median < 0.1 {
            usize::try_from((2.0 - self.median.log10().floor()) as i64).unwrap_or(2)
        } else {
            2
        };
        write!(f, "{:.*} (p10 {:.*}, p90 {:.*})", decimals, self.median, decimals, self.p10, decimals, self.p90)
    }
}

/// Runs `ours` and then `peer`, `rounds` times, and returns the spread of the per-round ratio
/// peer time / our time: above 1, ours is faster by that factor.
// A bench measures wall time; no decision of the core reads it.
#[allow(clippy::disallowed_methods)]
pub fn alternated(rounds: usize, mut ours: impl FnMut(), mut peer: impl FnMut()) -> Spread {
    let ratios = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            ours();
            let ours = t.elapsed();
            let t = Instant::now();
            peer();
            t.elapsed().as_secs_f64() / ours.as_secs_f64().max(f64::MIN_POSITIVE)
        })
        .collect();
    Spread::of(ratios)
}

/// `baseline`'s time over `ours` for `calls` picks and records at `n` servers under `load`,
/// from `rounds` alternated rounds: above 1, `ours` is faster by that factor.
pub fn alternated_ratio(ours: Strategy, baseline: Strategy, n: u32, load: Load, rounds: usize, calls: u64) -> Spread {
    let side = |strategy: Strategy| {
        let (mut fleet, ids) = fleet(n, load);
        let mut balancer = strategy.build();
        let mut rng = SeededRng::new(SEED);
        let mut tick = 0u64;
        move || {
            for _ in 0..calls {
                tick += 1;
                pick_and_record(&mut fleet, &ids, balancer.as_mut(), &mut rng, tick);
            }
        }
    };
    alternated(rounds, side(ours), side(baseline))
}

#[cfg(test)]
mod tests {
    use super::Spread;

    #[test]
    fn a_small_ratio_prints_its_significant_digits() {
        assert_eq!(Spread::of(vec![7.861]).to_string(), "7.86 (p10 7.86, p90 7.86)");
        assert_eq!(Spread::of(vec![0.0025]).to_string(), "0.00250 (p10 0.00250, p90 0.00250)");
    }
}
