//! The `gauntlet` binary, end to end: arguments in, output and exit code out.

use std::process::{Command, Output};

fn gauntlet(args: &[&str]) -> Output {
    Command::new(crate::support::GAUNTLET).args(args).output().expect("the gauntlet binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn strategies_lists_every_balancer() {
    let o = gauntlet(&["strategies"]);
    assert!(o.status.success());
    for name in ["round-robin", "weighted", "least-outstanding", "random", "p2c", "p2c-peak-ewma", "maglev"] {
        assert!(stdout(&o).lines().any(|l| l.starts_with(name)), "{name} missing");
    }
}

#[test]
fn pick_honours_weights_and_skips_servers_that_are_down() {
    let o = gauntlet(&["pick", "--strategy", "weighted", "--weights", "3,1,1", "--down", "2", "--picks", "4000"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows: Vec<Vec<String>> =
        stdout(&o).lines().skip(2).map(|l| l.split_whitespace().map(str::to_owned).collect()).collect();
    let picks: Vec<u64> = rows.iter().map(|r| r[4].parse().unwrap()).collect();
    assert_eq!(picks, [3000, 1000, 0]);
}

#[test]
fn the_same_seed_prints_the_same_output() {
    let args = ["pick", "--strategy", "p2c-peak-ewma", "-n", "7", "--seed", "99", "--picks", "5000"];
    assert_eq!(stdout(&gauntlet(&args)), stdout(&gauntlet(&args)));
}

#[test]
fn bad_input_exits_2_with_a_message_naming_the_problem() {
    for (args, needle) in [
        (&["pick", "--strategy", "fastest"][..], "unknown balancer `fastest`"),
        (&["pick", "--down", "5"][..], "server 5 does not exist"),
        (&["pick", "--weights", "1,0"][..], "--weights: 0"),
        (&["pick", "--panic-threshold", "1.5", "--priorities", "1,1,0"][..], "--panic-threshold"),
        (&["pick", "--picks", "banana"][..], "banana"),
    ] {
        let o = gauntlet(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn probe_never_prints_a_secret_from_env_or_headers() {
    const SECRET: &str = "tok-3f9a1c7e-never-print-me";
    let config = serde_json::json!({"mcpServers": {
        "ok": {"command": crate::support::TEST_SERVER, "env": {"API_TOKEN": "${GAUNTLET_TEST_SECRET}"}},
        "broken": {"command": "/nonexistent/${GAUNTLET_TEST_SECRET:-x}", "env": {"K": "${GAUNTLET_TEST_SECRET}"}},
        "web": {"type": "http", "url": "http://127.0.0.1:9/mcp", "headers": {"Authorization": "Bearer ${GAUNTLET_TEST_SECRET}"}},
        // A key in the URL: rmcp and the HTTP stack log the URL of a failed request.
        "keyed": {"type": "http", "url": "http://127.0.0.1:9/mcp?key=${GAUNTLET_TEST_SECRET}"}
    }, "gauntlet": {"connect_timeout": "2s"}});
    let path = std::env::temp_dir().join(format!("gauntlet-secret-{}.json", std::process::id()));
    std::fs::write(&path, config.to_string()).unwrap();
    let o = Command::new(crate::support::GAUNTLET)
        .args(["probe", "--config"])
        .arg(&path)
        .args(["--ready-timeout", "5s"])
        .env("GAUNTLET_TEST_SECRET", SECRET)
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let all = format!("{}{}", stdout(&o), String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(1), "servers are down, so the probe fails:\n{all}");
    assert!(all.contains("broken") && all.contains("web"), "the failing servers are named:\n{all}");
    assert!(!all.contains(SECRET), "a secret was printed:\n{all}");
    // The logs were written (trace level) and name what failed, scrubbed.
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.lines().count() > 3 && err.contains("TRACE"), "trace logs on standard error:\n{err}");
    assert!(err.contains("key=<redacted>"), "the keyed URL is logged, scrubbed:\n{err}");
}

#[test]
fn each_call_is_logged_as_a_json_span_with_its_id_tool_attempts_and_servers() {
    let config = serde_json::json!({"mcpServers": {
        "a": {"command": crate::support::TEST_SERVER, "args": ["--name", "a"], "group": "g"},
        "b": {"command": crate::support::TEST_SERVER, "args": ["--name", "b"], "group": "g"}
    }});
    let path = std::env::temp_dir().join(format!("gauntlet-logs-{}.json", std::process::id()));
    std::fs::write(&path, config.to_string()).unwrap();
    let o = Command::new(crate::support::GAUNTLET)
        .args(["--log-format", "json", "probe", "--config"])
        .arg(&path)
        .args(["--calls", "4", "--tool", "g__whoami"])
        .env("RUST_LOG", "gauntlet_client=debug")
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    let answered: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("each log line is a JSON object"))
        .filter(|v| v["fields"]["message"] == "answered")
        .collect();
    assert_eq!(answered.len(), 4, "{err}");
    let mut ids: Vec<u64> = answered.iter().map(|v| v["span"]["id"].as_u64().expect("a correlation id")).collect();
    ids.sort_unstable();
    assert_eq!(ids, [0, 1, 2, 3], "one id per call");
    for v in &answered {
        let span = &v["span"];
        assert_eq!((span["name"].as_str(), span["tool"].as_str()), (Some("call"), Some("g__whoami")), "{v}");
        assert_eq!(span["attempts"], 1, "{v}");
        let server = v["fields"]["server"].as_str().expect("the answering server");
        assert_eq!(span["servers"].as_str(), Some(format!("[\"{server}\"]").as_str()), "{v}");
    }
}

/// Writes `config` to a scratch file and runs `gauntlet probe --config FILE EXTRA…`.
fn probe(name: &str, config: &serde_json::Value, extra: &[&str]) -> Output {
    let path = std::env::temp_dir().join(format!("gauntlet-probe-{name}-{}.json", std::process::id()));
    std::fs::write(&path, config.to_string()).unwrap();
    let o = Command::new(crate::support::GAUNTLET).args(["probe", "--config"]).arg(&path).args(extra).output().unwrap();
    let _ = std::fs::remove_file(&path);
    o
}

#[test]
fn tool_errors_are_counted_apart_from_successes_and_fail_the_probe() {
    let config =
        serde_json::json!({"mcpServers": {"s": {"command": crate::support::TEST_SERVER, "args": ["--name", "s"]}}});
    let o = probe("tool-errors", &config, &["--calls", "3", "--tool", "s__fail"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("overall: 0/3 ok (0.00%), 3 tool errors, 0 failed in "), "{out}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("3 of 3 calls answered with a tool error"));
    let o = probe("ok", &config, &["--calls", "3", "--tool", "s__whoami"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("overall: 3/3 ok (100.00%), 0 tool errors, 0 failed in "), "{}", stdout(&o));
}

#[test]
fn timeout_deadline_and_progress_flags_do_what_they_say() {
    let config =
        serde_json::json!({"mcpServers": {"s": {"command": crate::support::TEST_SERVER, "args": ["--name", "s"]}}});
    // Progress notifications of a long call are printed under the call's token.
    let o =
        probe("progress", &config, &["--calls", "2", "--tool", "s__slow", "--args", r#"{"ms": 100}"#, "--progress"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    for call in ["call-0", "call-1"] {
        assert!(out.lines().any(|l| l.trim_start() == format!("progress {call}: 0/1")), "{out}");
    }
    // Without --progress none are.
    let o = probe("quiet", &config, &["--calls", "1", "--tool", "s__slow", "--args", r#"{"ms": 100}"#]);
    assert!(!stdout(&o).contains("progress call-"), "{}", stdout(&o));
    // A 5 s tool under --timeout 200ms fails (with the config's 30 s it would answer).
    let slow = ["--calls", "2", "--tool", "s__slow", "--args", r#"{"ms": 5000}"#];
    let o = probe("timeout", &config, &[&slow[..], &["--timeout", "200ms"]].concat());
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("overall: 0/2 ok"), "{}", stdout(&o));
    // So does it under --deadline, whatever the attempt's own timeout.
    let o = probe("deadline", &config, &[&slow[..], &["--deadline", "300ms"]].concat());
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("overall: 0/2 ok"), "{}", stdout(&o));
    // Values outside their range are bad input.
    for bad in [["--timeout", "soon"], ["--deadline", "100d"]] {
        let o = probe("bad-flag", &config, &[&slow[..], &bad[..]].concat());
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(String::from_utf8_lossy(&o.stderr).contains(bad[0]), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

#[test]
fn a_tool_missing_because_its_servers_are_down_is_a_failure_not_bad_input() {
    let up =
        serde_json::json!({"mcpServers": {"s": {"command": crate::support::TEST_SERVER, "args": ["--name", "s"]}}});
    let o = probe("typo", &up, &["--calls", "1", "--tool", "s__nope"]);
    assert_eq!(o.status.code(), Some(2), "every server is up: the name is wrong");
    let down = serde_json::json!({"mcpServers": {"s": {"command": "/nonexistent/server"}}});
    let o = probe("down", &down, &["--calls", "1", "--tool", "s__whoami", "--ready-timeout", "2s"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("1 server(s) that might offer it are not connected"));
}

#[test]
fn an_http_replica_that_dies_mid_run_shows_in_the_table_after_the_run_and_fails_the_probe() {
    let (a, b, c) = (
        crate::support::NetServer::start("a", &[]),
        crate::support::NetServer::start("b", &["--exit-after", "5"]),
        crate::support::NetServer::start("c", &[]),
    );
    let entries: serde_json::Map<String, serde_json::Value> =
        [a.entry("a", "g"), b.entry("b", "g"), c.entry("c", "g")].into_iter().collect();
    let config =
        serde_json::json!({"mcpServers": entries, "gauntlet": {"balancer": "round-robin", "call_timeout": "5s"}});
    // Slow enough that every replica is serving long before the run ends (calls start once one
    // replica is ready).
    let o = probe(
        "dies",
        &config,
        &["--calls", "60", "--concurrency", "2", "--tool", "g__slow", "--args", r#"{"ms": 20}"#],
    );
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let (before, after) = out.split_once("servers after the run:").expect("the table after the run");
    // The link column of b's row (name, via, link, ...).
    let link = |table: &str| {
        let row = table.lines().find(|l| l.trim_start().starts_with("b ")).expect("b's row");
        row.split_whitespace().nth(2).expect("a link column").to_owned()
    };
    assert!(["ready", "connecting"].contains(&link(before).as_str()), "{out}");
    assert_eq!(link(after), "down", "{out}");
    assert!(out.contains("overall: 60/60 ok"), "safe calls fail over: {out}");
    // The timeline says when b was lost and where its calls went.
    let timeline = out.split_once("timeline (since the calls began):").expect("a timeline").1;
    let lost = timeline.lines().find(|l| l.contains(" b ") && l.ends_with("lost its session"));
    assert!(lost.is_some_and(|l| l.trim_start().starts_with('+')), "{out}");
    assert!(timeline.lines().any(|l| l.trim_start().starts_with("failovers b -> ")), "{out}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("not connected after the run: b"));
}

#[test]
fn the_probe_serves_prometheus_metrics_while_it_runs() {
    use std::io::{BufRead, BufReader, Read, Write};
    let config = serde_json::json!({"mcpServers": {
        "a": {"command": crate::support::TEST_SERVER, "args": ["--name", "a"], "group": "g"},
        "b": {"command": crate::support::TEST_SERVER, "args": ["--name", "b"], "group": "g"}
    }});
    let path = std::env::temp_dir().join(format!("gauntlet-metrics-{}.json", std::process::id()));
    std::fs::write(&path, config.to_string()).unwrap();
    let mut child = Command::new(crate::support::GAUNTLET)
        .args(["probe", "--config"])
        .arg(&path)
        .args(["--metrics-addr", "127.0.0.1:0", "--calls", "100", "--concurrency", "1", "--tool", "g__slow"])
        .args(["--args", r#"{"ms": 30}"#])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("metrics: ").map(str::to_owned))
        .expect("the probe prints where it serves metrics");
    let address = url.strip_prefix("http://").and_then(|u| u.strip_suffix("/metrics")).expect("an http URL");
    assert!(address.starts_with("127.0.0.1:"), "loopback only: {address}");
    // Wait for the calls to start, then scrape while they run.
    let _ = lines.by_ref().map_while(Result::ok).find(|l| l.starts_with("calls: "));
    let mut stream = std::net::TcpStream::connect(address).expect("the endpoint listens");
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {address}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let body = response.split_once("\r\n\r\n").expect("a body").1;
    let scrape = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).expect("valid exposition");
    let value = |name: &str| scrape.samples.iter().find(|s| s.metric == name).map(|s| s.value.clone());
    assert!(matches!(value("gauntlet_servers"), Some(prometheus_parse::Value::Gauge(v)) if v == 2.0));
    // Calls start once one replica is ready: the other may still be connecting. The gauges agree.
    let up: Vec<f64> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "gauntlet_server_up")
        .map(|s| match s.value {
            prometheus_parse::Value::Gauge(v) => v,
            ref other => panic!("gauntlet_server_up is a gauge: {other:?}"),
        })
        .collect();
    assert_eq!(up.len(), 2);
    let ready = up.iter().sum::<f64>();
    assert!(ready >= 1.0, "the calls run on a ready replica");
    assert!(matches!(value("gauntlet_servers_ready"), Some(prometheus_parse::Value::Gauge(v)) if v == ready));
    assert!(scrape.samples.iter().any(|s| s.metric == "gauntlet_attempts_total"));
    let _ = lines.count();
    assert!(child.wait().unwrap().success());
    let _ = std::fs::remove_file(&path);
}

#[test]
fn calls_to_a_named_tool_start_without_waiting_for_a_hung_handshake() {
    let config = serde_json::json!({"mcpServers": {
        "a": {"command": crate::support::TEST_SERVER, "args": ["--name", "a"], "group": "g"},
        // A process that never speaks MCP: its handshake hangs until the connect timeout.
        "hung": {"command": "sleep", "args": ["30"], "group": "g"}
    }, "gauntlet": {"connect_timeout": "20s"}});
    let o = probe("hung", &config, &["--calls", "5", "--tool", "g__whoami", "--ready-timeout", "30s"]);
    let out = stdout(&o);
    let (before, after) = out.split_once("servers after the run:").expect("both tables");
    let link = |table: &str| {
        let row = table.lines().find(|l| l.trim_start().starts_with("hung ")).expect("hung's row");
        row.split_whitespace().nth(2).expect("a link column").to_owned()
    };
    // Still connecting when the calls began: they did not wait for its 20 s handshake.
    assert_eq!(link(before), "connecting", "{out}");
    assert_eq!(link(after), "connecting", "{out}");
    assert!(out.contains("overall: 5/5 ok"), "{out}");
    assert_eq!(o.status.code(), Some(0), "a server still in its handshake is shown, not failed: {out}");
}

/// Processes whose command line holds `marker`, from /proc.
fn processes_with(marker: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(Result::ok)
        .filter_map(|e| {
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            cmdline.contains(marker).then(|| format!("{}: {cmdline}", e.file_name().to_string_lossy()))
        })
        .collect()
}

#[test]
fn sigint_stops_new_calls_prints_the_summary_and_leaves_no_server_behind() {
    use std::io::{BufRead, BufReader};
    let marker = format!("srv-sigint-{}", std::process::id());
    let config = serde_json::json!({"mcpServers": {
        "a": {"command": crate::support::TEST_SERVER, "args": ["--name", format!("{marker}-a")], "group": "g"},
        "b": {"command": crate::support::TEST_SERVER, "args": ["--name", format!("{marker}-b")], "group": "g"}
    }});
    let path = std::env::temp_dir().join(format!("gauntlet-signal-{}.json", std::process::id()));
    std::fs::write(&path, config.to_string()).unwrap();
    let mut child = Command::new(crate::support::GAUNTLET)
        .args(["probe", "--config"])
        .arg(&path)
        .args(["--calls", "10000", "--concurrency", "2", "--tool", "g__slow", "--args", r#"{"ms": 100}"#])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines().map_while(Result::ok);
    let _ = lines.by_ref().find(|l| l.starts_with("calls: ")).expect("the calls start");
    assert_eq!(processes_with(&marker).len(), 2, "both servers run: {:?}", processes_with(&marker));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let kill = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill runs");
    assert!(kill.success());
    let rest: Vec<String> = lines.collect();
    let status = child.wait().unwrap();
    let out = rest.join("\n");
    assert_eq!(status.code(), Some(1), "{out}");
    assert!(out.contains("interrupted: no new calls"), "{out}");
    assert!(out.contains("servers after the run:"), "the summary is printed: {out}");
    let overall = out.lines().find(|l| l.starts_with("overall: ")).expect("an overall line");
    let done: u32 = overall["overall: ".len()..].split('/').next().and_then(|n| n.parse().ok()).expect("a count");
    assert!((1..10_000).contains(&done), "some calls ran, not all: {overall}");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("interrupted after"), "{err}");
    // The servers are gone with the probe.
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(processes_with(&marker), Vec::<String>::new(), "no server process is left");
    let _ = std::fs::remove_file(&path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_cut_off_by_sigint_are_cancelled_on_the_server_before_the_probe_exits() {
    use std::io::{BufRead, BufReader};
    let server = crate::support::NetServer::start("s", &[]);
    let entries: serde_json::Map<String, serde_json::Value> = [server.entry("s", "g")].into_iter().collect();
    let path = std::env::temp_dir().join(format!("gauntlet-signal-http-{}.json", std::process::id()));
    std::fs::write(&path, serde_json::json!({"mcpServers": entries}).to_string()).unwrap();
    let mut child = Command::new(crate::support::GAUNTLET)
        .args(["probe", "--config"])
        .arg(&path)
        .args(["--calls", "100", "--concurrency", "3", "--tool", "g__slow", "--args", r#"{"ms": 60000}"#])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines().map_while(Result::ok);
    let _ = lines.by_ref().find(|l| l.starts_with("calls: ")).expect("the calls start");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill runs").success());
    let _rest: Vec<String> = lines.collect();
    assert_eq!(child.wait().unwrap().code(), Some(1));
    let _ = std::fs::remove_file(&path);
    // The three calls cut off after the grace period were cancelled on the server, whose
    // process outlives the probe: a client of ours asks it.
    let client = gauntlet_client::MultiServerClient::start(crate::support::config(
        vec![server.entry("s", "g")],
        &serde_json::json!({}),
    ));
    client.wait_ready(std::time::Duration::from_secs(20)).await;
    let r = client.call_tool("g__stats", crate::support::args(serde_json::json!({}))).await.expect("stats");
    let v: serde_json::Value = serde_json::from_str(&crate::support::text(&r.result)).expect("stats are JSON");
    assert_eq!(v["cancelled"].as_u64(), Some(3));
}
