//! `gauntlet strategies` and `gauntlet pick`: the balancers, without a network.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use gauntlet_core::balance::{BalancerConfig, PickContext, Strategy};
use gauntlet_core::fleet::MAX_WEIGHT;
use gauntlet_core::{Fleet, LatencyConfig, SeededRng, ServerId, ServerSpec, Time};

/// The most servers `pick` simulates.
const MAX_SERVERS: u32 = 10_000;
/// The most picks `pick` makes.
const MAX_PICKS: u32 = 10_000_000;

pub(crate) fn list_strategies(out: &mut impl Write) -> anyhow::Result<()> {
    for s in Strategy::all() {
        writeln!(out, "{:<18} {}", s.name(), s.summary())?;
    }
    Ok(())
}

/// Checked settings of `gauntlet pick`.
#[derive(Debug)]
pub(crate) struct Settings {
    policy: BalancerConfig,
    specs: Vec<ServerSpec>,
    down: Vec<u32>,
    picks: u32,
    seed: u64,
}

impl TryFrom<crate::args::PickArgs> for Settings {
    type Error = anyhow::Error;

    fn try_from(raw: crate::args::PickArgs) -> anyhow::Result<Settings> {
        let strategy: Strategy = raw.strategy.parse()?;
        let n = if raw.weights.is_empty() { raw.servers } else { raw.weights.len() as u32 };
        ensure!((1..=MAX_SERVERS).contains(&n), "--servers must be in 1..={MAX_SERVERS}, got {n}");
        ensure!((1..=MAX_PICKS).contains(&raw.picks), "--picks must be in 1..={MAX_PICKS}, got {}", raw.picks);
        if let Some(w) = raw.weights.iter().find(|&&w| w == 0 || w > MAX_WEIGHT) {
            bail!("--weights: {w} is outside 1..={MAX_WEIGHT}");
        }
        if !raw.priorities.is_empty() && raw.priorities.len() as u32 != n {
            bail!("--priorities lists {} values for {n} servers", raw.priorities.len());
        }
        ensure!(
            (0.0..=1.0).contains(&raw.panic_threshold),
            "--panic-threshold must be in [0, 1], got {}",
            raw.panic_threshold
        );
        if let Some(d) = raw.down.iter().find(|&&d| d >= n) {
            bail!("--down: server {d} does not exist (servers are numbered 0..{n})");
        }
        let specs = (0..n as usize)
            .map(|i| ServerSpec {
                weight: raw.weights.get(i).copied().unwrap_or(1),
                priority: raw.priorities.get(i).copied().unwrap_or(0),
            })
            .collect();
        let priority_threshold = (!raw.priorities.is_empty()).then_some(raw.panic_threshold);
        Ok(Settings {
            policy: BalancerConfig { strategy, priority_threshold, slow_start: None },
            specs,
            down: raw.down,
            picks: raw.picks,
            seed: raw.seed,
        })
    }
}

/// Makes the picks, recording each as a 1 ms call, and prints each server's share.
pub(crate) fn run(settings: &Settings, out: &mut impl Write) -> anyhow::Result<()> {
    let mut fleet = Fleet::new(LatencyConfig::default());
    let ids: Vec<ServerId> = settings
        .specs
        .iter()
        .enumerate()
        .map(|(i, spec)| fleet.add(&format!("server-{i}"), *spec))
        .collect::<Result<_, _>>()
        .context("building the fleet")?;
    for &d in &settings.down {
        fleet.set_healthy(ServerId(d), false, Time::ZERO);
    }
    let mut balancer = settings.policy.build();
    let mut rng = SeededRng::new(settings.seed);
    let mut counts = vec![0u64; ids.len()];
    let mut none = 0u64;
    for k in 0..u64::from(settings.picks) {
        let now = Time::from_millis(k);
        let ctx = PickContext::at(now).with_affinity(k);
        match balancer.pick(&fleet.view(&ids), &ctx, &mut rng) {
            Some(id) => {
                counts[id.index()] += 1;
                fleet.begin(id);
                fleet.end(id, Duration::from_millis(1), now);
            }
            None => none += 1,
        }
    }
    writeln!(out, "strategy: {}  seed: {}  picks: {}", settings.policy.strategy, settings.seed, settings.picks)?;
    writeln!(out, "{:<8} {:>6} {:>8} {:>5} {:>10} {:>7}", "server", "weight", "priority", "up", "picks", "share")?;
    for (i, spec) in settings.specs.iter().enumerate() {
        let up = fleet.state(ids[i]).is_available();
        let share = counts[i] as f64 / f64::from(settings.picks);
        let up = if up { "yes" } else { "no" };
        writeln!(out, "{i:<8} {:>6} {:>8} {up:>5} {:>10} {share:>7.4}", spec.weight, spec.priority, counts[i])?;
    }
    if none > 0 {
        writeln!(out, "no server available for {none} picks")?;
    }
    Ok(())
}
