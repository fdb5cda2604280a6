//! The HTML report: one self-contained page (inline SVG and CSS, no script, nothing fetched)
//! from any number of runs, optionally overlaid on the runs of a baseline.
//!
//! On top, the suite: pass or fail per scenario × run × seed, each a link to its run, and the
//! spread of the p99 across seeds. Then per scenario: its hypothesis; for its first seed (and
//! every seed where a run failed) the runs side by side on shared time axes (latency, throughput,
//! success, with the fault windows shaded and the phases marked), then per run its load share,
//! its timeline, its phases, its expectations, its violations with the events around them, its
//! digest and the command that replays it. The other seeds are a table of figures.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::chart::{self, Series, Spread};
use crate::model::{RunResult, Verdict, Violation, What};

/// At most this many seeds of one scenario are drawn in full (its first, then failing ones);
/// the others are rows of its table.
pub const MAX_DETAILED_SEEDS: usize = 4;

/// What a page shows.
#[derive(Clone, Copy, Debug)]
pub struct Page<'a> {
    /// Its title.
    pub title: &'a str,
    /// The runs, in the order they were made.
    pub runs: &'a [RunResult],
    /// A baseline's runs, drawn dashed under the same runs of `runs` (`gauntlet diff --html`).
    pub base: Option<&'a [RunResult]>,
    /// Notes for the top of the page (units missing from a merge, duplicates).
    pub notes: &'a [String],
    /// The program reproduce lines name.
    pub program: &'a str,
}

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An id for an anchor: letters, digits and `-` only.
fn slug(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect()
}

/// The anchor of a run.
pub fn anchor(run: &RunResult) -> String {
    format!("run-{}-{}-{}", slug(&run.scenario), slug(run.key()), run.seed)
}

const STYLE: &str = r#"
:root { color-scheme: light dark; --fg: #1a1a1a; --bg: #fafafa; --muted: #666; --line: #ddd;
  --pass: #009E73; --fail: #D55E00; --card: #ffffff; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e8e8e8; --bg: #141414; --muted: #aaa; --line: #444; --card: #1f1f1f; }
}
body { font: 14px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); margin: 0 auto;
  max-width: 1100px; padding: 1em 1.5em; }
h1 { font-size: 1.6em; } h2 { border-top: 2px solid var(--line); padding-top: .8em; margin-top: 2em; }
h3 { margin-top: 1.5em; } h4 { margin: 1.2em 0 .4em; }
.muted { color: var(--muted); } .desc { white-space: pre-wrap; max-width: 80ch; }
.badge { display: inline-block; padding: 0 .5em; border-radius: 3px; color: #fff; font-weight: 600; }
.pass { background: var(--pass); } .fail { background: var(--fail); }
figure.chart { background: #fff; margin: .6em 0; padding: 4px; border: 1px solid var(--line);
  border-radius: 4px; display: inline-block; break-inside: avoid; }
figure.chart svg { display: block; }
table { border-collapse: collapse; margin: .5em 0; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid var(--line); padding: 2px 10px 2px 0; text-align: left; vertical-align: top; }
td.num { text-align: right; }
.cells a { display: inline-block; min-width: 2.2em; margin: 1px; padding: 0 3px; text-align: center;
  color: #fff; text-decoration: none; border-radius: 2px; font-size: 12px; }
code { font: 12px ui-monospace, monospace; }
.legend span { display: inline-block; margin-right: 1em; }
.legend i { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: -1px; }
.notes { border-left: 4px solid var(--fail); padding-left: 1em; }
.run { break-inside: avoid-page; }
@media print { body { background: #fff; color: #000; max-width: none; } a { color: inherit; } }
"#;

fn badge(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "<span class=\"badge pass\">PASS</span>",
        Verdict::Fail => "<span class=\"badge fail\">FAIL</span>",
    }
}

fn figure(name: &str, svg: &str) -> String {
    if svg.is_empty() {
        return String::new();
    }
    format!("<figure class=\"chart\" data-chart=\"{}\">{svg}</figure>\n", escape(name))
}

fn rate(v: f64) -> String {
    format!("{v:.4}")
}

/// One scenario's runs, by seed.
struct Scenario<'a> {
    name: &'a str,
    seeds: BTreeMap<u64, Vec<&'a RunResult>>,
}

fn scenarios(runs: &[RunResult]) -> Vec<Scenario<'_>> {
    let mut out: Vec<Scenario<'_>> = Vec::new();
    for r in runs {
        let i = match out.iter().position(|s| s.name == r.scenario) {
            Some(i) => i,
            None => {
                out.push(Scenario { name: &r.scenario, seeds: BTreeMap::new() });
                out.len() - 1
            }
        };
        out[i].seeds.entry(r.seed).or_default().push(r);
    }
    out
}

/// The page.
pub fn html(page: &Page<'_>) -> String {
    let runs = page.runs;
    let failed = runs.iter().filter(|r| r.verdict == Verdict::Fail).count();
    let base: BTreeMap<(&str, &str, u64), &RunResult> =
        page.base.unwrap_or_default().iter().map(|r| ((r.scenario.as_str(), r.key(), r.seed), r)).collect();
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head><body>\n<h1>{title}</h1>\n\
         <p>{n} run{plural}: <strong>{passed} passed</strong>, <strong>{failed} failed</strong>. Time on every \
         axis is simulated: the same file, strategy and seed draw the same charts on any machine.</p>\n",
        title = escape(page.title),
        n = runs.len(),
        plural = if runs.len() == 1 { "" } else { "s" },
        passed = runs.len() - failed,
    );
    if page.base.is_some() {
        h.push_str("<p>Dashed, lighter lines are the baseline's run of the same scenario, run and seed.</p>\n");
    }
    if !page.notes.is_empty() {
        h.push_str("<div class=\"notes\"><p><strong>Incomplete:</strong></p><ul>\n");
        for n in page.notes {
            let _ = writeln!(h, "<li>{}</li>", escape(n));
        }
        h.push_str("</ul></div>\n");
    }
    let all = scenarios(runs);
    overview(&mut h, &all);
    for s in &all {
        scenario(&mut h, s, &base, page.program);
    }
    h.push_str("</body></html>\n");
    h
}

/// The suite at a glance: a cell per run, and the spread of p99 across seeds.
fn overview(h: &mut String, all: &[Scenario<'_>]) {
    h.push_str("<h2 id=\"overview\">Overview</h2>\n<table><tr><th>scenario</th><th>run</th><th>seeds</th></tr>\n");
    let mut rows: Vec<Spread> = Vec::new();
    for s in all {
        let mut keys: Vec<&str> = Vec::new();
        for r in s.seeds.values().flatten() {
            if !keys.contains(&r.key()) {
                keys.push(r.key());
            }
        }
        for key in keys {
            let _ = write!(
                h,
                "<tr><td><a href=\"#scenario-{}\">{}</a></td><td>{}</td><td class=\"cells\">",
                slug(s.name),
                escape(s.name),
                escape(key)
            );
            let mut spread = Spread { label: format!("{} [{key}]", s.name), values: Vec::new() };
            for r in s.seeds.values().flatten().filter(|r| r.key() == key) {
                let pass = r.verdict == Verdict::Pass;
                let _ = write!(
                    h,
                    "<a class=\"{}\" href=\"#{}\" title=\"seed {}: {}\">{}</a>",
                    if pass { "pass" } else { "fail" },
                    anchor(r),
                    r.seed,
                    if pass { "PASS" } else { "FAIL" },
                    r.seed
                );
                if let Some(p99) = r.latency.p99 {
                    spread.values.push((r.seed, p99, pass));
                }
            }
            h.push_str("</td></tr>\n");
            if spread.values.len() > 1 {
                rows.push(spread);
            }
        }
    }
    h.push_str("</table>\n");
    if !rows.is_empty() {
        h.push_str(
            "<h3>p99 across seeds</h3>\n<p class=\"muted\">One point per seed: blue passed, vermillion failed.</p>\n",
        );
        h.push_str(&figure("spread", &chart::spread("p99 latency of each seed's run", "p99 latency (ms)", &rows)));
    }
}

type Base<'a> = BTreeMap<(&'a str, &'a str, u64), &'a RunResult>;

fn scenario(h: &mut String, s: &Scenario<'_>, base: &Base<'_>, program: &str) {
    let Some(first) = s.seeds.values().flatten().next() else { return };
    let _ = writeln!(
        h,
        "<section data-scenario=\"{}\"><h2 id=\"scenario-{}\">{}</h2>",
        escape(s.name),
        slug(s.name),
        escape(s.name)
    );
    if !first.file.is_empty() {
        let _ = writeln!(h, "<p class=\"muted\"><code>{}</code></p>", escape(&first.file));
    }
    if !first.description.is_empty() {
        let _ = writeln!(h, "<p class=\"desc\">{}</p>", escape(&first.description));
    }
    let mut detailed: Vec<u64> = Vec::new();
    for (&seed, runs) in &s.seeds {
        let show = detailed.is_empty() || runs.iter().any(|r| r.verdict == Verdict::Fail);
        if show && detailed.len() < MAX_DETAILED_SEEDS {
            detailed.push(seed);
        }
    }
    for seed in &detailed {
        if let Some(runs) = s.seeds.get(seed) {
            seed_detail(h, *seed, runs, base, program);
        }
    }
    let rest: Vec<&RunResult> =
        s.seeds.iter().filter(|(seed, _)| !detailed.contains(seed)).flat_map(|(_, r)| r.iter().copied()).collect();
    if !rest.is_empty() {
        let _ = writeln!(h, "<h3>Other seeds</h3>");
        figures_table(h, &rest, program);
    }
    h.push_str("</section>\n");
}

fn seed_detail(h: &mut String, seed: u64, runs: &[&RunResult], base: &Base<'_>, program: &str) {
    let _ = writeln!(h, "<h3>Seed {seed}</h3>");
    let labels: Vec<String> = runs.iter().map(|r| r.label()).collect();
    let mut series: Vec<Series<'_>> = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        if let Some(b) = base.get(&(r.scenario.as_str(), r.key(), r.seed)) {
            series.push(Series { label: &labels[i], run: b, colour: chart::colour(i), base: true });
        }
        series.push(Series { label: &labels[i], run: r, colour: chart::colour(i), base: false });
    }
    if runs.len() > 1 {
        h.push_str("<p class=\"legend\">");
        for (i, l) in labels.iter().enumerate() {
            let _ =
                write!(h, "<span><i style=\"background:{}\"></i>{}</span>", chart::hex(chart::colour(i)), escape(l));
        }
        h.push_str("</p>\n");
    }
    h.push_str(&figure("latency", &chart::latency(&series)));
    h.push_str(&figure("throughput", &chart::throughput(&series)));
    h.push_str(&figure("success", &chart::success(&series)));
    for r in runs {
        run_detail(h, r, base.get(&(r.scenario.as_str(), r.key(), r.seed)).copied(), program);
    }
}

fn run_detail(h: &mut String, r: &RunResult, base: Option<&RunResult>, program: &str) {
    let _ = writeln!(
        h,
        "<div class=\"run\" id=\"{}\"><h4>{} {} <span class=\"muted\">seed {}</span></h4>",
        anchor(r),
        badge(r.verdict),
        escape(&r.label()),
        r.seed
    );
    let c = &r.calls;
    let _ = writeln!(
        h,
        "<p>{} calls offered, {} issued: {} answered, {} wrong, {} failed, {} lost; success rate {}; \
         p50 {} p99 {} p99.9 {}; {} attempts per call ({} hedges); recovery {}.</p>",
        c.offered,
        c.total,
        c.ok,
        c.wrong,
        c.failed,
        c.lost,
        rate(c.success_rate()),
        crate::ms(r.latency.p50),
        crate::ms(r.latency.p99),
        crate::ms(r.latency.p999),
        format_args!("{:.3}", r.retry_amplification),
        r.hedges,
        crate::ms(r.recovery_ms),
    );
    h.push_str("<p class=\"legend\">");
    for (i, s) in r.servers.iter().enumerate() {
        let _ = write!(
            h,
            "<span><i style=\"background:{}\"></i>{} ({} answers)</span>",
            chart::hex(chart::colour(i)),
            escape(&s.name),
            s.answered
        );
    }
    h.push_str("</p>\n");
    h.push_str(&figure("share", &chart::share(r)));
    h.push_str(&figure("timeline", &chart::timeline(r)));
    let _ = writeln!(
        h,
        "<p class=\"legend\"><span><i style=\"background:{}\"></i>fault</span><span><i style=\"background:#404040\"></i>link down</span>\
         <span><i style=\"background:{}\"></i>breaker open</span><span><i style=\"background:{}\"></i>half-open</span>\
         <span><i style=\"background:{}\"></i>ejected</span></p>",
        chart::FAULT_FILL,
        chart::hex(chart::PALETTE[1]),
        chart::hex(chart::PALETTE[3]),
        chart::hex(chart::PALETTE[5]),
    );
    if !r.phases.is_empty() {
        h.push_str(
            "<table><tr><th>phase</th><th>from</th><th>to</th><th>calls</th><th>success</th><th>p50</th><th>p99</th><th>keys moved</th></tr>\n",
        );
        for p in &r.phases {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                escape(&p.name),
                crate::ms(Some(p.from_ms)),
                crate::ms(Some(p.to_ms)),
                p.calls.total,
                rate(p.calls.success_rate()),
                crate::ms(p.latency.p50),
                crate::ms(p.latency.p99),
                p.keys_moved.map_or_else(|| "-".to_owned(), rate),
            );
        }
        h.push_str("</table>\n");
    }
    if !r.steps.is_empty() {
        h.push_str(
            "<table class=\"steps\"><tr><th>workflow step</th><th>sent</th><th>done</th><th>fallback</th><th>skipped</th>\
             <th>failed</th><th>unknown</th><th>cancelled</th><th>compensated</th><th>compensation failed</th></tr>\n",
        );
        for s in &r.steps {
            let _ = write!(h, "<tr><td>{}</td>", escape(&s.name));
            for n in [
                s.sent,
                s.done,
                s.fallback,
                s.skipped,
                s.failed,
                s.unknown,
                s.cancelled,
                s.compensated,
                s.compensation_failed,
            ] {
                let _ = write!(h, "<td class=\"num\">{n}</td>");
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</table>\n");
    }
    if !r.expectations.is_empty() {
        h.push_str("<table><tr><th>expectation</th><th>expected</th><th>measured</th><th></th></tr>\n");
        for e in &r.expectations {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&e.name),
                escape(&e.expected),
                escape(&e.measured),
                badge(if e.pass { Verdict::Pass } else { Verdict::Fail })
            );
        }
        h.push_str("</table>\n");
    }
    if !r.violations.is_empty() {
        h.push_str("<p><strong>Violations</strong></p><ul>\n");
        for v in &r.violations {
            let _ = write!(h, "<li>{}", escape(&v.to_string()));
            let around = events_around(r, v);
            if !around.is_empty() {
                h.push_str("<br><span class=\"muted\">around it:</span><ul>");
                for line in around {
                    let _ = write!(h, "<li><code>{}</code></li>", escape(&line));
                }
                h.push_str("</ul>");
            }
            h.push_str("</li>\n");
        }
        h.push_str("</ul>\n");
    }
    let _ = writeln!(h, "<p>digest <code>{}</code>", escape(&r.digest));
    if let Some(b) = base {
        let same = if b.digest == r.digest {
            "the same as the baseline's: no behaviour change"
        } else {
            "differs from the baseline's"
        };
        let _ = write!(h, " ({same})");
    }
    let _ = writeln!(h, "<br>reproduce: <code>{}</code></p></div>", escape(&r.reproduce_with(program)));
}

/// The events around a violation that has a time: on its server within a second of it (a
/// breaker bypassed), or on any server from a second before the call started to a second after
/// it ended (after it started, for a call that never ended).
fn events_around(r: &RunResult, v: &Violation) -> Vec<String> {
    const SECOND: u64 = 1_000_000;
    let (server, from, to) = match v {
        Violation::BreakerBypassed { server, t_us, .. } => (Some(server.as_str()), *t_us, *t_us),
        Violation::DeadlineMissed { start_us: Some(start), took_us, .. } => {
            (None, *start, start.saturating_add(*took_us))
        }
        Violation::Lost { start_us: Some(start), .. } | Violation::MinorityAnswer { start_us: Some(start), .. } => {
            (None, *start, *start)
        }
        _ => return Vec::new(),
    };
    r.events
        .iter()
        .filter(|e| {
            server.is_none_or(|s| e.server == s)
                && e.t_us >= from.saturating_sub(SECOND)
                && e.t_us <= to.saturating_add(SECOND)
        })
        .take(12)
        .map(|e| {
            let what = match &e.what {
                What::FaultStart { fault } => format!("{fault} starts"),
                What::FaultEnd { fault } => format!("{fault} ends"),
                What::Breaker { from, to } => format!("breaker {from} -> {to}"),
                What::Ejected => "ejected".to_owned(),
                What::Restored => "restored".to_owned(),
                What::Connected => "connected".to_owned(),
                What::Disconnected => "disconnected".to_owned(),
                What::Failover { to } => format!("failover to {to}"),
            };
            format!("{:.3} s {}: {what}", e.t_us as f64 / 1e6, e.server)
        })
        .collect()
}

fn figures_table(h: &mut String, runs: &[&RunResult], program: &str) {
    h.push_str(
        "<table><tr><th>seed</th><th>run</th><th></th><th>calls</th><th>success</th><th>p50</th><th>p99</th>\
         <th>retry</th><th>recovery</th><th>digest / reproduce</th></tr>\n",
    );
    for r in runs {
        let failed: Vec<String> = r
            .failed_expectations()
            .map(|e| format!("expected {} {}, measured {}", e.name, e.expected, e.measured))
            .chain(r.violations.iter().map(ToString::to_string))
            .collect();
        let _ = writeln!(
            h,
            "<tr id=\"{}\"><td class=\"num\">{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.3}</td><td class=\"num\">{}</td>\
             <td><code>{}</code><br><code>{}</code>{}</td></tr>",
            anchor(r),
            r.seed,
            escape(&r.label()),
            badge(r.verdict),
            r.calls.total,
            rate(r.calls.success_rate()),
            crate::ms(r.latency.p50),
            crate::ms(r.latency.p99),
            r.retry_amplification,
            crate::ms(r.recovery_ms),
            escape(&r.digest),
            escape(&r.reproduce_with(program)),
            failed.iter().map(|f| format!("<br>{}", escape(f))).collect::<String>(),
        );
    }
    h.push_str("</table>\n");
}
