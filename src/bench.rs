//! Ratios from alternated rounds: a baseline's time over yours for the same work, each round
//! running one and then the other so that the machine's noise hits both alike. The benches use
//! it, and a user's bench of their own strategy does too (`examples/custom-balancer`). It reads
//! the wall clock, which is why it lives here and not in the core.

use std::fmt;
use std::time::Instant;

use gauntlet_core::SeededRng;
use gauntlet_core::balance::Strategy;
use gauntlet_core::testing::load::{Load, SEED, fleet, pick_and_record};

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
