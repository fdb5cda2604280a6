//! `gauntlet`: build and prove resilient multi-server MCP clients. The command line lives in
//! the library ([`gauntlet::main_with`]), so that a user's binary can add its own strategies.

fn main() -> std::process::ExitCode {
    gauntlet::main()
}
