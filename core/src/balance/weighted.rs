//! Weighted: each server's share of picks is proportional to its weight, from the first pick.
//!
//! Earliest-deadline-first scheduling (as in Envoy's weighted round-robin and in WFQ): every
//! server carries a virtual finish time; a pick takes the earliest, then pushes its finish time
//! forward by `1/weight`. Over any run of picks each server's count stays within one of its
//! exact share, which is what "honoured from the first request" means here (a weighted random
//! choice is honoured only on average; nginx's smooth WRR is as exact but O(n) per pick).
//!
//! Each server enters the schedule at a random phase within its first period (drawn from the
//! injected RNG). Started in phase, every light server's first turn would fall at the same
//! virtual instant and a heavy server would take the whole start of the run (weights 100:1×99
//! would give it the first 50 picks); with random phases the light servers' turns spread out.
//! Either way the schedule obeys, at *every* prefix of `k` picks, the bound
//! `|count_i − k·w_i/W| < 1 + n·w_i/W`, which the property tests check.
//!
//! Virtual time is fixed-point (`SCALE / weight`, with weights bounded by
//! [`MAX_WEIGHT`](crate::fleet::MAX_WEIGHT)) so the schedule is exact and portable; ties go to
//! the lower id. A server that becomes available again resumes at the current virtual time, so
//! it neither floods (no credit banked while away) nor starves. An excluded server keeps its
//! place: it is set aside for this pick only. O(log n) per pick.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::{Balancer, PickContext};
use crate::fleet::{FleetView, ServerId};
use crate::rng::SeededRng;

/// Virtual time for one pick of a weight-1 server. 2^20 keeps `SCALE / MAX_WEIGHT` ≥ 16, and
/// leaves 2^44 picks before a `u64` overflows (over 500 years at 1,000 picks per second).
const SCALE: u64 = 1 << 20;

/// Earliest-deadline-first weighted scheduling. O(log n) per pick.
#[derive(Clone, Debug, Default)]
pub struct Weighted {
    key: Option<(u64, usize, usize)>,
    heap: BinaryHeap<Reverse<(u64, u32)>>,
    /// Each server's next virtual finish time, by server index.
    finish: Vec<u64>,
    now: u64,
    set_aside: Vec<Reverse<(u64, u32)>>,
}

impl Weighted {
    /// A weighted scheduler.
    pub fn new() -> Weighted {
        Weighted::default()
    }

    #[cold]
    fn rebuild(&mut self, view: &FleetView<'_>, rng: &mut SeededRng) {
        self.heap.clear();
        if let Some(max) = view.members().iter().map(|id| id.index()).max()
            && self.finish.len() <= max
        {
            self.finish.resize(max + 1, 0);
        }
        for &id in view.members() {
            let state = view.state(id);
            if !state.is_available() {
                continue;
            }
            let finish = &mut self.finish[id.index()];
            if *finish <= self.now {
                let period = SCALE / u64::from(state.weight());
                *finish = self.now + 1 + u64::from(rng.below(period as u32));
            }
            self.heap.push(Reverse((*finish, id.0)));
        }
        // At most every server is set aside in one pick: reserve now, not on the hot path.
        self.set_aside.reserve(self.heap.len());
    }
}

impl Balancer for Weighted {
    fn pick(&mut self, view: &FleetView<'_>, ctx: &PickContext<'_>, rng: &mut SeededRng) -> Option<ServerId> {
        let key = (view.epoch(), view.members().as_ptr() as usize, view.members().len());
        if self.key != Some(key) {
            self.rebuild(view, rng);
            self.key = Some(key);
        }
        let mut chosen = None;
        while let Some(Reverse((finish, raw))) = self.heap.pop() {
            let id = ServerId(raw);
            if ctx.is_excluded(id) {
                self.set_aside.push(Reverse((finish, raw)));
                continue;
            }
            self.now = finish;
            let next = finish + SCALE / u64::from(view.state(id).weight());
            self.finish[id.index()] = next;
            self.heap.push(Reverse((next, raw)));
            chosen = Some(id);
            break;
        }
        self.heap.extend(self.set_aside.drain(..));
        chosen
    }
}
