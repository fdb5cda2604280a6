//! Maglev consistent hashing: the same affinity key goes to the same server.
//!
//! Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load Balancer" (NSDI 2016).
//! Each available server fills slots of a prime-sized lookup table following its own
//! permutation (an offset and a skip derived from the hash of its *name*, so tables agree across
//! processes whatever order servers were added in); a key's server is `table[hash(key) % M]`.
//! Compared with a ring of virtual nodes it gives near-perfect balance and O(1) lookups, at the
//! price of slightly more keys moving when membership changes (the paper measures a few percent
//! beyond the ideal `1/n` for M ≫ n).
//!
//! Defaults: M = 65,537, a prime about 65 × a 1,000-server fleet (the paper asks for M ≫ n;
//! 100 × n keeps imbalance under 1 %). The table is rebuilt when the view's epoch changes.
//! An excluded server's keys walk to the next slots, which is deterministic per key, so a retry
//! of a sticky session lands on the same second choice every time. Without an affinity key a
//! pick uses a random one.

use super::{Balancer, PickContext};
use crate::fleet::{FleetView, ServerId};
use crate::rng::SeededRng;

/// The default table size: prime, and ≥ 65 × a 1,000-server fleet.
pub const DEFAULT_TABLE_SIZE: u32 = 65_537;

/// Maglev consistent hashing on [`PickContext::affinity`]. O(1) per pick.
#[derive(Clone, Debug)]
pub struct Maglev {
    size: u32,
    key: Option<(u64, usize, usize)>,
    table: Vec<Option<ServerId>>,
}

impl Default for Maglev {
    fn default() -> Self {
        Maglev::new()
    }
}

impl Maglev {
    /// A table of [`DEFAULT_TABLE_SIZE`] slots.
    pub fn new() -> Maglev {
        Maglev::with_table_size(DEFAULT_TABLE_SIZE)
    }

    /// A table of `size` slots; `size` should be a prime well above the fleet's size.
    pub fn with_table_size(size: u32) -> Maglev {
        assert!(size >= 2, "a Maglev table needs at least two slots");
        Maglev { size, key: None, table: Vec::new() }
    }

    #[cold]
    fn rebuild(&mut self, view: &FleetView<'_>) {
        let m = u64::from(self.size);
        let mut servers: Vec<(u64, u64, u64, ServerId)> = view
            .members()
            .iter()
            .filter(|&&id| view.state(id).is_available())
            .map(|&id| {
                let h = view.state(id).identity();
                let offset = mix(h ^ 0x9e37_79b9_7f4a_7c15) % m;
                let skip = mix(h ^ 0xc2b2_ae3d_27d4_eb4f) % (m - 1) + 1;
                (h, offset, skip, id)
            })
            .collect();
        // Fill order by name hash (then id), never by insertion order.
        servers.sort_unstable_by_key(|&(h, _, _, id)| (h, id));
        self.table.clear();
        self.table.resize(self.size as usize, None);
        if servers.is_empty() {
            return;
        }
        let mut next = vec![0u64; servers.len()];
        let mut filled = 0u64;
        'fill: loop {
            for (i, &(_, offset, skip, id)) in servers.iter().enumerate() {
                let mut slot = (offset + next[i] * skip) % m;
                while self.table[slot as usize].is_some() {
                    next[i] += 1;
                    slot = (offset + next[i] * skip) % m;
                }
                self.table[slot as usize] = Some(id);
                next[i] += 1;
                filled += 1;
                if filled == m {
                    break 'fill;
                }
            }
        }
    }
}

/// SplitMix64's finaliser: spreads any 64-bit key over the table.
#[inline]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Balancer for Maglev {
    #[inline]
    fn pick(&mut self, view: &FleetView<'_>, ctx: &PickContext<'_>, rng: &mut SeededRng) -> Option<ServerId> {
        let key = (view.epoch(), view.members().as_ptr() as usize, view.members().len());
        if self.key != Some(key) {
            self.rebuild(view);
            self.key = Some(key);
        }
        let affinity = ctx.affinity.unwrap_or_else(|| rng.next_u64());
        let start = (mix(affinity) % u64::from(self.size)) as usize;
        let first = self.table[start]?;
        if !ctx.is_excluded(first) {
            return Some(first);
        }
        let n = self.table.len();
        (1..n).filter_map(|k| self.table[(start + k) % n]).find(|&id| !ctx.is_excluded(id))
    }
}
