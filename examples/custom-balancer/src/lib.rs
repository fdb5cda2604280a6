//! Least expected latency, with jitter: a balancing strategy written as a Gauntlet user would
//! write one, and proved the way the built-in ones are.
//!
//! Each pick scans the available, non-excluded members and takes the one whose expected
//! latency, its latency estimate (Peak-EWMA) times its calls in flight plus one, is lowest after
//! a random jitter of up to [`JITTER`] either way, so that servers that look alike share the
//! load instead of one taking every call until its estimate moves. O(n) per pick.

use gauntlet_core::balance::{Balancer, PickContext};
use gauntlet_core::{FleetView, SeededRng, ServerId};

/// The name it is registered under.
pub const NAME: &str = "least-latency";
/// What `gauntlet strategies` says about it.
pub const SUMMARY: &str = "lowest latency estimate x (in flight + 1), with 10 % jitter (exact scan)";
/// The jitter: a server's cost is multiplied by a factor in `1 ± JITTER`.
pub const JITTER: f64 = 0.1;

/// See the [crate docs](crate).
#[derive(Clone, Copy, Debug, Default)]
pub struct LeastLatency;

impl LeastLatency {
    /// A new balancer (it keeps no state between picks).
    pub fn new() -> LeastLatency {
        LeastLatency
    }
}

impl Balancer for LeastLatency {
    fn pick(&mut self, view: &FleetView<'_>, ctx: &PickContext<'_>, rng: &mut SeededRng) -> Option<ServerId> {
        let config = view.fleet().latency_config();
        let mut best: Option<(f64, ServerId)> = None;
        for &id in view.members() {
            let state = view.state(id);
            if !state.is_available() || ctx.is_excluded(id) {
                continue;
            }
            let expected = state.latency_nanos(ctx.now, config) * (f64::from(state.outstanding()) + 1.0);
            let cost = expected * (1.0 + JITTER * (2.0 * rng.unit() - 1.0));
            if best.is_none_or(|(b, _)| cost < b) {
                best = Some((cost, id));
            }
        }
        best.map(|(_, id)| id)
    }
}

/// The registry of a binary (or a test) that offers this strategy.
pub fn registry() -> gauntlet::Registry {
    gauntlet::Registry::new().balancer(NAME, SUMMARY, || Box::new(LeastLatency::new()))
}
