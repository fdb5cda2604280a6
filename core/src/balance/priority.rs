//! Priority tiers with a panic threshold: prefer the best tier while it is healthy enough.
//!
//! Envoy's priority levels, simplified to whole tiers: members are grouped by priority (higher
//! first). The top tier serves alone while at least `threshold` of its members are available;
//! below that the next tier joins, and so on down, until a tier that is itself healthy enough
//! has joined (or no tier is left). The inner balancer then picks among the available members of
//! the joined tiers. The default threshold, 0.7, is Envoy's overprovisioning factor (1.4)
//! turned into a fraction: a tier that lost more than ~30 % of its servers can no longer be
//! trusted to absorb its own traffic.
//!
//! When every server of the joined tiers is excluded (a retry that already tried them), the
//! pick falls through to the first eligible server of a lower tier, so a retry can still go to a
//! different server. The tier set is rebuilt only when the view's epoch changes.

use super::{Balancer, PickContext, eligible};
use crate::fleet::{FleetView, ServerId};
use crate::rng::SeededRng;

/// The default panic threshold (Envoy's overprovisioning factor of 1.4).
pub const DEFAULT_THRESHOLD: f64 = 0.7;

/// Priority tiers over an inner balancer.
#[derive(Clone, Debug)]
pub struct Priority<B> {
    inner: B,
    threshold: f64,
    key: Option<(u64, usize, usize)>,
    /// Members sorted by tier (priority descending, then id).
    ordered: Vec<ServerId>,
    /// Available members of the joined tiers.
    active: Vec<ServerId>,
    /// Bumped on every rebuild: the epoch of the view handed to `inner`.
    rebuilds: u64,
}

impl<B: Balancer> Priority<B> {
    /// Tiers with the [`DEFAULT_THRESHOLD`] around `inner`.
    pub fn new(inner: B) -> Priority<B> {
        Priority::with_threshold(inner, DEFAULT_THRESHOLD)
    }

    /// Tiers with a panic `threshold` in `[0, 1]` around `inner`.
    pub fn with_threshold(inner: B, threshold: f64) -> Priority<B> {
        assert!((0.0..=1.0).contains(&threshold), "a panic threshold is a fraction, got {threshold}");
        Priority { inner, threshold, key: None, ordered: Vec::new(), active: Vec::new(), rebuilds: 0 }
    }

    /// The panic threshold.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    #[cold]
    fn rebuild(&mut self, view: &FleetView<'_>) {
        self.ordered.clear();
        self.ordered.extend_from_slice(view.members());
        self.ordered.sort_unstable_by_key(|&id| (std::cmp::Reverse(view.state(id).priority()), id));
        self.active.clear();
        for tier in self.ordered.chunk_by(|&a, &b| view.state(a).priority() == view.state(b).priority()) {
            let before = self.active.len();
            self.active.extend(tier.iter().copied().filter(|&id| view.state(id).is_available()));
            let up = self.active.len() - before;
            if up as f64 >= self.threshold * tier.len() as f64 && up > 0 {
                break;
            }
        }
        self.rebuilds += 1;
    }
}

impl<B: Balancer> Balancer for Priority<B> {
    fn pick(&mut self, view: &FleetView<'_>, ctx: &PickContext<'_>, rng: &mut SeededRng) -> Option<ServerId> {
        let key = (view.epoch(), view.members().as_ptr() as usize, view.members().len());
        if self.key != Some(key) {
            self.rebuild(view);
            self.key = Some(key);
        }
        let tiers = view.with_members(&self.active, self.rebuilds);
        if let Some(id) = self.inner.pick(&tiers, ctx, rng) {
            return Some(id);
        }
        // Everything in the joined tiers is excluded: fall through to lower tiers in order.
        self.ordered.iter().copied().find(|&id| eligible(view, ctx, id))
    }
}
