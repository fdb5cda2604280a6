//! Balancing, every built-in strategy at n = 3, 10, 100, 1,000 available servers, through
//! `gauntlet_core::testing::bench` (the helper users bench their own strategies with):
//! - `balance/<strategy>`, ids `<load>/<n>`: one pick;
//! - `balance+record/<strategy>`, ids `<load>/<n>`: one pick plus recording its call (begin, end
//!   with a latency sample), the per-call work a balancer adds to the hot path.
//!
//! Loads: `uniform`, every server one call in flight and the same latency; `skewed`, one server
//! in ten hot (many calls in flight, a slow latency sample), the others as in `uniform`. Time
//! advances by a microsecond per iteration so Peak-EWMA decays as it would in a run.
//!
//! And the peer, in the same groups so the ratio comes from one run: `vs-tower/p2c-peak-ewma`
//! and `vs-tower/p2c`, ids `gauntlet/<n>` and `tower/<n>`: one call's pick and record through
//! ours, and through tower 0.5's `balance::p2c::Balance` over n ready services wrapped in
//! `load::PeakEwma` (same decay and default RTT as ours) or `load::PendingRequests`. Tower's
//! call is `poll_ready` (the P2C pick, and the ready cache taking back the service called
//! before) + `call` + the response, whose completion records the latency. The services answer
//! at once, so what is measured is the balancer. After the groups the bench prints, for n =
//! 1,000, the ratio tower time / ours from alternated rounds.

mod common;

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use gauntlet_core::balance::Strategy;
use gauntlet_core::testing::bench::bench_strategies;
use gauntlet_core::testing::load::{Load, SEED, SIZES, fleet, pick_and_record};
use gauntlet_core::{LatencyConfig, SeededRng};
use tower::Service;
use tower::balance::p2c::Balance;
use tower::discover::ServiceList;
use tower::load::{CompleteOnResponse, PeakEwma, PendingRequests};

/// The size the ratio against tower is taken at, and its rounds and calls per round.
const RATIO_N: u32 = 1_000;
const RATIO_ROUNDS: usize = 30;
const RATIO_CALLS: u64 = 50_000;

/// `balance/<strategy>` and `balance+record/<strategy>` for every built-in strategy, through the
/// same public helper a user benches their own strategy with.
fn built_in(c: &mut Criterion) {
    bench_strategies(c, &Strategy::BUILT_IN);
}

/// A service that answers at once: tower's side measures the balancer alone.
#[derive(Clone, Copy, Debug)]
struct AtOnce;

impl Service<()> for AtOnce {
    type Response = ();
    type Error = Infallible;
    type Future = Ready<Result<(), Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, (): ()) -> Self::Future {
        ready(Ok(()))
    }
}

/// Our generator behind tower's `Rng`, so both sides draw from the same seeded stream.
struct Seeded(SeededRng);

impl tower::util::rng::Rng for Seeded {
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
}

type TowerBalance<S> = Balance<ServiceList<Vec<S>>, ()>;

fn tower_peak_ewma(n: u32) -> TowerBalance<PeakEwma<AtOnce, CompleteOnResponse>> {
    let latency = LatencyConfig::default();
    let decay_ns = latency.decay.as_secs_f64() * 1e9;
    let services =
        (0..n).map(|_| PeakEwma::new(AtOnce, latency.default_rtt, decay_ns, CompleteOnResponse::default())).collect();
    ready_balance(services)
}

fn tower_pending(n: u32) -> TowerBalance<PendingRequests<AtOnce, CompleteOnResponse>> {
    ready_balance((0..n).map(|_| PendingRequests::new(AtOnce, CompleteOnResponse::default())).collect())
}

/// A balancer over `services`, with every one discovered and ready.
fn ready_balance<S>(services: Vec<S>) -> TowerBalance<S>
where
    S: Service<(), Error = Infallible>,
    TowerBalance<S>: Service<()>,
{
    let n = services.len();
    let mut balance = Balance::from_rng(ServiceList::new(services), Seeded(SeededRng::new(SEED)));
    tower_call(&mut balance);
    assert_eq!(balance.len(), n, "every service discovered");
    balance
}

/// One call through a tower service whose calls complete at once.
fn tower_call<S: Service<()>>(service: &mut S) {
    let mut cx = Context::from_waker(Waker::noop());
    assert!(matches!(service.poll_ready(&mut cx), Poll::Ready(Ok(()))), "a ready service");
    let Poll::Ready(Ok(response)) = pin!(service.call(())).poll(&mut cx) else { panic!("an answer at once") };
    black_box(response);
}

/// Ours with `strategy` beside tower's `peer` over `n` uniform servers, in one group.
fn versus<S: Service<()>>(c: &mut Criterion, strategy: Strategy, mut peer: impl FnMut(u32) -> S) {
    let mut group = c.benchmark_group(format!("vs-tower/{strategy}"));
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    for n in SIZES {
        let (mut fleet, ids) = fleet(n, Load::Uniform);
        let mut balancer = strategy.build();
        let mut rng = SeededRng::new(SEED);
        let mut tick = 0u64;
        group.bench_function(BenchmarkId::new("gauntlet", n), |b| {
            b.iter(|| {
                tick += 1;
                pick_and_record(&mut fleet, &ids, balancer.as_mut(), &mut rng, tick);
            });
        });
        let mut tower = peer(n);
        group.bench_function(BenchmarkId::new("tower", n), |b| b.iter(|| tower_call(&mut tower)));
    }
    group.finish();

    let (mut fleet, ids) = fleet(RATIO_N, Load::Uniform);
    let mut balancer = strategy.build();
    let mut rng = SeededRng::new(SEED);
    let mut tick = 0u64;
    let mut tower = peer(RATIO_N);
    let ratio = common::alternated(
        RATIO_ROUNDS,
        || {
            for _ in 0..RATIO_CALLS {
                tick += 1;
                pick_and_record(&mut fleet, &ids, balancer.as_mut(), &mut rng, tick);
            }
        },
        || {
            for _ in 0..RATIO_CALLS {
                tower_call(&mut tower);
            }
        },
    );
    common::report(&format!(
        "vs-tower/{strategy}: tower time / ours per pick + record at n = {RATIO_N}, median of {RATIO_ROUNDS} alternated rounds of {RATIO_CALLS} calls: {ratio}"
    ));
}

fn against_tower(c: &mut Criterion) {
    versus(c, Strategy::P2C_PEAK_EWMA, tower_peak_ewma);
    versus(c, Strategy::P2C, tower_pending);
}

criterion_group!(benches, built_in, against_tower);
criterion_main!(benches);
