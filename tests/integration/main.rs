//! Gauntlet's integration tests: real processes and sockets, on loopback only.

mod cli;
mod client;
mod everything;
mod explore;
mod flow;
mod harness;
mod report;
mod suite;
mod support;
mod tls;
