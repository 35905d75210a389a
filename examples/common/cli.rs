//! Command-line pieces that several examples share, for `clap`'s derive. An example declares
//! its own `Args` (`#[derive(Parser)]`: its flags, `--help`, `--version`) and flattens a
//! struct from here into it with `#[command(flatten)]`, so a flag that means the same in
//! every example has one help line and one conversion.
//!
//! ```text
//! argv ──Args::parse──► Args { addr, …, idle: IdleTimeout<300> } ──idle.get()──► Config::idle_timeout
//! ```
//!
//! Only what is really shared lives here. `--addr` has a different default in each example
//! and `--max-conns` a different meaning (a proxied client holds two connections), so they
//! stay with their example.

use std::ops::RangeBounds;
use std::time::Duration;

use clap::builder::RangedU64ValueParser;

/// The `after_help` of the examples that log through `common::init_logging`.
pub const LOGS: &str = "Logs go to stderr; set RUST_LOG=debug to see every connection.";

/// The value parser of a count or size (`usize`) within `range`, e.g. `count(1..)` for
/// `--max-conns`: a value outside it, or not a number, is an error naming the flag.
pub fn count(range: impl RangeBounds<u64>) -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::new().range(range)
}

/// `--idle-timeout SECS`, the reactor's `Config::idle_timeout`. The default is a parameter
/// because it is the one thing that differs: a chat member may stay quiet longer than an
/// echo client (`IdleTimeout<600>` there, `<300>` elsewhere).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct IdleTimeout<const DEFAULT_SECS: u64> {
    /// Close a connection silent this long (0: never)
    #[arg(long = "idle-timeout", value_name = "SECS", default_value_t = DEFAULT_SECS)]
    secs: u64,
}

impl<const DEFAULT_SECS: u64> IdleTimeout<DEFAULT_SECS> {
    /// The timeout as `Config` takes it: `None` for 0, "never".
    pub fn get(self) -> Option<Duration> {
        (self.secs > 0).then(|| Duration::from_secs(self.secs))
    }
}
