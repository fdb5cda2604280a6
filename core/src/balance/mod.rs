//! Balancing: which server of a replica set gets the next call.
//!
//! One trait, [`Balancer`], one decision: given a [`FleetView`] (the replica set and every
//! server's state), a [`PickContext`] (the time, an optional affinity key, servers to avoid)
//! and the run's [`SeededRng`], return a server or `None` when no candidate exists. The caller
//! applies the choice (`Fleet::begin`/`end`); a balancer never reads a clock or OS entropy.
//!
//! Every balancer skips unavailable servers (unhealthy, breaker open, ejected, retired) and
//! servers listed in [`PickContext::exclude`] (the ones a retry already tried), and returns
//! `Some` exactly when such a candidate exists.
//!
//! | strategy | algorithm | cost per pick |
//! |---|---|---|
//! | [`RoundRobin`] | rotate over the available servers | O(1) |
//! | [`Weighted`] | earliest-deadline-first over virtual finish times | O(log n) |
//! | [`LeastOutstanding`] | fewest calls in flight, ties from a random start | O(n), see its docs |
//! | [`Random`] | uniform over the available servers | O(1) |
//! | [`P2c`] with [`Pending`] | best of two random choices, by calls in flight | O(1) |
//! | [`P2c`] with [`PeakEwma`] | best of two, by Peak-EWMA latency × (in flight + 1) | O(1) |
//! | [`Maglev`] | consistent hashing on the caller's affinity key | O(1) |
//! | [`Priority`] | highest tier that is healthy enough, then an inner balancer | inner's |
//! | [`SlowStart`] | ramps a new or recovered server's share, around any balancer | inner's × ≤ 4 |
//!
//! "O(1)" is amortised: the balancers cache the list of available members and rebuild it, in
//! O(n), only when the view's epoch changes, i.e. when availability or membership changes,
//! which are rare next to picks. The pick itself does not allocate.

mod available;
mod least_outstanding;
mod maglev;
mod p2c;
mod priority;
mod random;
mod round_robin;
mod slow_start;
mod strategy;
mod weighted;

pub use least_outstanding::LeastOutstanding;
pub use maglev::{DEFAULT_TABLE_SIZE, Maglev};
pub use p2c::{Load, P2c, PeakEwma, Pending, sample_pair};
pub use priority::{DEFAULT_THRESHOLD, Priority};
pub use random::Random;
pub use round_robin::RoundRobin;
pub use slow_start::{REDRAWS as SLOW_START_REDRAWS, SlowStart, SlowStartConfig};
pub use strategy::{
    BalancerConfig, Factory, MAX_NAME, MAX_REGISTERED, RegisterError, Strategy, UnknownStrategy, register,
};
pub use weighted::Weighted;

use crate::fleet::{FleetView, ServerId};
use crate::rng::SeededRng;
use crate::time::Time;

/// What a pick knows about the call being placed.
#[derive(Clone, Copy, Debug)]
pub struct PickContext<'a> {
    /// The current time.
    pub now: Time,
    /// An affinity key (e.g. a hash of a session id) for consistent hashing; balancers that do
    /// not use affinity ignore it.
    pub affinity: Option<u64>,
    /// Servers that must not be picked: typically the ones a retry or hedge already tried.
    pub exclude: &'a [ServerId],
}

impl<'a> PickContext<'a> {
    /// A context at `now` with no affinity and no exclusions.
    pub fn at(now: Time) -> PickContext<'static> {
        PickContext { now, affinity: None, exclude: &[] }
    }

    /// The same context, avoiding `exclude`.
    pub fn excluding(self, exclude: &'a [ServerId]) -> PickContext<'a> {
        PickContext { exclude, ..self }
    }

    /// The same context, with an affinity key.
    pub fn with_affinity(self, key: u64) -> PickContext<'a> {
        PickContext { affinity: Some(key), ..self }
    }

    /// Whether `id` is excluded. The list is short (servers already tried), so a scan is
    /// cheaper than any set.
    #[inline]
    pub fn is_excluded(&self, id: ServerId) -> bool {
        self.exclude.contains(&id)
    }
}

/// Chooses a server for a call. See the [module docs](self) for the contract.
///
/// Implement it for your own strategy and run it through [`crate::testing`]'s conformance
/// checks, as the built-in ones are.
pub trait Balancer {
    /// Picks an available, non-excluded member of `view`, or `None` when there is none.
    fn pick(&mut self, view: &FleetView<'_>, ctx: &PickContext<'_>, rng: &mut SeededRng) -> Option<ServerId>;
}

/// A balancer from a closure, for tests and one-off strategies (as tower's `service_fn`).
pub fn from_fn<F>(f: F) -> FromFn<F>
where
    F: FnMut(&FleetView<'_>, &PickContext<'_>, &mut SeededRng) -> Option<ServerId>,
{
    FromFn(f)
}

/// See [`from_fn`].
#[derive(Clone, Copy, Debug)]
pub struct FromFn<F>(F);

impl<F> Balancer for FromFn<F>
where
    F: FnMut(&FleetView<'_>, &PickContext<'_>, &mut SeededRng) -> Option<ServerId>,
{
    fn pick(&mut self, view: &FleetView<'_>, ctx: &PickContext<'_>, rng: &mut SeededRng) -> Option<ServerId> {
        (self.0)(view, ctx, rng)
    }
}

impl<B: Balancer + ?Sized> Balancer for Box<B> {
    fn pick(&mut self, view: &FleetView<'_>, ctx: &PickContext<'_>, rng: &mut SeededRng) -> Option<ServerId> {
        (**self).pick(view, ctx, rng)
    }
}

/// Whether `id` may be picked in this call.
#[inline]
fn eligible(view: &FleetView<'_>, ctx: &PickContext<'_>, id: ServerId) -> bool {
    view.state(id).is_available() && !ctx.is_excluded(id)
}
