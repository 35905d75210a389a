//! Counters that show what the reactor did, for tests, dashboards and curious users.
//!
//! ```text
//! reactor (plain u64 += 1 on the hot path) ──once per turn──► Arc<Mutex<Stats>> ──► Handle::stats()
//! ```
//!
//! The loop thread bumps plain integers, never atomics, so counting costs nothing measurable;
//! a copy is published once per loop turn for other threads to read. This module does not
//! log or aggregate over time: read two snapshots and subtract.

use std::fmt;
use std::io;

/// Why a connection was closed. Handed to [`Handler::on_close`](crate::Handler::on_close)
/// and counted in [`Stats::closed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// The peer finished sending (EOF) and the connection then closed normally.
    PeerClosed,
    /// The handler closed it ([`Cx::close`](crate::Cx::close) or [`Cx::abort`](crate::Cx::abort))
    /// while the peer was still sending.
    Local,
    /// Nothing was read or written for [`Config::idle_timeout`](crate::Config::idle_timeout).
    IdleTimeout,
    /// A read or write failed (reset by peer, broken pipe, ...).
    Error(io::ErrorKind),
    /// The handler left [`Config::max_input`](crate::Config::max_input) bytes unconsumed.
    InputLimit,
    /// The reactor shut down.
    Shutdown,
    /// An outbound connect failed: refused, unreachable, ... (the error says which).
    ConnectFailed(io::ErrorKind),
    /// The reactor was full and closed this idle connection, which its handler had marked
    /// reusable ([`Cx::set_reusable`](crate::Cx::set_reusable)), to admit a new client.
    Reclaimed,
    /// An outbound connect did not complete within
    /// [`Config::connect_timeout`](crate::Config::connect_timeout).
    ConnectTimeout,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::PeerClosed => f.write_str("closed by peer"),
            Reason::Local => f.write_str("closed by handler"),
            Reason::IdleTimeout => f.write_str("idle timeout"),
            Reason::Error(kind) => write!(f, "I/O error: {kind}"),
            Reason::InputLimit => f.write_str("input limit exceeded"),
            Reason::Shutdown => f.write_str("reactor shutdown"),
            Reason::ConnectFailed(kind) => write!(f, "connect failed: {kind}"),
            Reason::ConnectTimeout => f.write_str("connect timed out"),
            Reason::Reclaimed => f.write_str("reclaimed for a new client"),
        }
    }
}

/// Connections closed, by [`Reason`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClosedBy {
    /// [`Reason::PeerClosed`].
    pub peer: u64,
    /// [`Reason::Local`].
    pub local: u64,
    /// [`Reason::IdleTimeout`].
    pub idle_timeout: u64,
    /// [`Reason::Error`].
    pub error: u64,
    /// [`Reason::InputLimit`].
    pub input_limit: u64,
    /// [`Reason::ConnectFailed`] and [`Reason::ConnectTimeout`].
    pub connect_failed: u64,
    /// [`Reason::Reclaimed`].
    pub reclaimed: u64,
    /// [`Reason::Shutdown`].
    pub shutdown: u64,
}

impl ClosedBy {
    /// All closed connections, whatever the reason.
    pub fn total(&self) -> u64 {
        self.peer
            + self.local
            + self.idle_timeout
            + self.error
            + self.input_limit
            + self.shutdown
            + self.connect_failed
    }

    /// Both counts added together.
    pub fn merged(self, other: ClosedBy) -> ClosedBy {
        ClosedBy {
            peer: self.peer + other.peer,
            local: self.local + other.local,
            idle_timeout: self.idle_timeout + other.idle_timeout,
            error: self.error + other.error,
            input_limit: self.input_limit + other.input_limit,
            shutdown: self.shutdown + other.shutdown,
            connect_failed: self.connect_failed + other.connect_failed,
            reclaimed: self.reclaimed + other.reclaimed,
        }
    }

    pub(crate) fn count(&mut self, reason: Reason) {
        let counter = match reason {
            Reason::PeerClosed => &mut self.peer,
            Reason::Local => &mut self.local,
            Reason::IdleTimeout => &mut self.idle_timeout,
            Reason::Error(_) => &mut self.error,
            Reason::InputLimit => &mut self.input_limit,
            Reason::Shutdown => &mut self.shutdown,
            Reason::ConnectFailed(_) | Reason::ConnectTimeout => &mut self.connect_failed,
            Reason::Reclaimed => &mut self.reclaimed,
        };
        *counter += 1;
    }
}

/// A snapshot of the reactor's counters. All counts are totals since the reactor was built,
/// except the ones documented as current values. [`Reactor::stats`](crate::Reactor::stats)
/// on the loop, [`Handle::stats`](crate::Handle::stats) from anywhere (as of the end of the
/// latest turn); [`Workers::stats`](crate::workers::Workers::stats) adds the workers' up.
///
/// # Examples
///
/// ```
/// use evloop::{Config, Cx, Handler, Input, Reactor};
/// use std::io::Write;
///
/// struct Sink;
/// impl Handler for Sink {
///     type Msg = ();
///     fn on_data(&mut self, input: &mut Input<'_>, _cx: &mut Cx<'_, Self>) {
///         input.consume_all();
///     }
/// }
///
/// # fn main() -> std::io::Result<()> {
/// let mut reactor = Reactor::new(Config::default())?;
/// let (ours, mut theirs) = std::os::unix::net::UnixStream::pair()?;
/// reactor.adopt(ours, Sink)?;
/// theirs.write_all(b"twelve bytes")?;
/// drop(theirs);
/// while reactor.stats().active > 0 {
///     reactor.run_once(Some(std::time::Duration::from_millis(10)))?;
/// }
/// let stats = reactor.stats();
/// assert_eq!((stats.adopted, stats.bytes_in, stats.closed.peer), (1, 12, 1));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Loop turns (one `poll` each).
    pub turns: u64,
    /// Connections accepted.
    pub accepted: u64,
    /// Outbound connections established ([`Reactor::connect`](crate::Reactor::connect)).
    pub connected: u64,
    /// Streams adopted ([`Reactor::adopt`](crate::Reactor::adopt)).
    pub adopted: u64,
    /// Connections open now (current value).
    pub active: u64,
    /// Connections closed, by reason.
    pub closed: ClosedBy,
    /// `accept` calls that failed (descriptor exhaustion, aborted handshakes, ...).
    pub accept_errors: u64,
    /// Times a listener stopped accepting because of `max_conns` or descriptor exhaustion.
    pub accept_pauses: u64,
    /// Bytes read from peers.
    pub bytes_in: u64,
    /// Bytes written to peers.
    pub bytes_out: u64,
    /// Events and completions dropped because their connection had closed (generation mismatch).
    pub stale_events: u64,
    /// Times a connection's reads were cut off by [`Config::read_budget`](crate::Config::read_budget)
    /// and left for the next turn, so that others could be served.
    pub read_budget_yields: u64,
    /// Connections that lingered before closing: sent FIN, then read until the peer's EOF
    /// or [`Config::linger_timeout`](crate::Config::linger_timeout) (see
    /// [`Linger`](crate::Linger)). The rest of the handler's closes closed at once.
    pub lingered: u64,
    /// Times reading from a peer paused because its pending output passed the high watermark.
    pub backpressure_pauses: u64,
    /// Output bytes buffered in the reactor for all connections now (current value).
    pub out_buffered: u64,
    /// The most output ever buffered for a single connection (a high-water mark).
    pub out_buffered_peak: u64,
    /// Timers pending now, of every kind (current value).
    pub timers: u64,
    /// Timer callbacks delivered to handlers.
    pub timers_fired: u64,
    /// Jobs handed to the offload pool.
    pub offload_submitted: u64,
    /// Jobs refused because the offload queue was full.
    pub offload_rejected: u64,
    /// Offload results delivered to handlers.
    pub offload_completed: u64,
    /// Offload jobs that panicked (reported to their handler as an error).
    pub offload_panics: u64,
    /// Offload jobs dropped without running because their connection had closed.
    pub offload_cancelled: u64,
    /// Embedder source callbacks that panicked (each such source was deregistered).
    pub source_panics: u64,
    /// Messages delivered to handlers ([`Handler::on_message`](crate::Handler::on_message)).
    pub messages_delivered: u64,
    /// Messages dropped because their connection had closed (or was gone when sent).
    pub messages_dropped: u64,
    /// Connections written by the turn's flush step: one per connection per turn, carrying
    /// everything that turn's callbacks other than `on_data` (messages, offload results,
    /// timers) wrote to it. Against [`messages_delivered`](Stats::messages_delivered), the
    /// batching a fan-out got.
    pub batched_writes: u64,
    /// Callbacks that held the loop longer than [`Config::slow_callback`](crate::Config::slow_callback).
    pub slow_callbacks: u64,
    /// Reactor-level timer callbacks run ([`Reactor::set_timer`](crate::Reactor::set_timer)).
    pub loop_timers_fired: u64,
    /// Datagram endpoints' counters ([`Reactor::bind_udp`](crate::Reactor::bind_udp)).
    pub datagrams: DatagramStats,
}

/// What the reactor's datagram endpoints did, all of them together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DatagramStats {
    /// Endpoints open now (current value).
    pub endpoints: u64,
    /// Datagrams delivered to `on_datagram`.
    pub received: u64,
    /// Datagrams the kernel took (at once or from the send queue).
    pub sent: u64,
    /// Bytes in datagrams delivered.
    pub bytes_in: u64,
    /// Bytes in datagrams sent.
    pub bytes_out: u64,
    /// Datagrams longer than `DatagramOptions::max_datagram`: dropped, never delivered cut short.
    pub truncated: u64,
    /// Datagrams dropped on the way out: the send queue was full, or the endpoint closed
    /// with them queued.
    pub dropped: u64,
    /// Errors the sockets reported (ICMP refusals, `sendto` failures), each also given to
    /// `on_error`.
    pub errors: u64,
    /// Datagrams whose `on_datagram` panicked (each dropped; the endpoint goes on).
    pub panics: u64,
    /// The most bytes any endpoint's send queue held (a high-water mark).
    pub queued_peak: u64,
}

impl DatagramStats {
    fn merged(self, other: DatagramStats) -> DatagramStats {
        DatagramStats {
            endpoints: self.endpoints + other.endpoints,
            received: self.received + other.received,
            sent: self.sent + other.sent,
            bytes_in: self.bytes_in + other.bytes_in,
            bytes_out: self.bytes_out + other.bytes_out,
            truncated: self.truncated + other.truncated,
            dropped: self.dropped + other.dropped,
            errors: self.errors + other.errors,
            panics: self.panics + other.panics,
            queued_peak: self.queued_peak.max(other.queued_peak),
        }
    }
}

impl Stats {
    /// Two reactors' counters as one (for [`Workers`](crate::workers::Workers)): totals and
    /// current values add up; the peak is the larger of the two.
    pub fn merged(self, other: Stats) -> Stats {
        Stats {
            turns: self.turns + other.turns,
            accepted: self.accepted + other.accepted,
            connected: self.connected + other.connected,
            adopted: self.adopted + other.adopted,
            active: self.active + other.active,
            closed: self.closed.merged(other.closed),
            accept_errors: self.accept_errors + other.accept_errors,
            accept_pauses: self.accept_pauses + other.accept_pauses,
            bytes_in: self.bytes_in + other.bytes_in,
            bytes_out: self.bytes_out + other.bytes_out,
            stale_events: self.stale_events + other.stale_events,
            read_budget_yields: self.read_budget_yields + other.read_budget_yields,
            lingered: self.lingered + other.lingered,
            backpressure_pauses: self.backpressure_pauses + other.backpressure_pauses,
            out_buffered: self.out_buffered + other.out_buffered,
            out_buffered_peak: self.out_buffered_peak.max(other.out_buffered_peak),
            timers: self.timers + other.timers,
            timers_fired: self.timers_fired + other.timers_fired,
            offload_submitted: self.offload_submitted + other.offload_submitted,
            offload_rejected: self.offload_rejected + other.offload_rejected,
            offload_completed: self.offload_completed + other.offload_completed,
            offload_panics: self.offload_panics + other.offload_panics,
            offload_cancelled: self.offload_cancelled + other.offload_cancelled,
            source_panics: self.source_panics + other.source_panics,
            messages_delivered: self.messages_delivered + other.messages_delivered,
            messages_dropped: self.messages_dropped + other.messages_dropped,
            batched_writes: self.batched_writes + other.batched_writes,
            loop_timers_fired: self.loop_timers_fired + other.loop_timers_fired,
            datagrams: self.datagrams.merged(other.datagrams),
            slow_callbacks: self.slow_callbacks + other.slow_callbacks,
        }
    }
}
