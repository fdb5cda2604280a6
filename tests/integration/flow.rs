//! `gauntlet flow run` on the reference npm servers: `server-memory` (a knowledge graph kept in
//! a file, so the test reads what the workflow stored) and `server-everything`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{GAUNTLET, npm_package, printed};

const MEMORY: &str = "@modelcontextprotocol/server-memory@2026.8.31";
const EVERYTHING: &str = "@modelcontextprotocol/server-everything@2026.8.31";

/// A scratch directory with a config naming both servers, the memory kept in `memory.jsonl`.
struct Fixture {
    dir: PathBuf,
}

impl Fixture {
    fn new(name: &str, policy: &Value) -> Fixture {
        let memory = npm_package(MEMORY, "@modelcontextprotocol/server-memory/dist/index.js");
        let everything = npm_package(EVERYTHING, "@modelcontextprotocol/server-everything/dist/index.js");
        let dir = std::env::temp_dir().join(format!("gauntlet-flow-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let config = json!({
            "mcpServers": {
                "memory": {"command": "node", "args": [memory], "env": {"MEMORY_FILE_PATH": dir.join("memory.jsonl")}},
                "everything": {"command": "node", "args": [everything, "stdio"]},
            },
            "gauntlet": policy,
        });
        std::fs::write(dir.join("servers.json"), config.to_string()).expect("config");
        Fixture { dir }
    }

    fn flow(&self, text: &str) -> PathBuf {
        let path = self.dir.join("flow.toml");
        std::fs::write(&path, text).expect("flow file");
        path
    }

    fn command(&self, flow: &Path, extra: &[&str]) -> Command {
        let mut c = Command::new(GAUNTLET);
        c.args(["flow", "run"]).arg(flow).arg("--config").arg(self.dir.join("servers.json")).args(extra);
        c
    }

    fn run(&self, flow: &Path, extra: &[&str]) -> Output {
        self.command(flow, extra).output().expect("gauntlet runs")
    }

    /// The entities the memory server holds, by name, with their observations.
    fn entities(&self) -> Vec<(String, Vec<String>)> {
        let text = std::fs::read_to_string(self.dir.join("memory.jsonl")).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["type"] == "entity")
            .map(|v| {
                let observations = v["observations"].as_array().into_iter().flatten();
                (
                    v["name"].as_str().unwrap_or_default().to_owned(),
                    observations.filter_map(|o| o.as_str().map(str::to_owned)).collect(),
                )
            })
            .collect()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn flow_run_stores_fans_out_and_notes_across_the_memory_and_everything_servers() {
    let f = Fixture::new("pipeline", &json!({}));
    let example = crate::support::root().join("examples/flows/remember.toml");
    let out = f.run(&example, &["--journal", f.dir.join("j").to_str().expect("utf-8")]);
    let stdout = printed(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", printed(&out.stderr));
    assert!(stdout.contains("\"sum\": \"The sum of 2 and 3 is 5.\""), "{stdout}");
    let expected =
        vec!["met through gauntlet".to_owned(), "Echo: hello ada".to_owned(), "The sum of 2 and 3 is 5.".to_owned()];
    assert_eq!(f.entities(), vec![("ada".to_owned(), expected)]);
}

#[test]
fn a_step_failing_after_a_store_compensates_by_deleting_what_was_stored() {
    let f = Fixture::new("compensate", &json!({}));
    let flow = f.flow(
        r#"
name = "store-then-fail"
[[step]]
name = "store"
tool = "memory__create_entities"
args = { entities = [{ name = "grace", entityType = "person", observations = ["stored"] }] }
compensate = { tool = "memory__delete_entities", args = { entityNames = ["grace"] } }
[[step]]
name = "sum"
tool = "everything__get-sum"
args = { a = "not a number", b = 1 }
after = ["store"]
"#,
    );
    let out = f.run(&flow, &[]);
    let stdout = printed(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{}", printed(&out.stderr));
    assert!(stdout.contains("failed and compensated"), "{stdout}");
    assert!(stdout.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["store", "compensated"]), "{stdout}");
    assert_eq!(f.entities(), Vec::new(), "the compensation deleted the entity");
}

#[test]
fn resume_finishes_a_killed_run_without_storing_again() {
    // The long step is vouched idempotent, so a resume may send it again.
    let f =
        Fixture::new("resume", &json!({"tools": {"everything__trigger-long-running-operation": {"idempotent": true}}}));
    let flow = f.flow(
        r#"
name = "store-wait-note"
[[step]]
name = "store"
tool = "memory__create_entities"
args = { entities = [{ name = "alan", entityType = "person", observations = ["stored once"] }] }
[[step]]
name = "wait"
tool = "everything__trigger-long-running-operation"
args = { duration = 3, steps = 3 }
after = ["store"]
[[step]]
name = "note"
tool = "memory__add_observations"
args = { observations = [{ entityName = "alan", contents = ["noted after the wait"] }] }
after = ["wait"]
"#,
    );
    let journal = f.dir.join("run.journal");
    let journal_arg = journal.to_str().expect("utf-8");
    let mut child = f
        .command(&flow, &["--journal", journal_arg])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawns");
    // Killed while `wait` runs: `store` answered (its entity is in the memory file) well before.
    let began = Instant::now();
    while f.entities().is_empty() {
        assert!(began.elapsed() < Duration::from_secs(60), "the store never happened");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1_000));
    child.kill().expect("kill");
    let _ = child.wait();
    assert_eq!(f.entities(), vec![("alan".to_owned(), vec!["stored once".to_owned()])], "killed before the note");

    let out = f.run(&flow, &["--resume", journal_arg]);
    let stdout = printed(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", printed(&out.stderr));
    assert!(stdout.contains("completed (resumed)"), "{stdout}");
    // `store` ran once: a second `create_entities` of the same name would be skipped by the
    // server, so the journal is what is checked — the resumed run never sent it.
    let stderr = printed(&out.stderr);
    assert!(!stderr.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["store", "started"]), "{stderr}");
    assert_eq!(
        f.entities(),
        vec![("alan".to_owned(), vec!["stored once".to_owned(), "noted after the wait".to_owned()])]
    );
    // Resuming again finds nothing unfinished.
    let again = f.run(&flow, &["--resume", journal_arg]);
    assert!(again.status.success());
    assert!(printed(&again.stdout).contains("nothing to resume"));
}
