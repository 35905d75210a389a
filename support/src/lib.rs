//! What evloop's examples, tests, benches and fuzz targets share, in one visible place
//! instead of files included by path. Not published: it is the workbench around the crate,
//! not part of its API, and it uses only evloop's public API.
//!
//! ```text
//!                 ┌──────────── evloop (the library) ────────────┐
//!                 ▼                                              │
//!           evloop-support ──► examples/  (app, cli, fib, resp, http, lab_protocol, plot)
//!                          ──► tests/     (testing, props, and the parsers they check)
//!                          ──► benches/   (cli, stats, fib)
//!                          ──► fuzz/      (props and the parsers)
//! ```
//!
//! - [`app`]: what every example binary does around its reactor: logging, signals
//!   (nginx's vocabulary), listening or inheriting sockets, the live upgrade, the Unix
//!   socket files removed at exit.
//! - [`cli`]: the one command-line vocabulary (addresses, durations, sizes, counts).
//! - [`fib`], [`resp`], [`http`], [`lab_protocol`]: the examples' wire formats, pure
//!   functions over bytes, here because the fuzzers and property tests drive them too.
//! - [`plot`]: the SVG charts of the lab and `examples/chart.rs`.
//! - [`stats`]: medians and percentiles, for every bench and report.
//! - [`testing`]: the integration tests' loopback servers, clients, seeded PRNG and deadlines.
//! - [`observe`]: a server's sockets as the kernel lists them, its descriptors, and
//!   waiting for a condition on them, so tests wait for what they need instead of sleeping.
//! - [`props`]: the parsers' invariants, shared by the property tests and the fuzz targets.
//!
//! evloop lists this crate as a dev-dependency and this crate depends on evloop: Cargo
//! allows that cycle for dev-dependencies, and examples and integration tests link the one
//! evloop both see.

pub mod app;
pub mod cli;
pub mod fib;
pub mod http;
pub mod lab_protocol;
pub mod observe;
pub mod plot;
pub mod props;
pub mod resp;
pub mod stats;
pub mod testing;
