//! Least outstanding: the server with the fewest calls in flight.
//!
//! Exact "join the shortest queue". Why O(n): outstanding counts change on every call start
//! and finish, so any index over them (a heap, buckets) would cost an update per call on the
//! hot path of *every* call, while a scan of 1,000 `u32`s costs well under a microsecond and
//! only on picks. When that matters, use [`P2c`](super::P2c) with [`Pending`](super::Pending):
//! Mitzenmacher's power of two choices gets exponentially close to this at O(1). The scan
//! starts at a random member so that ties do not all land on the first server.

use super::available::Available;
use super::{Balancer, PickContext};
use crate::fleet::{FleetView, ServerId};
use crate::rng::SeededRng;

/// Fewest calls in flight; ties go to the first found from a random start. O(n) per pick.
#[derive(Clone, Debug, Default)]
pub struct LeastOutstanding {
    available: Available,
}

impl LeastOutstanding {
    /// A least-outstanding balancer.
    pub fn new() -> LeastOutstanding {
        LeastOutstanding::default()
    }
}

impl Balancer for LeastOutstanding {
    fn pick(&mut self, view: &FleetView<'_>, ctx: &PickContext<'_>, rng: &mut SeededRng) -> Option<ServerId> {
        let ids = self.available.refresh(view);
        let len = u32::try_from(ids.len()).ok().filter(|&n| n > 0)?;
        let start = rng.below(len) as usize;
        let mut best: Option<(u32, ServerId)> = None;
        for &id in ids[start..].iter().chain(&ids[..start]) {
            if ctx.is_excluded(id) {
                continue;
            }
            let load = view.state(id).outstanding();
            if best.is_none_or(|(b, _)| load < b) {
                best = Some((load, id));
            }
        }
        best.map(|(_, id)| id)
    }
}
