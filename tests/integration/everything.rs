//! A real MCP server nobody here wrote: the reference `@modelcontextprotocol/server-everything`,
//! installed from the npm registry, three instances over stdio through `gauntlet probe`.
//!
//! `.ci/run` installs it into `target/npm`; when it is missing (a fresh checkout running
//! `cargo test` directly) this test installs it the same way. If it cannot be installed, the
//! test fails: it is never skipped.

use std::path::PathBuf;
use std::process::Command;

use serde_json::json;

use crate::support::GAUNTLET;

/// The version the tests pin.
const EVERYTHING: &str = "@modelcontextprotocol/server-everything@2026.8.31";

fn installed() -> PathBuf {
    crate::support::npm_package(EVERYTHING, "@modelcontextprotocol/server-everything/dist/index.js")
}

/// Runs `gauntlet probe` on a config file written from `config`, with `args` after it.
fn probe(config: &serde_json::Value, args: &[&str]) -> std::process::Output {
    let path = std::env::temp_dir().join(format!("gauntlet-everything-{}-{}.json", std::process::id(), args.len()));
    std::fs::write(&path, config.to_string()).expect("write config");
    let out = Command::new(GAUNTLET).args(["probe", "--config"]).arg(&path).args(args).output().expect("gauntlet runs");
    let _ = std::fs::remove_file(&path);
    out
}

#[test]
fn three_instances_of_the_reference_everything_server_are_namespaced_and_called_through_probe() {
    let entry = installed();
    let mut servers = serde_json::Map::new();
    for name in ["ev1", "ev2", "ev3"] {
        servers.insert(name.to_owned(), json!({"command": "node", "args": [entry, "stdio"]}));
    }
    let config = json!({"mcpServers": servers, "gauntlet": {"namespacing": "on-collision"}});

    // Without calls the probe waits for every server's handshake, so the catalog is whole: the
    // three servers offer the same tool names, each is prefixed and none shadows another.
    let out = probe(&config, &["--calls", "0"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "probe failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for name in ["ev1__echo", "ev2__echo", "ev3__echo"] {
        assert!(stdout.lines().any(|l| l.trim_start().starts_with(name)), "{name} missing:\n{stdout}");
    }
    assert!(!stdout.lines().any(|l| l.trim_start().starts_with("echo ")), "a bare name would shadow:\n{stdout}");

    // With a named tool the calls start once its server is ready, whoever else is still starting.
    let out = probe(
        &config,
        &["--calls", "30", "--concurrency", "3", "--tool", "ev2__echo", "--args", r#"{"message":"hi"}"#],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "probe failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("overall: 30/30 ok"), "{stdout}");
}

/// The pid of the process whose environment holds `marker`.
fn pid_with_env(marker: &str) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.filter_map(Result::ok).find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let environ = std::fs::read(e.path().join("environ")).ok()?;
        String::from_utf8_lossy(&environ).split('\0').any(|kv| kv == marker).then_some(pid)
    })
}

#[test]
fn a_replica_killed_mid_run_shows_in_the_timeline_and_the_table_and_safe_calls_lose_nothing() {
    use std::io::{BufRead, BufReader};
    let entry = installed();
    let mark = |name: &str| format!("GAUNTLET_TEST_MARK=kill-{}-{name}", std::process::id());
    let mut servers = serde_json::Map::new();
    for name in ["ev1", "ev2", "ev3"] {
        let value = mark(name).split_once('=').map(|(_, v)| v.to_owned()).expect("a marker");
        servers.insert(
            name.to_owned(),
            json!({"command": "node", "args": [entry, "stdio"], "group": "ev", "trusted": true,
                   "env": {"GAUNTLET_TEST_MARK": value}}),
        );
    }
    let config = json!({"mcpServers": servers, "gauntlet": {"balancer": "round-robin"}});
    let path = std::env::temp_dir().join(format!("gauntlet-everything-kill-{}.json", std::process::id()));
    std::fs::write(&path, config.to_string()).expect("write config");
    let mut child = Command::new(GAUNTLET)
        .args(["probe", "--config"])
        .arg(&path)
        .args(["--calls", "20000", "--concurrency", "4", "--tool", "ev__echo", "--args", r#"{"message":"hi"}"#])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("gauntlet runs");
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines().map_while(Result::ok);
    let _ = lines.by_ref().find(|l| l.starts_with("calls: ")).expect("the calls start");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let victim = pid_with_env(&mark("ev2")).expect("ev2's node process");
    assert!(Command::new("kill").args(["-9", &victim.to_string()]).status().expect("kill runs").success());
    let out: Vec<String> = lines.collect();
    let status = child.wait().expect("the probe ends");
    let _ = std::fs::remove_file(&path);
    let out = out.join("\n");
    // Every call was answered: the calls in flight on ev2 were replayed on the others.
    assert!(out.contains("overall: 20000/20000 ok"), "the run ended before the kill, or calls were lost:\n{out}");
    let timeline = out.split_once("timeline (since the calls began):").expect("a timeline").1;
    assert!(timeline.lines().any(|l| l.contains(" ev2 ") && l.ends_with("lost its session")), "{out}");
    // After the run ev2 is down, or back with a second connection; the exit code says which.
    let after = out.split_once("servers after the run:").expect("the table after the run").1;
    let row: Vec<&str> =
        after.lines().find(|l| l.trim_start().starts_with("ev2 ")).expect("ev2's row").split_whitespace().collect();
    let (link, connects) = (row[2], row[6].parse::<u32>().expect("connects"));
    match link {
        "ready" => {
            assert!(connects >= 2, "{out}");
            assert_eq!(status.code(), Some(0), "{out}");
        }
        "down" | "connecting" => assert_eq!(status.code(), Some(if link == "down" { 1 } else { 0 }), "{out}"),
        other => panic!("ev2's link is {other}:\n{out}"),
    }
}
