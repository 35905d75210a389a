//! What evloop assumes of the kernel beyond what mio promises everywhere, one constant per
//! assumption, so each is named, documented and gated in one place.
//!
//! mio gives the same edge-triggered interface over epoll (Linux, Android) and kqueue (macOS,
//! the BSDs). The portable contract is: after an event, read (or write) until `WouldBlock`,
//! and only then wait for the next edge. Linux promises more, and the hot path uses it:
//!
//! | constant                 | on Linux / Android                           | elsewhere                          |
//! |--------------------------|----------------------------------------------|------------------------------------|
//! | [`SHORT_READ_DRAINS`]    | a short read emptied the socket; the next arrival raises a new edge | read until `WouldBlock` |
//! | [`SHORT_WRITE_FILLS`]    | a short write filled the send buffer; the next writable edge is reported | write until `WouldBlock` |
//! | [`REUSEPORT_BALANCES`]   | `SO_REUSEPORT` spreads connections over the sockets sharing a port | the workers share one listener |
//! | [`ACCEPT_INHERITS_NODELAY`] | an accepted socket inherits `TCP_NODELAY` from its listener | set on each accepted socket |
//!
//! Each saves a system call per message or per connection, or a connection-spreading policy
//! the kernel runs for us, which is why the Linux path is kept. Where a constant is `false`
//! the code takes the portable path: it costs a system call more, never correctness. Every
//! `if` on these constants folds away at compile time, so the Linux build carries none of the
//! portable branches.
//!
//! These machines build only for Linux, so the portable paths are run here by building with
//! `--cfg evloop_portable`, which turns every constant off (`.ci/run` runs the echo, fault and
//! workers tests that way):
//!
//! ```sh
//! RUSTFLAGS="--cfg evloop_portable" CARGO_TARGET_DIR=target/portable cargo test --lib --test it
//! ```

/// The kernel whose promises below hold (Linux, or Android's Linux), unless the build asks for
/// the portable paths.
const LINUX: bool = cfg!(any(target_os = "linux", target_os = "android")) && !cfg!(evloop_portable);

/// A read that returned fewer bytes than asked for emptied the socket's receive queue, and
/// data that arrives later raises a new readable edge, so the read that would only return
/// `WouldBlock` can be skipped. Linux's `tcp_recvmsg` copies everything queued (up to the
/// buffer) and epoll's edge fires on every enqueue. Elsewhere evloop reads until
/// `WouldBlock`, the contract mio documents for every platform.
pub(crate) const SHORT_READ_DRAINS: bool = LINUX;

/// A write that took fewer bytes than offered found the send buffer full, and the kernel
/// reports the next writable edge when room frees (Linux sets `SOCK_NOSPACE` on the short
/// write), so the write that would only return `WouldBlock` can be skipped. Elsewhere evloop
/// writes until `WouldBlock`.
pub(crate) const SHORT_WRITE_FILLS: bool = LINUX;

/// Several listening sockets bound to one address with `SO_REUSEPORT` each receive a share
/// of the new connections (Linux hashes the 4-tuple). macOS hands them all to one socket and
/// FreeBSD balances only with `SO_REUSEPORT_LB`, so elsewhere the workers of
/// [`Workers`](crate::Workers) share one listening socket instead, each polling its own copy
/// of the descriptor: every worker wakes on a new connection and whichever accepts first
/// serves it.
pub(crate) const REUSEPORT_BALANCES: bool = LINUX;

/// A socket returned by `accept` starts with the listener's `TCP_NODELAY` (Linux clones the
/// accepted socket from the listener), so setting it once on the listener saves a
/// `setsockopt` per connection. Elsewhere each accepted socket is set on its own.
pub(crate) const ACCEPT_INHERITS_NODELAY: bool = LINUX;
