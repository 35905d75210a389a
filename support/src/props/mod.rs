//! The parsers' invariants, one module per fuzz target: each takes any bytes and panics
//! (naming the input) when an invariant breaks. libFuzzer drives them from `fuzz/`, and
//! `tests/it/props/` from seeded generated inputs, so every `cargo test` checks them too.
//!
//! ```text
//! fuzz/fuzz_targets/X.rs ──libFuzzer bytes──►┐
//!                                            ├──► props::X::check / run ──► the parser, the model
//! tests/it/props (seeded generators) ───────►┘
//! ```

pub mod fib_request;
pub mod http_head;
pub mod resp_request;
pub mod select_ops;
