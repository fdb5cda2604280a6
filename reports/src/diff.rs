//! Two sets of runs compared, run by run (scenario × run × seed): what changed and whether it is a
//! regression beyond a threshold.
//!
//! Runs are deterministic, so a run whose digest is the same in both is the same run, event for
//! event: no behaviour change, whatever the figures. Otherwise each figure is compared in the
//! direction that is worse (a lower success rate; a higher latency, amplification or recovery)
//! against its threshold: relative (`10%` of the baseline's value) or absolute (`500ms`,
//! `0.001`). A run that passed and now fails, or that the head no longer has, is a regression
//! whatever its figures.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::merge::RunId;
use crate::model::{RunResult, Verdict};

/// A figure a diff compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Metric {
    /// Calls with a correct result over calls issued (worse when lower).
    SuccessRate,
    /// Median latency, ms.
    P50,
    /// 99th percentile, ms.
    P99,
    /// 99.9th percentile, ms.
    P999,
    /// Attempts per call.
    RetryAmplification,
    /// Recovery after the last fault, ms (`None`: never recovered, or no fault).
    Recovery,
}

impl Metric {
    /// Every metric, in table order.
    pub const ALL: [Metric; 6] =
        [Metric::SuccessRate, Metric::P50, Metric::P99, Metric::P999, Metric::RetryAmplification, Metric::Recovery];

    /// Its name in thresholds and tables.
    pub fn name(self) -> &'static str {
        match self {
            Metric::SuccessRate => "success_rate",
            Metric::P50 => "p50",
            Metric::P99 => "p99",
            Metric::P999 => "p999",
            Metric::RetryAmplification => "retry_amplification",
            Metric::Recovery => "recovery",
        }
    }

    fn parse(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }

    fn is_duration(self) -> bool {
        matches!(self, Metric::P50 | Metric::P99 | Metric::P999 | Metric::Recovery)
    }

    /// Its value in `run`.
    pub fn of(self, run: &RunResult) -> Option<f64> {
        match self {
            Metric::SuccessRate => Some(run.calls.success_rate()),
            Metric::P50 => run.latency.p50,
            Metric::P99 => run.latency.p99,
            Metric::P999 => run.latency.p999,
            Metric::RetryAmplification => Some(run.retry_amplification),
            Metric::Recovery => run.recovery_ms,
        }
    }

    /// How much worse `head` is than `base` (positive: worse).
    fn worse_by(self, base: f64, head: f64) -> f64 {
        if self == Metric::SuccessRate { base - head } else { head - base }
    }

    fn show(self, v: Option<f64>) -> String {
        match (self, v) {
            (_, None) => "-".to_owned(),
            (m, Some(v)) if m.is_duration() => crate::ms(Some(v)),
            (Metric::SuccessRate, Some(v)) => format!("{v:.4}"),
            (_, Some(v)) => format!("{v:.3}"),
        }
    }
}

/// How much worse a figure may get.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Limit {
    /// A fraction of the baseline's value (`10%`: 0.1).
    Relative(f64),
    /// In the metric's unit (ms for durations).
    Absolute(f64),
}

impl Limit {
    fn show(self, metric: Metric) -> String {
        match self {
            Limit::Relative(f) => format!("{}%", trim(f * 100.0)),
            Limit::Absolute(v) if metric.is_duration() => format!("{}ms", trim(v)),
            Limit::Absolute(v) => trim(v),
        }
    }
}

fn trim(v: f64) -> String {
    let text = format!("{v:.4}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// The threshold per metric.
#[derive(Clone, Debug, PartialEq)]
pub struct Thresholds(pub Vec<(Metric, Limit)>);

impl Default for Thresholds {
    /// `success_rate=0.001, p50=10%, p99=10%, p999=20%, retry_amplification=0.05, recovery=500ms`.
    fn default() -> Thresholds {
        Thresholds(vec![
            (Metric::SuccessRate, Limit::Absolute(0.001)),
            (Metric::P50, Limit::Relative(0.1)),
            (Metric::P99, Limit::Relative(0.1)),
            (Metric::P999, Limit::Relative(0.2)),
            (Metric::RetryAmplification, Limit::Absolute(0.05)),
            (Metric::Recovery, Limit::Absolute(500.0)),
        ])
    }
}

/// The longest duration a threshold may name: a day, in ms.
const MAX_MS: f64 = 86_400_000.0;

impl Thresholds {
    /// Sets `metric`'s limit from its text: `N%`, a duration for latencies and recovery
    /// (`500ms`), a number for the success rate (in [0, 1]) and the amplification.
    pub fn set(&mut self, metric: &str, value: &str) -> Result<(), String> {
        let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        let m = Metric::parse(metric).ok_or_else(|| {
            format!("`{metric}` is not a metric a diff compares; expected one of: {}", names.join(", "))
        })?;
        let value = value.trim();
        let limit = if let Some(p) = value.strip_suffix('%') {
            let p: f64 = p.trim().parse().map_err(|_| format!("{metric}: `{value}` is not a percentage"))?;
            if !(p.is_finite() && (0.0..=10_000.0).contains(&p)) {
                return Err(format!("{metric}: {p}% is not in [0%, 10000%]"));
            }
            Limit::Relative(p / 100.0)
        } else if m.is_duration() {
            let d = humantime::parse_duration(value)
                .map_err(|e| format!("{metric}: `{value}` is not a duration or a percentage ({e})"))?;
            let ms = d.as_secs_f64() * 1e3;
            if ms > MAX_MS {
                return Err(format!("{metric}: `{value}` is longer than a day"));
            }
            Limit::Absolute(ms)
        } else {
            let v: f64 = value.parse().map_err(|_| format!("{metric}: `{value}` is not a number or a percentage"))?;
            let max = if m == Metric::SuccessRate { 1.0 } else { 1_000.0 };
            if !(v.is_finite() && (0.0..=max).contains(&v)) {
                return Err(format!("{metric}: {v} is not in [0, {max}]"));
            }
            Limit::Absolute(v)
        };
        match self.0.iter_mut().find(|(x, _)| *x == m) {
            Some(slot) => slot.1 = limit,
            None => self.0.push((m, limit)),
        }
        Ok(())
    }

    /// The defaults with `spec`'s limits over them: `p99=10%,recovery=500ms`.
    pub fn parse_spec(spec: &str) -> Result<Thresholds, String> {
        let mut t = Thresholds::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (k, v) =
                item.split_once('=').ok_or_else(|| format!("`{item}` is not `metric=limit` (e.g. p99=10%)"))?;
            t.set(k.trim(), v)?;
        }
        Ok(t)
    }

    /// The defaults with a thresholds file's over them: a TOML table `[max_regression]` of
    /// `metric = "limit"`. Errors are `file:line:col: message`.
    pub fn parse_file(file: &str, text: &str) -> Result<Thresholds, String> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            max_regression: BTreeMap<String, toml::Spanned<String>>,
        }
        let at = |offset: usize| {
            let before = text.get(..offset).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("{file}:{line}:{col}")
        };
        let raw: Raw = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            format!("{}: {}", at(offset), e.message())
        })?;
        let mut t = Thresholds::default();
        for (metric, value) in &raw.max_regression {
            t.set(metric, value.get_ref()).map_err(|m| format!("{}: {m}", at(value.span().start)))?;
        }
        Ok(t)
    }

    fn limit(&self, m: Metric) -> Option<Limit> {
        self.0.iter().find(|(x, _)| *x == m).map(|(_, l)| *l)
    }

    /// The thresholds, for people.
    pub fn describe(&self) -> String {
        let mut items: Vec<(Metric, Limit)> = self.0.clone();
        items.sort_by_key(|(m, _)| *m);
        items.iter().map(|(m, l)| format!("{}={}", m.name(), l.show(*m))).collect::<Vec<_>>().join(", ")
    }
}

/// One figure of one run, before and after.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// The figure.
    pub metric: Metric,
    /// The baseline's value.
    pub base: Option<f64>,
    /// The head's value.
    pub head: Option<f64>,
    /// Worse beyond its threshold.
    pub regressed: bool,
}

/// How a run fared between the two.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The same digest: the same run, event for event.
    Same,
    /// Another run, no figure worse beyond its threshold.
    Changed,
    /// Worse: a figure beyond its threshold, or a pass that now fails.
    Regressed,
    /// In the baseline, not in the head.
    Missing,
    /// In the head only.
    New,
}

/// One run compared.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The run.
    pub id: RunId,
    /// Its status.
    pub status: Status,
    /// The verdicts, before and after (`None`: not there).
    pub verdicts: (Option<Verdict>, Option<Verdict>),
    /// Its figures (empty for a missing or new run).
    pub changes: Vec<Change>,
}

/// Every run of either side, compared.
#[derive(Clone, Debug, PartialEq)]
pub struct Diff {
    /// By run, in the head's order, then the runs only the baseline has.
    pub rows: Vec<Row>,
    /// The thresholds used.
    pub thresholds: Thresholds,
}

/// Compares `head` against `base`.
pub fn diff(base: &[RunResult], head: &[RunResult], thresholds: &Thresholds) -> Diff {
    let by_id: BTreeMap<RunId, &RunResult> = base.iter().map(|r| (RunId::of(r), r)).collect();
    let mut seen = std::collections::BTreeSet::new();
    let mut rows = Vec::new();
    for h in head {
        let id = RunId::of(h);
        seen.insert(id.clone());
        let Some(b) = by_id.get(&id) else {
            rows.push(Row { id, status: Status::New, verdicts: (None, Some(h.verdict)), changes: Vec::new() });
            continue;
        };
        let changes: Vec<Change> = Metric::ALL
            .into_iter()
            .map(|m| {
                let (bv, hv) = (m.of(b), m.of(h));
                let regressed = match (bv, hv, thresholds.limit(m)) {
                    (_, _, None) => false,
                    // No answered call any more (latency), or no recovery any more.
                    (Some(_), None, Some(_)) => true,
                    (Some(bv), Some(hv), Some(limit)) => {
                        let worse = m.worse_by(bv, hv);
                        match limit {
                            Limit::Absolute(a) => worse > a,
                            Limit::Relative(f) => worse > 0.0 && (bv.abs() < f64::EPSILON || worse / bv.abs() > f),
                        }
                    }
                    (None, _, Some(_)) => false,
                };
                Change { metric: m, base: bv, head: hv, regressed }
            })
            .collect();
        let failing_now = b.verdict == Verdict::Pass && h.verdict == Verdict::Fail;
        let status = if b.digest == h.digest {
            Status::Same
        } else if failing_now || changes.iter().any(|c| c.regressed) {
            Status::Regressed
        } else {
            Status::Changed
        };
        rows.push(Row { id, status, verdicts: (Some(b.verdict), Some(h.verdict)), changes });
    }
    for b in base {
        let id = RunId::of(b);
        if !seen.contains(&id) {
            rows.push(Row { id, status: Status::Missing, verdicts: (Some(b.verdict), None), changes: Vec::new() });
        }
    }
    Diff { rows, thresholds: thresholds.clone() }
}

impl Diff {
    /// Runs with this status.
    pub fn count(&self, status: Status) -> usize {
        self.rows.iter().filter(|r| r.status == status).count()
    }

    /// Whether the head is worse: a regression, or a run it no longer has.
    pub fn regressed(&self) -> bool {
        self.count(Status::Regressed) + self.count(Status::Missing) > 0
    }

    /// A Markdown report fit for a pull-request comment: the counts, the thresholds, and a row
    /// per run that changed.
    pub fn markdown(&self, base: &str, head: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "## Gauntlet diff: `{base}` → `{head}`\n");
        let same = self.count(Status::Same);
        let _ = writeln!(
            out,
            "{} runs: {same} with the same digest (no behaviour change), {} changed, **{} regressed**, {} missing from the head, {} new.\n",
            self.rows.len(),
            self.count(Status::Changed),
            self.count(Status::Regressed),
            self.count(Status::Missing),
            self.count(Status::New),
        );
        let _ = writeln!(out, "Thresholds: {}.\n", self.thresholds.describe());
        if same == self.rows.len() {
            out.push_str("No behaviour change: every run has the same digest in both.\n");
            return out;
        }
        out.push_str("| run | status | verdict | success rate | p50 | p99 | p99.9 | retry | recovery |\n");
        out.push_str("|---|---|---|---|---|---|---|---|---|\n");
        for r in self.rows.iter().filter(|r| r.status != Status::Same) {
            let status = match r.status {
                Status::Same => "same",
                Status::Changed => "changed",
                Status::Regressed => "**regressed**",
                Status::Missing => "**missing**",
                Status::New => "new",
            };
            let verdict = |v: Option<Verdict>| match v {
                Some(Verdict::Pass) => "pass",
                Some(Verdict::Fail) => "fail",
                None => "-",
            };
            let verdicts = match r.verdicts {
                (a, b) if a == b => verdict(a).to_owned(),
                (a, b) => format!("{} → {}", verdict(a), verdict(b)),
            };
            let _ = write!(out, "| {} | {status} | {verdicts} |", r.id);
            if r.changes.is_empty() {
                out.push_str(" | | | | | |\n");
                continue;
            }
            for c in &r.changes {
                let cell = if c.base == c.head {
                    c.metric.show(c.head)
                } else {
                    let delta = match (c.base, c.head) {
                        (Some(b), Some(h)) if b.abs() > f64::EPSILON => {
                            format!(" ({:+.1}%)", (h - b) / b.abs() * 100.0)
                        }
                        _ => String::new(),
                    };
                    format!("{} → {}{delta}", c.metric.show(c.base), c.metric.show(c.head))
                };
                if c.regressed {
                    let _ = write!(out, " **{cell}** |");
                } else {
                    let _ = write!(out, " {cell} |");
                }
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_overrides_the_defaults_it_names_and_keeps_the_others() {
        let t = Thresholds::parse_spec("p99=25%, recovery=2s,success_rate=0").expect("valid");
        assert_eq!(t.limit(Metric::P99), Some(Limit::Relative(0.25)));
        assert_eq!(t.limit(Metric::Recovery), Some(Limit::Absolute(2_000.0)));
        assert_eq!(t.limit(Metric::SuccessRate), Some(Limit::Absolute(0.0)));
        assert_eq!(t.limit(Metric::P50), Thresholds::default().limit(Metric::P50));
    }

    #[test]
    fn a_bad_threshold_names_what_is_wrong() {
        let err = |spec: &str| Thresholds::parse_spec(spec).expect_err(spec);
        assert!(err("p98=10%").starts_with("`p98` is not a metric a diff compares; expected one of: success_rate"));
        assert_eq!(err("success_rate=2"), "success_rate: 2 is not in [0, 1]");
        assert_eq!(err("p99=-5%"), "p99: -5% is not in [0%, 10000%]");
        assert!(err("p99").contains("is not `metric=limit`"));
        assert!(err("recovery=2 days").starts_with("recovery: `2 days` is longer than a day"));
    }

    #[test]
    fn a_thresholds_file_error_points_at_its_line_and_column() {
        let e = Thresholds::parse_file("t.toml", "[max_regression]\np99 = \"x\"\n").expect_err("bad value");
        assert!(e.starts_with("t.toml:2:7: p99: `x` is not a duration"), "{e}");
        let e = Thresholds::parse_file("t.toml", "[max_regresion]\n").expect_err("unknown table");
        assert!(e.starts_with("t.toml:1:2: unknown field `max_regresion`"), "{e}");
        let t = Thresholds::parse_file("t.toml", "[max_regression]\np50 = \"5ms\"\n").expect("valid");
        assert_eq!(t.limit(Metric::P50), Some(Limit::Absolute(5.0)));
    }

    #[test]
    fn a_lower_success_rate_is_worse_and_a_higher_latency_is_worse() {
        assert!(Metric::SuccessRate.worse_by(1.0, 0.998) > 0.0);
        assert!(Metric::SuccessRate.worse_by(0.998, 1.0) < 0.0);
        assert!(Metric::P99.worse_by(100.0, 110.0) > 0.0);
        assert!(Metric::Recovery.worse_by(500.0, 250.0) < 0.0);
    }
}
