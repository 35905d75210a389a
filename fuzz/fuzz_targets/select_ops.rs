//! Fuzzes the select layer's public entry points (`Selector::register`, `modify`,
//! `unregister`, `select`, and the one-shot `select()`) with sequences of operations on
//! real Unix socket pairs and `/dev/null`, checked against the model in
//! `support/src/props/select_ops.rs`: errors exactly when the model says so, and after every
//! zero-timeout select exactly the ready descriptors reported (level-triggered).
//!
//! Input: three bytes per operation (what, which descriptor, argument).

#![no_main]

use libfuzzer_sys::fuzz_target;

use evloop_support::props::select_ops;

fuzz_target!(|data: &[u8]| {
    select_ops::run(data);
});
