//! Raw command-line arguments, as clap parses them. Validation happens in each command's
//! `TryFrom`, once, at the edge.

use clap::{Parser, Subcommand};

/// Build and prove resilient multi-server MCP clients.
#[derive(Debug, Parser)]
#[command(name = "gauntlet", version, about, propagate_version = true)]
pub(crate) struct Args {
    #[command(subcommand)]
    pub(crate) command: Command,
    /// How logs (enabled with `RUST_LOG`, e.g. `RUST_LOG=gauntlet_client=debug`) are written to
    /// standard error: `text` or `json` (one object per line).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
}

/// The format of log lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// List the balancing strategies: the built-in ones and any this binary registered.
    Strategies,
    /// Show how a strategy spreads picks over a fleet you describe.
    Pick(PickArgs),
    /// Connect to real MCP servers: show the federated catalog and health, drive calls with a
    /// chosen policy, print latency percentiles.
    Probe(ProbeArgs),
    /// Run every scenario of a suite (default: `scenarios/`, else the bundled suite).
    Suite(SuiteArgs),
    /// Run one scenario file.
    Run(RunArgs),
    /// Run one scenario under several strategies, side by side.
    Compare(CompareArgs),
    /// Check scenario files without running them.
    Validate(ValidateArgs),
    /// Merge results directories (e.g. every shard of a CI matrix) into one HTML report, and
    /// optionally one results directory and one JUnit file.
    Report(ReportArgs),
    /// Compare two results directories run by run; exit 1 on a regression.
    Diff(DiffArgs),
    /// Run an envelope (a scenario with an `[explore]` table) over generated fault schedules;
    /// shrink each failure found to a small scenario file. Exit 1 when something was found.
    Explore(ExploreArgs),
    /// Workflows across real servers: `flow run FLOW.toml --config servers.json`.
    #[command(subcommand)]
    Flow(FlowCommand),
}

impl Command {
    /// Whether the command runs the simulator.
    pub(crate) fn simulates(&self) -> bool {
        matches!(self, Command::Suite(_) | Command::Run(_) | Command::Compare(_) | Command::Explore(_))
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum FlowCommand {
    /// Run a workflow file against the servers of a config file, journaling its progress;
    /// with `--resume JOURNAL`, continue the runs that journal left unfinished. Exit 0 when
    /// every run completed, 1 when one was compensated, parked with a step of unknown outcome
    /// or could not compensate, 2 on bad input.
    Run(FlowRunArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct FlowRunArgs {
    /// The workflow file (see docs/workflows.md).
    pub(crate) file: std::path::PathBuf,
    /// The servers: an `mcpServers` JSON file (Claude Desktop, Cursor or VS Code style).
    #[arg(long)]
    pub(crate) config: std::path::PathBuf,
    /// Where to journal the run (default: the workflow file with the extension `.journal`).
    #[arg(long, conflicts_with = "resume")]
    pub(crate) journal: Option<std::path::PathBuf>,
    /// Continue every unfinished run in this journal instead of starting a new one.
    #[arg(long)]
    pub(crate) resume: Option<std::path::PathBuf>,
    /// An input, `KEY=VALUE` (VALUE is JSON, or else a string), over the file's `[inputs]`.
    #[arg(long = "input", value_name = "KEY=VALUE")]
    pub(crate) inputs: Vec<String>,
    /// How long to wait for the servers to connect before the first step (default 30s).
    #[arg(long, default_value = "30s")]
    pub(crate) ready_timeout: String,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ExploreArgs {
    /// The envelope.
    #[arg(required_unless_present = "merge")]
    pub(crate) file: Option<std::path::PathBuf>,
    /// How many runs (run indices 0..N; default 200, or as many as `--time` allows).
    #[arg(long)]
    pub(crate) runs: Option<u64>,
    /// Explore for this long of wall time (e.g. `10m`), batch by batch; prints the `--runs`
    /// that replays what it made.
    #[arg(long)]
    pub(crate) time: Option<String>,
    /// Draw every run's faults without steering toward (fault kind x client state) pairs not
    /// reached yet.
    #[arg(long)]
    pub(crate) unguided: bool,
    /// Merge the `exploration.json` of these `--out` directories (e.g. every shard's) into one
    /// summary, findings by signature, instead of exploring.
    #[arg(long, num_args = 1.., conflicts_with = "file")]
    pub(crate) merge: Vec<std::path::PathBuf>,
    /// The generator's seed (default: the envelope's).
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// Runs at once (default: the machine's cores). The findings do not depend on it.
    #[arg(long)]
    pub(crate) jobs: Option<usize>,
    /// Explore only the run indices i with i % N == K - 1 (a CI matrix's share), as `K/N`.
    #[arg(long)]
    pub(crate) shard: Option<String>,
    /// Write each shrunk finding as a scenario file into this directory.
    #[arg(long, default_value = "explore-out")]
    pub(crate) out: std::path::PathBuf,
    /// Print run N's scenario file (its generated faults) and exit. Guided, the runs before
    /// N's batch are made again to draw it, with the same `--runs` and `--shard`.
    #[arg(long)]
    pub(crate) print_run: Option<u64>,
    /// Explore a deliberately broken client (`ignore-breaker`, `first-as-majority`,
    /// `replay-unsafe`): to check
    /// that the envelope and the explorer catch it. Written into the files found.
    #[arg(long)]
    pub(crate) sabotage: Option<String>,
}

/// Where results go.
#[derive(Debug, clap::Args)]
pub(crate) struct OutputArgs {
    /// Write each run's results JSON and a Markdown summary into this directory.
    #[arg(long)]
    pub(crate) out: Option<std::path::PathBuf>,
    /// Write a JUnit XML report (one test case per scenario × strategy × seed).
    #[arg(long)]
    pub(crate) junit: Option<std::path::PathBuf>,
    /// Write the HTML report (charts, expectations, reproduce lines) to this file.
    #[arg(long)]
    pub(crate) html: Option<std::path::PathBuf>,
    /// Scenario runs at once (default: the machine's cores).
    #[arg(long)]
    pub(crate) jobs: Option<usize>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct SuiteArgs {
    /// Scenario files and directories of them.
    pub(crate) paths: Vec<std::path::PathBuf>,
    /// Run this many seeds of each scenario (from its own seed).
    #[arg(long)]
    pub(crate) seeds: Option<u64>,
    /// Run only shard K of N (`K/N`, 1-based): a deterministic split for CI matrices.
    #[arg(long)]
    pub(crate) shard: Option<String>,
    #[command(flatten)]
    pub(crate) output: OutputArgs,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// The scenario file.
    pub(crate) file: std::path::PathBuf,
    /// Run this seed only.
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// Run this strategy only (the file's `[client]` policy with it as the balancer).
    #[arg(long)]
    pub(crate) strategy: Option<String>,
    /// Run this `[[variant]]` only.
    #[arg(long)]
    pub(crate) variant: Option<String>,
    /// Run this many seeds (from the file's seed, or --seed).
    #[arg(long)]
    pub(crate) seeds: Option<u64>,
    #[command(flatten)]
    pub(crate) output: OutputArgs,
}

#[derive(Debug, clap::Args)]
pub(crate) struct CompareArgs {
    /// Scenario files (each is compared on its own; `--out` puts them in one `compare.md`).
    #[arg(required = true)]
    pub(crate) files: Vec<std::path::PathBuf>,
    /// Comma-separated strategies (default: the file's matrix, else every built-in one).
    #[arg(long, value_delimiter = ',')]
    pub(crate) strategies: Vec<String>,
    /// The seed (default: each file's).
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    #[command(flatten)]
    pub(crate) output: OutputArgs,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ValidateArgs {
    /// Scenario files and directories of them.
    #[arg(required = true)]
    pub(crate) paths: Vec<std::path::PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ProbeArgs {
    /// The `mcpServers` JSON file (`${VAR}` and `${VAR:-default}` are expanded).
    #[arg(long, short)]
    pub(crate) config: std::path::PathBuf,
    /// How many calls to drive (0: only show the catalog and health).
    #[arg(long, default_value_t = 0)]
    pub(crate) calls: u32,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 4)]
    pub(crate) concurrency: u32,
    /// The exposed tool to call (default: the first in the catalog).
    #[arg(long)]
    pub(crate) tool: Option<String>,
    /// The call's arguments, a JSON object.
    #[arg(long, default_value = "{}")]
    pub(crate) args: String,
    /// Override the config's balancer.
    #[arg(long)]
    pub(crate) balancer: Option<String>,
    /// Override the config's seed.
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// How long to wait for servers to connect.
    #[arg(long, default_value = "15s")]
    pub(crate) ready_timeout: String,
    /// Every server's deadline for one attempt (overrides the config's `callTimeout` and
    /// `call_timeout`), e.g. `2s`.
    #[arg(long)]
    pub(crate) timeout: Option<String>,
    /// The deadline of a whole call, all attempts included (overrides `deadline`), e.g. `10s`.
    #[arg(long)]
    pub(crate) deadline: Option<String>,
    /// Print the progress notifications long-running tools send, as they arrive.
    #[arg(long)]
    pub(crate) progress: bool,
    /// Serve the Prometheus text at `http://ADDR/metrics` while the probe runs (e.g.
    /// `127.0.0.1:9464`; port 0 picks one, printed as `metrics: URL`).
    #[arg(long)]
    pub(crate) metrics_addr: Option<std::net::SocketAddr>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct PickArgs {
    /// The balancing strategy (see `gauntlet strategies`).
    #[arg(long, short, default_value = "p2c-peak-ewma")]
    pub(crate) strategy: String,
    /// How many servers (ignored when --weights is given).
    #[arg(long, short = 'n', default_value_t = 3)]
    pub(crate) servers: u32,
    /// Comma-separated weights, one per server (e.g. 5,1,1).
    #[arg(long, value_delimiter = ',')]
    pub(crate) weights: Vec<u32>,
    /// Comma-separated priorities, one per server; enables priority tiers.
    #[arg(long, value_delimiter = ',')]
    pub(crate) priorities: Vec<u32>,
    /// The panic threshold of priority tiers.
    #[arg(long, default_value_t = 0.7)]
    pub(crate) panic_threshold: f64,
    /// Comma-separated indices of servers that are down.
    #[arg(long, value_delimiter = ',')]
    pub(crate) down: Vec<u32>,
    /// How many picks.
    #[arg(long, short, default_value_t = 10_000)]
    pub(crate) picks: u32,
    /// The seed of the run's random source.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ReportArgs {
    /// Results directories (`--out` of `suite`, `run` or `compare`), e.g. one per shard.
    #[arg(required = true)]
    pub(crate) dirs: Vec<std::path::PathBuf>,
    /// The HTML report to write.
    #[arg(long, default_value = "report.html")]
    pub(crate) html: std::path::PathBuf,
    /// Also write the merged results here: every run's JSON, a Markdown summary, a manifest.
    #[arg(long)]
    pub(crate) out: Option<std::path::PathBuf>,
    /// Also write one JUnit XML file of every run.
    #[arg(long)]
    pub(crate) junit: Option<std::path::PathBuf>,
    /// The report's title (default: the first manifest's).
    #[arg(long)]
    pub(crate) title: Option<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct DiffArgs {
    /// The baseline's results directory (e.g. main's artifact).
    pub(crate) base: std::path::PathBuf,
    /// The head's results directory (e.g. the pull request's).
    pub(crate) head: std::path::PathBuf,
    /// Thresholds over the defaults: `p99=10%,recovery=500ms` (metrics: success_rate, p50, p99,
    /// p999, retry_amplification, recovery).
    #[arg(long)]
    pub(crate) max_regression: Option<String>,
    /// A TOML file of thresholds: `[max_regression]` with `metric = "limit"` (applied before
    /// `--max-regression`).
    #[arg(long)]
    pub(crate) thresholds: Option<std::path::PathBuf>,
    /// Also write the Markdown table to this file (e.g. for a pull-request comment).
    #[arg(long)]
    pub(crate) markdown: Option<std::path::PathBuf>,
    /// Write the head's HTML report with the baseline's runs overlaid.
    #[arg(long)]
    pub(crate) html: Option<std::path::PathBuf>,
}
