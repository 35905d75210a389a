//! Fuzzes the HTTP request-head parser of `examples/http` (`support/src/http/`) with the invariants of
//! `support/src/props/http_head.rs` (the same checks `cargo test` runs on generated heads):
//! an accepted head re-parses the same from exactly its bytes, every prefix of it is
//! incomplete, a refusal is final, nothing beyond the limit is buffered.
//!
//! Input: the first byte picks the head limit (even: the server's 8192; odd: a small one
//! the input can cross), the rest is what the client sent.

#![no_main]

use libfuzzer_sys::fuzz_target;

use evloop_support::props::http_head;

fuzz_target!(|data: &[u8]| {
    let Some((&limit, sent)) = data.split_first() else { return };
    let max_head = if limit % 2 == 0 { 8192 } else { 16 + usize::from(limit) * 4 };
    http_head::check(sent, max_head);
});
