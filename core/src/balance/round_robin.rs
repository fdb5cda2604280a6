//! Round-robin: each available server in turn.
//!
//! The oldest strategy there is, and still the baseline every other one is compared with. It
//! ignores load and latency entirely, which is exactly why the simulator runs it: it shows what
//! adaptivity buys. The cursor persists across availability changes (modulo the new size), so
//! a server leaving does not restart the rotation at the first member.

use super::available::Available;
use super::{Balancer, PickContext};
use crate::fleet::{FleetView, ServerId};
use crate::rng::SeededRng;

/// Rotates over the available members. O(1) per pick.
#[derive(Clone, Debug, Default)]
pub struct RoundRobin {
    next: usize,
    available: Available,
}

impl RoundRobin {
    /// A rotation starting at the first member.
    pub fn new() -> RoundRobin {
        RoundRobin::default()
    }
}

impl Balancer for RoundRobin {
    #[inline]
    fn pick(&mut self, view: &FleetView<'_>, ctx: &PickContext<'_>, _rng: &mut SeededRng) -> Option<ServerId> {
        let ids = self.available.refresh(view);
        let len = ids.len();
        // The list may have shrunk since the last pick: wrap without a division.
        let mut at = if self.next < len { self.next } else { 0 };
        // At most `exclude.len() + 1` steps: only excluded servers are skipped.
        for _ in 0..len {
            let id = ids[at];
            at += 1;
            if at == len {
                at = 0;
            }
            if !ctx.is_excluded(id) {
                self.next = at;
                return Some(id);
            }
        }
        None
    }
}
