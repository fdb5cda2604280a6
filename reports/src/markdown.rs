//! Markdown for people and CI step summaries, and the one-line summary of a run.

use std::fmt::Write;

use crate::model::{RunResult, Verdict};
use crate::ms;

/// One line per run: verdict, scenario, strategy, seed, calls, latency, amplification, recovery.
pub fn summary_line(run: &RunResult) -> String {
    let verdict = match run.verdict {
        Verdict::Pass => "PASS",
        Verdict::Fail => "FAIL",
    };
    let recovery = run.recovery_ms.map(|r| format!(" recovery {}", ms(Some(r)))).unwrap_or_default();
    let wrong = if run.calls.wrong > 0 { format!(" ({} wrong answers)", run.calls.wrong) } else { String::new() };
    format!(
        "{verdict} {} [{}] seed {}: {} calls, {} ok, {} failed, {} lost; p50 {} p99 {}; retry x{:.2}{recovery}{wrong}",
        run.scenario,
        run.label(),
        run.seed,
        run.calls.total,
        run.calls.ok,
        run.calls.failed,
        run.calls.lost,
        ms(run.latency.p50),
        ms(run.latency.p99),
        run.retry_amplification,
    )
}

/// A Markdown summary of `runs`: one table row per run, then what failed and how to replay it.
pub fn markdown(title: &str, runs: &[RunResult]) -> String {
    let passed = runs.iter().filter(|r| r.verdict == Verdict::Pass).count();
    let mut out = String::new();
    let _ = writeln!(out, "## {title}\n");
    let _ = writeln!(out, "{passed} of {} runs passed.\n", runs.len());
    out.push_str(
        "| | scenario | strategy | seed | calls | success | lost | p50 | p99 | retry × | recovery | digest |\n",
    );
    out.push_str("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
    for r in runs {
        let mark = if r.verdict == Verdict::Pass { "✅" } else { "❌" };
        let _ = writeln!(
            out,
            "| {mark} | {} | {} | {} | {} | {:.2} % | {} | {} | {} | {:.2} | {} | `{}` |",
            r.scenario,
            r.label(),
            r.seed,
            r.calls.total,
            r.calls.success_rate() * 100.0,
            r.calls.lost,
            ms(r.latency.p50),
            ms(r.latency.p99),
            r.retry_amplification,
            ms(r.recovery_ms),
            &r.digest[..r.digest.len().min(12)],
        );
    }
    let failed: Vec<&RunResult> = runs.iter().filter(|r| r.verdict == Verdict::Fail).collect();
    if !failed.is_empty() {
        out.push_str("\n### Failures\n");
        for r in failed {
            let _ = writeln!(out, "\n**{}** [{}] seed {}", r.scenario, r.label(), r.seed);
            for v in &r.violations {
                let _ = writeln!(out, "- violation: {v}");
            }
            for e in r.failed_expectations() {
                let _ = writeln!(out, "- expected `{}` {}, measured {}", e.name, e.expected, e.measured);
            }
            let _ = writeln!(out, "- reproduce: `{}`", r.reproduce());
        }
    }
    out
}

/// Each server's share of the answered calls, in percent: `search-0 34 % · search-1 33 % · …`.
pub fn load_share(run: &RunResult) -> String {
    let answered: u64 = run.servers.iter().map(|s| s.answered).sum();
    let share = |n: u64| if answered == 0 { 0.0 } else { n as f64 * 100.0 / answered as f64 };
    run.servers.iter().map(|s| format!("{} {:.0} %", s.name, share(s.answered))).collect::<Vec<_>>().join(" · ")
}

/// Strategies side by side, one table per scenario (in the order the runs come), after
/// `preamble` (say the machine and the seeds there).
pub fn comparison(title: &str, preamble: &str, runs: &[RunResult]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {title}\n\n{preamble}\n");
    let mut scenarios: Vec<&str> = Vec::new();
    for r in runs {
        if !scenarios.contains(&r.scenario.as_str()) {
            scenarios.push(&r.scenario);
        }
    }
    for scenario in scenarios {
        let _ = writeln!(out, "## {scenario}\n");
        out.push_str("| strategy | seed | success | p50 | p99 | p99.9 | retry × | recovery | load share | verdict |\n");
        out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---|---|\n");
        for r in runs.iter().filter(|r| r.scenario == scenario) {
            let _ = writeln!(
                out,
                "| {} | {} | {:.2} % | {} | {} | {} | {:.3} | {} | {} | {} |",
                r.label(),
                r.seed,
                r.calls.success_rate() * 100.0,
                ms(r.latency.p50),
                ms(r.latency.p99),
                ms(r.latency.p999),
                r.retry_amplification,
                ms(r.recovery_ms),
                load_share(r),
                if r.verdict == Verdict::Pass { "pass" } else { "fail" },
            );
        }
        out.push('\n');
    }
    out
}
