//! Property tests of the core's decisions. Each test's name states its property.

mod balance;
mod catalog;
mod fleets;
