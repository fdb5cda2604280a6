//! `gauntlet report` and `gauntlet diff`: the HTML report in a real headless Chromium, shards
//! merged into the unsharded run's results, and regressions caught between two results
//! directories.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::support::{gauntlet, printed as text, root};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gauntlet-report-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch");
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Every file of a results directory but its manifest, by name.
fn files(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .expect("a results directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json") && p.file_name() != Some(OsStr::new("manifest.json")))
        .map(|p| {
            (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&p).expect("readable"))
        })
        .collect()
}

/// What the page says of one chart, measured by the browser.
#[derive(Debug, serde::Deserialize)]
struct Chart {
    chart: String,
    scenario: String,
    width: f64,
    height: f64,
    declared_width: f64,
    declared_height: f64,
    shapes: usize,
    texts: Vec<String>,
    fault_bands: usize,
}

const MEASURE: &str = r#"JSON.stringify(Array.from(document.querySelectorAll('figure.chart')).map(f => {
  const svg = f.querySelector('svg');
  const box = svg ? svg.getBoundingClientRect() : { width: 0, height: 0 };
  const all = (q) => svg ? Array.from(svg.querySelectorAll(q)) : [];
  return {
    chart: f.dataset.chart,
    scenario: (f.closest('[data-scenario]') || { dataset: { scenario: '' } }).dataset.scenario,
    width: box.width, height: box.height,
    declared_width: svg ? +svg.getAttribute('width') : 0,
    declared_height: svg ? +svg.getAttribute('height') : 0,
    shapes: all('polyline, polygon, path, circle, line').length + all('rect').length,
    texts: all('text').map(t => t.textContent.trim()),
    fault_bands: all('rect').filter(r => (r.getAttribute('fill') || '').toUpperCase() === '#C8C8C8'
      && r.getBoundingClientRect().width > 0).length,
  };
}))"#;

/// The Chromium `.ci/run` installs from the distribution's packages (or `GAUNTLET_CHROMIUM`).
fn chromium() -> PathBuf {
    let path = std::env::var_os("GAUNTLET_CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        path.exists(),
        "no Chromium at {}: .ci/run installs it (apt-get install chromium); set GAUNTLET_CHROMIUM to another",
        path.display()
    );
    path
}

#[test]
fn the_html_report_renders_every_chart_in_chromium_with_no_network_request() {
    use headless_chrome::protocol::cdp::{Network, Page};
    use headless_chrome::{Browser, LaunchOptions};

    let dir = scratch("html");
    let html = dir.join("report.html");
    let o = gauntlet(&[
        "suite",
        "scenarios/latency-spike.toml",
        "scenarios/steady-state.toml",
        "scenarios/crash-restart.toml",
        "--seeds",
        "2",
        "--html",
        s(&html),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));

    let flags: Vec<&OsStr> = [
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ]
    .iter()
    .map(OsStr::new)
    .collect();
    let options = LaunchOptions {
        path: Some(chromium()),
        headless: true,
        sandbox: false,
        window_size: Some((1200, 1600)),
        user_data_dir: Some(dir.join("profile")),
        args: flags,
        ..LaunchOptions::default()
    };
    let browser = Browser::new(options).expect("Chromium starts");
    let tab = browser.new_tab().expect("a tab");
    tab.call_method(Network::Enable {
        max_total_buffer_size: None,
        max_resource_buffer_size: None,
        max_post_data_size: None,
        report_direct_socket_traffic: None,
        enable_durable_messages: None,
    })
    .expect("the network domain");
    let requests: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = Arc::clone(&requests);
    tab.add_event_listener(Arc::new(move |event: &headless_chrome::protocol::cdp::types::Event| {
        if let headless_chrome::protocol::cdp::types::Event::NetworkRequestWillBeSent(e) = event {
            seen.lock().expect("requests").push(e.params.request.url.clone());
        }
    }))
    .expect("a listener");
    let url = format!("file://{}", html.canonicalize().expect("the report exists").display());
    tab.navigate_to(&url).expect("navigates").wait_until_navigated().expect("loads");

    let measured = tab.evaluate(MEASURE, false).expect("the page evaluates");
    let json = measured.value.and_then(|v| v.as_str().map(str::to_owned)).expect("a JSON string");
    let charts: Vec<Chart> = serde_json::from_str(&json).expect("the measurements parse");

    // Every chart drew: an SVG of the size it declares, with shapes, and units on its axes.
    assert!(charts.len() >= 3 * 3 + 4 * 2, "{} charts", charts.len());
    for c in &charts {
        assert!(c.declared_width > 100.0 && c.declared_height > 100.0, "{c:?}");
        assert_eq!((c.width, c.height), (c.declared_width, c.declared_height), "{} in {}", c.chart, c.scenario);
        assert!(c.shapes > 10, "{} in {}: {} shapes", c.chart, c.scenario, c.shapes);
        let axis = match c.chart.as_str() {
            "spread" => "p99 latency (ms)",
            _ => "simulated time (s)",
        };
        assert!(c.texts.iter().any(|t| t == axis), "{} in {} has no `{axis}` axis: {:?}", c.chart, c.scenario, c.texts);
        let y = match c.chart.as_str() {
            "latency" => Some("latency (ms)"),
            "throughput" => Some("calls/s"),
            "success" => Some("success rate (0-1)"),
            "share" => Some("share of answers (0-1)"),
            "timeline" => Some("server"),
            _ => None,
        };
        if let Some(y) = y {
            assert!(c.texts.iter().any(|t| t == y), "{} in {}: no `{y}` axis: {:?}", c.chart, c.scenario, c.texts);
        }
    }
    // The fault band is there where the scenario has a fault, and only there.
    for c in charts.iter().filter(|c| ["latency", "throughput", "success", "timeline"].contains(&c.chart.as_str())) {
        match c.scenario.as_str() {
            "latency-spike" | "crash-restart" => {
                assert!(c.fault_bands >= 1, "{} in {}: no fault band", c.chart, c.scenario);
            }
            "steady-state" => assert_eq!(c.fault_bands, 0, "{} in steady-state", c.chart),
            other => panic!("a chart outside the three scenarios: {other}"),
        }
    }
    for scenario in ["latency-spike", "steady-state", "crash-restart"] {
        let kinds: Vec<&str> = charts.iter().filter(|c| c.scenario == scenario).map(|c| c.chart.as_str()).collect();
        for kind in ["latency", "throughput", "success", "share", "timeline"] {
            assert!(kinds.contains(&kind), "{scenario} has no {kind} chart: {kinds:?}");
        }
    }
    // Nothing was fetched but the page itself.
    let requests = requests.lock().expect("requests").clone();
    assert!(requests.iter().all(|r| *r == url), "the page made requests: {requests:?}");

    // A screenshot, kept as a CI artifact (no pixel is compared).
    let png = tab.capture_screenshot(Page::CaptureScreenshotFormatOption::Png, None, None, true).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let artifact = root().join("target/report-screenshot.png");
    std::fs::write(&artifact, png).expect("the screenshot is written");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn three_shards_merge_into_the_unsharded_results_and_a_missing_shard_is_named() {
    let dir = scratch("merge");
    let files_args = ["scenarios/latency-spike.toml", "scenarios/steady-state.toml", "scenarios/brownout.toml"];
    let run = |extra: &[&str]| {
        let mut args = vec!["suite", "--seeds", "2"];
        args.extend(files_args);
        args.extend(extra);
        let o = gauntlet(&args);
        assert!(o.status.success(), "{}", text(&o.stderr));
    };
    let all = dir.join("all");
    run(&["--out", s(&all)]);
    let shards: Vec<PathBuf> = (1..=3).map(|k| dir.join(format!("shard-{k}"))).collect();
    for (k, d) in shards.iter().enumerate() {
        run(&["--shard", &format!("{}/3", k + 1), "--out", s(d)]);
    }
    let merged = dir.join("merged");
    let junit = dir.join("merged.xml");
    let o = gauntlet(&[
        "report",
        s(&shards[0]),
        s(&shards[1]),
        s(&shards[2]),
        "--out",
        s(&merged),
        "--junit",
        s(&junit),
        "--html",
        s(&dir.join("merged.html")),
    ]);
    assert!(o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));
    assert!(text(&o.stdout).contains("8 runs from 3 directories: 8 passed, 0 failed"), "{}", text(&o.stdout));
    // The same runs, byte for byte: the same digests and the same figures.
    assert_eq!(files(&merged), files(&all));
    let cases = std::fs::read_to_string(&junit).expect("one JUnit file").matches("<testcase").count();
    assert_eq!(cases, 8);

    // Without the second shard, its runs are named and the merge fails.
    let o = gauntlet(&["report", s(&shards[0]), s(&shards[2]), "--html", s(&dir.join("partial.html"))]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    let out = text(&o.stdout);
    let second = files(&shards[1]);
    assert!(!second.is_empty());
    let missing: Vec<&str> = out.lines().filter(|l| l.starts_with("missing: ")).collect();
    assert_eq!(missing.len(), second.len(), "{out}");
    // A shard given twice: each of its runs is a duplicate.
    let twice = dir.join("twice.html");
    let o = gauntlet(&["report", s(&shards[0]), s(&shards[0]), s(&shards[1]), s(&shards[2]), "--html", s(&twice)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stdout).lines().any(|l| l.starts_with("duplicate: ")), "{}", text(&o.stdout));
    let _ = std::fs::remove_dir_all(dir);
}

/// A copy of latency-spike with one variant, `policy`, whose balancer is `balancer`.
fn variant_file(dir: &Path, name: &str, balancer: &str) -> PathBuf {
    let source = std::fs::read_to_string(root().join("scenarios/latency-spike.toml")).expect("bundled");
    let body = source.split("[expect]").next().expect("a body").replace(
        "[matrix]\nbalancer = [\"p2c-peak-ewma\", \"round-robin\"]\n",
        &format!("[[variant]]\nname = \"policy\"\nbalancer = \"{balancer}\"\n"),
    );
    let path = dir.join(name);
    std::fs::write(&path, format!("{body}[expect]\nsuccess_rate = \">= 0.99\"\n")).expect("written");
    path
}

#[test]
fn diff_catches_a_worse_policy_with_exit_1_and_finds_no_change_between_equal_digests() {
    let dir = scratch("diff");
    let (good, bad) = (variant_file(&dir, "good.toml", "p2c-peak-ewma"), variant_file(&dir, "bad.toml", "round-robin"));
    let (base, head) = (dir.join("base"), dir.join("head"));
    for (file, out) in [(&good, &base), (&bad, &head)] {
        let o = gauntlet(&["run", s(file), "--seeds", "2", "--out", s(out)]);
        assert!(o.status.success(), "{}", text(&o.stdout));
    }
    let md = dir.join("diff.md");
    let o = gauntlet(&["diff", s(&base), s(&head), "--markdown", s(&md), "--html", s(&dir.join("diff.html"))]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    let out = text(&o.stdout);
    assert!(out.contains("2 runs: 0 with the same digest (no behaviour change), 0 changed, **2 regressed**"), "{out}");
    assert_eq!(std::fs::read_to_string(&md).expect("the Markdown file"), out);
    assert!(
        out.lines().filter(|l| l.starts_with("| latency-spike [policy] seed ")).all(|l| l.contains("**regressed**"))
    );

    // A threshold loose enough lets the same change pass.
    let o = gauntlet(&["diff", s(&base), s(&head), "--max-regression", "p50=1000%,p99=10000%,p999=10000%"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains("2 changed, **0 regressed**"), "{}", text(&o.stdout));

    // The same results on both sides: every digest equal, no behaviour change.
    let o = gauntlet(&["diff", s(&base), s(&base)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains("No behaviour change: every run has the same digest in both."));

    // Bad thresholds are bad input: exit 2, the file's line and column.
    let t = dir.join("thresholds.toml");
    std::fs::write(&t, "[max_regression]\np99 = \"ten percent\"\n").expect("written");
    let o = gauntlet(&["diff", s(&base), s(&head), "--thresholds", s(&t)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains(&format!("{}:2:7: p99: `ten percent` is not a duration", t.display())),
        "{}",
        text(&o.stderr)
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_results_file_that_is_not_results_json_is_bad_input_naming_its_line_and_column() {
    let dir = scratch("bad");
    std::fs::write(dir.join("x.json"), "{\n  \"scenario\": 3\n}\n").expect("written");
    let o = gauntlet(&["report", s(&dir), "--html", s(&dir.join("r.html"))]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stdout));
    let err = text(&o.stderr);
    assert!(
        err.contains(&format!("{}:2:15: invalid type: integer `3`, expected a string\n", dir.join("x.json").display())),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn results_with_values_no_run_can_have_are_drawn_at_bounds_never_a_panic() {
    let dir = scratch("hostile");
    let fixture = root().join("reports/tests/fixtures/head/fixture.policy.seed-3.json");
    let mut run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture).expect("a fixture")).unwrap();
    run["duration_ms"] = serde_json::json!(1e300);
    run["latency"]["p99"] = serde_json::json!(1e300);
    run["events"][0]["t_us"] = serde_json::json!(u64::MAX);
    for (i, b) in run["series"].as_array_mut().expect("a series").iter_mut().enumerate() {
        b["t_ms"] = serde_json::json!(if i % 2 == 0 { -1e300 } else { 1e300 });
        b["p99_ms"] = serde_json::json!(1e300);
        b["answered"] = serde_json::json!([u64::MAX, u64::MAX, 0, 1]);
        b["started"] = serde_json::json!(u64::MAX);
    }
    std::fs::write(dir.join("run.json"), run.to_string()).expect("written");
    let html = dir.join("r.html");
    let o = gauntlet(&["report", s(&dir), "--html", s(&html)]);
    let err = text(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(o.status.code(), Some(1), "the run failed (as its verdict says): {}{err}", text(&o.stdout));
    let page = std::fs::read_to_string(&html).expect("the report is written");
    assert_eq!(page.matches("<figure class=\"chart\"").count(), 5, "every chart drawn");
    let _ = std::fs::remove_dir_all(dir);
}
