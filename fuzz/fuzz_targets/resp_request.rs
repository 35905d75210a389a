//! Fuzzes the kv example's RESP2 request parser (`examples/kv/resp.rs`) with the invariants
//! of `tests/it/props/resp_request.rs`: a complete command stays within its limits,
//! re-parses the same from its canonical form and the same when fed in growing prefixes,
//! and a protocol error is final.
//!
//! Input: the first byte picks `max_bulk` (0 to 255), the rest is the request.

#![no_main]

use libfuzzer_sys::fuzz_target;

// The parser's whole file; the fuzz target uses only the parsing half of it.
#[allow(dead_code)]
#[path = "../../examples/kv/resp.rs"]
mod resp;

#[path = "../../tests/it/props/resp_request.rs"]
mod resp_request;

fuzz_target!(|data: &[u8]| {
    let Some((&max_bulk, request)) = data.split_first() else { return };
    let limits = resp::Limits { max_bulk: usize::from(max_bulk), max_args: 64, max_inline: 1024 };
    resp_request::check(request, limits);
});
