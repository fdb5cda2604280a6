//! The whole `gauntlet` command line, with `least-latency` beside the built-in strategies.

fn main() -> std::process::ExitCode {
    gauntlet::main_with(custom_balancer::registry())
}
