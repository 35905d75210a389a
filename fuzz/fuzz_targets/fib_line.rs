//! Fuzzes the fib server's request-line parser (`support/src/fib.rs`) with the invariants
//! of `support/src/props/fib_request.rs`: accepted numbers are digits within the limit and
//! re-parse the same in canonical form, every refusal is one short printable line, and
//! surrounding whitespace changes nothing.
//!
//! Input: the first byte picks `--max-n` (0 to 92), the rest is the line.

#![no_main]

use libfuzzer_sys::fuzz_target;

use evloop_support::props::fib_request;

fuzz_target!(|data: &[u8]| {
    let Some((&max_n, line)) = data.split_first() else { return };
    fib_request::check(line, u32::from(max_n) % 93);
});
