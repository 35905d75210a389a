//! Fuzzes the kv example's RESP2 request parser (`support/src/resp.rs`) with the invariants
//! of `support/src/props/resp_request.rs`: a complete command stays within its limits,
//! re-parses the same from its canonical form and the same when fed in growing prefixes,
//! and a protocol error is final.
//!
//! Input: the first byte picks `max_bulk` (0 to 255), the rest is the request.

#![no_main]

use libfuzzer_sys::fuzz_target;

use evloop_support::props::resp_request;
use evloop_support::resp;

fuzz_target!(|data: &[u8]| {
    let Some((&max_bulk, request)) = data.split_first() else { return };
    let limits = resp::Limits { max_bulk: usize::from(max_bulk), max_args: 64, max_inline: 1024 };
    resp_request::check(request, limits);
});
