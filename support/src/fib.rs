//! The examples' CPU-bound workload, [`fib`] (the one copy: the fib, http and lab servers and
//! the fib benchmark all compute this), and the fib server's request line: `N` or
//! `sleep MS`, parsed into a [`Request`] or the reason for an `ERR` reply. Pure, no I/O:
//! `examples/fib.rs` frames the lines (at most 64 bytes, `\n`-terminated) and hands each
//! one here without its `\n`; the fuzz target (`fuzz/fuzz_targets/fib_line.rs`) and the
//! property tests ([`crate::props::fib_request`]) check exactly the parser the server runs.

/// Longest `sleep` accepted, in milliseconds: a client should not park a timer for days.
pub const MAX_SLEEP_MS: u64 = 600_000;

/// A parsed request line.
#[derive(Debug, PartialEq)]
pub enum Request {
    Fib(u32),
    Sleep(u64),
}

/// Parses one request line (without its `\n`), or says what is wrong with it.
pub fn parse(line: &[u8], max_n: u32) -> Result<Request, String> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = std::str::from_utf8(line).map_err(|_| "invalid utf-8".to_string())?.trim();
    if text.is_empty() {
        return Err("empty request".into());
    }
    if let Some(ms) = text.strip_prefix("sleep") {
        return match ms.trim().parse::<u64>() {
            Ok(ms) if ms <= MAX_SLEEP_MS => Ok(Request::Sleep(ms)),
            _ => Err(format!("sleep needs milliseconds from 0 to {MAX_SLEEP_MS}")),
        };
    }
    if text.starts_with('-') && text[1..].bytes().all(|b| b.is_ascii_digit()) && text.len() > 1 {
        return Err("negative number".into());
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err("not a number".into());
    }
    match text.parse::<u32>() {
        Ok(n) if n <= max_n => Ok(Request::Fib(n)),
        _ => Err(format!("too large (max {max_n})")),
    }
}

/// The CPU-bound workload, recursive on purpose: fib(30) makes about 1.6 million calls,
/// fib(35) about 30 million.
pub fn fib(n: u32) -> u64 {
    if n < 2 {
        u64::from(n)
    } else {
        fib(n - 1) + fib(n - 2)
    }
}

/// [`fib`] that stops early, with `None`, once `cancel` is raised: the flag is polled
/// only above n = 25 (a few thousand times for fib(40)), so the check costs nothing
/// measurable and a cancelled job stops within about one fib(25), well under a millisecond.
pub fn fib_cancellable(n: u32, cancel: &evloop::Cancel) -> Option<u64> {
    if n <= 25 {
        return Some(fib(n));
    }
    if cancel.is_cancelled() {
        return None;
    }
    Some(fib_cancellable(n - 1, cancel)? + fib_cancellable(n - 2, cancel)?)
}
