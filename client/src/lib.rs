//! `gauntlet-client`: a resilient multi-server MCP client over `rmcp`, driven by
//! `gauntlet-core`'s policies.

pub mod config;
