//! What the benches share: ratios taken from rounds alternated in one loop, so the machine's
//! noise hits both sides alike, and one way to report them.
//!
//! Each bench compiles its own copy of this module and uses part of it.
#![allow(dead_code)]

use std::io::Write;
use std::time::Instant;

/// The median and the 10th and 90th percentiles of a set of measurements.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Spread {
    pub(crate) median: f64,
    pub(crate) p10: f64,
    pub(crate) p90: f64,
}

impl Spread {
    /// The spread of `values`, which must not be empty.
    pub(crate) fn of(mut values: Vec<f64>) -> Spread {
        assert!(!values.is_empty(), "a spread of nothing");
        values.sort_by(f64::total_cmp);
        let at = |q: usize| values[(values.len() - 1) * q / 100];
        Spread { median: at(50), p10: at(10), p90: at(90) }
    }
}

impl std::fmt::Display for Spread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.2} (p10 {:.2}, p90 {:.2})", self.median, self.p10, self.p90)
    }
}

/// Runs `ours` and then `peer`, `rounds` times, and returns the spread of the per-round ratio
/// peer time / our time: above 1, ours is faster by that factor.
pub(crate) fn alternated(rounds: usize, mut ours: impl FnMut(), mut peer: impl FnMut()) -> Spread {
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

/// A bench reports on stderr, beside criterion's own output.
pub(crate) fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}
