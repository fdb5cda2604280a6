//! Random: a uniform choice among the available servers.
//!
//! Stateless apart from the cache, and a good baseline under heavy concurrency where
//! round-robin's lock-step can synchronise clients. Exclusions are handled by redrawing (a
//! retry excludes one or two servers, so a redraw almost always succeeds) and, after
//! [`REDRAWS`] misses, by a scan from a random start, which keeps the pick total.

use super::available::Available;
use super::{Balancer, PickContext};
use crate::fleet::{FleetView, ServerId};
use crate::rng::SeededRng;

/// Redraws before falling back to a scan when the drawn server is excluded.
const REDRAWS: u32 = 8;

/// Uniform over the available members. O(1) per pick.
#[derive(Clone, Debug, Default)]
pub struct Random {
    available: Available,
}

impl Random {
    /// A random balancer.
    pub fn new() -> Random {
        Random::default()
    }
}

/// A uniform random element of `ids` not excluded by `ctx`, if any.
#[inline]
pub(crate) fn draw(ids: &[ServerId], ctx: &PickContext<'_>, rng: &mut SeededRng) -> Option<ServerId> {
    let len = u32::try_from(ids.len()).ok().filter(|&n| n > 0)?;
    if ctx.exclude.is_empty() {
        return Some(ids[rng.below(len) as usize]);
    }
    for _ in 0..REDRAWS {
        let id = ids[rng.below(len) as usize];
        if !ctx.is_excluded(id) {
            return Some(id);
        }
    }
    let start = rng.below(len) as usize;
    (0..ids.len()).map(|k| ids[(start + k) % ids.len()]).find(|&id| !ctx.is_excluded(id))
}

impl Balancer for Random {
    #[inline]
    fn pick(&mut self, view: &FleetView<'_>, ctx: &PickContext<'_>, rng: &mut SeededRng) -> Option<ServerId> {
        draw(self.available.refresh(view), ctx, rng)
    }
}
