//! Limits and timeouts, with defaults that suit a small public server.
//!
//! ```text
//! Config ──Reactor::new──► validate() ──► copied into the reactor; never changes while it runs
//! ```
//!
//! Every limit here exists to keep memory bounded or the loop fair whatever a peer does; each
//! field says which. This module holds plain data only: the reactor enforces it.

use std::io;
use std::time::Duration;

/// Limits and timeouts for a [`Reactor`](crate::Reactor).
///
/// Build one with struct-update syntax so new fields keep their defaults:
///
/// ```
/// use std::time::Duration;
/// let config = evloop::Config {
///     max_conns: 100,
///     idle_timeout: Some(Duration::from_secs(30)),
///     ..evloop::Config::default()
/// };
/// # assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Most connections open at once. At the cap the listeners stop accepting (new clients
    /// wait in the kernel's backlog) and resume as soon as a connection closes.
    /// Default 1,024 (nginx's `worker_connections` is 512).
    pub max_conns: usize,
    /// Close a connection when nothing was read from or written to it for this long.
    /// `None` disables it. This also bounds how long a peer that never reads can hold a
    /// connection with pending output. Default `None`.
    pub idle_timeout: Option<Duration>,
    /// Most unconsumed input bytes kept for one connection. A handler that leaves this much
    /// unconsumed (a request that never ends) gets its connection closed with
    /// [`Reason::InputLimit`](crate::Reason::InputLimit). Default 64 KiB.
    pub max_input: usize,
    /// Pending output (bytes written by the handler but not yet accepted by the kernel)
    /// above which the reactor stops reading from that peer. Default 256 KiB.
    pub out_high_watermark: usize,
    /// Pending output below which reading resumes after it was paused. Default 64 KiB.
    pub out_low_watermark: usize,
    /// Bytes read from one connection per readiness event before the loop moves on to the
    /// others; the rest is read on the next turn. Keeps one flooding peer from starving
    /// everyone else. Default 256 KiB.
    pub read_budget: usize,
    /// Size of the one read buffer shared by every connection (reads land here first, so an
    /// idle connection owns no input buffer). Default 64 KiB.
    pub read_chunk: usize,
    /// Connections accepted per listener readiness event before the loop serves the others.
    /// Default 64.
    pub accept_batch: usize,
    /// How long a listener pauses after `accept` fails for lack of file descriptors
    /// (`EMFILE`/`ENFILE`) before it tries again. Default 100 ms.
    pub accept_backoff: Duration,
    /// How long [`Handle::shutdown`](crate::Handle::shutdown) waits for pending output to
    /// drain before closing connections regardless. Default 5 s.
    pub shutdown_timeout: Duration,
    /// When a connection the handler closes lingers: sends FIN, then reads and discards
    /// until the peer's EOF or `linger_timeout`, instead of closing at once. See [`Linger`]
    /// for the three policies and what each risks. Default [`Linger::WhenNeeded`].
    pub linger: Linger,
    /// How long a lingering connection (see [`linger`](Config::linger)) keeps reading (and
    /// discarding) after sending FIN, so the peer gets the last reply instead of a reset.
    /// Default 2 s.
    pub linger_timeout: Duration,
    /// Worker threads of the offload pool, started on the first
    /// [`Cx::offload`](crate::Cx::offload); `0` means one per available CPU. Default 0.
    pub offload_threads: usize,
    /// Jobs that may wait for an offload worker; beyond that `offload` returns
    /// [`OffloadError::Busy`](crate::OffloadError::Busy). Default 1,024.
    pub offload_queue: usize,
    /// Events fetched per `poll` call. Default 1,024.
    pub events_capacity: usize,
    /// Set `TCP_NODELAY` on TCP connections, accepted, connected or adopted (lower latency
    /// for small messages). Accepted sockets get it from their listener where the kernel
    /// passes it on (Linux: one `setsockopt` per listener, none per connection), and one by
    /// one elsewhere. Default `true`.
    pub nodelay: bool,
    /// Listen backlog passed to `listen(2)`. Default 1,024.
    pub backlog: i32,
    /// How long an outbound connect ([`Reactor::connect`](crate::Reactor::connect),
    /// [`Cx::connect`](crate::Cx::connect)) may take before the connection is closed with
    /// [`Reason::ConnectTimeout`](crate::Reason::ConnectTimeout). Default 10 s.
    pub connect_timeout: Duration,
    /// Messages and streams other threads may have waiting for this reactor (through a
    /// [`Sender`](crate::Sender)); beyond that `send` gives the message back. Bounds the
    /// memory other threads can make the reactor hold. Default 65,536.
    pub remote_queue: usize,
    /// The loop-stall detector: a handler callback that runs longer than this is logged
    /// (a warning naming the callback, the connection and its peer) and counted in
    /// [`Stats::slow_callbacks`](crate::Stats::slow_callbacks). `None` (the default) turns
    /// it off; on, it costs two clock reads per callback.
    pub slow_callback: Option<Duration>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_conns: 1024,
            idle_timeout: None,
            max_input: 64 * 1024,
            out_high_watermark: 256 * 1024,
            out_low_watermark: 64 * 1024,
            read_budget: 256 * 1024,
            read_chunk: 64 * 1024,
            accept_batch: 64,
            accept_backoff: Duration::from_millis(100),
            shutdown_timeout: Duration::from_secs(5),
            linger: Linger::WhenNeeded,
            linger_timeout: Duration::from_secs(2),
            offload_threads: 0,
            offload_queue: 1024,
            events_capacity: 1024,
            nodelay: true,
            backlog: 1024,
            connect_timeout: Duration::from_secs(10),
            remote_queue: 64 * 1024,
            slow_callback: None,
        }
    }
}

impl Config {
    /// Checks that the limits make sense together.
    ///
    /// # Errors
    ///
    /// `InvalidInput` naming the offending field: a zero size or count, a low watermark
    /// above the high one, or a `max_conns` larger than a token can address.
    pub fn validate(&self) -> io::Result<()> {
        let positive = [
            ("max_conns", self.max_conns),
            ("max_input", self.max_input),
            ("out_high_watermark", self.out_high_watermark),
            ("read_budget", self.read_budget),
            ("read_chunk", self.read_chunk),
            ("accept_batch", self.accept_batch),
            ("events_capacity", self.events_capacity),
            ("remote_queue", self.remote_queue),
            ("offload_queue", self.offload_queue),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(invalid(format!("config: {name} must be greater than zero")));
            }
        }
        if self.out_low_watermark > self.out_high_watermark {
            return Err(invalid(format!(
                "config: out_low_watermark ({}) is above out_high_watermark ({})",
                self.out_low_watermark, self.out_high_watermark
            )));
        }
        if self.max_conns > crate::token::MAX_SLOT {
            return Err(invalid(format!(
                "config: max_conns ({}) is above the {} a token can address",
                self.max_conns,
                crate::token::MAX_SLOT
            )));
        }
        if self.idle_timeout == Some(Duration::ZERO) {
            return Err(invalid("config: idle_timeout must be positive (use None to disable)".into()));
        }
        if self.accept_backoff.is_zero() {
            // A zero backoff would retry `accept` every turn while descriptors are exhausted.
            return Err(invalid("config: accept_backoff must be positive".into()));
        }
        if self.backlog <= 0 {
            return Err(invalid("config: backlog must be positive".into()));
        }
        Ok(())
    }
}

/// When a connection closed by its handler ([`Cx::close`](crate::Cx::close), or the input
/// limit) lingers before its socket is closed.
///
/// Closing a TCP socket while unread input sits in it, or while input is still arriving,
/// makes the kernel answer with a reset (RST) instead of a FIN, and a reset throws away
/// what the kernel has not delivered yet: the end of the reply the handler just wrote may
/// never reach the peer, which sees "connection reset" instead. A lingering close prevents
/// that: it sends FIN once the reply is out, then reads and discards until the peer's EOF
/// or [`Config::linger_timeout`], and only then closes (nginx's `lingering_close`). It
/// costs a `shutdown`, one more read and one more event per connection, and keeps the
/// connection's slot for up to the timeout. A peer that has already sent EOF, an
/// [`abort`](crate::Cx::abort), an error, a timeout or shutdown never lingers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Linger {
    /// Never linger: close at once. Cheapest, and risks the reset whenever the peer is
    /// still sending: pipelined requests behind the last answered one, a request body the
    /// handler did not read to its end, a client that sends more before reading its reply.
    Off,
    /// Linger when there is evidence the peer may still send (nginx's `lingering_close on`):
    /// input the handler left unconsumed, input that arrived after the close was asked for,
    /// a socket that may hold unread input (the last read filled its buffer, or a readable
    /// event came while reading was paused), or a handler that said so with
    /// [`Cx::linger_on_close`](crate::Cx::linger_on_close) (a request body it did not read).
    /// Otherwise close at once. The risk left: input that arrives in the instant between
    /// the handler's last read and the close, from a peer that gave no sign it would send
    /// more (an HTTP client pipelining behind a request that asked for the connection to
    /// close). The default: a one-request connection costs no extra system call.
    #[default]
    WhenNeeded,
    /// Linger after every close the handler asks for while the peer has not sent EOF
    /// (nginx's `lingering_close always`). No reply is lost to a peer that sends within
    /// `linger_timeout`; every such close pays the extra `shutdown`, read and event, and a
    /// peer that never closes holds the slot for the whole timeout.
    Always,
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn rejects_inverted_watermarks_and_zero_sizes() {
        let bad = Config { out_low_watermark: 10, out_high_watermark: 5, ..Config::default() };
        let err = bad.validate().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("out_low_watermark"), "{err}");

        let bad = Config { read_chunk: 0, ..Config::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("read_chunk"));

        let bad = Config { idle_timeout: Some(Duration::ZERO), ..Config::default() };
        assert!(bad.validate().is_err());

        let bad = Config { accept_backoff: Duration::ZERO, ..Config::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("accept_backoff"));
    }
}
