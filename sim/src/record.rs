//! The recorder: what a run keeps while it goes, and the figures it ends with.
//!
//! Its memory follows the calls in flight and simulated time, never the calls issued: each
//! call is folded, once it has ended, into HDR histograms (overall, per phase, per server, per series
//! bucket), the recovery buckets, the checkers and a streaming digest, and then forgotten
//! (unless the scenario asks to keep every call). The timeline and the list of violations are
//! bounded, and say how much they left out.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write;
use std::time::Duration;

use gauntlet_client::Event as ClientEvent;
use gauntlet_reports::{Bucket, Calls, Event, Latency, Phase, RunResult, Server, Verdict, Violation};
use hdrhistogram::Histogram;
use xxhash_rust::xxh3::Xxh3;

use crate::checkers::{BreakerCheck, late, minority};
use crate::faults::timeline;
use crate::log::{CallEnd, CallRecord, Figures, RunReport, micros};
use crate::scenario::Scenario;
use crate::server::{Answers, ReceiptLog};

/// The width of a recovery bucket: recovery is measured in steps of this.
pub const RECOVERY_BUCKET: Duration = Duration::from_millis(250);
/// A bucket with fewer calls than this says nothing about recovery.
const MIN_BUCKET_CALLS: u64 = 5;
/// Recovered means: every bucket's success rate is at least this fraction of the success rate
/// before the first fault (and at least [`RECOVERED_FLOOR`] of calls succeed).
pub const RECOVERED_SHARE: f64 = 0.98;
/// The success rate that always counts as recovered.
pub const RECOVERED_FLOOR: f64 = 0.95;
/// The most violations of the per-call rules a run lists; the rest are counted
/// ([`Violation::Unlisted`]).
pub const MAX_LISTED: usize = 1_000;
/// The most events a run's timeline keeps from the client; the rest are counted.
pub const MAX_EVENTS: usize = 100_000;
/// Of those, the most failovers (one per retry elsewhere, so as many as the calls under a
/// fault): the state changes around them are kept first.
pub const MAX_FAILOVERS: usize = 10_000;
/// Latencies are recorded up to an hour (longer ones count as an hour).
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Counts and latencies of a set of calls.
struct Tally {
    counts: Calls,
    /// Latencies of correct results in µs (3 significant digits; it grows to the largest).
    latency: Histogram<u32>,
}

impl Tally {
    fn new() -> Tally {
        Tally { counts: Calls::default(), latency: Histogram::new(3).expect("3 significant digits is valid") }
    }

    /// Counts a call that ended as `end` after `took_us` (`None`: it never ended).
    fn add(&mut self, end: Option<&CallEnd>, took_us: Option<u64>) {
        let c = &mut self.counts;
        c.total += 1;
        match (end, took_us) {
            (Some(CallEnd::Ok { correct: false, .. }), Some(_)) => c.wrong += 1,
            (Some(CallEnd::Ok { tool_error, .. }), Some(took)) => {
                c.ok += 1;
                c.tool_errors += u64::from(*tool_error);
                // Auto-resizing: it grows to the largest latency, which is bounded.
                let took = took.clamp(1, MAX_LATENCY_US);
                if self.latency.record(took).is_err() {
                    self.latency.saturating_record(took);
                }
            }
            (None, _) | (_, None) => c.lost += 1,
            (Some(CallEnd::Failed(_)), _) => c.failed += 1,
        }
    }

    /// Percentiles, in ms.
    fn latency(&self) -> Latency {
        let h = &self.latency;
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
}

/// A call in flight.
struct Open {
    /// Its tool, by index in the mix.
    tool: usize,
    start_us: u64,
    /// Its affinity key.
    key: Option<u32>,
}

/// A call that ended at the current instant, not yet folded in.
struct Ended {
    id: u64,
    open: Open,
    end_us: u64,
    attempts: u32,
    end: CallEnd,
}

/// An aggregated call's majority check, due once late answers had time to arrive.
struct Pending {
    due_us: u64,
    call: u64,
    start_us: u64,
    answer: Option<String>,
}

/// A phase's span and figures.
struct PhaseTally {
    name: String,
    from_us: u64,
    to_us: u64,
    tally: Tally,
    /// With affinity keys: per key, the server (index + 1; 0: none) that last answered it
    /// correctly in this phase.
    served: Vec<u16>,
    /// Correct answers per server (`scenario.servers()` order).
    answered: Vec<u64>,
}

/// What a run keeps while it goes: see the module's documentation.
pub(crate) struct Recorder {
    /// The mix's tools.
    tools: Vec<String>,
    open: BTreeMap<u64, Open>,
    /// The calls that ended at `instant_us`, folded in once time moves on.
    ended: Vec<Ended>,
    instant_us: u64,
    kept: Option<Vec<CallRecord>>,
    all: Tally,
    phases: Vec<PhaseTally>,
    /// Per server (`scenario.servers()` order): its name, group and figures.
    servers: Vec<(String, String, Tally)>,
    server_index: BTreeMap<String, usize>,
    /// Per bucket: its figures, and its correct answers per server.
    series: Vec<(Tally, Vec<u64>)>,
    series_width: u64,
    /// Hedges sent.
    hedges: u64,
    /// The run's duration.
    duration_us: u64,
    /// Calls sent to at least one server, and attempts in all.
    sent: u64,
    attempts: u64,
    first_fault_us: u64,
    heal_us: Option<u64>,
    /// (correct, total) of the calls that started before the first fault.
    before: (u64, u64),
    /// (correct, total) per [`RECOVERY_BUCKET`] of the calls that started after the last heal.
    after: Vec<(u64, u64)>,
    deadline: Duration,
    tick: Duration,
    listed: Vec<Violation>,
    unlisted: u64,
    digest: Xxh3,
    line: String,
    issued: u64,
    /// The client's servers, by index.
    names: Vec<String>,
    breakers: BreakerCheck,
    /// The client's events the timeline shows (not its attempts), bounded.
    client: Vec<(u64, ClientEvent)>,
    failovers: usize,
    dropped: u64,
    /// Answers to aggregated calls, for the majority checker (`None`: the workload does not
    /// aggregate by majority).
    answers: Option<Answers>,
    pending: VecDeque<Pending>,
}

impl Recorder {
    /// A recorder for a run of `scenario`, whose client names its servers `names` (by index);
    /// `answers` when the workload aggregates by majority.
    pub(crate) fn new(scenario: &Scenario, names: Vec<String>, answers: Option<Answers>) -> Recorder {
        let phases = scenario
            .phases()
            .into_iter()
            .map(|p| PhaseTally {
                name: p.name,
                from_us: micros(p.from),
                to_us: micros(p.to),
                tally: Tally::new(),
                served: vec![0; scenario.workload.affinity.map_or(0, |a| a.keys as usize)],
                answered: vec![0; scenario.servers().len()],
            })
            .collect();
        let servers: Vec<(String, String, Tally)> =
            scenario.servers().into_iter().map(|(name, g)| (name, g.group.clone(), Tally::new())).collect();
        let server_index = servers.iter().enumerate().map(|(i, (name, ..))| (name.clone(), i)).collect();
        let series_width = series_bucket(scenario.duration);
        let buckets = usize::try_from(micros(scenario.duration).div_ceil(series_width)).unwrap_or(0);
        Recorder {
            tools: scenario.workload.mix.iter().map(|(t, _)| t.clone()).collect(),
            open: BTreeMap::new(),
            ended: Vec::new(),
            instant_us: 0,
            kept: scenario.keep_calls.then(Vec::new),
            all: Tally::new(),
            phases,
            servers,
            server_index,
            series: (0..buckets).map(|_| (Tally::new(), vec![0; scenario.servers().len()])).collect(),
            series_width,
            hedges: 0,
            duration_us: micros(scenario.duration),
            sent: 0,
            attempts: 0,
            first_fault_us: micros(scenario.faults.iter().map(|f| f.at).min().unwrap_or_default()),
            heal_us: scenario.last_heal().map(micros),
            before: (0, 0),
            after: Vec::new(),
            deadline: scenario.workload.deadline,
            tick: scenario.tick,
            listed: Vec::new(),
            unlisted: 0,
            digest: Xxh3::new(),
            line: String::new(),
            issued: 0,
            breakers: BreakerCheck::new(names.len()),
            names,
            client: Vec::new(),
            failovers: 0,
            dropped: 0,
            answers,
            pending: VecDeque::new(),
        }
    }

    /// The tool of the mix at `index`.
    pub(crate) fn tool(&self, index: usize) -> &str {
        self.tools.get(index).map_or("", String::as_str)
    }

    /// Calls issued so far.
    pub(crate) fn issued(&self) -> u64 {
        self.issued
    }

    /// Call `id` to the mix's tool `tool`, with affinity key `key`, started at `start_us`.
    pub(crate) fn start(&mut self, id: u64, tool: usize, start_us: u64, key: Option<u32>) {
        self.issued += 1;
        self.open.insert(id, Open { tool, start_us, key });
        if let Some(answers) = &self.answers {
            answers.lock().expect("answers").insert(id, Vec::new());
        }
    }

    /// Call `id` ended at `end_us` as `end`, after sending `attempts`.
    pub(crate) fn end(&mut self, id: u64, end_us: u64, attempts: u32, end: CallEnd) {
        let Some(open) = self.open.remove(&id) else { return };
        if end_us != self.instant_us {
            self.flush();
            self.instant_us = end_us;
        }
        self.ended.push(Ended { id, open, end_us, attempts, end });
    }

    /// Folds the calls that ended at the current instant, in id order: the order in which the
    /// client's tasks finish within one simulated instant is not deterministic (it changed
    /// between processes), the set of calls that ended then is.
    fn flush(&mut self) {
        let mut ended = std::mem::take(&mut self.ended);
        ended.sort_unstable_by_key(|e| e.id);
        for Ended { id, open, end_us, attempts, end } in ended.drain(..) {
            if let Some(v) = late(id, open.start_us, end_us.saturating_sub(open.start_us), self.deadline, self.tick) {
                self.violation(v);
            }
            if self.answers.is_some() {
                let answer = match &end {
                    CallEnd::Ok { answer, .. } => answer.clone(),
                    CallEnd::Failed(_) => None,
                };
                let due_us = end_us.saturating_add(micros(self.deadline));
                self.pending.push_back(Pending { due_us, call: id, start_us: open.start_us, answer });
            }
            self.fold(id, &open, Some(end_us), attempts, Some(end));
        }
        // The buffer's capacity is kept for the next instant.
        self.ended = ended;
        self.check_answers(self.instant_us);
    }

    /// The client's event `e` at `t_us`: checked, and kept for the timeline within its bounds.
    pub(crate) fn client_event(&mut self, t_us: u64, e: &ClientEvent) {
        if let Some(v) = self.breakers.see(t_us, e, &self.names) {
            self.violation(v);
        }
        let keep = match e {
            ClientEvent::Sent { hedge, .. } => {
                self.hedges += u64::from(*hedge);
                return;
            }
            ClientEvent::Failover { .. } => {
                self.failovers += 1;
                self.failovers <= MAX_FAILOVERS
            }
            _ => true,
        };
        if keep && self.client.len() < MAX_EVENTS {
            self.client.push((t_us, *e));
        } else {
            self.dropped += 1;
        }
    }

    /// Lists `v`, or counts it once [`MAX_LISTED`] are listed.
    fn violation(&mut self, v: Violation) {
        if self.listed.len() < MAX_LISTED {
            self.listed.push(v);
        } else {
            self.unlisted += 1;
        }
    }

    /// Runs the majority checks due at `now_us` (`u64::MAX`: every one).
    fn check_answers(&mut self, now_us: u64) {
        let Some(answers) = self.answers.clone() else { return };
        while let Some(p) = self.pending.front() {
            if p.due_us > now_us {
                break;
            }
            let Some(p) = self.pending.pop_front() else { break };
            let given = answers.lock().expect("answers").remove(&p.call).unwrap_or_default();
            if let Some(answer) = &p.answer
                && let Some(v) = minority(p.call, p.start_us, answer, &given)
            {
                self.violation(v);
            }
        }
    }

    /// Folds a call into every figure and the digest.
    fn fold(&mut self, id: u64, open: &Open, end_us: Option<u64>, attempts: u32, end: Option<CallEnd>) {
        let took = end_us.map(|e| e.saturating_sub(open.start_us));
        let start = open.start_us;
        self.line.clear();
        let tool = self.tools.get(open.tool).map_or("", String::as_str);
        let _ = writeln!(self.line, "{id} {tool} {start} {end_us:?} {attempts} {end:?}");
        self.digest.update(self.line.as_bytes());
        let end_ref = end.as_ref();
        self.all.add(end_ref, took);
        let answered_by = match end_ref {
            Some(CallEnd::Ok { server, correct: true, .. }) => self.server_index.get(server).copied(),
            _ => None,
        };
        for p in &mut self.phases {
            if start >= p.from_us && start < p.to_us {
                p.tally.add(end_ref, took);
                if let Some(n) = answered_by.and_then(|i| p.answered.get_mut(i)) {
                    *n += 1;
                }
                if let (Some(i), Some(key)) = (answered_by, open.key)
                    && let Some(slot) = p.served.get_mut(key as usize)
                {
                    // At most 32 servers: the index fits.
                    *slot = u16::try_from(i + 1).unwrap_or(u16::MAX);
                }
            }
        }
        if let Some(i) = answered_by {
            self.servers[i].2.add(end_ref, took);
        }
        let last = self.series.len().saturating_sub(1);
        let i = usize::try_from(start / self.series_width).unwrap_or(usize::MAX).min(last);
        if let Some((bucket, answered)) = self.series.get_mut(i) {
            bucket.add(end_ref, took);
            if let Some(n) = answered_by.and_then(|s| answered.get_mut(s)) {
                *n += 1;
            }
        }
        if attempts > 0 {
            self.sent += 1;
            self.attempts += u64::from(attempts);
        }
        let correct = matches!(end_ref, Some(CallEnd::Ok { correct: true, .. }) if took.is_some());
        if start < self.first_fault_us {
            self.before.0 += u64::from(correct);
            self.before.1 += 1;
        }
        if let Some(heal) = self.heal_us
            && start >= heal
        {
            let i = usize::try_from((start - heal) / micros(RECOVERY_BUCKET)).unwrap_or(usize::MAX);
            if self.after.len() <= i {
                self.after.resize(i.saturating_add(1), (0, 0));
            }
            if let Some(b) = self.after.get_mut(i) {
                b.0 += u64::from(correct);
                b.1 += 1;
            }
        }
        if let Some(kept) = &mut self.kept {
            kept.push(CallRecord { id, tool: tool.to_owned(), start_us: start, end_us, attempts, end });
        }
    }

    /// How long after the last heal the client served normally again: the start of the first
    /// [`RECOVERY_BUCKET`] after which no bucket of calls (by start time) fell below the
    /// success rate of the calls before the first fault, times [`RECOVERED_SHARE`] (or
    /// [`RECOVERED_FLOOR`] if lower). `None` (not measured) without faults, if the last bucket
    /// still did, or if no call started after the heal.
    fn recovery_us(&self) -> Option<u64> {
        self.heal_us?;
        let (ok, total) = self.before;
        let baseline = if total == 0 { 1.0 } else { ok as f64 / total as f64 };
        let threshold = (baseline * RECOVERED_SHARE).min(RECOVERED_FLOOR);
        if self.after.is_empty() {
            return None;
        }
        let bad = |&(ok, total): &(u64, u64)| total >= MIN_BUCKET_CALLS && (ok as f64) < threshold * total as f64;
        match self.after.iter().rposition(bad) {
            None => Some(0),
            Some(last) if last + 1 == self.after.len() => None,
            Some(last) => Some((last as u64 + 1) * micros(RECOVERY_BUCKET)),
        }
    }

    /// The run's report: the calls still in flight are lost; the majority checks still due
    /// run; side effects are checked from the servers' receipts; liveness and the offered load
    /// are judged; the timeline is merged and hashed after the calls.
    pub(crate) fn finish(
        &mut self,
        scenario: &Scenario,
        offered: u64,
        faults: Vec<Event>,
        receipts: &ReceiptLog,
    ) -> RunReport {
        self.flush();
        for (id, open) in std::mem::take(&mut self.open) {
            self.violation(Violation::Lost { call: id, start_us: Some(open.start_us) });
            self.fold(id, &open, None, 0, None);
        }
        self.check_answers(u64::MAX);
        for (call, times) in receipts.duplicates() {
            self.violation(Violation::DuplicateSideEffect { call, times });
        }
        let mut violations = std::mem::take(&mut self.listed);
        if self.unlisted > 0 {
            violations.push(Violation::Unlisted { count: self.unlisted });
        }
        let recovery_us = self.recovery_us();
        if let Some(heal) = scenario.last_heal()
            && recovery_us.is_none_or(|r| r > micros(scenario.recovery_bound))
            && heal.saturating_add(scenario.recovery_bound) <= scenario.duration
        {
            violations.push(Violation::NotRecovered { bound_us: micros(scenario.recovery_bound) });
        }
        // Offered load is delivered, or the shortfall is reported.
        if self.issued.saturating_mul(100) < offered.saturating_mul(99) {
            violations.push(Violation::Shortfall { offered, issued: self.issued });
        }
        let events = timeline(faults, &self.client, &self.names);
        for e in &events {
            self.line.clear();
            let _ = writeln!(self.line, "{} {} {:?}", e.t_us, e.server, e.what);
            self.digest.update(self.line.as_bytes());
        }
        let figures = Figures {
            calls: Calls { offered, ..self.all.counts },
            latency: self.all.latency(),
            retry_amplification: if self.sent == 0 { 1.0 } else { self.attempts as f64 / self.sent as f64 },
            phases: self
                .phases
                .iter()
                .enumerate()
                .map(|(i, p)| Phase {
                    name: p.name.clone(),
                    from_ms: p.from_us as f64 / 1e3,
                    to_ms: p.to_us as f64 / 1e3,
                    calls: p.tally.counts,
                    latency: p.tally.latency(),
                    keys_moved: if i == 0 { None } else { keys_moved(&self.phases[0].served, &p.served) },
                    answered_by: self
                        .servers
                        .iter()
                        .zip(&p.answered)
                        .filter(|&(_, &n)| n > 0)
                        .map(|((name, ..), &n)| (name.clone(), n))
                        .collect(),
                })
                .collect(),
            servers: self
                .servers
                .iter()
                .map(|(name, group, t)| Server {
                    name: name.clone(),
                    group: group.clone(),
                    answered: t.counts.ok,
                    latency: t.latency(),
                })
                .collect(),
            series: self
                .series
                .iter()
                .enumerate()
                .map(|(i, (t, answered))| {
                    let l = t.latency();
                    Bucket {
                        t_ms: (i as u64).saturating_mul(self.series_width) as f64 / 1e3,
                        started: t.counts.total,
                        ok: t.counts.ok,
                        failed: t.counts.failed + t.counts.lost,
                        p50_ms: l.p50,
                        p99_ms: l.p99,
                        answered: answered.clone(),
                    }
                })
                .collect(),
        };
        RunReport {
            scenario: scenario.name.clone(),
            seed: scenario.seed,
            strategy: scenario.strategy().name().to_owned(),
            calls: self.kept.take().unwrap_or_default(),
            offered,
            issued: self.issued,
            figures,
            events,
            events_dropped: self.dropped,
            attempts: self.attempts,
            hedges: self.hedges,
            duration_ms: self.duration_us as f64 / 1e3,
            recovery_us,
            violations,
            digest: format!("{:032x}", self.digest.digest128()),
            steps: Vec::new(),
        }
    }
}

/// Of the keys served in both `first` and `then` (server index + 1 per key; 0: not served), the
/// share served by another server in `then`; `None` with no key served in both.
fn keys_moved(first: &[u16], then: &[u16]) -> Option<f64> {
    let (mut both, mut moved) = (0u64, 0u64);
    for (&a, &b) in first.iter().zip(then) {
        if a != 0 && b != 0 {
            both += 1;
            moved += u64::from(a != b);
        }
    }
    (both > 0).then(|| moved as f64 / both as f64)
}

/// The width of the series' buckets: about 120 of them, at least 100 ms.
fn series_bucket(duration: Duration) -> u64 {
    (micros(duration) / 120).max(100_000).div_ceil(100_000) * 100_000
}

/// The results model of `report`. Its verdict reflects the checkers only; expectations are the
/// scenario file's to add.
pub fn summarize(report: &RunReport) -> RunResult {
    let f = &report.figures;
    let verdict = if report.violations.is_empty() { Verdict::Pass } else { Verdict::Fail };
    RunResult {
        scenario: report.scenario.clone(),
        file: String::new(),
        description: String::new(),
        duration_ms: report.duration_ms,
        seed: report.seed,
        strategy: report.strategy.clone(),
        variant: report.strategy.clone(),
        digest: report.digest.clone(),
        verdict,
        calls: f.calls,
        attempts: report.attempts,
        hedges: report.hedges,
        retry_amplification: f.retry_amplification,
        latency: f.latency,
        recovery_ms: report.recovery_us.map(|r| r as f64 / 1e3),
        phases: f.phases.clone(),
        servers: f.servers.clone(),
        series: f.series.clone(),
        events: report.events.clone(),
        events_dropped: report.events_dropped,
        violations: report.violations.clone(),
        expectations: Vec::new(),
        steps: report.steps.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use gauntlet_reports::{Violation, What};

    use super::{MAX_FAILOVERS, MAX_LISTED, Recorder};
    use crate::log::{CallEnd, Failure};
    use crate::scenario::{Arrivals, Scenario, ServerGroup, ServiceTime, SimTool, Workload};
    use crate::server::ReceiptLog;

    fn scenario() -> Scenario {
        let fleet = vec![ServerGroup::new("g", 2, vec![SimTool::safe("t")], ServiceTime::Constant(Duration::ZERO))];
        let workload = Workload {
            arrivals: Arrivals::Callers(1),
            mix: vec![("g__t".to_owned(), 1)],
            deadline: Duration::from_secs(2),
            aggregate: None,
            think: Duration::ZERO,
            affinity: None,
        };
        Scenario::new("recorder", 1, Duration::from_secs(10), fleet, workload)
    }

    fn ok(server: &str) -> CallEnd {
        CallEnd::Ok { server: server.to_owned(), tool_error: false, answer: None, correct: true }
    }

    #[test]
    fn a_call_still_in_flight_at_the_end_is_lost_and_a_late_one_missed_its_deadline() {
        let s = scenario();
        let mut r = Recorder::new(&s, vec!["g-0".to_owned(), "g-1".to_owned()], None);
        for id in 1..=3 {
            r.start(id, 0, 0, None);
        }
        r.end(2, 3_000_000, 1, ok("g-0"));
        r.end(3, 1_000, 1, CallEnd::Failed(Failure::NoServer));
        let report = r.finish(&s, 3, Vec::new(), &ReceiptLog::default());
        assert_eq!(
            report.violations,
            [
                Violation::DeadlineMissed { call: 2, took_us: 3_000_000, start_us: Some(0) },
                Violation::Lost { call: 1, start_us: Some(0) }
            ]
        );
        let c = report.figures.calls;
        assert_eq!((c.total, c.ok, c.failed, c.lost, c.offered), (3, 1, 1, 1, 3));
        assert_eq!(report.figures.servers.iter().map(|s| s.answered).collect::<Vec<_>>(), [1, 0]);
        let p50 = report.figures.latency.p50.expect("one call answered");
        assert!((2_990.0..3_010.0).contains(&p50), "p50 {p50} ms");
        assert!(report.calls.is_empty(), "calls are kept only when asked");
    }

    #[test]
    fn violations_past_the_listing_bound_are_counted_not_listed() {
        let s = scenario();
        let mut r = Recorder::new(&s, Vec::new(), None);
        let n = MAX_LISTED as u64 + 7;
        for id in 0..n {
            r.start(id, 0, 0, None);
        }
        let report = r.finish(&s, n, Vec::new(), &ReceiptLog::default());
        assert_eq!(report.violations.len(), MAX_LISTED + 1);
        assert_eq!(report.violations.last(), Some(&Violation::Unlisted { count: 7 }));
        assert_eq!(report.figures.calls.lost, n, "every lost call is counted");
    }

    #[test]
    fn the_timeline_keeps_state_changes_past_the_failover_bound_and_counts_what_it_left_out() {
        use gauntlet_client::Event as ClientEvent;
        use gauntlet_core::ServerId;
        use gauntlet_core::breaker::Phase;
        let s = scenario();
        let mut r = Recorder::new(&s, vec!["g-0".to_owned(), "g-1".to_owned()], None);
        let failover = ClientEvent::Failover { from: ServerId(0), to: ServerId(1) };
        for t in 0..MAX_FAILOVERS as u64 + 5 {
            r.client_event(t, &failover);
            r.client_event(t, &ClientEvent::Sent { server: ServerId(1), probe: false, tier: 0, hedge: false });
        }
        let opened = ClientEvent::Breaker { server: ServerId(0), from: Phase::Closed, to: Phase::Open };
        r.client_event(1_000_000, &opened);
        let report = r.finish(&s, 0, Vec::new(), &ReceiptLog::default());
        assert_eq!(report.events_dropped, 5, "failovers past the bound; attempts are never timeline events");
        assert_eq!(report.events.len(), MAX_FAILOVERS + 1);
        assert!(matches!(report.events.last().map(|e| &e.what), Some(What::Breaker { to: Phase::Open, .. })));
    }

    #[test]
    fn the_same_calls_give_the_same_digest_and_a_different_end_does_not() {
        let digest = |end: CallEnd| {
            let s = scenario();
            let mut r = Recorder::new(&s, Vec::new(), None);
            r.start(1, 0, 10, None);
            r.end(1, 20, 1, end);
            r.finish(&s, 1, Vec::new(), &ReceiptLog::default()).digest
        };
        assert_eq!(digest(ok("g-0")), digest(ok("g-0")));
        assert_ne!(digest(ok("g-0")), digest(ok("g-1")));
    }

    #[test]
    fn calls_that_end_in_the_same_instant_hash_alike_whichever_finished_first() {
        let digest = |order: [u64; 3]| {
            let s = scenario();
            let mut r = Recorder::new(&s, Vec::new(), None);
            for id in 1..=3 {
                r.start(id, 0, 0, None);
            }
            for id in order {
                r.end(id, 50, 1, ok("g-0"));
            }
            r.finish(&s, 3, Vec::new(), &ReceiptLog::default()).digest
        };
        assert_eq!(digest([1, 2, 3]), digest([3, 1, 2]));
    }

    #[test]
    fn a_side_effect_twice_is_found_in_the_receipts_whatever_the_call_id() {
        let mut receipts = ReceiptLog::default();
        for call in [5, 6, 5, u64::MAX, u64::MAX, u64::MAX, 7] {
            receipts.record(call);
        }
        assert_eq!(receipts.duplicates().collect::<Vec<_>>(), [(5, 2), (u64::MAX, 3)]);
    }
}
