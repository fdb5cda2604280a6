//! Run scenario files, directories or the bundled suite from a test of your own, against your
//! strategy, with the CLI's verdicts and messages.
//!
//! ```no_run
//! let strategy = gauntlet_core::balance::register("mine", "my balancer", || {
//!     Box::new(gauntlet_core::balance::RoundRobin::new())
//! })
//! .expect("a valid name");
//! let outcome = gauntlet::Harness::new().strategy(strategy).run_bundled().expect("valid scenarios");
//! outcome.assert_passed();
//! ```

use std::path::PathBuf;

use gauntlet_core::balance::Strategy;
use gauntlet_reports::{RunResult, Verdict};
use gauntlet_sim::file::ScenarioFile;

use crate::suite;

/// Scenarios could not be run: the same messages `gauntlet validate` prints, one per line
/// (`file:line:col: message`), or a missing file.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct HarnessError {
    /// What is wrong.
    pub message: String,
}

/// How to run scenarios: which strategy, how many seeds, on how many threads.
#[derive(Clone, Debug)]
pub struct Harness {
    strategy: Option<Strategy>,
    seeds: Option<u64>,
    jobs: usize,
    except: Vec<String>,
    program: String,
}

impl Default for Harness {
    fn default() -> Harness {
        Harness::new()
    }
}

/// What a harness run gave: every run's results, and the CLI's report of them.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Every run (scenario × strategy × seed), in the CLI's order.
    pub runs: Vec<RunResult>,
    report: String,
}

impl Outcome {
    /// Whether every run passed.
    pub fn passed(&self) -> bool {
        self.runs.iter().all(|r| r.verdict == Verdict::Pass)
    }

    /// The runs that failed.
    pub fn failed(&self) -> impl Iterator<Item = &RunResult> {
        self.runs.iter().filter(|r| r.verdict == Verdict::Fail)
    }

    /// What `gauntlet suite` prints for these runs: a line and a digest per run; for each
    /// failure its violations, failed expectations and reproduce line; the count.
    pub fn report(&self) -> &str {
        &self.report
    }

    /// Panics with [`Outcome::report`] unless every run passed.
    #[track_caller]
    pub fn assert_passed(&self) {
        assert!(self.passed(), "{}", self.report);
    }
}

impl Harness {
    /// Each scenario's own strategies (its matrix) and seeds, on as many threads as the machine
    /// has cores.
    pub fn new() -> Harness {
        Harness {
            strategy: None,
            seeds: None,
            jobs: std::thread::available_parallelism().map_or(1, usize::from),
            except: Vec::new(),
            program: "gauntlet".to_owned(),
        }
    }

    /// Runs every scenario under `strategy` instead of its matrix or variants (the `[client]`
    /// policy with `strategy` as the balancer), as `gauntlet run --strategy` does, with the
    /// strategies its comparisons against `strategy` need; comparisons between other runs do not
    /// apply to it and are not run.
    #[must_use]
    pub fn strategy(mut self, strategy: Strategy) -> Harness {
        self.strategy = Some(strategy);
        self
    }

    /// Runs `n` seeds of each scenario, from its own (at least 1).
    #[must_use]
    pub fn seeds(mut self, n: u64) -> Harness {
        self.seeds = Some(n.max(1));
        self
    }

    /// Leaves out the scenarios named `names`: those whose hypothesis is about a property the
    /// strategy does not claim (`maglev-affinity` is about keeping each affinity key on one
    /// server). A name that no scenario has makes the run fail, so a typo cannot skip nothing.
    #[must_use]
    pub fn except(mut self, names: &[&str]) -> Harness {
        self.except.extend(names.iter().map(|n| (*n).to_owned()));
        self
    }

    /// Names `program` in reproduce lines instead of `gauntlet`: the binary built on the library
    /// that has the strategies these runs use.
    #[must_use]
    pub fn program(mut self, program: &str) -> Harness {
        program.clone_into(&mut self.program);
        self
    }

    /// Runs on `n` threads (at least 1).
    #[must_use]
    pub fn jobs(mut self, n: usize) -> Harness {
        self.jobs = n.max(1);
        self
    }

    /// Runs scenario files and directories of them (every `.toml`, sorted).
    pub fn run_paths(&self, paths: &[PathBuf]) -> Result<Outcome, HarnessError> {
        let mut err = Vec::new();
        let files = suite::load(paths, &mut err).map_err(|e| error(&err, &e))?;
        self.run(files)
    }

    /// Runs the bundled suite (the scenarios compiled into this crate).
    pub fn run_bundled(&self) -> Result<Outcome, HarnessError> {
        let mut err = Vec::new();
        let files = suite::bundled(&mut err).map_err(|e| error(&err, &e))?;
        self.run(files)
    }

    fn run(&self, mut files: Vec<ScenarioFile>) -> Result<Outcome, HarnessError> {
        if let Some(missing) = self.except.iter().find(|n| !files.iter().any(|f| f.scenario.name == **n)) {
            return Err(HarnessError { message: format!("except: no scenario is named `{missing}`") });
        }
        files.retain(|f| !self.except.contains(&f.scenario.name));
        for f in &mut files {
            if let Some(n) = self.seeds {
                *f = f.clone().with_seeds(n);
            }
            if let Some(s) = self.strategy {
                if f.has_named_variants() {
                    // Its variants name their own strategies: the `[client]` policy with `s`.
                    f.variants = vec![f.variant_for(s)];
                } else {
                    f.select_strategy(s);
                }
            }
        }
        let runs = suite::execute(&files, &suite::units(&files), self.jobs);
        let mut report = Vec::new();
        // Writing to a Vec cannot fail.
        let _ = suite::print_runs(&runs, &self.program, &mut report);
        let failed = runs.iter().filter(|r| r.verdict == Verdict::Fail).count();
        let mut report = String::from_utf8_lossy(&report).into_owned();
        report.push_str(&format!("{} runs: {} passed, {failed} failed\n", runs.len(), runs.len() - failed));
        Ok(Outcome { runs, report })
    }
}

/// The messages written while loading, and the error that ended it.
fn error(written: &[u8], e: &anyhow::Error) -> HarnessError {
    let mut message = String::from_utf8_lossy(written).into_owned();
    message.push_str(&format!("{e:#}"));
    HarnessError { message }
}
