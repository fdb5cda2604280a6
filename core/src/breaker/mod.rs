//! Circuit breaking: stop sending calls to a server that is failing, probe it, resume.
//!
//! The state machine of Nygard's *Release It!* as resilience4j and Envoy refine it, kept as an
//! explicit enum whose states carry their timestamps ([`State`]):
//!
//! - **Closed**: every call is permitted; outcomes fill a sliding window ([`WindowSize`]:
//!   the last N calls, or the last T in ten buckets). The breaker trips on `consecutive_failures`
//!   in a row, or once the window holds at least `min_calls` calls, on a failure rate or a
//!   slow-call rate at or above its threshold. [`TripReason`] says which.
//! - **Open** `{ since, until }`: every call is rejected until `until`. The open time grows by
//!   `open_multiplier` on each trip that follows a failed recovery, up to `max_open_for`, and
//!   resets when the breaker closes.
//! - **Half-open**: at most `probes` calls are admitted. `successes_to_close` successes close
//!   it; any failure opens it again. A probe that has not answered within `probe_timeout`
//!   counts as a failure, and a probe the caller cancels frees its slot, so the breaker can never
//!   stay half-open forever with every slot held by a call that will not come back.
//!
//! Outcomes are judged by a [`Classifier`](crate::outcome::Classifier) before they get here: a
//! tool result with `isError: true` is not a failure by default. Each permit carries the
//! breaker's generation, so an answer to a call permitted before a transition is ignored: a
//! stale failure cannot re-trip a breaker that just closed, and a stale success cannot close an
//! open one.
//!
//! Defaults, and why: 5 consecutive failures (Envoy's outlier default, fast on a dead server);
//! 50 % failure rate over 10 s with at least 20 calls (resilience4j's rate, with a minimum that
//! keeps one unlucky second from tripping a quiet server); slow-call tripping off (set it when
//! latency matters more than errors); 5 s open, doubling per repeated trip, capped at 60 s; 3
//! probes, 2 successes to close; probes time out after 5 s, the default call deadline.
//!
//! Nothing here allocates after construction: [`Breaker::permit`] and [`Breaker::record`] are
//! on every call's path.

mod window;

pub use window::{TIME_BUCKETS, Totals, WindowSize};

use std::time::Duration;

use window::Window;

use crate::outcome::Verdict;
use crate::time::Time;

/// The most probes a half-open breaker may admit.
pub const MAX_PROBES: u32 = 32;

/// How a breaker trips and recovers. See the [module docs](self) for the defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BreakerConfig {
    /// Trip after this many failures in a row; `None` disables.
    pub consecutive_failures: Option<u32>,
    /// Trip at this failure rate over the window; `None` disables.
    pub failure_rate: Option<f64>,
    /// Trip at this slow-call rate over the window; `None` disables.
    pub slow_call_rate: Option<f64>,
    /// A call at least this long is slow.
    pub slow_call_duration: Duration,
    /// The window the rates are taken over.
    pub window: WindowSize,
    /// Rates are not judged on fewer calls than this.
    pub min_calls: u32,
    /// How long the first trip stays open.
    pub open_for: Duration,
    /// Each repeated trip multiplies the open time by this.
    pub open_multiplier: f64,
    /// The longest open time.
    pub max_open_for: Duration,
    /// Calls admitted while half-open, `1..=MAX_PROBES`.
    pub probes: u32,
    /// Successful probes that close the breaker, `1..=probes`.
    pub successes_to_close: u32,
    /// A probe unanswered this long is a failure.
    pub probe_timeout: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            consecutive_failures: Some(5),
            failure_rate: Some(0.5),
            slow_call_rate: None,
            slow_call_duration: Duration::from_secs(1),
            window: WindowSize::Time(Duration::from_secs(10)),
            min_calls: 20,
            open_for: Duration::from_secs(5),
            open_multiplier: 2.0,
            max_open_for: Duration::from_secs(60),
            probes: 3,
            successes_to_close: 2,
            probe_timeout: Duration::from_secs(5),
        }
    }
}

/// A breaker configuration that cannot work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BreakerConfigError {
    /// A rate outside `(0, 1]`.
    #[error("{name} must be in (0, 1], got {value}")]
    Rate {
        /// Which rate.
        name: &'static str,
        /// Its value.
        value: f64,
    },
    /// A count or duration that must be positive is zero.
    #[error("{0} must be positive")]
    Zero(&'static str),
    /// Probes outside `1..=MAX_PROBES`, or more successes required than probes admitted.
    #[error("probes must be in 1..={MAX_PROBES} and successes_to_close in 1..=probes")]
    Probes,
    /// The open-time multiplier is below 1 or the cap is below the first open time.
    #[error("open_multiplier must be >= 1 and max_open_for >= open_for")]
    OpenTime,
}

impl BreakerConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), BreakerConfigError> {
        for (name, rate) in [("failure_rate", self.failure_rate), ("slow_call_rate", self.slow_call_rate)] {
            if let Some(value) = rate
                && !(value > 0.0 && value <= 1.0)
            {
                return Err(BreakerConfigError::Rate { name, value });
            }
        }
        if self.consecutive_failures == Some(0) {
            return Err(BreakerConfigError::Zero("consecutive_failures"));
        }
        match self.window {
            WindowSize::Count(0) => return Err(BreakerConfigError::Zero("window")),
            WindowSize::Time(d) if d.is_zero() => return Err(BreakerConfigError::Zero("window")),
            _ => {}
        }
        if self.min_calls == 0 {
            return Err(BreakerConfigError::Zero("min_calls"));
        }
        if self.open_for.is_zero() || self.probe_timeout.is_zero() {
            return Err(BreakerConfigError::Zero("open_for and probe_timeout"));
        }
        if !(1..=MAX_PROBES).contains(&self.probes) || !(1..=self.probes).contains(&self.successes_to_close) {
            return Err(BreakerConfigError::Probes);
        }
        if self.open_multiplier.is_nan() || self.open_multiplier < 1.0 || self.max_open_for < self.open_for {
            return Err(BreakerConfigError::OpenTime);
        }
        Ok(())
    }
}

/// Why a breaker opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TripReason {
    /// `consecutive_failures` failures in a row.
    ConsecutiveFailures,
    /// The failure rate reached its threshold.
    FailureRate,
    /// The slow-call rate reached its threshold.
    SlowCallRate,
    /// A half-open probe failed.
    ProbeFailed,
    /// A half-open probe did not answer within `probe_timeout`.
    ProbeTimedOut,
}

/// The breaker's state, with its timestamps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum State {
    /// Calls flow.
    Closed {
        /// When it closed (or the breaker was made).
        since: Time,
    },
    /// Calls are rejected until `until`.
    Open {
        /// When it tripped.
        since: Time,
        /// When it will admit probes.
        until: Time,
        /// Why it tripped.
        reason: TripReason,
    },
    /// Probes are admitted.
    HalfOpen {
        /// When it became half-open.
        since: Time,
        /// Probes admitted and not given back (answered or outstanding).
        admitted: u32,
        /// Probes that succeeded.
        succeeded: u32,
    },
}

/// A breaker state without its timestamps: what events, checkers and reports carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Calls flow.
    Closed,
    /// Calls are refused.
    Open,
    /// Probes only.
    HalfOpen,
}

impl Phase {
    /// The phase's name, for people.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Closed => "closed",
            Phase::Open => "open",
            Phase::HalfOpen => "half-open",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl State {
    /// The state without its timestamps.
    pub fn phase(&self) -> Phase {
        match self {
            State::Closed { .. } => Phase::Closed,
            State::Open { .. } => Phase::Open,
            State::HalfOpen { .. } => Phase::HalfOpen,
        }
    }

    /// The state's name, for people.
    pub fn name(&self) -> &'static str {
        self.phase().name()
    }
}

/// Why a call was not permitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectReason {
    /// The breaker is open until the given time.
    Open {
        /// When probes will be admitted.
        until: Time,
    },
    /// Half-open, and every probe slot is taken.
    ProbesBusy,
}

/// Leave to send one call. Give it back with [`Breaker::record`].
#[must_use = "a permit must be recorded, or a half-open probe slot stays taken until it times out"]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Permit {
    generation: u64,
    probe: Option<u8>,
}

impl Permit {
    /// Whether this call is a half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe.is_some()
    }
}

/// A state change, for the event log.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transition {
    /// The state before.
    pub from: State,
    /// The state after.
    pub to: State,
}

/// One server's circuit breaker.
#[derive(Clone, Debug)]
pub struct Breaker {
    config: BreakerConfig,
    state: State,
    window: Window,
    consecutive: u32,
    /// Trips since the breaker last closed.
    trips: u32,
    /// Bumped on every transition; permits from another generation are stale.
    generation: u64,
    /// Issue time of each probe slot; `live` marks which are outstanding.
    probe_issued: [Time; MAX_PROBES as usize],
    live: u32,
}

impl Breaker {
    /// A closed breaker at `now`. Panics on an invalid config: validate it at the edge.
    pub fn new(config: BreakerConfig, now: Time) -> Breaker {
        if let Err(e) = config.validate() {
            panic!("invalid breaker config (validate configs at the edge): {e}");
        }
        Breaker {
            config,
            state: State::Closed { since: now },
            window: Window::new(config.window),
            consecutive: 0,
            trips: 0,
            generation: 0,
            probe_issued: [Time::ZERO; MAX_PROBES as usize],
            live: 0,
        }
    }

    /// The current state (as of the last call that took `now`).
    pub fn state(&self) -> State {
        self.state
    }

    /// The configuration.
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// The closed-state window's totals at `now`.
    pub fn totals(&mut self, now: Time) -> Totals {
        self.window.totals(now)
    }

    /// Whether a call may go now; a half-open breaker hands out at most `probes` permits.
    #[inline]
    pub fn permit(&mut self, now: Time) -> Result<Permit, RejectReason> {
        self.poll(now);
        match &mut self.state {
            State::Closed { .. } => Ok(Permit { generation: self.generation, probe: None }),
            State::Open { until, .. } => Err(RejectReason::Open { until: *until }),
            State::HalfOpen { admitted, .. } => {
                if *admitted >= self.config.probes {
                    return Err(RejectReason::ProbesBusy);
                }
                *admitted += 1;
                let slot = (!self.live).trailing_zeros();
                debug_assert!(slot < self.config.probes, "more live probes than admitted");
                self.live |= 1 << slot;
                self.probe_issued[slot as usize] = now;
                Ok(Permit { generation: self.generation, probe: Some(slot as u8) })
            }
        }
    }

    /// Leave for a call that goes whatever the state (a breaker in shadow mode, which watches
    /// and reports but does not refuse). Recording it changes nothing: its generation never
    /// matches.
    pub fn bypass(&self) -> Permit {
        Permit { generation: u64::MAX, probe: None }
    }

    /// Applies time-driven transitions: open → half-open when the open time is over, half-open
    /// → open when a probe has outlived `probe_timeout`. [`permit`](Self::permit) and
    /// [`record`](Self::record) call it; call it yourself to observe transitions on time.
    #[inline]
    pub fn poll(&mut self, now: Time) -> Option<Transition> {
        match self.state {
            State::Open { until, .. } if now >= until => {
                let from = self.state;
                self.enter(State::HalfOpen { since: now, admitted: 0, succeeded: 0 });
                Some(Transition { from, to: self.state })
            }
            State::HalfOpen { .. } if self.live != 0 => {
                let timeout = self.config.probe_timeout;
                let expired = (0..self.config.probes)
                    .any(|slot| self.live & (1 << slot) != 0 && self.probe_issued[slot as usize] + timeout <= now);
                expired.then(|| self.trip(TripReason::ProbeTimedOut, now))
            }
            _ => None,
        }
    }

    /// An open breaker goes half-open at once: evidence that the server is back came from
    /// elsewhere (a new session to it completed its handshake). Its probes decide, as after the
    /// open time; a failed probe trips it again, for longer. Otherwise nothing changes.
    pub fn half_open_now(&mut self, now: Time) -> Option<Transition> {
        if !matches!(self.state, State::Open { .. }) {
            return None;
        }
        let from = self.state;
        self.enter(State::HalfOpen { since: now, admitted: 0, succeeded: 0 });
        Some(Transition { from, to: self.state })
    }

    /// Records the outcome of a permitted call that took `latency`, at `now`.
    #[inline]
    pub fn record(&mut self, permit: Permit, verdict: Verdict, latency: Duration, now: Time) -> Option<Transition> {
        if let Some(t) = self.poll(now) {
            // A probe that outlived its deadline already counted as a failure.
            return Some(t);
        }
        if permit.generation != self.generation {
            return None; // permitted before the last transition: stale
        }
        let slow = latency >= self.config.slow_call_duration && self.config.slow_call_rate.is_some();
        match self.state {
            State::Closed { .. } => {
                if verdict == Verdict::Ignored {
                    return None;
                }
                let failed = verdict == Verdict::Failure;
                self.window.record(failed, slow, now);
                self.consecutive = if failed { self.consecutive + 1 } else { 0 };
                self.should_trip().map(|reason| self.trip(reason, now))
            }
            State::HalfOpen { since, admitted, succeeded } => {
                let Some(slot) = permit.probe else {
                    debug_assert!(false, "a current-generation permit in half-open is a probe");
                    return None;
                };
                self.live &= !(1 << slot);
                match verdict {
                    Verdict::Ignored => {
                        self.state = State::HalfOpen { since, admitted: admitted - 1, succeeded };
                        None
                    }
                    Verdict::Failure => Some(self.trip(TripReason::ProbeFailed, now)),
                    Verdict::Success if slow => Some(self.trip(TripReason::SlowCallRate, now)),
                    Verdict::Success if succeeded + 1 >= self.config.successes_to_close => {
                        let from = self.state;
                        self.trips = 0;
                        self.enter(State::Closed { since: now });
                        Some(Transition { from, to: self.state })
                    }
                    Verdict::Success => {
                        self.state = State::HalfOpen { since, admitted, succeeded: succeeded + 1 };
                        None
                    }
                }
            }
            State::Open { .. } => None,
        }
    }

    /// The trip condition of the closed state, checked right after each recorded call (so the
    /// window has just been brought up to date).
    #[inline]
    fn should_trip(&self) -> Option<TripReason> {
        if self.config.consecutive_failures.is_some_and(|n| self.consecutive >= n) {
            return Some(TripReason::ConsecutiveFailures);
        }
        let t = self.window.last_totals();
        if t.calls < self.config.min_calls {
            return None;
        }
        let calls = f64::from(t.calls);
        if self.config.failure_rate.is_some_and(|r| f64::from(t.failures) >= r * calls) {
            return Some(TripReason::FailureRate);
        }
        if self.config.slow_call_rate.is_some_and(|r| f64::from(t.slow) >= r * calls) {
            return Some(TripReason::SlowCallRate);
        }
        None
    }

    /// How long the next trip stays open: `open_for × multiplier^(trips − 1)`, capped.
    pub fn open_time(&self, trips: u32) -> Duration {
        let factor = self.config.open_multiplier.powi(trips.saturating_sub(1).min(64) as i32);
        let secs = self.config.open_for.as_secs_f64() * factor;
        Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX).min(self.config.max_open_for)
    }

    fn trip(&mut self, reason: TripReason, now: Time) -> Transition {
        let from = self.state;
        self.trips += 1;
        let until = now + self.open_time(self.trips);
        self.enter(State::Open { since: now, until, reason });
        Transition { from, to: self.state }
    }

    fn enter(&mut self, state: State) {
        self.state = state;
        self.generation += 1;
        self.window.clear();
        self.consecutive = 0;
        self.live = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Time {
        Time::from_millis(n)
    }

    fn fail(b: &mut Breaker, at: Time) -> Option<Transition> {
        let p = b.permit(at).unwrap();
        b.record(p, Verdict::Failure, Duration::from_millis(1), at)
    }

    #[test]
    fn five_failures_in_a_row_trip_it_open_for_five_seconds() {
        let mut b = Breaker::new(BreakerConfig::default(), Time::ZERO);
        for i in 0..4 {
            assert_eq!(fail(&mut b, ms(i)), None);
        }
        let t = fail(&mut b, ms(4)).unwrap();
        assert_eq!(t.to, State::Open { since: ms(4), until: ms(5_004), reason: TripReason::ConsecutiveFailures });
        assert_eq!(b.permit(ms(5_003)), Err(RejectReason::Open { until: ms(5_004) }));
    }

    #[test]
    fn half_open_admits_its_probes_then_closes_after_enough_successes() {
        let mut b = Breaker::new(BreakerConfig::default(), Time::ZERO);
        for i in 0..5 {
            let _ = fail(&mut b, ms(i));
        }
        let at = ms(6_000);
        let probes: Vec<_> = (0..3).map(|_| b.permit(at).unwrap()).collect();
        assert!(probes.iter().all(Permit::is_probe));
        assert_eq!(b.permit(at), Err(RejectReason::ProbesBusy));
        assert_eq!(b.record(probes[0], Verdict::Success, Duration::from_millis(2), at), None);
        let closed = b.record(probes[1], Verdict::Success, Duration::from_millis(2), at).unwrap();
        assert_eq!(closed.to, State::Closed { since: at });
        // The third probe answers after the breaker closed: stale, ignored.
        assert_eq!(b.record(probes[2], Verdict::Failure, Duration::from_millis(2), at), None);
        assert_eq!(b.totals(at).calls, 0);
    }

    #[test]
    fn only_an_open_breaker_half_opens_early_and_a_failed_probe_trips_it_for_longer() {
        let mut b = Breaker::new(BreakerConfig::default(), Time::ZERO);
        assert_eq!(b.half_open_now(ms(1)), None, "closed stays closed");
        for i in 0..5 {
            let _ = fail(&mut b, ms(i));
        }
        let t = b.half_open_now(ms(100)).expect("open goes half-open");
        assert_eq!(t.to, State::HalfOpen { since: ms(100), admitted: 0, succeeded: 0 });
        assert_eq!(b.half_open_now(ms(101)), None, "half-open stays half-open");
        let probe = b.permit(ms(102)).unwrap();
        let t = b.record(probe, Verdict::Failure, Duration::from_millis(1), ms(103)).unwrap();
        // The second trip: open for twice `open_for`.
        assert_eq!(t.to, State::Open { since: ms(103), until: ms(10_103), reason: TripReason::ProbeFailed });
    }

    #[test]
    fn a_probe_that_never_answers_reopens_the_breaker_with_a_longer_open_time() {
        let mut b = Breaker::new(BreakerConfig::default(), Time::ZERO);
        for i in 0..5 {
            let _ = fail(&mut b, ms(i));
        }
        let _lost: Vec<_> = (0..3).map(|_| b.permit(ms(5_004)).unwrap()).collect();
        let t = b.poll(ms(10_004)).unwrap();
        assert_eq!(t.to, State::Open { since: ms(10_004), until: ms(20_004), reason: TripReason::ProbeTimedOut });
    }

    #[test]
    fn a_cancelled_probe_frees_its_slot() {
        let mut b = Breaker::new(BreakerConfig { probes: 1, successes_to_close: 1, ..Default::default() }, Time::ZERO);
        for i in 0..5 {
            let _ = fail(&mut b, ms(i));
        }
        let p = b.permit(ms(6_000)).unwrap();
        assert_eq!(b.permit(ms(6_000)), Err(RejectReason::ProbesBusy));
        assert_eq!(b.record(p, Verdict::Ignored, Duration::ZERO, ms(6_001)), None);
        assert!(b.permit(ms(6_002)).unwrap().is_probe());
    }

    #[test]
    fn the_failure_rate_trips_only_with_the_minimum_number_of_calls() {
        let config = BreakerConfig {
            consecutive_failures: None,
            window: WindowSize::Count(10),
            min_calls: 10,
            ..Default::default()
        };
        let mut b = Breaker::new(config, Time::ZERO);
        for i in 0..9u64 {
            let verdict = if i % 2 == 0 { Verdict::Failure } else { Verdict::Success };
            let p = b.permit(ms(i)).unwrap();
            assert_eq!(b.record(p, verdict, Duration::from_millis(1), ms(i)), None, "call {i}");
        }
        let p = b.permit(ms(9)).unwrap();
        let t = b.record(p, Verdict::Success, Duration::from_millis(1), ms(9));
        assert_eq!(t.map(|t| t.to.name()), Some("open"), "5 of 10 failed");
    }

    #[test]
    fn slow_calls_trip_the_slow_call_rate() {
        let config = BreakerConfig {
            slow_call_rate: Some(0.8),
            slow_call_duration: Duration::from_millis(100),
            window: WindowSize::Count(5),
            min_calls: 5,
            ..Default::default()
        };
        let mut b = Breaker::new(config, Time::ZERO);
        let mut last = None;
        for i in 0..5 {
            let p = b.permit(ms(i)).unwrap();
            last = b.record(p, Verdict::Success, Duration::from_millis(150), ms(i));
        }
        assert!(matches!(last.unwrap().to, State::Open { reason: TripReason::SlowCallRate, .. }));
    }

    #[test]
    fn a_tool_error_counted_as_success_never_trips_the_breaker() {
        let c = crate::outcome::Classifier::default();
        let mut b = Breaker::new(BreakerConfig::default(), Time::ZERO);
        for i in 0..100 {
            let p = b.permit(ms(i)).unwrap();
            let v = c.classify(crate::outcome::Outcome::ToolError);
            assert_eq!(b.record(p, v, Duration::from_millis(1), ms(i)), None);
        }
    }

    #[test]
    fn open_time_grows_per_repeated_trip_up_to_its_cap() {
        let b = Breaker::new(BreakerConfig::default(), Time::ZERO);
        let secs: Vec<u64> = (1..=6).map(|t| b.open_time(t).as_secs()).collect();
        assert_eq!(secs, [5, 10, 20, 40, 60, 60]);
    }

    #[test]
    fn invalid_configs_are_named() {
        let bad = BreakerConfig { failure_rate: Some(1.5), ..Default::default() };
        assert_eq!(bad.validate(), Err(BreakerConfigError::Rate { name: "failure_rate", value: 1.5 }));
        let bad = BreakerConfig { successes_to_close: 4, ..Default::default() };
        assert_eq!(bad.validate(), Err(BreakerConfigError::Probes));
    }
}
