//! Power of two choices: sample two available servers at random, send to the less loaded.
//!
//! Mitzenmacher, "The Power of Two Choices in Randomized Load Balancing" (2001): two random
//! samples instead of one cut the maximum queue from O(log n / log log n) to O(log log n), at
//! O(1) cost and without the herding that an exact least-loaded pick causes when many clients
//! see the same stale loads. The load is pluggable ([`Load`], as in tower):
//!
//! - [`Pending`]: calls in flight.
//! - [`PeakEwma`]: Finagle's and linkerd's cost, Peak-EWMA latency × (calls in flight + 1),
//!   which steers away from a slow server before its queue builds up. The estimate and its decay
//!   live in the fleet (`fleet::LatencyConfig`); the time is the pick's `now`.
//!
//! The two samples are distinct whenever two eligible servers exist; a tie goes to the first
//! sample, which is itself random. [`sample_pair`] is public so a test can replay the draw.

use super::available::Available;
use super::{Balancer, PickContext};
use crate::fleet::{FleetView, ServerId};
use crate::rng::SeededRng;
use crate::time::Time;

/// Draws before falling back to a scan when a sample is excluded.
const REDRAWS: u32 = 8;

/// A load metric that P2C compares; lower is better.
pub trait Load {
    /// The metric's type.
    type Metric: PartialOrd + Copy;
    /// The load of `id` at `now`.
    fn load(&self, view: &FleetView<'_>, id: ServerId, now: Time) -> Self::Metric;
}

/// Load = calls in flight.
#[derive(Clone, Copy, Debug, Default)]
pub struct Pending;

impl Load for Pending {
    type Metric = u32;
    #[inline]
    fn load(&self, view: &FleetView<'_>, id: ServerId, _now: Time) -> u32 {
        view.state(id).outstanding()
    }
}

/// Load = Peak-EWMA latency (ns) × (calls in flight + 1).
#[derive(Clone, Copy, Debug, Default)]
pub struct PeakEwma;

impl Load for PeakEwma {
    type Metric = f64;
    #[inline]
    fn load(&self, view: &FleetView<'_>, id: ServerId, now: Time) -> f64 {
        view.fleet().latency_nanos(id, now) * f64::from(view.state(id).outstanding() + 1)
    }
}

/// Best of two random choices by `L`. O(1) per pick.
#[derive(Clone, Debug, Default)]
pub struct P2c<L> {
    load: L,
    available: Available,
}

impl<L: Load> P2c<L> {
    /// P2C comparing by `load`.
    pub fn new(load: L) -> P2c<L> {
        P2c { load, available: Available::default() }
    }
}

/// Two distinct indices below `len` (or one when `len == 1`), uniformly among ordered pairs.
#[inline]
pub fn sample_pair(len: u32, rng: &mut SeededRng) -> (u32, Option<u32>) {
    debug_assert!(len > 0);
    let a = rng.below(len);
    if len == 1 {
        return (a, None);
    }
    let mut b = rng.below(len - 1);
    if b >= a {
        b += 1;
    }
    (a, Some(b))
}

impl<L: Load> Balancer for P2c<L> {
    #[inline]
    fn pick(&mut self, view: &FleetView<'_>, ctx: &PickContext<'_>, rng: &mut SeededRng) -> Option<ServerId> {
        let ids = self.available.refresh(view);
        let len = u32::try_from(ids.len()).ok().filter(|&n| n > 0)?;
        let (a, b) = if ctx.exclude.is_empty() {
            let (i, j) = sample_pair(len, rng);
            (ids[i as usize], j.map(|j| ids[j as usize]))
        } else {
            pair_excluding(ids, ctx, rng)?
        };
        let Some(b) = b else { return Some(a) };
        let (la, lb) = (self.load.load(view, a, ctx.now), self.load.load(view, b, ctx.now));
        Some(if lb < la { b } else { a })
    }
}

/// Two distinct eligible samples by redrawing, or a scan from a random start after too many
/// misses; `None` when nothing is eligible.
#[cold]
fn pair_excluding(
    ids: &[ServerId],
    ctx: &PickContext<'_>,
    rng: &mut SeededRng,
) -> Option<(ServerId, Option<ServerId>)> {
    let len = ids.len() as u32;
    let mut first = None;
    for _ in 0..REDRAWS {
        let id = ids[rng.below(len) as usize];
        if ctx.is_excluded(id) || first == Some(id) {
            continue;
        }
        match first {
            None => first = Some(id),
            Some(a) => return Some((a, Some(id))),
        }
    }
    let start = rng.below(len) as usize;
    let mut scan = (0..ids.len()).map(|k| ids[(start + k) % ids.len()]).filter(|&id| !ctx.is_excluded(id));
    match first {
        Some(a) => Some((a, scan.find(|&id| id != a))),
        None => {
            let a = scan.next()?;
            Some((a, scan.next()))
        }
    }
}
