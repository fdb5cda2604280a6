//! `gauntlet`: build and prove resilient multi-server MCP clients.
//!
//! The binary is thin: it parses arguments ([`cli`]), validates them once into checked
//! settings, and calls the library crates. Exit codes: 0 success, 1 a check failed, 2 bad input.

mod bundled;
mod cli;
mod pick;
mod probe;
mod suite;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

/// A check failed (a call failed, a server is down, a scenario's expectation did not hold).
const EXIT_FAILED: u8 = 1;
/// Bad input: the command line or a file the user gave is wrong.
const EXIT_BAD_INPUT: u8 = 2;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr();
    let result = match args.command {
        cli::Command::Strategies => pick::list_strategies(&mut out),
        cli::Command::Pick(raw) => pick::Settings::try_from(raw).and_then(|settings| pick::run(&settings, &mut out)),
        cli::Command::Probe(raw) => probe::Settings::try_from(raw).and_then(|settings| probe::run(settings, &mut out)),
        cli::Command::Suite(args) => suite::suite(&args, &mut out, &mut err),
        cli::Command::Run(args) => suite::run(&args, &mut out, &mut err),
        cli::Command::Compare(args) => suite::compare(&args, &mut out, &mut err),
        cli::Command::Validate(args) => suite::validate(&args, &mut out, &mut err),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let _ = out.flush();
            let failed =
                err.downcast_ref::<probe::ProbeFailed>().is_some() || err.downcast_ref::<suite::Failed>().is_some();
            let _ = writeln!(std::io::stderr(), "{}: {err:#}", if failed { "failed" } else { "error" });
            ExitCode::from(if failed { EXIT_FAILED } else { EXIT_BAD_INPUT })
        }
    }
}
