//! Helpers: the binaries under test, configs, and test servers on loopback.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use gauntlet_client::config::Config;
use serde_json::{Value, json};

pub(crate) const GAUNTLET: &str = env!("CARGO_BIN_EXE_gauntlet");

/// The repository's root, where the CLI tests run.
pub(crate) fn root() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `gauntlet ARGS…`, run from the repository's root.
pub(crate) fn gauntlet(args: &[&str]) -> std::process::Output {
    Command::new(GAUNTLET).args(args).current_dir(root()).output().expect("the gauntlet binary runs")
}

/// Bytes a process printed, as text.
pub(crate) fn printed(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
pub(crate) const TEST_SERVER: &str = env!("CARGO_BIN_EXE_gauntlet-test-server");

/// A stdio server entry for the test server.
pub(crate) fn stdio(name: &str, group: &str, args: &[&str]) -> (String, Value) {
    let mut all = vec!["--name", name];
    all.extend_from_slice(args);
    (name.to_owned(), json!({"command": TEST_SERVER, "args": all, "group": group, "trusted": true}))
}

/// A config from server entries and `gauntlet` keys.
pub(crate) fn config(servers: Vec<(String, Value)>, policy: &Value) -> Config {
    let servers: serde_json::Map<String, Value> = servers.into_iter().collect();
    let text = json!({"mcpServers": servers, "gauntlet": policy}).to_string();
    Config::parse(&text, &|_| None).expect("test config is valid")
}

/// A test server serving Streamable HTTP (or raw TCP) on a loopback port; killed when dropped.
pub(crate) struct NetServer {
    child: Child,
    pub(crate) url: String,
}

impl NetServer {
    pub(crate) fn start(name: &str, args: &[&str]) -> NetServer {
        NetServer::listen(name, "--http", args)
    }

    /// Serves newline-delimited JSON-RPC over TCP; `url` is then `tcp host:port`.
    pub(crate) fn start_tcp(name: &str, args: &[&str]) -> NetServer {
        NetServer::listen(name, "--tcp", args)
    }

    fn listen(name: &str, flag: &str, args: &[&str]) -> NetServer {
        let mut child = Command::new(TEST_SERVER)
            .args(["--name", name, flag, "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the test server starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("it announces its address");
        let url = line.trim().strip_prefix("listening ").expect("an announcement").to_owned();
        assert!(
            ["http://127.0.0.1:", "https://127.0.0.1:", "tcp 127.0.0.1:"].iter().any(|p| url.starts_with(p)),
            "loopback only: {url}"
        );
        NetServer { child, url }
    }

    pub(crate) fn entry(&self, name: &str, group: &str) -> (String, Value) {
        match self.url.strip_prefix("tcp ") {
            Some(address) => {
                (name.to_owned(), json!({"type": "tcp", "address": address, "group": group, "trusted": true}))
            }
            None => (name.to_owned(), json!({"type": "http", "url": self.url, "group": group, "trusted": true})),
        }
    }
}

impl Drop for NetServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// JSON object arguments.
pub(crate) fn args(value: Value) -> serde_json::Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("arguments must be an object, got {other}"),
    }
}

/// The text of a tool result's first content block.
pub(crate) fn text(result: &rmcp::model::CallToolResult) -> String {
    let v = serde_json::to_value(result).expect("results serialise");
    v["content"][0]["text"].as_str().unwrap_or_default().to_owned()
}

/// Generous bound for "this must not hang" on a busy 2-core machine.
pub(crate) const NO_HANG: Duration = Duration::from_secs(30);

/// The entry file `entry` (under `node_modules`) of the npm package `spec` (`name@version`),
/// installed into `target/npm` (where `.ci/run` installs it) if it is not there yet. A package
/// that cannot be installed fails the test: it is never skipped.
pub(crate) fn npm_package(spec: &str, entry: &str) -> std::path::PathBuf {
    let prefix = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/npm");
    let path = prefix.join("node_modules").join(entry);
    if !path.exists() {
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&prefix)
            .arg(spec)
            .status()
            .expect("npm must be installed to run this test (see .ci/run)");
        assert!(status.success(), "npm could not install {spec}");
    }
    assert!(path.exists(), "{} is missing after npm install", path.display());
    path
}
