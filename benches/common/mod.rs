//! What the benches share: ratios taken from rounds alternated in one loop, so the machine's
//! noise hits both sides alike, and one way to report them.
//!
//! Each bench compiles its own copy of this module and uses part of it.
#![allow(dead_code)]

use std::io::Write;

#[allow(unused_imports)]
pub(crate) use gauntlet::bench::{Spread, alternated};

/// A bench reports on stderr, beside criterion's own output.
pub(crate) fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}
