//! `gauntlet-reports`: the results model of simulated runs and its renderers.
//!
//! The model ([`RunResult`] and its parts) is plain serde data that the simulator fills;
//! this crate knows nothing of turmoil or rmcp. Renderers: [`json`], [`markdown`] (a CI step
//! summary), [`junit`] (one test case per scenario × strategy × seed) and [`summary_line`].

pub mod chart;
pub mod diff;
pub mod html;
mod junit;
mod markdown;
pub mod merge;
mod model;

pub use html::{Page, html};
pub use junit::junit;
pub use markdown::{comparison, load_share, markdown, summary_line};
pub use model::{
    Bucket, Calls, Event, Expectation, Latency, Phase, RunResult, Server, Verdict, Violation, What, WorkflowStep,
};

/// A run as pretty JSON.
pub fn json(run: &RunResult) -> String {
    serde_json::to_string_pretty(run).expect("the results model always serializes")
}

/// Formats milliseconds for people: `12.3ms`, `1.25s`, `-` for none.
pub fn ms(value: Option<f64>) -> String {
    match value {
        None => "-".to_owned(),
        Some(v) if v >= 1_000.0 => format!("{:.2}s", v / 1_000.0),
        Some(v) if v >= 100.0 => format!("{v:.0}ms"),
        Some(v) => format!("{v:.1}ms"),
    }
}
