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
//! stay with their example; but every flag of a kind is read by one parser below, so the
//! examples speak one vocabulary:
//!
//! - addresses: `HOST:PORT`, a name resolved (`localhost:7000`) or a literal (`[::1]:7000`);
//! - durations: `500ms`, `10s`, `2m`, `1h`; a bare number keeps the flag's unit (`SECS` or
//!   `MS` in its value name), so older command lines still mean what they meant;
//! - sizes: `64k`, `1m`, `1g` (powers of 1024), or bytes;
//! - counts: a range said in words (`must be at least 1`).

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// The `after_help` of the examples that log through `app::init_logging`.
pub const LOGS: &str = "Logs go to stderr; set RUST_LOG=debug to see every connection.";

/// The value parser of a count (`usize`) from `min` to `max` inclusive, e.g. `count(1, MAX)`
/// for `--max-conns`: outside the range, or not a number, an error that says the range in
/// words.
pub fn count(
    min: usize,
    max: usize,
) -> impl Fn(&str) -> Result<usize, String> + Clone + Send + Sync + 'static {
    let unbounded = max == usize::MAX;
    move |text: &str| {
        let n: usize = text.trim().parse().map_err(|_| format!("{text:?} is not a whole number"))?;
        match (n < min || n > max, unbounded) {
            (false, _) => Ok(n),
            (true, true) => Err(format!("must be at least {min}")),
            (true, false) => Err(format!("must be between {min} and {max}")),
        }
    }
}

/// [`count`] for a `u32` (an N of fib(N), say) from `min` to `max`.
pub fn number(min: u32, max: u32) -> impl Fn(&str) -> Result<u32, String> + Clone + Send + Sync + 'static {
    move |text: &str| {
        let n: u32 = text.trim().parse().map_err(|_| format!("{text:?} is not a whole number"))?;
        if n < min || n > max {
            return Err(format!("must be between {min} and {max}"));
        }
        Ok(n)
    }
}

/// The value parser of a size in bytes (`64k`, `1m`, `2g`, or bytes) from `min` to `max`.
pub fn size(
    min: usize,
    max: usize,
) -> impl Fn(&str) -> Result<usize, String> + Clone + Send + Sync + 'static {
    move |text: &str| {
        let n = parse_size(text)?;
        match (n < min, n > max) {
            (false, false) => Ok(n),
            _ if max == usize::MAX => Err(format!("must be at least {min} bytes")),
            _ => Err(format!("must be between {min} and {max} bytes")),
        }
    }
}

/// `64k` → 65,536: `b`, `k`, `m`, `g` (or `kb`, `kib`, …), any case; a bare number is bytes.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let lower = text.trim().to_ascii_lowercase();
    let digits_end = lower.find(|c: char| !c.is_ascii_digit()).unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(digits_end);
    let scale: usize = match unit {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("unknown unit {unit:?} in {text:?} (use k, m or g, e.g. 64k)")),
    };
    let n: usize = digits.parse().map_err(|_| format!("{text:?} is not a size (e.g. 4096, 64k, 1m)"))?;
    n.checked_mul(scale).ok_or_else(|| format!("{text:?} is too large"))
}

/// A duration with its unit (`500ms`, `10s`, `2m`, `1h`), or a bare number in `bare` units.
fn parse_duration(text: &str, bare: Duration) -> Result<Duration, String> {
    let trimmed = text.trim();
    let digits_end = trimmed.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(digits_end);
    let unit_length = match unit.to_ascii_lowercase().as_str() {
        "" => bare,
        "ms" => Duration::from_millis(1),
        "s" | "sec" | "secs" => Duration::from_secs(1),
        "m" | "min" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        _ => return Err(format!("unknown unit {unit:?} in {text:?} (use ms, s, m or h, e.g. 500ms)")),
    };
    let value: f64 = number.parse().map_err(|_| format!("{text:?} is not a duration (e.g. 500ms, 10s)"))?;
    if !value.is_finite() || value < 0.0 || value * unit_length.as_secs_f64() > 1e9 {
        return Err(format!("{text:?} is out of range"));
    }
    Ok(unit_length.mul_f64(value))
}

/// A `SECS` flag's value: parsed by [`duration_secs`], shown (as a default in `--help`) as
/// bare seconds when whole, so `[default: 300]` reads as it always did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Secs(pub Duration);

/// An `MS` flag's value: parsed by [`duration_ms`], shown as bare milliseconds when whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Millis(pub Duration);

impl Secs {
    pub const fn from(secs: u64) -> Secs {
        Secs(Duration::from_secs(secs))
    }
}

impl Millis {
    pub const fn from(ms: u64) -> Millis {
        Millis(Duration::from_millis(ms))
    }
}

impl std::fmt::Display for Secs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.subsec_nanos() {
            0 => write!(f, "{}", self.0.as_secs()),
            _ => write!(f, "{}ms", self.0.as_millis()),
        }
    }
}

impl std::fmt::Display for Millis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.as_millis())
    }
}

/// The value parser of a `SECS` flag: `30`, or with a unit (`500ms`, `2m`).
pub fn duration_secs(text: &str) -> Result<Secs, String> {
    parse_duration(text, Duration::from_secs(1)).map(Secs)
}

/// The value parser of an `MS` flag: `500`, or with a unit (`2s`).
pub fn duration_ms(text: &str) -> Result<Millis, String> {
    parse_duration(text, Duration::from_millis(1)).map(Millis)
}

/// [`duration_ms`] that refuses zero.
pub fn positive_ms(text: &str) -> Result<Millis, String> {
    duration_ms(text).and_then(|d| if d.0.is_zero() { Err("must be more than 0".into()) } else { Ok(d) })
}

/// [`duration_secs`] that refuses zero.
pub fn positive_secs(text: &str) -> Result<Secs, String> {
    duration_secs(text).and_then(|d| if d.0.is_zero() { Err("must be more than 0".into()) } else { Ok(d) })
}

/// The value parser of `HOST:PORT`: a literal address, or a name resolved now (the first
/// address it resolves to: `localhost:7000` is usually 127.0.0.1:7000).
pub fn addr(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    if !text.contains(':') {
        return Err(format!("expected HOST:PORT, got {text:?}"));
    }
    let mut found = text.to_socket_addrs().map_err(|e| format!("cannot resolve {text:?}: {e}"))?;
    found.next().ok_or_else(|| format!("{text:?} resolves to no address"))
}

/// `--idle-timeout SECS`, the reactor's `Config::idle_timeout`. The default is a parameter
/// because it is the one thing that differs: a chat member may stay quiet longer than an
/// echo client (`IdleTimeout<600>` there, `<300>` elsewhere).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct IdleTimeout<const DEFAULT_SECS: u64> {
    /// Close a connection silent this long: seconds, or with a unit (5m); 0: never
    #[arg(long = "idle-timeout", value_name = "SECS", default_value_t = Secs::from(DEFAULT_SECS),
          value_parser = duration_secs)]
    timeout: Secs,
}

impl<const DEFAULT_SECS: u64> IdleTimeout<DEFAULT_SECS> {
    /// The timeout as `Config` takes it: `None` for 0, "never".
    pub fn get(self) -> Option<Duration> {
        (!self.timeout.0.is_zero()).then_some(self.timeout.0)
    }
}

/// `--bench`, which `cargo bench` passes to every bench binary (`harness = false` ones
/// too): accepted and hidden. A bench's `Args` flattens it with `#[command(flatten)]`.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct CargoBench {
    #[arg(long = "bench", hide = true)]
    bench: bool,
}
