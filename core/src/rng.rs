//! Seeded, portable randomness.
//!
//! Every randomized decision draws from a [`SeededRng`] passed in by the caller. It wraps
//! ChaCha8 (`rand_chacha`): its output is specified independently of platform, word size and
//! crate version, unlike `SmallRng`, so a seed printed by one machine replays on another.
//! One root seed per run; each consumer gets its own child stream ([`SeededRng::derive`]) so
//! adding a consumer does not shift everybody else's draws.

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng as _, SeedableRng};

/// A deterministic random source: ChaCha8 with a 64-bit seed and a 64-bit stream number.
#[derive(Clone, Debug)]
pub struct SeededRng {
    inner: ChaCha8Rng,
    seed: u64,
}

impl SeededRng {
    /// A generator for `seed`, on stream 0.
    pub fn new(seed: u64) -> SeededRng {
        SeededRng { inner: ChaCha8Rng::seed_from_u64(seed), seed }
    }

    /// An independent child stream of the same root seed, named by `stream`.
    ///
    /// `derive(k)` gives the same sequence whatever has been drawn from `self` so far.
    pub fn derive(&self, stream: u64) -> SeededRng {
        let mut inner = ChaCha8Rng::seed_from_u64(self.seed);
        inner.set_stream(stream);
        SeededRng { inner, seed: self.seed }
    }

    /// The root seed this generator was made from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// A uniform integer in `0..n`; `n` must be positive.
    ///
    /// Lemire's multiply-shift with rejection ("Fast Random Integer Generation in an Interval",
    /// 2019): exact, and almost always a single 64-bit draw.
    #[inline]
    pub fn below(&mut self, n: u32) -> u32 {
        debug_assert!(n > 0, "below(0) has no value to return");
        let low = |m: u64| m & u64::from(u32::MAX);
        let n = u64::from(n);
        let mut m = u64::from(self.inner.next_u32()) * n;
        if low(m) < n {
            let threshold = (1u64 << 32).wrapping_sub(n) % n;
            while low(m) < threshold {
                m = u64::from(self.inner.next_u32()) * n;
            }
        }
        (m >> 32) as u32
    }

    /// A uniform float in `[0, 1)` with 53 bits of precision.
    #[inline]
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_sequence() {
        let mut a = SeededRng::new(7);
        let mut b = SeededRng::new(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn a_derived_stream_does_not_depend_on_draws_from_its_parent() {
        let mut parent = SeededRng::new(9);
        let before = parent.derive(3).next_u64();
        parent.next_u64();
        assert_eq!(parent.derive(3).next_u64(), before);
        assert_ne!(parent.derive(4).next_u64(), before);
    }

    #[test]
    fn chacha8_output_is_pinned_so_seeds_replay_across_versions() {
        // If this changes, every recorded seed and digest changes meaning: bump it deliberately.
        let mut rng = SeededRng::new(42);
        let first: Vec<u64> = (0..2).map(|_| rng.next_u64()).collect();
        assert_eq!(first, PINNED_SEED_42);
    }
    const PINNED_SEED_42: [u64; 2] = [12_578_764_544_318_200_737, 17_529_487_244_874_322_312];

    #[test]
    fn below_stays_in_range_and_reaches_every_value() {
        let mut rng = SeededRng::new(1);
        let mut seen = [0u32; 7];
        for _ in 0..7_000 {
            let v = rng.below(7);
            assert!(v < 7);
            seen[v as usize] += 1;
        }
        assert!(seen.iter().all(|&c| c > 800), "{seen:?}");
    }

    #[test]
    fn unit_is_in_the_half_open_interval() {
        let mut rng = SeededRng::new(2);
        for _ in 0..10_000 {
            let u = rng.unit();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
