//! `gauntlet`: the command line as a library, so that a user's own binary is the whole CLI
//! with their strategies in it, and a test harness to run scenarios from their own `cargo test`.
//!
//! A binary with a strategy of its own (see `examples/custom-balancer/` in the repository):
//!
//! ```no_run
//! use gauntlet_core::balance::RoundRobin;
//!
//! fn main() -> std::process::ExitCode {
//!     let registry = gauntlet::Registry::new().balancer("my-round-robin", "round-robin, mine", || {
//!         Box::new(RoundRobin::new())
//!     });
//!     gauntlet::main_with(registry)
//! }
//! ```
//!
//! Exit codes: 0 success, 1 a check failed, 2 bad input.

mod args;
pub mod bench;
mod bundled;
mod explore;
mod flow;
pub mod harness;
mod pick;
mod probe;
mod report;
mod suite;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use gauntlet_core::balance::{Balancer, Factory, RegisterError, Strategy};

pub use harness::{Harness, HarnessError, Outcome};

/// A check failed (a call failed, a server is down, a scenario's expectation did not hold).
const EXIT_FAILED: u8 = 1;
/// Bad input: the command line or a file the user gave is wrong.
const EXIT_BAD_INPUT: u8 = 2;

/// The strategies a binary adds to the built-in ones, installed by [`main_with`] or
/// [`Registry::install`] into the process-wide registry (`gauntlet_core::balance::register`).
#[derive(Default)]
pub struct Registry {
    balancers: Vec<(String, String, Factory)>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.balancers.iter().map(|(name, ..)| name)).finish()
    }
}

impl Registry {
    /// No strategy beyond the built-in ones.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Adds a balancing strategy: its name (as configs, scenarios and `--strategy` write it), a
    /// one-line summary (`gauntlet strategies` prints it) and a factory making a fresh balancer.
    #[must_use]
    pub fn balancer(
        mut self,
        name: &str,
        summary: &str,
        factory: impl Fn() -> Box<dyn Balancer + Send> + Send + Sync + 'static,
    ) -> Registry {
        self.balancers.push((name.to_owned(), summary.to_owned(), Box::new(factory)));
        self
    }

    /// Registers every strategy; returns their handles, in order.
    pub fn install(self) -> Result<Vec<Strategy>, RegisterError> {
        self.balancers
            .into_iter()
            .map(|(name, summary, factory)| gauntlet_core::balance::register(&name, &summary, factory))
            .collect()
    }
}

/// Installs the log subscriber: `RUST_LOG` filters (default: errors only, and none of rmcp's:
/// its transport errors are the failures the client handles and reports itself, and under
/// simulated faults they happen by design), lines go to standard error. Every value substituted into a server's config is scrubbed before it is logged (the
/// client's redactor), so no level shows a secret.
fn logs(format: args::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error,rmcp=off"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(|| Scrubbed).with_ansi(false);
    // A second install (a test harness calling in) keeps the first.
    let _ = match format {
        args::LogFormat::Text => builder.try_init(),
        args::LogFormat::Json => builder.json().try_init(),
    };
}

/// The secrets of the configs this process read: scrubbed from every log line, whoever wrote it
/// (rmcp and the HTTP stack log URLs and errors the client's own redaction never sees).
static LOG_SECRETS: std::sync::Mutex<Option<gauntlet_client::config::Redactor>> = std::sync::Mutex::new(None);

/// Scrubs `secrets` from every log line from now on.
pub(crate) fn redact_logs(secrets: &gauntlet_client::config::Redactor) {
    let mut all = LOG_SECRETS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    all.get_or_insert_with(Default::default).merge(secrets);
}

/// Standard error, with [`LOG_SECRETS`] scrubbed from each line.
struct Scrubbed;

impl Write for Scrubbed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let line = String::from_utf8_lossy(buf);
        let clean = match &*LOG_SECRETS.lock().unwrap_or_else(std::sync::PoisonError::into_inner) {
            Some(r) => r.scrub(&line),
            None => line.into_owned(),
        };
        std::io::stderr().write_all(clean.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// The `gauntlet` command line with the built-in strategies only.
pub fn main() -> ExitCode {
    main_with(Registry::new())
}

/// The `gauntlet` command line, with `registry`'s strategies beside the built-in ones: every
/// command (`strategies`, `pick`, `probe`, `suite`, `run`, `compare`, `validate`) accepts their
/// names.
pub fn main_with(registry: Registry) -> ExitCode {
    if let Err(e) = registry.install() {
        let _ = writeln!(std::io::stderr(), "error: {e}");
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    let args = args::Args::parse();
    logs(args.log_format);
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr();
    if args.command.simulates() && !gauntlet_sim::SCHEDULER_SEEDED {
        let _ = writeln!(
            err,
            "warning: built without `--cfg tokio_unstable`: tokio's scheduling randomness is not \
             seeded, so a run with parallel workflow steps may give a different digest in another \
             process (build inside the workspace, or add the flag to RUSTFLAGS)"
        );
    }
    let result = match args.command {
        args::Command::Strategies => pick::list_strategies(&mut out),
        args::Command::Pick(raw) => pick::Settings::try_from(raw).and_then(|settings| pick::run(&settings, &mut out)),
        args::Command::Probe(raw) => probe::Settings::try_from(raw).and_then(|settings| probe::run(settings, &mut out)),
        args::Command::Suite(args) => suite::suite(&args, &mut out, &mut err),
        args::Command::Run(args) => suite::run(&args, &mut out, &mut err),
        args::Command::Compare(args) => suite::compare(&args, &mut out, &mut err),
        args::Command::Validate(args) => suite::validate(&args, &mut out, &mut err),
        args::Command::Report(args) => report::report(&args, &mut out),
        args::Command::Diff(args) => report::diff(&args, &mut out),
        args::Command::Explore(args) => explore::explore(&args, &mut out),
        args::Command::Flow(args::FlowCommand::Run(raw)) => {
            flow::Settings::try_from(raw).and_then(|settings| flow::run(settings, &mut out))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let _ = out.flush();
            let failed = err.downcast_ref::<probe::ProbeFailed>().is_some()
                || err.downcast_ref::<suite::Failed>().is_some()
                || err.downcast_ref::<report::Incomplete>().is_some()
                || err.downcast_ref::<report::Regressed>().is_some()
                || err.downcast_ref::<explore::Found>().is_some()
                || err.downcast_ref::<flow::Unfinished>().is_some();
            let _ = writeln!(std::io::stderr(), "{}: {err:#}", if failed { "failed" } else { "error" });
            ExitCode::from(if failed { EXIT_FAILED } else { EXIT_BAD_INPUT })
        }
    }
}
