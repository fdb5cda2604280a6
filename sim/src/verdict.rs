//! A scenario file's runs, end to end: each variant's run, its checkers' violations, its
//! expectations, the comparisons between strategies, and each run's verdict. What the CLI
//! prints and what a library user's test asserts on come from here.

use gauntlet_reports::{Calls, Expectation, Latency, RunResult, Verdict, Violation};

use crate::file::{ScenarioFile, Variant};

impl ScenarioFile {
    /// Runs the scenario for `seed` under each of `variants` (all on the same world), then
    /// checks expectations and comparisons and gives each run its verdict.
    pub fn run_seed(&self, seed: u64, variants: &[Variant]) -> Vec<RunResult> {
        let mut runs: Vec<RunResult> = variants
            .iter()
            .map(|variant| {
                let scenario = self.scenario(seed, variant);
                match crate::run(&scenario) {
                    Ok(report) => {
                        let mut r = crate::summarize(&report);
                        r.variant.clone_from(&variant.name);
                        r.file.clone_from(&self.file);
                        r.description.clone_from(&self.description);
                        r.expectations = self.expect.check(&r);
                        r
                    }
                    Err(e) => self.broken_run(seed, variant, e.to_string()),
                }
            })
            .collect();
        let compared: Vec<Vec<Expectation>> = {
            let all: Vec<&RunResult> = runs.iter().collect();
            variants.iter().map(|v| self.expect.compare(&v.name, &all)).collect()
        };
        for (r, c) in runs.iter_mut().zip(compared) {
            r.expectations.extend(c);
            if !r.violations.is_empty() || r.expectations.iter().any(|e| !e.pass) {
                r.verdict = Verdict::Fail;
            }
        }
        runs
    }

    /// Every seed of the file under every variant it runs, in seed order.
    pub fn run_all(&self) -> Vec<RunResult> {
        self.seeds.iter().flat_map(|&seed| self.run_seed(seed, &self.variants)).collect()
    }

    /// A run that could not complete (turmoil stopped it): a failure with the reason.
    fn broken_run(&self, seed: u64, variant: &Variant, reason: String) -> RunResult {
        RunResult {
            scenario: self.scenario.name.clone(),
            file: self.file.clone(),
            description: self.description.clone(),
            duration_ms: self.scenario.duration.as_secs_f64() * 1e3,
            seed,
            strategy: variant.policy.balancer.name().to_owned(),
            variant: variant.name.clone(),
            digest: String::new(),
            verdict: Verdict::Fail,
            calls: Calls::default(),
            attempts: 0,
            hedges: 0,
            retry_amplification: 0.0,
            latency: Latency::default(),
            recovery_ms: None,
            phases: Vec::new(),
            servers: Vec::new(),
            series: Vec::new(),
            events: Vec::new(),
            events_dropped: 0,
            violations: vec![Violation::Stopped { reason }],
            expectations: Vec::new(),
            steps: Vec::new(),
        }
    }
}
