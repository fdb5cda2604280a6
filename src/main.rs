//! `gauntlet`: build and prove resilient multi-server MCP clients.
//!
//! The binary is thin: it parses arguments ([`cli`]), validates them once into checked
//! settings, and calls the library crates. Exit codes: 0 success, 1 a check failed, 2 bad input.

mod cli;
mod pick;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

/// Bad input: the command line or a file the user gave is wrong.
const EXIT_BAD_INPUT: u8 = 2;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    let mut out = std::io::stdout().lock();
    let result = match args.command {
        cli::Command::Strategies => pick::list_strategies(&mut out),
        cli::Command::Pick(raw) => pick::Settings::try_from(raw).and_then(|settings| pick::run(&settings, &mut out)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let _ = out.flush();
            let _ = writeln!(std::io::stderr(), "error: {err:#}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}
