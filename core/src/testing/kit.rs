//! The conformance kit on proptest: a balancer is played through random scripts of picks and
//! fleet changes, and every pick is checked; a failure is shrunk to a minimal script and can be
//! persisted as a regression, as proptest does for any property.
//!
//! What a script does, on one balancer instance: picks (with servers excluded, as a retry
//! excludes the ones it tried, and an affinity key), availability changes (health, breaker,
//! ejection), weight changes, servers joining and leaving, and load (calls beginning and
//! ending with latency samples). The properties:
//!
//! - **safety**: a pick is a member of the view, available and not excluded;
//! - **liveness**: a pick returns a server whenever one is eligible, and none when none is;
//! - **fresh caches**: both hold after every change, on the same instance, so a balancer that
//!   caches its candidates must notice the fleet's epoch moving;
//! - **determinism**: the same script and seed give the same picks on a new instance.
//!
//! Beside them, [`check_fairness`] checks a share of picks a strategy claims, and (feature
//! `alloc-check`) `check_allocations` checks that a warm balancer's picks never allocate.
//!
//! ```
//! use gauntlet_core::balance::RoundRobin;
//! use gauntlet_core::testing::kit::{Kit, check};
//! check(RoundRobin::new, &Kit { cases: 64, ..Kit::default() }).unwrap();
//! ```

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestError, TestRunner};

use crate::balance::{Balancer, PickContext};
use crate::fleet::{Fleet, LatencyConfig, ServerId, ServerSpec};
use crate::rng::SeededRng;
use crate::time::Time;

/// The most servers a script starts with.
pub const MAX_SERVERS: usize = 24;
/// The most steps of a script.
pub const MAX_STEPS: usize = 80;

/// How a server's availability changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Health checks fail.
    Unhealthy,
    /// Health checks pass again.
    Healthy,
    /// Its breaker opens.
    BreakerOpen,
    /// Its breaker closes.
    BreakerClosed,
    /// Outlier detection ejects it.
    Ejected,
    /// Outlier detection lets it back.
    Restored,
}

/// One step of a script. Servers are named by their position among the current members
/// (modulo their number, so any position names someone while there is anyone).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// A pick that must avoid the members whose bit is set in `exclude` (bit `i`: position `i`).
    Pick {
        /// Excluded positions, as bits.
        exclude: u32,
        /// The call's affinity key.
        affinity: u64,
    },
    /// A member's availability changes.
    Availability {
        /// Its position.
        at: u8,
        /// The change.
        change: Change,
    },
    /// A member's weight changes.
    Weight {
        /// Its position.
        at: u8,
        /// The new weight.
        weight: u32,
    },
    /// A new server joins the replica set.
    Join {
        /// Its weight.
        weight: u32,
        /// Its priority tier.
        priority: u32,
    },
    /// A member leaves (it is retired and no longer a member).
    Leave {
        /// Its position.
        at: u8,
    },
    /// A call to a member begins, or one ends with a latency sample.
    Load {
        /// Its position.
        at: u8,
        /// The sample, in µs; `None`: a call begins.
        rtt_us: Option<u32>,
    },
}

/// A server a script starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Start {
    /// Its weight.
    pub weight: u32,
    /// Its priority tier.
    pub priority: u32,
    /// Unavailable from the start (unhealthy), or not.
    pub down: bool,
}

/// A script: the fleet it starts with, the steps, and the seed of the balancer's RNG.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    /// The replica set at the start.
    pub servers: Vec<Start>,
    /// What happens, in order.
    pub steps: Vec<Step>,
    /// The seed of the RNG the balancer draws from.
    pub seed: u64,
}

/// How many scripts to play, and where to keep the ones that failed.
#[derive(Clone, Debug)]
pub struct Kit {
    /// Scripts per run.
    pub cases: u32,
    /// A file in which proptest keeps the seeds of failed scripts, replayed first on every run
    /// (e.g. `tests/kit.proptest-regressions`); `None`: keep nothing.
    pub regressions: Option<PathBuf>,
    /// The seed of the scripts: the same seed plays the same scripts (vary it to explore more).
    pub seed: u64,
}

impl Default for Kit {
    fn default() -> Kit {
        Kit { cases: 256, regressions: None, seed: 0 }
    }
}

/// A broken property, with the smallest script proptest found that still breaks it.
#[derive(Clone, Debug)]
pub struct Failure {
    /// What went wrong.
    pub message: String,
    /// The minimal failing script (`None` if proptest gave up before finding one).
    pub script: Option<Script>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(s) = &self.script {
            write!(f, "\nminimal script: {s:#?}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Failure {}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        Just(Change::Unhealthy),
        Just(Change::Healthy),
        Just(Change::BreakerOpen),
        Just(Change::BreakerClosed),
        Just(Change::Ejected),
        Just(Change::Restored),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (any::<u32>(), 0u64..64).prop_map(|(exclude, affinity)| Step::Pick { exclude, affinity }),
        2 => (any::<u8>(), change()).prop_map(|(at, change)| Step::Availability { at, change }),
        1 => (any::<u8>(), 1u32..=20).prop_map(|(at, weight)| Step::Weight { at, weight }),
        1 => (1u32..=20, 0u32..3).prop_map(|(weight, priority)| Step::Join { weight, priority }),
        1 => any::<u8>().prop_map(|at| Step::Leave { at }),
        2 => (any::<u8>(), proptest::option::of(100u32..50_000)).prop_map(|(at, rtt_us)| Step::Load { at, rtt_us }),
    ]
}

/// Random scripts, as the kit plays them.
pub fn scripts() -> impl Strategy<Value = Script> {
    let start = (1u32..=20, 0u32..3, proptest::bool::weighted(0.2)).prop_map(|(weight, priority, down)| Start {
        weight,
        priority,
        down,
    });
    (proptest::collection::vec(start, 0..=MAX_SERVERS), proptest::collection::vec(step(), 1..=MAX_STEPS), any::<u64>())
        .prop_map(|(servers, steps, seed)| Script { servers, steps, seed })
}

/// Plays `script` on a fresh balancer from `make`, checking every pick; returns the picks.
pub fn play<B: Balancer>(make: &impl Fn() -> B, script: &Script) -> Result<Vec<Option<ServerId>>, TestCaseError> {
    let mut fleet = Fleet::new(LatencyConfig::default());
    let mut members: Vec<ServerId> = Vec::new();
    let mut outstanding: Vec<u32> = Vec::new();
    let mut joined = 0u32;
    let start = Time::from_secs(100);
    let mut add = |fleet: &mut Fleet, weight: u32, priority: u32, now: Time| {
        joined += 1;
        fleet.join(&format!("server-{joined}"), ServerSpec { weight, priority }, now)
    };
    for s in &script.servers {
        let id = add(&mut fleet, s.weight, s.priority, start).map_err(|e| TestCaseError::fail(e.to_string()))?;
        if s.down {
            fleet.set_healthy(id, false, start);
        }
        members.push(id);
    }
    outstanding.resize(fleet.len(), 0);
    let mut balancer = make();
    let mut rng = SeededRng::new(script.seed);
    let mut picks = Vec::new();
    for (n, step) in script.steps.iter().enumerate() {
        let now = start + Duration::from_millis(10 * (n as u64 + 1));
        let member = |at: u8| (!members.is_empty()).then(|| usize::from(at) % members.len());
        match *step {
            Step::Pick { exclude, affinity } => {
                let excluded: Vec<ServerId> = members
                    .iter()
                    .enumerate()
                    .filter(|&(i, _)| i < 32 && exclude >> i & 1 == 1)
                    .map(|(_, &id)| id)
                    .collect();
                let ctx = PickContext::at(now).with_affinity(affinity).excluding(&excluded);
                let eligible = members.iter().any(|&id| fleet.state(id).is_available() && !ctx.is_excluded(id));
                let got = balancer.pick(&fleet.view(&members), &ctx, &mut rng);
                match got {
                    None => prop_assert!(!eligible, "step {n}: no server, though one was eligible"),
                    Some(id) => {
                        prop_assert!(members.contains(&id), "step {n}: {id} is not a member");
                        prop_assert!(fleet.state(id).is_available(), "step {n}: {id} is unavailable");
                        prop_assert!(!ctx.is_excluded(id), "step {n}: {id} is excluded");
                    }
                }
                picks.push(got);
            }
            Step::Availability { at, change } => {
                if let Some(i) = member(at) {
                    let id = members[i];
                    match change {
                        Change::Unhealthy => fleet.set_healthy(id, false, now),
                        Change::Healthy => fleet.set_healthy(id, true, now),
                        Change::BreakerOpen => fleet.set_breaker_open(id, true, now),
                        Change::BreakerClosed => fleet.set_breaker_open(id, false, now),
                        Change::Ejected => fleet.set_ejected(id, true, now),
                        Change::Restored => fleet.set_ejected(id, false, now),
                    }
                }
            }
            Step::Weight { at, weight } => {
                if let Some(i) = member(at) {
                    fleet.set_weight(members[i], weight).map_err(|e| TestCaseError::fail(e.to_string()))?;
                }
            }
            Step::Join { weight, priority } => {
                if members.len() < 2 * MAX_SERVERS {
                    let id = add(&mut fleet, weight, priority, now).map_err(|e| TestCaseError::fail(e.to_string()))?;
                    members.push(id);
                    outstanding.resize(fleet.len(), 0);
                }
            }
            Step::Leave { at } => {
                if let Some(i) = member(at) {
                    let id = members.remove(i);
                    fleet.retire(id, now);
                }
            }
            Step::Load { at, rtt_us } => {
                if let Some(i) = member(at) {
                    let id = members[i];
                    match rtt_us {
                        None => {
                            fleet.begin(id);
                            outstanding[id.index()] += 1;
                        }
                        Some(us) if outstanding[id.index()] > 0 => {
                            fleet.end(id, Duration::from_micros(u64::from(us)), now);
                            outstanding[id.index()] -= 1;
                        }
                        Some(_) => {}
                    }
                }
            }
        }
    }
    Ok(picks)
}

/// Plays `kit.cases` random scripts through balancers from `make`; see the module docs. A
/// failure carries the minimal script.
pub fn check<B: Balancer>(make: impl Fn() -> B, kit: &Kit) -> Result<(), Failure> {
    let persistence = kit.regressions.as_ref().map(|path| {
        // proptest wants a path that lives as long as the process: one per call, and small.
        let path: &'static str = Box::leak(path.display().to_string().into_boxed_str());
        Box::new(FileFailurePersistence::Direct(path)) as Box<dyn proptest::test_runner::FailurePersistence>
    });
    let config = Config {
        cases: kit.cases,
        failure_persistence: persistence,
        rng_seed: proptest::test_runner::RngSeed::Fixed(kit.seed),
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    runner
        .run(&scripts(), |script| {
            let first = play(&make, &script)?;
            let again = play(&make, &script)?;
            prop_assert_eq!(first, again, "the same script and seed gave other picks on a new balancer");
            Ok(())
        })
        .map_err(|e| match e {
            TestError::Fail(reason, script) => Failure { message: reason.message().to_owned(), script: Some(script) },
            TestError::Abort(reason) => Failure { message: reason.message().to_owned(), script: None },
        })
}

/// A share of picks a strategy claims, on a fleet of available, idle servers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fairness {
    /// Every server gets `1/n` of the picks, within `tolerance` (absolute, e.g. 0.05).
    Uniform {
        /// How far a share may be from `1/n`.
        tolerance: f64,
    },
    /// Every server gets `weight / total weight` of the picks, within `tolerance`.
    Weighted {
        /// How far a share may be from its weight's.
        tolerance: f64,
    },
}

/// Checks the share of picks `make`'s balancers give each server of random fleets (2 to 16
/// available servers, weights 1 to 8, no load, no exclusion), over `picks` picks per fleet,
/// against `claim`; a failure is shrunk to the smallest fleet that breaks the claim.
pub fn check_fairness<B: Balancer>(
    make: impl Fn() -> B,
    claim: Fairness,
    picks: u32,
    kit: &Kit,
) -> Result<(), Failure> {
    let config = Config {
        cases: kit.cases,
        rng_seed: proptest::test_runner::RngSeed::Fixed(kit.seed),
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let fleets = (proptest::collection::vec(1u32..=8, 2..=16), any::<u64>());
    runner
        .run(&fleets, |(weights, seed)| {
            let mut fleet = Fleet::new(LatencyConfig::default());
            let members: Vec<ServerId> = weights
                .iter()
                .enumerate()
                .map(|(i, &weight)| fleet.add(&format!("server-{i}"), ServerSpec { weight, priority: 0 }))
                .collect::<Result<_, _>>()
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let mut balancer = make();
            let mut rng = SeededRng::new(seed);
            let mut counts = vec![0u32; members.len()];
            let now = Time::from_secs(100);
            for k in 0..picks {
                let ctx = PickContext::at(now).with_affinity(u64::from(k));
                let Some(id) = balancer.pick(&fleet.view(&members), &ctx, &mut rng) else {
                    return Err(TestCaseError::fail(format!("pick {k}: none, though every server is available")));
                };
                if let Some(i) = members.iter().position(|&m| m == id) {
                    counts[i] += 1;
                }
            }
            let total_weight: u32 = weights.iter().sum();
            for (i, &n) in counts.iter().enumerate() {
                let share = f64::from(n) / f64::from(picks.max(1));
                let (expected, tolerance) = match claim {
                    Fairness::Uniform { tolerance } => (1.0 / members.len() as f64, tolerance),
                    Fairness::Weighted { tolerance } => (f64::from(weights[i]) / f64::from(total_weight), tolerance),
                };
                prop_assert!(
                    (share - expected).abs() <= tolerance,
                    "server {i} of {} (weight {}) got {share:.4} of the picks, expected {expected:.4} +- {tolerance}",
                    members.len(),
                    weights[i]
                );
            }
            Ok(())
        })
        .map_err(|e| match e {
            TestError::Fail(reason, _) | TestError::Abort(reason) => {
                Failure { message: reason.message().to_owned(), script: None }
            }
        })
}

/// Picks per fleet that [`check_allocations`] counts, after its warm-up.
#[cfg(feature = "alloc-check")]
pub const ALLOC_PICKS: u64 = 10_000;

/// Checks that `make`'s balancers allocate nothing per pick once warm: on each of the bench
/// fleets ([`load::SIZES`](super::load::SIZES) under each [`Load`](super::load::Load)), one pick
/// warms the balancer's caches, then [`ALLOC_PICKS`] picks (every fourth excluding two servers,
/// each with an affinity key) and their calls' records must not touch the heap. A balancer may
/// allocate when the fleet changes (its epoch moves); not on a pick of an unchanged fleet.
///
/// The `alloc-check` feature links a counting global allocator (`allocation-counter`) into the
/// binary: enable it in `[dev-dependencies]` only. Allocations are counted on this thread; the
/// check fails, rather than passing, if the counter is not the active allocator.
#[cfg(feature = "alloc-check")]
pub fn check_allocations<B: Balancer>(make: impl Fn() -> B) -> Result<(), Failure> {
    use super::load::{self, Load, SIZES};
    let fail = |message: String| Failure { message, script: None };
    let probe = allocation_counter::measure(|| drop(std::hint::black_box(Box::new(0u64))));
    if probe.count_total == 0 {
        return Err(fail("the counting allocator is not active: nothing was measured".to_owned()));
    }
    for n in SIZES {
        for l in Load::ALL {
            let (mut fleet, ids) = load::fleet(n, l);
            let tried = [ids[0], ids[ids.len() / 2]];
            let mut balancer = make();
            let mut rng = SeededRng::new(load::SEED);
            let mut pick = |fleet: &mut Fleet, balancer: &mut B, k: u64| -> Result<(), String> {
                let now = load::START + Duration::from_micros(k);
                let ctx = PickContext::at(now).with_affinity(k);
                let ctx = if k.is_multiple_of(4) && ids.len() > 2 { ctx.excluding(&tried) } else { ctx };
                let id = balancer.pick(&fleet.view(&ids), &ctx, &mut rng).ok_or_else(|| {
                    format!("{n} servers, {} load: pick {k} returned none, though servers are eligible", l.name())
                })?;
                fleet.begin(id);
                fleet.end(id, Duration::from_micros(300 + k % 700), now);
                Ok(())
            };
            pick(&mut fleet, &mut balancer, 0).map_err(fail)?;
            let mut result = Ok(());
            let spent = allocation_counter::measure(|| {
                for k in 1..=ALLOC_PICKS {
                    if let Err(e) = pick(&mut fleet, &mut balancer, k) {
                        result = Err(e);
                        break;
                    }
                }
            });
            result.map_err(fail)?;
            if spent.count_total > 0 {
                return Err(fail(format!(
                    "{n} servers, {} load: {} allocations ({} bytes) in {ALLOC_PICKS} picks and records after a warm-up \
                     pick; a pick on an unchanged fleet must not allocate",
                    l.name(),
                    spent.count_total,
                    spent.bytes_total
                )));
            }
        }
    }
    Ok(())
}
