//! `memory`: the simulator's peak memory on a long run, and its simulated calls per wall
//! second by offered rate.
//!
//! First `benches/scenarios/long-run.toml` (ten simulated minutes at the most load a scenario
//! may offer, a million calls) through the real simulator, with the process's peak resident
//! set read from `/proc/self/status` (Linux; elsewhere it says it was not measured); the target
//! is under 300 MB. Then the same fleet for 20 simulated seconds at 200, 1,000 and 10,000
//! calls/s: calls issued per wall second. Results are recorded in
//! `reports/benchmarks/memory.md`.
//!
//! Under `cargo bench` it runs in full; without `--bench` (as a test) it runs two simulated
//! seconds, to check that it works.

mod common;

use std::time::{Duration, Instant};

use gauntlet_sim::{Arrivals, run};

const LONG_RUN: &str = include_str!("scenarios/long-run.toml");
const TARGET_BYTES: u64 = 300_000_000;

/// The process's peak resident set, in bytes (Linux only).
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib.saturating_mul(1024))
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let file = gauntlet_sim::file::parse("benches/scenarios/long-run.toml", LONG_RUN).expect("a valid scenario");
    let mut long = file.scenario(file.seeds[0], &file.variants[0]);
    if !full {
        long.duration = Duration::from_secs(2);
    }
    let t = Instant::now();
    let r = run(&long).expect("runs");
    let wall = t.elapsed().as_secs_f64();
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    let peak = peak_rss();
    common::report(&format!(
        "memory/long-run: {} calls issued of {} offered in {:.0} simulated s, {wall:.1} s wall; peak RSS {}; target < {} MB: {}",
        r.issued,
        r.offered,
        long.duration.as_secs_f64(),
        peak.map_or_else(|| "not measured on this platform".to_owned(), |b| format!("{:.1} MB", b as f64 / 1e6)),
        TARGET_BYTES / 1_000_000,
        match peak {
            None => "not measured",
            Some(b) if b < TARGET_BYTES => "met",
            Some(_) => "NOT MET",
        },
    ));
    for rate in [200.0, 1_000.0, 10_000.0] {
        let mut s = long.clone();
        s.duration = Duration::from_secs(if full { 20 } else { 1 });
        s.workload.arrivals = Arrivals::Poisson(rate);
        let t = Instant::now();
        let r = run(&s).expect("runs");
        let wall = t.elapsed().as_secs_f64();
        common::report(&format!(
            "memory/rate {rate:.0}/s: {} calls in {wall:.2} s wall: {:.1}k simulated calls per wall second",
            r.issued,
            r.issued as f64 / wall / 1e3
        ));
    }
}
