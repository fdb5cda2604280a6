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
    let prefix = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/npm");
    let entry = prefix.join("node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    if !entry.exists() {
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&prefix)
            .arg(EVERYTHING)
            .status()
            .expect("npm must be installed to run this test (see .ci/run)");
        assert!(status.success(), "npm could not install {EVERYTHING}");
    }
    assert!(entry.exists(), "{} is missing after npm install", entry.display());
    entry
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
