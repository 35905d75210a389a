//! evloop: a hand-rolled, nginx-style event loop on [`mio`].
//!
//! One thread owns one `mio::Poll`, the listeners, a table of connections and a timer heap.
//! Each connection is driven by a [`Handler`] — the protocol, written as an explicit state
//! machine — that the reactor calls back as bytes arrive, timers fire, output drains and
//! offloaded jobs finish. CPU-bound work goes to an [offload pool](offload) whose results
//! come back to the loop thread through a `mio::Waker`, so the loop never stalls.
//!
//! ```text
//!            accept           readable / writable          timer due        job done
//! listener ────────► table[conn] ◄───────────── mio::Poll ─────────► timers  ◄── Waker ◄── offload pool
//!                         │                                                          ▲
//!                         └── Handler (per-connection state machine) ── cx.offload ──┘
//! ```
//!
//! # An echo server in twenty lines
//!
//! ```no_run
//! use evloop::{Config, Cx, Handler, Input, Reactor};
//!
//! struct Echo;
//!
//! impl Handler for Echo {
//!     type Msg = (); // what offloaded jobs return; echo offloads nothing
//!
//!     fn on_data(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
//!         cx.write(input.bytes()); // buffered, sent when the callback returns
//!         input.consume_all();
//!     }
//! }
//!
//! fn main() -> std::io::Result<()> {
//!     let mut reactor = Reactor::new(Config::default())?;
//!     reactor.listen("127.0.0.1:7000".parse().unwrap(), |_peer| Echo)?;
//!     reactor.run() // until Handle::shutdown() is called from anywhere
//! }
//! ```
//!
//! # Platforms and features
//!
//! Built and tested on Linux (epoll), where the reactor takes the kernel's shortcuts: it
//! stops reading at a short read and writing at a short write, lets `SO_REUSEPORT` spread
//! [`workers`]' connections, and sets `TCP_NODELAY` once on a listener. On macOS and the BSDs
//! (kqueue) it compiles and takes the portable paths instead (read and write until
//! `WouldBlock`, one listener shared by the workers, `TCP_NODELAY` per socket), which CI runs
//! on Linux but no test runs on those systems. Windows is not supported. The crate has no
//! cargo features; its minimum Rust is 1.89 (`File::lock`, for the race-free takeover of a
//! stale Unix socket path).
//!
//! # Where to read next
//!
//! - [`Reactor`]: the loop, its turn order, embedding with [`Reactor::run_once`].
//! - [`Handler`] and [`Cx`]: the callbacks and what a handler may do, including talking to
//!   other connections: [`Cx::connect`], [`Cx::adopt`], [`Cx::send`], [`Cx::forward_to`].
//! - [`Config`]: every limit that keeps memory bounded and the loop fair.
//! - [`offload`]: the worker pool.
//! - [`workers`]: one reactor per core on a shared `SO_REUSEPORT` address.
//! - `ARCHITECTURE.md` in the repository: the code map and the invariants.

#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![cfg_attr(test, deny(warnings))]
#![doc(test(attr(deny(warnings))))]
#![forbid(unsafe_code)]

// Descriptors (`RawFd`, `AsFd`), Unix-domain sockets and the select layer are Unix; mio's
// Windows backend (IOCP) is not served. Say so at once rather than with a hundred errors.
#[cfg(not(unix))]
compile_error!("evloop runs on Unix only: epoll (Linux, Android) and kqueue (macOS, the BSDs)");

mod config;
mod conn;
mod flags;
mod handler;
mod input;
mod life;
pub mod net;
pub mod offload;
mod platform;
mod reactor;
pub mod select;
mod send_error;
mod shared;
mod slots;
mod stats;
mod stream;
pub mod timer;
#[doc(hidden)]
pub mod token;
mod wire;
pub mod workers;

pub use config::{Config, Linger};
pub use handler::{Cx, Handler, Input};
pub use offload::{Cancel, JobError, OffloadError};
pub use reactor::{
    DatagramAddr, DatagramCx, DatagramOptions, Datagrams, EndpointId, Handle, ListenerId, NoStreams, Reactor,
    Ready, Sender, SourceId, Turn,
};
pub use send_error::SendError;
pub use stats::{ClosedBy, DatagramStats, Reason, Stats};
pub use stream::{PeerAddr, Stream};
pub use timer::TimerId;
pub use token::ConnId;

/// Re-exported so embedders name the same `mio` types the reactor uses.
pub use mio;

/// The README's Rust examples, compiled and run as doc tests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
