//! The checkers every run passes through: safety (nothing lost, no deadline missed, no unsafe
//! side effect twice, no attempt through an open breaker, no minority answer passed off as the
//! majority's). Each judges one call or one event as the run goes, so that no checker needs a
//! run's calls kept; the recorder (`crate::record`) calls them, and finds the lost calls (those
//! still in flight when the run ends). Liveness (recovery) is judged from the recorder's figure.

use std::time::Duration;

use gauntlet_client::Event as ClientEvent;
use gauntlet_core::breaker::Phase;
use gauntlet_reports::Violation;

use crate::log::micros;

/// Whether call `call`, which started at `start_us` and took `took_us`, missed its deadline: it
/// may end up to two ticks late (the client sees time move in ticks).
pub fn late(call: u64, start_us: u64, took_us: u64, deadline: Duration, tick: Duration) -> Option<Violation> {
    let bound = micros(deadline.saturating_add(tick.saturating_mul(2)));
    (took_us > bound).then_some(Violation::DeadlineMissed { call, took_us, start_us: Some(start_us) })
}

/// No attempt passes an open breaker, and a half-open one admits probes only: follows each
/// server's breaker through the client's events, in the order the client made them.
#[derive(Clone, Debug)]
pub struct BreakerCheck {
    state: Vec<Phase>,
}

impl BreakerCheck {
    /// Every one of `servers` breakers closed.
    pub fn new(servers: usize) -> BreakerCheck {
        BreakerCheck { state: vec![Phase::Closed; servers] }
    }

    /// Sees the client's event `e` at `t_us` (`names`: the client's servers, by index).
    pub fn see(&mut self, t_us: u64, e: &ClientEvent, names: &[String]) -> Option<Violation> {
        match e {
            ClientEvent::Breaker { server, to, .. } => {
                if let Some(s) = self.state.get_mut(server.index()) {
                    *s = *to;
                }
                None
            }
            ClientEvent::Sent { server, probe, .. } => {
                let s = *self.state.get(server.index())?;
                (s == Phase::Open || (s == Phase::HalfOpen && !probe)).then(|| Violation::BreakerBypassed {
                    server: names.get(server.index()).cloned().unwrap_or_default(),
                    t_us,
                    state: s,
                })
            }
            _ => None,
        }
    }
}

/// A majority answer is never a minority's: `answer`, which aggregated call `call` returned,
/// must be the one more than half of the servers that answered it (`given`: server, answer, as
/// the servers recorded them) gave.
pub fn minority(call: u64, start_us: u64, answer: &str, given: &[(String, String)]) -> Option<Violation> {
    let agreeing = given.iter().filter(|(_, a)| a == answer).count();
    (agreeing * 2 <= given.len()).then_some(Violation::MinorityAnswer {
        call,
        agreeing,
        answered: given.len(),
        start_us: Some(start_us),
    })
}

#[cfg(test)]
mod tests {
    use gauntlet_core::ServerId;

    use super::*;

    #[test]
    fn a_call_may_end_two_ticks_after_its_deadline_and_no_later() {
        let (deadline, tick) = (Duration::from_secs(2), Duration::from_millis(1));
        assert_eq!(late(1, 5, 2_002_000, deadline, tick), None);
        assert_eq!(
            late(1, 5, 2_002_001, deadline, tick),
            Some(Violation::DeadlineMissed { call: 1, took_us: 2_002_001, start_us: Some(5) })
        );
    }

    #[test]
    fn an_attempt_through_an_open_breaker_or_a_non_probe_through_a_half_open_one_is_flagged() {
        let names = ["a".to_owned(), "b".to_owned()];
        let a = ServerId(0);
        let sent = |probe| ClientEvent::Sent { server: a, probe, tier: 0, hedge: false };
        let mut check = BreakerCheck::new(2);
        assert_eq!(check.see(1, &sent(false), &names), None);
        check.see(2, &ClientEvent::Breaker { server: a, from: Phase::Closed, to: Phase::Open }, &names);
        assert_eq!(
            check.see(3, &sent(false), &names),
            Some(Violation::BreakerBypassed { server: "a".to_owned(), t_us: 3, state: Phase::Open })
        );
        check.see(4, &ClientEvent::Breaker { server: a, from: Phase::Open, to: Phase::HalfOpen }, &names);
        assert_eq!(check.see(5, &sent(true), &names), None);
        assert!(check.see(6, &sent(false), &names).is_some());
        // Another server's breaker is its own.
        let b = ClientEvent::Sent { server: ServerId(1), probe: false, tier: 0, hedge: false };
        assert_eq!(check.see(7, &b, &names), None);
    }

    #[test]
    fn an_answer_half_the_servers_gave_is_not_a_majority() {
        let given = |answers: &[&str]| -> Vec<(String, String)> {
            answers.iter().enumerate().map(|(i, a)| (format!("s{i}"), (*a).to_owned())).collect()
        };
        assert_eq!(minority(1, 0, "x", &given(&["x", "x", "y"])), None);
        assert_eq!(
            minority(1, 0, "x", &given(&["x", "y"])),
            Some(Violation::MinorityAnswer { call: 1, agreeing: 1, answered: 2, start_us: Some(0) })
        );
        assert!(minority(1, 0, "x", &[]).is_some(), "no server gave it");
    }
}
