//! Slow start: a server that joins a running fleet, or comes back after being unavailable,
//! ramps its share of traffic up over a window instead of taking it all at once.
//!
//! Envoy's slow-start model: while ramping, a server's share is scaled by
//! `max(min_share, (t / window) ^ (1 / aggression))`, `t` being the time since it joined or
//! recovered. Here the scaling wraps any balancer by rejection: when the inner balancer picks a
//! ramping server, the pick is kept with probability equal to that factor; otherwise the server
//! is set aside for this pick and the inner balancer picks again (at most [`REDRAWS`] times; if
//! no other server can be had, the ramping one serves after all, so slow start never turns a
//! possible pick into `None`).
//!
//! Defaults: a 30 s window (long enough to warm caches and JIT-like lazy init of a typical MCP
//! server, short enough to restore capacity within a scenario's recovery bound), aggression 1
//! (linear), and a 10 % floor (Envoy's `min_weight_percent` default) so a recovering server
//! still sees enough calls for its breaker and latency estimate to judge it.
//!
//! Servers present when the fleet starts do not ramp: there is no one to shift load to.

use std::time::Duration;

use super::{Balancer, PickContext};
use crate::fleet::{FleetView, ServerId};
use crate::rng::SeededRng;
use crate::time::Time;

/// How many times a ramping server may be set aside in one pick.
pub const REDRAWS: usize = 4;

/// How a server's share ramps up.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SlowStartConfig {
    /// How long the ramp lasts.
    pub window: Duration,
    /// The curve's exponent is `1 / aggression`: 1 is linear, above 1 ramps faster early.
    pub aggression: f64,
    /// The smallest share factor, in `(0, 1]`.
    pub min_share: f64,
}

impl Default for SlowStartConfig {
    fn default() -> Self {
        SlowStartConfig { window: Duration::from_secs(30), aggression: 1.0, min_share: 0.1 }
    }
}

impl SlowStartConfig {
    /// The share factor, in `[min_share, 1]`, of a server ramping since `since`, at `now`.
    /// Non-decreasing in `now`.
    pub fn factor(&self, since: Time, now: Time) -> f64 {
        let elapsed = now.saturating_since(since);
        if elapsed >= self.window || self.window.is_zero() {
            return 1.0;
        }
        let progress = elapsed.as_secs_f64() / self.window.as_secs_f64();
        progress.powf(1.0 / self.aggression).clamp(self.min_share, 1.0)
    }
}

/// Ramps new and recovered servers up around an inner balancer.
#[derive(Clone, Debug)]
pub struct SlowStart<B> {
    inner: B,
    config: SlowStartConfig,
}

impl<B: Balancer> SlowStart<B> {
    /// Wraps `inner` with `config`.
    pub fn new(inner: B, config: SlowStartConfig) -> SlowStart<B> {
        assert!(config.aggression > 0.0, "slow-start aggression must be positive");
        assert!(config.min_share > 0.0 && config.min_share <= 1.0, "slow-start min_share is in (0, 1]");
        SlowStart { inner, config }
    }

    /// The ramp settings.
    pub fn config(&self) -> &SlowStartConfig {
        &self.config
    }
}

impl<B: Balancer> Balancer for SlowStart<B> {
    fn pick(&mut self, view: &FleetView<'_>, ctx: &PickContext<'_>, rng: &mut SeededRng) -> Option<ServerId> {
        let mut id = self.inner.pick(view, ctx, rng)?;
        let base = ctx.exclude.len();
        // The caller's exclusions plus servers set aside here, on the stack.
        let mut buf = [ServerId(0); 16];
        if base + REDRAWS > buf.len() {
            return Some(id);
        }
        buf[..base].copy_from_slice(ctx.exclude);
        let mut set_aside = 0;
        let first = id;
        loop {
            let keep = match view.state(id).ramp_from() {
                None => true,
                Some(since) => {
                    let f = self.config.factor(since, ctx.now);
                    f >= 1.0 || rng.unit() < f
                }
            };
            if keep || set_aside == REDRAWS {
                return Some(id);
            }
            buf[base + set_aside] = id;
            set_aside += 1;
            let again = ctx.excluding(&buf[..base + set_aside]);
            match self.inner.pick(view, &again, rng) {
                Some(next) => id = next,
                None => return Some(first),
            }
        }
    }
}
