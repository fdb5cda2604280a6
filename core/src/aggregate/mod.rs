//! Aggregation: one answer from the answers of several servers.
//!
//! - [`first`]: the first success in arrival order (what a hedge race returns).
//! - [`fastest`]: the success with the lowest latency (ties to the lower server id).
//! - [`all`]: every success and every error, by server: the caller merges (e.g. concatenates
//!   tool contents) and still sees which server failed how.
//! - [`quorum`]: the answer at least `k` servers agree on, comparing answers as canonical JSON
//!   ([`canonical`]: key order and number formatting do not matter); dissenters and failed
//!   servers are reported. [`majority`] is the quorum `⌊n/2⌋ + 1` of the `n` servers asked, so
//!   a failed server counts against agreement: it is not silently left out of `n`.
//!
//! No quorum is a typed error, [`AggregateError::NoQuorum`], listing every answer. A quorum
//! `k ≤ n/2` could be met by two different answers; that is [`AggregateError::Split`], never a
//! silent pick, so a byzantine minority can never win by arriving first.

mod canonical;

pub use canonical::canonical;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::fleet::ServerId;

/// One server's answer, in arrival order.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    /// Who answered.
    pub server: ServerId,
    /// How long it took.
    pub latency: Duration,
    /// The result, or a description of the failure.
    pub result: Result<Value, String>,
}

/// How several answers become one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aggregation {
    /// [`first`].
    First,
    /// [`fastest`].
    Fastest,
    /// [`all`].
    All,
    /// [`majority`].
    Majority,
    /// [`quorum`] with this k.
    Quorum(u32),
}

/// What one server said, for error reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Said {
    /// This canonical answer.
    Answer(String),
    /// This failure.
    Failed(String),
}

/// Why no answer came out.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AggregateError {
    /// No server answered successfully.
    #[error("all {} servers failed", .0.len())]
    AllFailed(Vec<(ServerId, String)>),
    /// No answer was held by `needed` servers.
    #[error("no answer reached the quorum of {needed} among {} servers", answers.len())]
    NoQuorum {
        /// The quorum.
        needed: u32,
        /// Every server's answer, by server.
        answers: Vec<(ServerId, Said)>,
    },
    /// Two different answers each reached a quorum of `needed` (k ≤ n/2).
    #[error("two different answers each reached the quorum of {needed}")]
    Split {
        /// The quorum.
        needed: u32,
        /// Every server's answer, by server.
        answers: Vec<(ServerId, Said)>,
    },
}

/// The answer that reached the quorum, with who agreed and who did not.
#[derive(Clone, Debug, PartialEq)]
pub struct Agreement<'a> {
    /// The agreed answer (as the first agreeing server sent it).
    pub value: &'a Value,
    /// Its canonical text.
    pub canonical: String,
    /// The servers that gave it, by id.
    pub agreeing: Vec<ServerId>,
    /// The servers that gave something else, or failed, by id.
    pub dissenting: Vec<(ServerId, Said)>,
}

/// Every success and every error, by server id.
#[derive(Clone, Debug, PartialEq)]
pub struct Merged<'a> {
    /// Successful answers.
    pub answers: Vec<(ServerId, &'a Value)>,
    /// Failures.
    pub errors: Vec<(ServerId, &'a str)>,
}

fn failures(answers: &[Answer]) -> Vec<(ServerId, String)> {
    let mut out: Vec<_> =
        answers.iter().filter_map(|a| a.result.as_ref().err().map(|e| (a.server, e.clone()))).collect();
    out.sort_by_key(|(s, _)| *s);
    out
}

/// The first success in arrival order.
pub fn first(answers: &[Answer]) -> Result<&Answer, AggregateError> {
    answers.iter().find(|a| a.result.is_ok()).ok_or_else(|| AggregateError::AllFailed(failures(answers)))
}

/// The success with the lowest latency; ties go to the lower server id.
pub fn fastest(answers: &[Answer]) -> Result<&Answer, AggregateError> {
    answers
        .iter()
        .filter(|a| a.result.is_ok())
        .min_by_key(|a| (a.latency, a.server))
        .ok_or_else(|| AggregateError::AllFailed(failures(answers)))
}

/// Every success and every error, by server id. Fails only if every server failed.
pub fn all(answers: &[Answer]) -> Result<Merged<'_>, AggregateError> {
    let mut merged = Merged { answers: Vec::new(), errors: Vec::new() };
    for a in answers {
        match &a.result {
            Ok(v) => merged.answers.push((a.server, v)),
            Err(e) => merged.errors.push((a.server, e.as_str())),
        }
    }
    if merged.answers.is_empty() {
        return Err(AggregateError::AllFailed(failures(answers)));
    }
    merged.answers.sort_by_key(|(s, _)| *s);
    merged.errors.sort_by_key(|(s, _)| *s);
    Ok(merged)
}

impl Aggregation {
    /// The agreement needed when `asked` servers were asked (`None`: not a vote).
    pub fn needed(self, asked: usize) -> Option<u32> {
        match self {
            Aggregation::Majority => Some(u32::try_from(asked / 2 + 1).unwrap_or(u32::MAX)),
            Aggregation::Quorum(k) => Some(k.max(1)),
            Aggregation::First | Aggregation::Fastest | Aggregation::All => None,
        }
    }

    /// Whether `answers` (in arrival order, of the `asked` servers) already settle this
    /// aggregation, so the servers still working can be cancelled:
    /// - `first` and `fastest`: at the first success (the first to arrive is the fastest);
    /// - `all`: when every server answered;
    /// - `majority` / `quorum(k)`: as soon as `k` agree and no other answer can still reach `k`,
    ///   or as soon as agreement has become impossible; always when every server answered.
    pub fn settled(self, answers: &[Answer], asked: usize) -> bool {
        if answers.len() >= asked {
            return true;
        }
        let Some(k) = self.needed(asked) else {
            return self != Aggregation::All && answers.iter().any(|a| a.result.is_ok());
        };
        let k = k as usize;
        let remaining = asked - answers.len();
        let mut groups: BTreeMap<String, usize> = BTreeMap::new();
        for a in answers {
            if let Ok(v) = &a.result {
                *groups.entry(canonical(v)).or_default() += 1;
            }
        }
        let mut sizes: Vec<usize> = groups.into_values().collect();
        sizes.sort_unstable_by(|a, b| b.cmp(a));
        let top = sizes.first().copied().unwrap_or(0);
        let second = sizes.get(1).copied().unwrap_or(0);
        // Reached, and no rival can reach k with every answer still to come.
        if top >= k && second + remaining < k {
            return true;
        }
        // Impossible: even if every answer to come agreed with the largest group.
        top + remaining < k
    }
}

/// The quorum of a strict majority of the servers asked: `⌊n/2⌋ + 1`.
pub fn majority(answers: &[Answer]) -> Result<Agreement<'_>, AggregateError> {
    quorum(answers, (answers.len() / 2 + 1) as u32)
}

/// The answer at least `k` servers gave (`k ≥ 1`).
pub fn quorum(answers: &[Answer], k: u32) -> Result<Agreement<'_>, AggregateError> {
    let k = k.max(1);
    let said: Vec<(ServerId, Said, Option<&Value>)> = answers
        .iter()
        .map(|a| match &a.result {
            Ok(v) => (a.server, Said::Answer(canonical(v)), Some(v)),
            Err(e) => (a.server, Said::Failed(e.clone()), None),
        })
        .collect();
    // canonical text → (servers, first value), in canonical order for determinism.
    let mut groups: BTreeMap<&str, (Vec<ServerId>, &Value)> = BTreeMap::new();
    for (server, s, v) in &said {
        if let (Said::Answer(text), Some(v)) = (s, v) {
            groups.entry(text.as_str()).or_insert_with(|| (Vec::new(), v)).0.push(*server);
        }
    }
    let mut reached = groups.iter().filter(|(_, (servers, _))| servers.len() as u32 >= k);
    let report = || {
        let mut all: Vec<(ServerId, Said)> = said.iter().map(|(s, x, _)| (*s, x.clone())).collect();
        all.sort_by_key(|(s, _)| *s);
        all
    };
    let Some((text, (servers, value))) = reached.next() else {
        return Err(AggregateError::NoQuorum { needed: k, answers: report() });
    };
    if reached.next().is_some() {
        return Err(AggregateError::Split { needed: k, answers: report() });
    }
    let mut agreeing = servers.clone();
    agreeing.sort();
    let mut dissenting: Vec<(ServerId, Said)> = said
        .iter()
        .filter(|(_, x, _)| !matches!(x, Said::Answer(t) if t == text))
        .map(|(s, x, _)| (*s, x.clone()))
        .collect();
    dissenting.sort_by_key(|(s, _)| *s);
    Ok(Agreement { value, canonical: (*text).to_owned(), agreeing, dissenting })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(id: u32, ms: u64, v: Value) -> Answer {
        Answer { server: ServerId(id), latency: Duration::from_millis(ms), result: Ok(v) }
    }
    fn err(id: u32, ms: u64) -> Answer {
        Answer { server: ServerId(id), latency: Duration::from_millis(ms), result: Err("timeout".into()) }
    }

    #[test]
    fn first_and_fastest_differ_when_arrival_is_not_latency_order() {
        let answers = [err(0, 5), ok(1, 30, json!(1)), ok(2, 10, json!(2))];
        assert_eq!(first(&answers).unwrap().server, ServerId(1));
        assert_eq!(fastest(&answers).unwrap().server, ServerId(2));
        assert!(matches!(first(&[err(0, 1)]), Err(AggregateError::AllFailed(e)) if e.len() == 1));
    }

    #[test]
    fn the_majority_wins_over_a_lying_minority_that_answered_first() {
        let answers = [ok(2, 1, json!({"v": 666})), ok(0, 9, json!({"v": 1.0})), ok(1, 9, json!({"v": 1}))];
        let a = majority(&answers).unwrap();
        assert_eq!(a.agreeing, [ServerId(0), ServerId(1)]);
        assert_eq!(a.dissenting, [(ServerId(2), Said::Answer(r#"{"v":666}"#.into()))]);
    }

    #[test]
    fn failures_count_against_a_majority() {
        let answers = [ok(0, 1, json!(1)), err(1, 1), err(2, 1)];
        let e = majority(&answers).unwrap_err();
        assert!(matches!(e, AggregateError::NoQuorum { needed: 2, ref answers } if answers.len() == 3), "{e:?}");
    }

    #[test]
    fn a_low_quorum_met_by_two_answers_is_a_split_not_a_choice() {
        let answers = [ok(0, 1, json!(1)), ok(1, 1, json!(2))];
        assert!(matches!(quorum(&answers, 1), Err(AggregateError::Split { .. })));
    }

    #[test]
    fn all_keeps_every_answer_and_every_error_by_server() {
        let answers = [ok(2, 1, json!("b")), err(1, 1), ok(0, 1, json!("a"))];
        let m = all(&answers).unwrap();
        assert_eq!(m.answers, [(ServerId(0), &json!("a")), (ServerId(2), &json!("b"))]);
        assert_eq!(m.errors, [(ServerId(1), "timeout")]);
    }

    #[test]
    fn first_settles_at_the_first_success_and_all_waits_for_everyone() {
        let a = [err(0, 5), ok(1, 10, json!(1))];
        assert!(!Aggregation::First.settled(&a[..1], 4));
        assert!(Aggregation::First.settled(&a, 4));
        assert!(Aggregation::Fastest.settled(&a, 4));
        assert!(!Aggregation::All.settled(&a, 4));
        assert!(Aggregation::All.settled(&a, 2));
    }

    #[test]
    fn majority_settles_once_a_majority_agrees_or_cannot() {
        // Three of five agree: settled with two still out.
        let agree = [ok(0, 1, json!("x")), ok(1, 1, json!("x")), ok(2, 1, json!("x"))];
        assert!(!Aggregation::Majority.settled(&agree[..2], 5));
        assert!(Aggregation::Majority.settled(&agree, 5));
        assert_eq!(majority_of(&agree, 5), Some(vec![ServerId(0), ServerId(1), ServerId(2)]));
        // Three different answers of five: no answer can reach three any more.
        let split = [ok(0, 1, json!("a")), ok(1, 1, json!("b")), err(2, 1), ok(3, 1, json!("c"))];
        assert!(!Aggregation::Majority.settled(&split[..2], 5));
        assert!(Aggregation::Majority.settled(&split, 5));
    }

    #[test]
    fn a_low_quorum_waits_while_a_rival_answer_could_still_reach_it() {
        // k = 2 of 5: "a" reached 2, but "b" (1) could still reach 2 with 2 answers to come.
        let a = [ok(0, 1, json!("a")), ok(1, 1, json!("a")), ok(2, 1, json!("b"))];
        assert!(!Aggregation::Quorum(2).settled(&a, 5));
        assert!(Aggregation::Quorum(2).settled(&a[..2], 3));
    }

    fn majority_of(answers: &[Answer], asked: usize) -> Option<Vec<ServerId>> {
        let k = Aggregation::Majority.needed(asked)?;
        quorum(answers, k).ok().map(|a| a.agreeing)
    }
}
