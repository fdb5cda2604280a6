//! Property tests of the core's decisions. Each test's name states its property.

mod aggregate;
mod balance;
mod breaker;
mod cache;
mod catalog;
mod fleets;
mod outlier;
mod policy;
mod retry;
mod workflow;
