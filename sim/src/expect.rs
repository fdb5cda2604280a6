//! Expectations of a scenario file, checked against the results of its runs.
//!
//! A bound is written `"<op> <value>"` (`">= 0.999"`, `"<= 250ms"`); a comparison between
//! runs of the scenario (strategies of its matrix, or its variants) is written
//! `"<a>.<metric> <op> [<factor> *] <b>.<metric>"` (`"p2c-peak-ewma.p99 < 0.5 * round-robin.p99"`).

use std::fmt;
use std::time::Duration;

use gauntlet_core::breaker::Phase as BreakerPhase;
use gauntlet_reports::{Expectation, Latency, RunResult, What};

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
}

impl Op {
    fn parse(text: &str) -> Option<(Op, &str)> {
        let text = text.trim_start();
        for (sym, op) in [("<=", Op::Le), (">=", Op::Ge), ("==", Op::Eq), ("<", Op::Lt), (">", Op::Gt)] {
            if let Some(rest) = text.strip_prefix(sym) {
                return Some((op, rest.trim()));
            }
        }
        None
    }

    fn holds(self, left: f64, right: f64) -> bool {
        match self {
            Op::Lt => left < right,
            Op::Le => left <= right,
            Op::Gt => left > right,
            Op::Ge => left >= right,
            Op::Eq => (left - right).abs() <= f64::EPSILON * left.abs().max(right.abs()).max(1.0),
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
        }
    }
}

/// What a metric measures, and so how its values are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// A fraction in `[0, 1]`.
    Rate,
    /// A duration, held in milliseconds.
    Millis,
    /// A plain ratio (`>= 1`).
    Ratio,
    /// A count of events (whole, `>= 0`).
    Count,
    /// Events per call (`>= 0`, may exceed 1).
    PerCall,
}

impl Unit {
    /// The values a metric of this unit can take.
    fn domain(self) -> (f64, f64) {
        match self {
            Unit::Rate => (0.0, 1.0),
            Unit::Millis => (0.0, f64::INFINITY),
            Unit::Ratio => (1.0, f64::INFINITY),
            Unit::Count | Unit::PerCall => (0.0, f64::INFINITY),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Unit::Rate => "a rate in [0, 1]",
            Unit::Millis => "a duration, never negative",
            Unit::Ratio => "attempts per call, never below 1",
            Unit::Count => "a count, never negative",
            Unit::PerCall => "a number per call, never negative",
        }
    }
}

/// A metric of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Calls with a correct result over calls issued.
    SuccessRate,
    /// Correct answers over answers returned (wrong ones are a byzantine server's).
    CorrectRate,
    /// A latency percentile of successful calls: 50, 90, 99 or 999 (99.9).
    Percentile(u16),
    /// Attempts over calls.
    RetryAmplification,
    /// Time from the last fault's end until the client served normally again.
    Recovery,
    /// Of the affinity keys served both in the first phase and in this one, the share served
    /// by another server here than there (a phase metric).
    KeysMoved,
    /// Time from the first fault's start to the client's first reaction on one of its targets:
    /// a breaker opening, an ejection, or a failover away from it.
    Detection,
    /// Times a server's breaker opened (a server metric).
    BreakerOpens,
    /// Times outlier detection ejected a server (a server metric).
    Ejections,
    /// A server's share of the correct answers (a server metric).
    LoadShare,
    /// Hedges sent per call issued (a call with two backups counts two).
    HedgeRate,
}

impl Metric {
    /// Parses a metric's name.
    pub fn parse(name: &str) -> Option<Metric> {
        Some(match name {
            "success_rate" => Metric::SuccessRate,
            "correct_rate" => Metric::CorrectRate,
            "p50" => Metric::Percentile(50),
            "p90" => Metric::Percentile(90),
            "p99" => Metric::Percentile(99),
            "p999" => Metric::Percentile(999),
            "retry_amplification" => Metric::RetryAmplification,
            "recovery" => Metric::Recovery,
            "keys_moved" => Metric::KeysMoved,
            "detection" => Metric::Detection,
            "breaker_opens" => Metric::BreakerOpens,
            "ejections" => Metric::Ejections,
            "load_share" => Metric::LoadShare,
            "hedge_rate" => Metric::HedgeRate,
            _ => return None,
        })
    }

    /// Its unit.
    pub fn unit(self) -> Unit {
        match self {
            Metric::SuccessRate | Metric::CorrectRate | Metric::KeysMoved | Metric::LoadShare => Unit::Rate,
            Metric::Percentile(_) | Metric::Recovery | Metric::Detection => Unit::Millis,
            Metric::BreakerOpens | Metric::Ejections => Unit::Count,
            Metric::RetryAmplification => Unit::Ratio,
            Metric::HedgeRate => Unit::PerCall,
        }
    }

    fn of_latency(self, l: &Latency) -> Option<f64> {
        match self {
            Metric::Percentile(50) => l.p50,
            Metric::Percentile(90) => l.p90,
            Metric::Percentile(99) => l.p99,
            Metric::Percentile(_) => l.p999,
            _ => None,
        }
    }

    /// Its value in `run` (`None`: not measured, e.g. no successful call, or no recovery).
    pub fn measure(self, run: &RunResult) -> Option<f64> {
        match self {
            Metric::SuccessRate => Some(run.calls.success_rate()),
            Metric::CorrectRate => Some(run.calls.correct_rate()),
            Metric::Percentile(_) => self.of_latency(&run.latency),
            Metric::RetryAmplification => Some(run.retry_amplification),
            Metric::Recovery => run.recovery_ms,
            Metric::Detection => detection_ms(run),
            Metric::HedgeRate => (run.calls.total > 0).then(|| run.hedges as f64 / run.calls.total as f64),
            // Phase and server metrics: see `Expectations::check`.
            Metric::KeysMoved | Metric::BreakerOpens | Metric::Ejections | Metric::LoadShare => None,
        }
    }

    /// Its value for the server `name` of `run` (server metrics only).
    pub fn of_server(self, run: &RunResult, name: &str) -> Option<f64> {
        let count = |what: fn(&What) -> bool| {
            Some(run.events.iter().filter(|e| e.server == name && what(&e.what)).count() as f64)
        };
        match self {
            Metric::BreakerOpens => count(|w| matches!(w, What::Breaker { to: BreakerPhase::Open, .. })),
            Metric::Ejections => count(|w| matches!(w, What::Ejected)),
            Metric::LoadShare => {
                let total: u64 = run.servers.iter().map(|s| s.answered).sum();
                let mine = run.servers.iter().find(|s| s.name == name)?.answered;
                (total > 0).then(|| mine as f64 / total as f64)
            }
            _ => None,
        }
    }

    /// Formats a value of this metric.
    pub fn show(self, value: Option<f64>) -> String {
        match (self.unit(), value) {
            (_, None) => "not measured".to_owned(),
            // To the microsecond, as measured: a bound that fails must show why (40.031 ms, not
            // a rounded 40.0 ms, fails `<= 40ms`).
            (Unit::Millis, Some(v)) => {
                let text = format!("{v:.3}");
                format!("{}ms", text.trim_end_matches('0').trim_end_matches('.'))
            }
            (Unit::Rate, Some(v)) => format!("{v:.4}"),
            (Unit::Ratio, Some(v)) => format!("{v:.3}"),
            (Unit::Count, Some(v)) => format!("{v:.0}"),
            (Unit::PerCall, Some(v)) => format!("{v:.4}"),
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Metric::SuccessRate => f.write_str("success_rate"),
            Metric::CorrectRate => f.write_str("correct_rate"),
            Metric::Percentile(p) => write!(f, "p{p}"),
            Metric::RetryAmplification => f.write_str("retry_amplification"),
            Metric::Recovery => f.write_str("recovery"),
            Metric::KeysMoved => f.write_str("keys_moved"),
            Metric::Detection => f.write_str("detection"),
            Metric::BreakerOpens => f.write_str("breaker_opens"),
            Metric::Ejections => f.write_str("ejections"),
            Metric::LoadShare => f.write_str("load_share"),
            Metric::HedgeRate => f.write_str("hedge_rate"),
        }
    }
}

/// A bound on a metric: `op value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Bound {
    /// The operator.
    pub op: Op,
    /// The value (milliseconds for durations).
    pub value: f64,
    /// As written.
    pub text: String,
}

impl Bound {
    /// Parses `"<op> <value>"` for a metric of `unit`.
    pub fn parse(text: &str, unit: Unit) -> Result<Bound, String> {
        let Some((op, value)) = Op::parse(text) else {
            return Err(format!("`{text}` does not start with one of <, <=, >, >=, =="));
        };
        let value = parse_value(value, unit)?;
        let bound = Bound { op, value, text: text.trim().to_owned() };
        bound.meaningful(unit)?;
        Ok(bound)
    }

    /// Whether `measured` satisfies it.
    pub fn holds(&self, measured: f64) -> bool {
        self.op.holds(measured, self.value)
    }

    /// Whether it can fail and can pass, given the values `unit`'s metric can take: a bound
    /// that can never hold (`success_rate > 1`, `p99 < 0ms`, `retry_amplification < 1`) or
    /// always holds (`success_rate >= 0`) would make the verdict say nothing.
    fn meaningful(&self, unit: Unit) -> Result<(), String> {
        let (lo, hi) = unit.domain();
        let v = self.value;
        let (never, always) = match self.op {
            Op::Lt => (v <= lo, v > hi),
            Op::Le => (v < lo, v >= hi),
            Op::Gt => (v >= hi, v < lo),
            Op::Ge => (v > hi, v <= lo),
            Op::Eq => (v < lo || v > hi, false),
        };
        let domain = unit.describe();
        if never {
            return Err(format!("`{}` can never hold: the value is {domain}", self.text));
        }
        if always {
            return Err(format!("`{}` always holds (the value is {domain}): it checks nothing", self.text));
        }
        Ok(())
    }

    /// The smallest and largest values it allows.
    fn range(&self) -> (f64, f64) {
        match self.op {
            Op::Lt | Op::Le => (f64::NEG_INFINITY, self.value),
            Op::Gt | Op::Ge => (self.value, f64::INFINITY),
            Op::Eq => (self.value, self.value),
        }
    }
}

fn parse_value(text: &str, unit: Unit) -> Result<f64, String> {
    match unit {
        Unit::Millis => Ok(instant(text)?.as_secs_f64() * 1e3),
        Unit::Rate => {
            let v: f64 = text.parse().map_err(|_| format!("`{text}` is not a number"))?;
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{v} is not a rate in [0, 1]"));
            }
            Ok(v)
        }
        Unit::Count => {
            let v: u64 = text.trim().parse().map_err(|_| format!("`{text}` is not a whole number"))?;
            Ok(v as f64)
        }
        Unit::Ratio | Unit::PerCall => {
            let v: f64 = text.parse().map_err(|_| format!("`{text}` is not a number"))?;
            if !v.is_finite() || v < 0.0 {
                return Err(format!("{v} is not a non-negative number"));
            }
            Ok(v)
        }
    }
}

/// `a.metric op [factor *] b.metric`: strategy `a` measured against strategy `b` on the same
/// world and seed.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// The left run: a strategy of the matrix, or a variant, by name.
    pub left: String,
    /// The metric compared.
    pub metric: Metric,
    /// The operator.
    pub op: Op,
    /// The factor applied to the right side.
    pub factor: f64,
    /// The right run, by name.
    pub right: String,
    /// As written.
    pub text: String,
}

impl Comparison {
    /// Parses `"a.metric op [factor *] b.metric"`.
    pub fn parse(text: &str) -> Result<Comparison, String> {
        let shape = || format!("`{text}` is not `<run>.<metric> <op> [<factor> *] <run>.<metric>`");
        let split = text.find(['<', '>', '=']).ok_or_else(shape)?;
        let (lhs, rest) = text.split_at(split);
        let (op, rhs) = Op::parse(rest).ok_or_else(shape)?;
        let (factor, rhs) = match rhs.split_once('*') {
            Some((f, r)) => (f.trim().parse::<f64>().map_err(|_| format!("`{}` is not a factor", f.trim()))?, r),
            None => (1.0, rhs),
        };
        let side = |s: &str| -> Result<(String, Metric), String> {
            let (run, metric) = s.trim().rsplit_once('.').ok_or_else(shape)?;
            let metric = Metric::parse(metric).ok_or_else(|| format!("`{metric}` is not a metric ({METRICS})"))?;
            if run.is_empty() {
                return Err(shape());
            }
            Ok((run.to_owned(), metric))
        };
        let (left, metric) = side(lhs)?;
        let (right, right_metric) = side(rhs)?;
        if metric != right_metric {
            return Err(format!("`{text}` compares {metric} with {right_metric}"));
        }
        match metric {
            Metric::KeysMoved => {
                return Err(format!("`{text}`: keys_moved is a phase metric; bound it under `[expect.phase.<name>]`"));
            }
            Metric::BreakerOpens | Metric::Ejections | Metric::LoadShare => {
                return Err(format!("`{text}`: {metric} is a server metric; bound it under `[expect.server.<name>]`"));
            }
            _ => {}
        }
        if !(factor.is_finite() && factor > 0.0) {
            return Err(format!("the factor {factor} must be positive"));
        }
        Ok(Comparison { left, metric, op, factor, right, text: text.trim().to_owned() })
    }
}

/// The share of `phase`'s correct answers that `who` (a group of the fleet, or one server) gave;
/// `None` with no correct answer in the phase.
fn share(run: &RunResult, phase: &gauntlet_reports::Phase, who: &str) -> Option<f64> {
    let total: u64 = phase.answered_by.values().sum();
    let theirs: u64 = phase
        .answered_by
        .iter()
        .filter(|(server, _)| *server == who || run.servers.iter().any(|s| s.name == **server && s.group == who))
        .map(|(_, n)| n)
        .sum();
    (total > 0).then(|| theirs as f64 / total as f64)
}

/// Time from the first fault's start to the client's first reaction on one of the servers it
/// hit: a breaker opening, an ejection, or a failover away from the server. `None`: no fault,
/// or no reaction.
fn detection_ms(run: &RunResult) -> Option<f64> {
    let start = run.events.iter().filter(|e| matches!(e.what, What::FaultStart { .. })).map(|e| e.t_us).min()?;
    let targets: Vec<&str> = run
        .events
        .iter()
        .filter(|e| e.t_us == start && matches!(e.what, What::FaultStart { .. }))
        .map(|e| e.server.as_str())
        .collect();
    let reaction = run.events.iter().find(|e| {
        e.t_us >= start
            && targets.contains(&e.server.as_str())
            && matches!(e.what, What::Breaker { to: BreakerPhase::Open, .. } | What::Ejected | What::Failover { .. })
    })?;
    Some(reaction.t_us.saturating_sub(start) as f64 / 1e3)
}

/// The metrics a bound or comparison can name.
pub const METRICS: &str =
    "success_rate, correct_rate, p50, p90, p99, p999, retry_amplification, recovery, detection, hedge_rate";

/// The fewest correct answers a series bucket needs to count toward a served order.
pub const MIN_ORDER_ANSWERS: u64 = 5;
/// The most entries a served order may list.
pub const MAX_ORDER: usize = 32;

/// The order in which groups (or servers) served, over the run or one phase: bucket by bucket
/// of the run's series, the one of `names` (then of the fleet's other groups) that gave more than
/// half of the bucket's correct answers (buckets with fewer than [`MIN_ORDER_ANSWERS`], or where
/// none did, are skipped), with repeats merged: `primary, secondary, primary` is a failover and
/// its return.
pub fn served_order(run: &RunResult, span: Option<(f64, f64)>, names: &[String]) -> Vec<String> {
    let mut candidates: Vec<&str> = names.iter().map(String::as_str).collect();
    for s in &run.servers {
        if !candidates.contains(&s.group.as_str()) {
            candidates.push(&s.group);
        }
    }
    let mut order: Vec<String> = Vec::new();
    for b in &run.series {
        if span.is_some_and(|(from, to)| b.t_ms < from || b.t_ms >= to) {
            continue;
        }
        let total: u64 = b.answered.iter().sum();
        if total < MIN_ORDER_ANSWERS {
            continue;
        }
        let of = |name: &str| -> u64 {
            run.servers.iter().zip(&b.answered).filter(|(s, _)| s.name == name || s.group == name).map(|(_, n)| n).sum()
        };
        let leader = candidates.iter().find(|n| of(n).saturating_mul(2) > total);
        if let Some(&leader) = leader
            && order.last().map(String::as_str) != Some(leader)
        {
            order.push(leader.to_owned());
        }
    }
    order
}

/// An expected served order (see [`served_order`]), over the run or one phase.
#[derive(Clone, Debug, PartialEq)]
pub struct Order {
    /// The phase it is about (`None`: the whole run).
    pub phase: Option<String>,
    /// The groups or servers, in the order they must have served.
    pub names: Vec<String>,
}

/// Bounds on the metrics of one run, or of one phase of it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bounds(pub Vec<(Metric, Bound)>);

impl Bounds {
    /// A contradiction among them, if any: a lower bound on a percentile above an upper bound
    /// on a higher one (p50 >= 100ms with p99 <= 50ms can never hold).
    /// Returns the bound written last of the two (where an error should point) and the message.
    pub fn contradiction(&self) -> Option<(Metric, String)> {
        for (m1, b1) in &self.0 {
            for (m2, b2) in &self.0 {
                if let (Metric::Percentile(p1), Metric::Percentile(p2)) = (m1, m2)
                    && p1 <= p2
                    && b1.range().0 > b2.range().1
                {
                    return Some((*m2, format!("{m1} {} and {m2} {} cannot both hold", b1.text, b2.text)));
                }
            }
        }
        None
    }
}

/// A scenario's expectations.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Expectations {
    /// Bounds on the whole run.
    pub run: Bounds,
    /// Bounds per named phase.
    pub phases: Vec<(String, Bounds)>,
    /// Bounds per server.
    pub servers: Vec<(String, Bounds)>,
    /// Bounds on the share of a phase's correct answers a group (or one server) gave:
    /// (phase, group or server, bound).
    pub shares: Vec<(String, String, Bound)>,
    /// Comparisons between runs (strategies of the matrix, or variants).
    pub compare: Vec<Comparison>,
    /// Orders in which groups or servers must have served.
    pub orders: Vec<Order>,
    /// Expectations only one run must meet, by its name (a strategy of the matrix, or a
    /// variant): `[expect.run.NAME]`.
    pub only: Vec<(String, Expectations)>,
}

fn check_bound(name: String, metric: Metric, bound: &Bound, measured: Option<f64>) -> Expectation {
    Expectation {
        name,
        expected: bound.text.clone(),
        measured: metric.show(measured),
        pass: measured.is_some_and(|m| bound.holds(m)),
    }
}

impl Expectations {
    /// The run named `name` (a strategy of the matrix, or a variant), and the runs it must be
    /// compared against: what replaying one run needs.
    pub fn needed_with(&self, name: &str) -> Vec<String> {
        let mut out = vec![name.to_owned()];
        for c in self.compare.iter().filter(|c| c.left == name) {
            if !out.contains(&c.right) {
                out.push(c.right.clone());
            }
        }
        out
    }

    /// Checks the bounds on one run.
    pub fn check(&self, run: &RunResult) -> Vec<Expectation> {
        // Every call must end: `lost` is always expected to be 0 (the checker demands it too).
        let mut out = vec![Expectation {
            name: "lost".to_owned(),
            expected: "== 0".to_owned(),
            measured: run.calls.lost.to_string(),
            pass: run.calls.lost == 0,
        }];
        for (metric, bound) in &self.run.0 {
            out.push(check_bound(metric.to_string(), *metric, bound, metric.measure(run)));
        }
        for (phase, bounds) in &self.phases {
            let p = run.phases.iter().find(|p| p.name == *phase);
            for (metric, bound) in &bounds.0 {
                let measured = p.and_then(|p| match metric {
                    Metric::SuccessRate => Some(p.calls.success_rate()),
                    Metric::CorrectRate => Some(p.calls.correct_rate()),
                    Metric::KeysMoved => p.keys_moved,
                    _ => metric.of_latency(&p.latency),
                });
                out.push(check_bound(format!("{phase}.{metric}"), *metric, bound, measured));
            }
        }
        for (phase, who, bound) in &self.shares {
            let measured = run.phases.iter().find(|p| p.name == *phase).and_then(|p| share(run, p, who));
            out.push(check_bound(format!("{phase}.share.{who}"), Metric::LoadShare, bound, measured));
        }
        for o in &self.orders {
            let span = match &o.phase {
                None => Some(None),
                Some(name) => run.phases.iter().find(|p| p.name == *name).map(|p| Some((p.from_ms, p.to_ms))),
            };
            let measured = span.map(|span| served_order(run, span, &o.names));
            let pass = measured.as_ref() == Some(&o.names);
            let show = |names: &[String]| {
                if names.is_empty() { "none served a majority".to_owned() } else { names.join(" -> ") }
            };
            out.push(Expectation {
                name: o.phase.as_ref().map_or_else(|| "order".to_owned(), |p| format!("{p}.order")),
                expected: show(&o.names),
                measured: measured.map_or_else(|| "not measured".to_owned(), |m| show(&m)),
                pass,
            });
        }
        for (name, sub) in self.only.iter().filter(|(name, _)| *name == run.key()) {
            // `lost` is checked once, above.
            for mut e in sub.check(run).into_iter().skip(1) {
                e.name = format!("{name}: {}", e.name);
                out.push(e);
            }
        }
        for (server, bounds) in &self.servers {
            for (metric, bound) in &bounds.0 {
                let measured = metric.of_server(run, server);
                out.push(check_bound(format!("{server}.{metric}"), *metric, bound, measured));
            }
        }
        out
    }

    /// Checks the comparisons whose left side is the run `name`, given the runs made on the
    /// same world and seed (comparisons with a run not made are left out).
    pub fn compare(&self, name: &str, runs: &[&RunResult]) -> Vec<Expectation> {
        let of = |n: &str| runs.iter().find(|r| r.key() == n);
        self.compare
            .iter()
            .filter(|c| c.left == name && of(&c.right).is_some())
            .map(|c| {
                let left = of(&c.left).and_then(|r| c.metric.measure(r));
                let right = of(&c.right).and_then(|r| c.metric.measure(r));
                let pass = matches!((left, right), (Some(l), Some(r)) if c.op.holds(l, c.factor * r));
                Expectation {
                    name: format!("{}.{} vs {}", c.left, c.metric, c.right),
                    expected: c.text.clone(),
                    measured: format!(
                        "{} {} {}{}",
                        c.metric.show(left),
                        if pass { c.op.symbol() } else { "vs" },
                        if c.factor == 1.0 { String::new() } else { format!("{} * ", c.factor) },
                        c.metric.show(right)
                    ),
                    pass,
                }
            })
            .collect()
    }
}

/// A duration as scenario files write it (`"250ms"`, `"1m 30s"`), positive.
pub fn duration(text: &str) -> Result<Duration, String> {
    let d = instant(text)?;
    if d.is_zero() {
        return Err(format!("`{text}` is zero: a duration must be positive"));
    }
    Ok(d)
}

/// The longest duration a scenario file may write anywhere: one day. The run itself is at most
/// 10 minutes; the bound keeps every sum of durations far from overflowing.
pub const MAX_SPAN: Duration = Duration::from_secs(24 * 60 * 60);

/// A duration from the start of something, zero allowed, at most [`MAX_SPAN`].
pub fn instant(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| format!("`{text}` is not a duration ({e})"))?;
    if d > MAX_SPAN {
        return Err(format!("`{text}` is longer than the longest duration a scenario may write (24h)"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_parse_their_operator_and_unit() {
        let b = Bound::parse("<= 250ms", Unit::Millis).expect("parses");
        assert_eq!((b.op, b.value), (Op::Le, 250.0));
        assert!(b.holds(250.0) && !b.holds(250.1));
        assert!(Bound::parse(">= 1.5", Unit::Rate).is_err());
        assert!(Bound::parse("about 3", Unit::Ratio).is_err());
    }

    #[test]
    fn comparisons_parse_factors_and_reject_mixed_metrics() {
        let c = Comparison::parse("p2c-peak-ewma.p99 < 0.2 * round-robin.p99").expect("parses");
        assert_eq!((c.left.as_str(), c.right.as_str(), c.factor), ("p2c-peak-ewma", "round-robin", 0.2));
        assert_eq!(c.metric, Metric::Percentile(99));
        assert!(Comparison::parse("a.p99 < b.p50").is_err());
        assert!(Comparison::parse("a.p99 b.p99").is_err());
    }

    #[test]
    fn a_lower_bound_on_a_low_percentile_above_an_upper_bound_on_a_high_one_is_a_contradiction() {
        let b = |m: &str, t: &str| {
            let m = Metric::parse(m).expect("metric");
            (m, Bound::parse(t, m.unit()).expect("bound"))
        };
        assert!(Bounds(vec![b("p50", ">= 100ms"), b("p99", "<= 50ms")]).contradiction().is_some());
        assert!(Bounds(vec![b("p50", "<= 100ms"), b("p99", "<= 50ms")]).contradiction().is_none());
    }
}
