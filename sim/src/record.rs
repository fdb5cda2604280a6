//! From a run's records to the results model of `gauntlet-reports`: call counts, latency
//! percentiles (HDR histograms) overall, per phase and per server, a time series, recovery.

use std::time::Duration;

use gauntlet_reports::{Bucket, Calls, Latency, Phase, RunResult, Server, Verdict};
use hdrhistogram::Histogram;

use crate::log::{CallEnd, CallRecord, RunReport, micros};
use crate::scenario::Scenario;

/// The width of a recovery bucket: recovery is measured in steps of this.
pub const RECOVERY_BUCKET: Duration = Duration::from_millis(250);
/// A bucket with fewer calls than this says nothing about recovery.
const MIN_BUCKET_CALLS: u64 = 5;
/// Recovered means: every bucket's success rate is at least this fraction of the success rate
/// before the first fault (and at least [`RECOVERED_FLOOR`] of calls succeed).
pub const RECOVERED_SHARE: f64 = 0.98;
/// The success rate that always counts as recovered.
pub const RECOVERED_FLOOR: f64 = 0.95;

/// How long after `heal_us` the client served normally again: the start of the first
/// [`RECOVERY_BUCKET`] after which no bucket of calls (by start time) fell below the success
/// rate of the calls before `first_fault_us`, times [`RECOVERED_SHARE`] (or
/// [`RECOVERED_FLOOR`] if lower). `None` (not measured) if the last bucket still did, or if no
/// call started after the heal.
pub fn recovery_us(calls: &[CallRecord], first_fault_us: u64, heal_us: u64) -> Option<u64> {
    let before: Vec<&CallRecord> = calls.iter().filter(|c| c.start_us < first_fault_us).collect();
    let baseline =
        if before.is_empty() { 1.0 } else { before.iter().filter(|c| c.is_ok()).count() as f64 / before.len() as f64 };
    let threshold = (baseline * RECOVERED_SHARE).min(RECOVERED_FLOOR);
    let width = micros(RECOVERY_BUCKET);
    let mut buckets: Vec<(u64, u64)> = Vec::new();
    for c in calls.iter().filter(|c| c.start_us >= heal_us) {
        let i = usize::try_from((c.start_us - heal_us) / width).unwrap_or(usize::MAX);
        if buckets.len() <= i {
            buckets.resize(i + 1, (0, 0));
        }
        buckets[i].0 += u64::from(c.is_ok());
        buckets[i].1 += 1;
    }
    if buckets.is_empty() {
        // No call started after the heal (it came at or after the run's end): not measured.
        return None;
    }
    let bad = |&(ok, total): &(u64, u64)| total >= MIN_BUCKET_CALLS && (ok as f64) < threshold * total as f64;
    match buckets.iter().rposition(bad) {
        None => Some(0),
        Some(last) if last + 1 == buckets.len() => None,
        Some(last) => Some((last as u64 + 1) * width),
    }
}

/// A histogram of latencies in µs, 3 significant digits, up to an hour.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds")
}

/// Percentiles of `h`, in ms.
fn latency(h: &Histogram<u64>) -> Latency {
    if h.is_empty() {
        return Latency::default();
    }
    let at = |q: f64| Some(h.value_at_quantile(q) as f64 / 1e3);
    Latency {
        p50: at(0.5),
        p90: at(0.9),
        p99: at(0.99),
        p999: at(0.999),
        max: Some(h.max() as f64 / 1e3),
        mean: Some((h.mean() * 10.0).round() / 1e4),
    }
}

/// Counts and latency of `calls`.
fn stats<'a>(calls: impl Iterator<Item = &'a CallRecord>) -> (Calls, Histogram<u64>) {
    let mut counts = Calls::default();
    let mut h = histogram();
    for c in calls {
        tally(&mut counts, &mut h, c);
    }
    (counts, h)
}

/// Counts `c`, and records its latency in `h` if it succeeded.
fn tally(counts: &mut Calls, h: &mut Histogram<u64>, c: &CallRecord) {
    counts.total += 1;
    match (&c.end, c.took_us()) {
        (Some(CallEnd::Ok { correct: false, .. }), Some(_)) => counts.wrong += 1,
        (Some(CallEnd::Ok { tool_error, .. }), Some(took)) => {
            counts.ok += 1;
            counts.tool_errors += u64::from(*tool_error);
            h.saturating_record(took.max(1));
        }
        (None, _) | (_, None) => counts.lost += 1,
        (Some(CallEnd::Failed(_)), _) => counts.failed += 1,
    }
}

/// Attempts per call that was sent at all: 1 when nothing was retried or hedged. Calls that
/// never left the client (no server available) neither add load nor count.
fn amplification(calls: &[CallRecord]) -> f64 {
    let sent = calls.iter().filter(|c| c.attempts > 0).count() as u64;
    let attempts: u64 = calls.iter().map(|c| u64::from(c.attempts)).sum();
    if sent == 0 { 1.0 } else { attempts as f64 / sent as f64 }
}

/// The width of the series' buckets: about 120 of them, at least 100 ms.
fn series_bucket(duration: Duration) -> u64 {
    (micros(duration) / 120).max(100_000).div_ceil(100_000) * 100_000
}

/// The results model of `report`, a run of `scenario`. Its verdict reflects the checkers
/// only; expectations are the scenario file's to add.
pub fn summarize(scenario: &Scenario, report: &RunReport) -> RunResult {
    let (mut calls, all) = stats(report.calls.iter());
    calls.offered = report.offered;
    let phases = scenario
        .phases()
        .into_iter()
        .map(|p| {
            let (from, to) = (micros(p.from), micros(p.to));
            let (calls, h) = stats(report.calls.iter().filter(|c| c.start_us >= from && c.start_us < to));
            Phase { name: p.name, from_ms: from as f64 / 1e3, to_ms: to as f64 / 1e3, calls, latency: latency(&h) }
        })
        .collect();
    let servers = scenario
        .servers()
        .into_iter()
        .map(|(name, group)| {
            let answered = report
                .calls
                .iter()
                .filter(|c| matches!(&c.end, Some(CallEnd::Ok { server, correct: true, .. }) if *server == name));
            let (counts, h) = stats(answered);
            Server { name, group: group.group.clone(), answered: counts.ok, latency: latency(&h) }
        })
        .collect();
    let width = series_bucket(scenario.duration);
    let n = usize::try_from(micros(scenario.duration).div_ceil(width)).unwrap_or(0);
    let mut buckets: Vec<(Calls, Histogram<u64>)> = (0..n).map(|_| (Calls::default(), histogram())).collect();
    for c in &report.calls {
        let i = usize::try_from(c.start_us / width).unwrap_or(usize::MAX).min(n.saturating_sub(1));
        if let Some((counts, h)) = buckets.get_mut(i) {
            tally(counts, h, c);
        }
    }
    let series = buckets
        .iter()
        .enumerate()
        .map(|(i, (c, h))| {
            let l = latency(h);
            Bucket {
                t_ms: (i as u64 * width) as f64 / 1e3,
                started: c.total,
                ok: c.ok,
                failed: c.failed + c.lost,
                p50_ms: l.p50,
                p99_ms: l.p99,
            }
        })
        .collect();
    let verdict = if report.violations.is_empty() { Verdict::Pass } else { Verdict::Fail };
    RunResult {
        scenario: report.scenario.clone(),
        file: String::new(),
        seed: report.seed,
        strategy: report.strategy.clone(),
        digest: report.digest.clone(),
        verdict,
        calls,
        attempts: report.attempts,
        retry_amplification: amplification(&report.calls),
        latency: latency(&all),
        recovery_ms: report.recovery_us.map(|r| r as f64 / 1e3),
        phases,
        servers,
        series,
        events: report.events.clone(),
        violations: report.violations.clone(),
        expectations: Vec::new(),
    }
}
