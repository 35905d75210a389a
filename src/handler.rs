//! The [`Handler`] trait — a connection's protocol as a state machine — and the context
//! ([`Cx`]) and input view ([`Input`]) handed to its callbacks.
//!
//! ```text
//!  reactor ──on_open──────────► Handler ──cx.write(bytes)────────► staged, flushed after the callback
//!          ──on_data(input)───►         ──input.consume(n)──────► unconsumed bytes kept for next time
//!          ──on_eof───────────►         ──cx.close()/abort()────► Draining / Closing (life.rs)
//!          ──on_timer(id)─────►         ──cx.set_timer(after)───► Timers
//!          ──on_drained───────►         ──cx.pause_read()───────► stop reading this peer
//!          ──on_done(result)──►         ──cx.offload(job)───────► worker pool
//!          ──on_message(msg)──►         ──cx.send(id, msg)──────► another connection's on_message
//!                                       ──cx.connect(addr, h)───► a new connection (its own handler)
//!          ──on_close(reason)─►
//! ```
//!
//! Callbacks run on the loop thread and must not block: anything slow goes to
//! [`Cx::offload`], anything later to [`Cx::set_timer`]. Writes are buffered and sent when
//! the callback returns, in one system call; the handler never touches the socket.

use std::fmt;
use std::io;
use std::time::Instant;

use crate::conn::Core;
use crate::flags::Flags;
pub use crate::input::Input;
use crate::life::Life;
use crate::offload::JobError;
use crate::send_error::SendError;
use crate::shared::Shared;
use crate::stats::Reason;
use crate::stream::PeerAddr;
use crate::timer::TimerId;
use crate::token::ConnId;

/// A connection's protocol: one value per connection, called back by the reactor as things
/// happen. Every method but [`on_data`](Handler::on_data) has a default.
///
/// Write it as an explicit state machine — an `enum State` and a `match` in each callback —
/// the way nginx swaps a connection's read handler as a request advances.
///
/// A callback that panics costs its connection only: it is closed with
/// [`Reason::Error`]`(`[`ErrorKind::Other`](std::io::ErrorKind::Other)`)` (logged, counted
/// in [`Stats::closed`](crate::Stats::closed)), and the loop goes on serving everyone else
/// within the same turn; `on_close` is still called.
///
/// # Examples
///
/// An echo server:
///
/// ```
/// use evloop::{Cx, Handler, Input};
///
/// struct Echo;
///
/// impl Handler for Echo {
///     type Msg = ();
///     fn on_data(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
///         cx.write(input.bytes());
///         input.consume_all();
///     }
/// }
/// # let _reactor = evloop::Reactor::<Echo>::new(evloop::Config::default());
/// ```
pub trait Handler: Sized + 'static {
    /// What arrives at this handler from elsewhere: the results of jobs handed to
    /// [`Cx::offload`], and messages other connections (or other threads) send it with
    /// [`Cx::send`], [`Reactor::send`](crate::Reactor::send) or
    /// [`Sender::send`](crate::Sender::send). `()` if the handler needs neither.
    ///
    /// One type for both, because both are "a value for this connection, delivered on the
    /// loop thread later"; an enum of the cases reads naturally in `on_message`/`on_done`.
    /// `Send`, because jobs return it from worker threads and senders on other threads
    /// create it.
    type Msg: Send + 'static;

    /// The connection is ready: accepted, adopted, or (outbound) connected. Greet the
    /// peer here, or arm a first timer.
    fn on_open(&mut self, cx: &mut Cx<'_, Self>) {
        let _ = cx;
    }

    /// New bytes arrived. `input` holds them after whatever earlier calls left unconsumed;
    /// [`consume`](Input::consume) what you handled, and the rest is offered again with the
    /// next bytes. Leaving [`Config::max_input`](crate::Config::max_input) bytes unconsumed
    /// closes the connection with [`Reason::InputLimit`].
    fn on_data(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>);

    /// The peer finished sending (it closed or half-closed its side). The default closes the
    /// connection gracefully: pending output is flushed first, then the socket is closed.
    fn on_eof(&mut self, cx: &mut Cx<'_, Self>) {
        cx.close();
    }

    /// Output that had to wait for the peer to read has now been fully sent. Useful to
    /// produce more output (streaming) only as fast as the peer takes it.
    fn on_drained(&mut self, cx: &mut Cx<'_, Self>) {
        let _ = cx;
    }

    /// A timer set with [`Cx::set_timer`] fired.
    fn on_timer(&mut self, id: TimerId, cx: &mut Cx<'_, Self>) {
        let _ = (id, cx);
    }

    /// A job handed to [`Cx::offload`] finished (or panicked: `Err(JobError::Panicked)`).
    fn on_done(&mut self, result: Result<Self::Msg, JobError>, cx: &mut Cx<'_, Self>) {
        let _ = (result, cx);
    }

    /// A message sent to this connection ([`Cx::send`], [`Reactor::send`](crate::Reactor::send),
    /// [`Sender::send`](crate::Sender::send)). Delivered on the loop thread, never while
    /// another callback of this handler runs, in the order each sender sent them. Also
    /// while an outbound connect is still in progress: writes then wait for it.
    fn on_message(&mut self, message: Self::Msg, cx: &mut Cx<'_, Self>) {
        let _ = (message, cx);
    }

    /// The server is going away: a graceful drain began ([`Reactor::drain`](crate::Reactor::drain),
    /// [`Handle::drain`](crate::Handle::drain); an upgrade's old process). Nothing new will be
    /// accepted; this connection may finish what it is doing and should close when it can —
    /// at once if it is idle between requests, after the answer in flight otherwise (HTTP:
    /// `Connection: close`). Past the drain's deadline it is closed regardless. The default
    /// does nothing: the connection goes on until its peer leaves or the deadline.
    /// [`Cx::going_away`] says the same later, in any callback.
    fn on_going_away(&mut self, cx: &mut Cx<'_, Self>) {
        let _ = cx;
    }

    /// The connection is closed; `self` is dropped right after. `cx` still names the
    /// connection ([`Cx::id`], [`Cx::peer_addr`]) and reaches the others ([`Cx::send`],
    /// [`Cx::connect`]); writes, timers and jobs of a closed connection go nowhere.
    fn on_close(&mut self, reason: Reason, cx: &mut Cx<'_, Self>) {
        let _ = (reason, cx);
    }
}

/// What a handler can do to its connection and the reactor during a callback.
///
/// It borrows two things from the reactor for the length of the callback: this connection,
/// and the loop's services a callback may use (the clock, output, timers, messages, the
/// offload pool, work handed to the reactor). Its methods are written beside what they
/// concern: writing and closing here, timers in `reactor/timers.rs`, offload and `defer` in
/// `reactor/calls.rs`, `connect` and `adopt` in `reactor/open.rs`.
pub struct Cx<'a, H: Handler> {
    core: &'a mut Core,
    shared: &'a mut Shared<H, H::Msg>,
}

impl<H: Handler> fmt::Debug for Cx<'_, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cx").field("id", &self.id()).field("peer", &self.core.peer).finish()
    }
}

impl<'a, H: Handler> Cx<'a, H> {
    /// The context for a callback on the connection `core` (built by the reactor).
    #[inline]
    pub(crate) fn new(core: &'a mut Core, shared: &'a mut Shared<H, H::Msg>) -> Cx<'a, H> {
        Cx { core, shared }
    }

    /// The loop services behind this context, for the parts of `Cx` written beside the
    /// reactor (`reactor/calls.rs`).
    pub(crate) fn shared_mut(&mut self) -> &mut Shared<H, H::Msg> {
        self.shared
    }

    /// This connection and the loop's services at once (for `Cx` methods written beside
    /// the part of the reactor they concern: timers, offload, opening connections).
    pub(crate) fn parts(&mut self) -> (&mut Core, &mut Shared<H, H::Msg>) {
        (self.core, self.shared)
    }

    /// Is the server draining ([`Handler::on_going_away`])? Then a request-response protocol
    /// answers what is in flight and closes, rather than wait for the next request.
    pub fn going_away(&self) -> bool {
        self.shared.going_away
    }

    /// This connection's id: what its timers, jobs and messages are addressed to.
    pub fn id(&self) -> ConnId {
        self.core.id
    }

    /// The peer's address: TCP, or a Unix-domain path.
    pub fn peer_addr(&self) -> &PeerAddr {
        &self.core.peer
    }

    /// The loop's clock: the time the current turn started. Cheaper than `Instant::now()`
    /// and the same for every callback in a turn.
    pub fn now(&self) -> Instant {
        self.shared.now()
    }

    /// Queues `data` for the peer. It is sent when the callback returns (one system call
    /// for everything written in the callback), or later, in order, if the peer is slow.
    ///
    /// Writes after [`close`](Cx::close), [`abort`](Cx::abort) or
    /// [`shutdown_write`](Cx::shutdown_write) are discarded.
    ///
    /// # Examples
    ///
    /// Each line back in capitals; the reply to a line leaves in the line's own turn:
    ///
    /// ```
    /// use evloop::{Config, Cx, Handler, Input, Reactor};
    /// use std::io::{Read, Write};
    ///
    /// struct Upper;
    /// impl Handler for Upper {
    ///     type Msg = ();
    ///     fn on_data(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
    ///         while let Some(line) = input.take_line(b'\n') {
    ///             cx.write(&line.to_ascii_uppercase());
    ///             cx.write(b"\n"); // take_line leaves the delimiter out
    ///         }
    ///     }
    /// }
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let mut reactor = Reactor::new(Config::default())?;
    /// let (ours, mut theirs) = std::os::unix::net::UnixStream::pair()?;
    /// # theirs.set_read_timeout(Some(std::time::Duration::from_secs(10)))?; // a failure fails, not hangs
    /// reactor.adopt(ours, Upper)?;
    /// let handle = reactor.handle();
    /// let client = std::thread::spawn(move || {
    ///     theirs.write_all(b"hello\n").unwrap();
    ///     let mut reply = [0; 6];
    ///     theirs.read_exact(&mut reply).unwrap();
    ///     handle.shutdown();
    ///     reply
    /// });
    /// reactor.run()?;
    /// assert_eq!(&client.join().unwrap(), b"HELLO\n");
    /// # Ok(())
    /// # }
    /// ```
    #[inline]
    pub fn write(&mut self, data: &[u8]) {
        if self.core.can_write_through() {
            // Nothing is queued ahead: stage it in the shared buffer; the reactor writes it
            // straight to the socket after the callback and keeps only what the kernel
            // refused.
            self.shared.stage(data);
        } else {
            self.write_queued(data);
        }
    }

    /// The rest of [`write`](Cx::write), kept out of line so the common case stays small
    /// enough to inline into handlers: queue behind pending output, or discard after a close.
    #[inline(never)]
    fn write_queued(&mut self, data: &[u8]) {
        if !self.shared.queue_output(self.core, data) {
            log::debug!("conn {} write of {} bytes after close discarded", self.id(), data.len());
        }
    }

    /// Sends what this callback has written so far, now rather than when it returns, so
    /// that [`pending_output`](Cx::pending_output) then tells how much the kernel refused.
    /// A handler that streams a large body writes and flushes until output is pending, then
    /// waits for [`Handler::on_drained`] to produce more.
    ///
    /// A write error closes the connection after the callback, with
    /// [`Reason::Error`](crate::Reason::Error).
    pub fn flush(&mut self) {
        if matches!(self.core.life, Life::Closing { .. }) {
            return;
        }
        // Output an earlier callback of this turn left for the turn's flush is ahead of this
        // callback's (which then queued behind it): it goes first, with it.
        let result = if self.core.pending_out() > 0 {
            // What is left waits for the peer: the handler hears of it (`on_drained`).
            self.shared.write_pending(self.core).map(|_| {
                if self.core.pending_out() > 0 {
                    self.core.flags.insert(Flags::DRAINED_PENDING);
                }
            })
        } else {
            self.shared.write_staged(self.core)
        };
        if let Err(e) = result {
            self.core.life.fail(Reason::Error(e.kind()));
        }
    }

    /// Output written but not yet taken by the kernel, in bytes (including this callback's).
    pub fn pending_output(&self) -> usize {
        self.core.pending_out() + self.shared.staged_len()
    }

    /// Closes the connection gracefully: no more input is read; pending output is flushed,
    /// then the socket is closed and [`Handler::on_close`] called.
    ///
    /// # Examples
    ///
    /// A one-shot greeting (the classic "daytime" server): write, close; the greeting is
    /// sent before the FIN.
    ///
    /// ```
    /// use evloop::{Config, Cx, Handler, Input, Reactor};
    /// use std::io::Read;
    ///
    /// struct Daytime;
    /// impl Handler for Daytime {
    ///     type Msg = ();
    ///     fn on_open(&mut self, cx: &mut Cx<'_, Self>) {
    ///         cx.write(b"it is now\n");
    ///         cx.close();
    ///     }
    ///     fn on_data(&mut self, input: &mut Input<'_>, _cx: &mut Cx<'_, Self>) {
    ///         input.consume_all();
    ///     }
    /// }
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let mut reactor = Reactor::new(Config::default())?;
    /// let (ours, mut theirs) = std::os::unix::net::UnixStream::pair()?;
    /// # theirs.set_read_timeout(Some(std::time::Duration::from_secs(10)))?; // a failure fails, not hangs
    /// reactor.adopt(ours, Daytime)?;
    /// let handle = reactor.handle();
    /// let client = std::thread::spawn(move || {
    ///     let mut everything = String::new();
    ///     theirs.read_to_string(&mut everything).unwrap(); // until the close
    ///     handle.shutdown();
    ///     everything
    /// });
    /// reactor.run()?;
    /// assert_eq!(client.join().unwrap(), "it is now\n");
    /// # Ok(())
    /// # }
    /// ```
    pub fn close(&mut self) {
        self.core.life.close_by_handler();
    }

    /// Says the peer may still be sending when this connection closes — a request body the
    /// handler answered without reading to its end, a protocol error in mid-stream — so
    /// that under [`Linger::WhenNeeded`](crate::Linger::WhenNeeded) (the default) the close
    /// lingers: FIN after the last reply, then input read and discarded until the peer's
    /// EOF or [`Config::linger_timeout`](crate::Config::linger_timeout), so the reply is not
    /// destroyed by a reset. Call it before or after [`close`](Cx::close). The reactor sees
    /// the evidence it has itself (input left unconsumed, a read that filled its buffer);
    /// this is for what only the protocol knows. No effect under `Linger::Off` or
    /// `Linger::Always`.
    pub fn linger_on_close(&mut self) {
        self.core.flags.insert(Flags::PEER_MAY_SEND);
    }

    /// Closes the connection at the end of this callback, discarding pending output.
    pub fn abort(&mut self) {
        self.core.life.abort_by_handler();
        // What this callback wrote so far is discarded now; later writes are refused.
        self.shared.discard_staged();
    }

    /// Sends FIN once pending output is flushed (`shutdown(Write)`), and keeps reading: the
    /// peer sees end-of-stream but can still send.
    pub fn shutdown_write(&mut self) {
        self.core.life.shutdown_write();
    }

    /// Stops reading from the peer until [`resume_read`](Cx::resume_read). The kernel's
    /// buffers fill and TCP flow control slows the peer down.
    pub fn pause_read(&mut self) {
        self.core.flags.insert(Flags::PAUSED_BY_HANDLER);
    }

    /// Resumes reading after [`pause_read`](Cx::pause_read). Bytes that arrived meanwhile
    /// are delivered on the next loop turn.
    pub fn resume_read(&mut self) {
        if self.core.flags.has(Flags::PAUSED_BY_HANDLER) {
            self.core.flags.remove(Flags::PAUSED_BY_HANDLER);
            self.shared.defer_read(self.core);
        }
    }

    /// Exempts this connection from [`Config::idle_timeout`](crate::Config::idle_timeout)
    /// (`true`), or subjects it again (`false`, the default): for a connection that is quiet
    /// by design, a subscriber waiting for publications (Redis never times out its pub/sub
    /// clients). Its slot is then held until the peer or the handler closes it.
    pub fn set_idle_exempt(&mut self, exempt: bool) {
        if exempt {
            self.core.flags.insert(Flags::IDLE_EXEMPT);
        } else {
            self.core.flags.remove(Flags::IDLE_EXEMPT);
        }
    }

    /// Marks this connection as safe to close while it waits for a new request (`true`: an
    /// HTTP keep-alive connection between requests, whose client will retry on a new one) or
    /// not (`false`, the default). When the reactor is at
    /// [`Config::max_conns`](crate::Config::max_conns) and a new client waits, it closes the
    /// reusable connection that has been quiet longest ([`Reason::Reclaimed`]) to admit it,
    /// rather than leave every new client locked out by idle ones (nginx's reusable
    /// connections). Without this mark only a connection whose peer has sent nothing since
    /// it was accepted, for a second or more, is reclaimed: a session that has talked never
    /// is, for a client of a stream protocol may be quiet between requests.
    pub fn set_reusable(&mut self, reusable: bool) {
        if reusable {
            self.core.flags.insert(Flags::REUSABLE);
        } else {
            self.core.flags.remove(Flags::REUSABLE);
        }
    }

    /// Stops delivering input for this turn: the unconsumed input (and anything still in
    /// the socket) is offered again on the next turn, after the other connections have been
    /// served. A handler that works through pipelined requests yields after a batch so one
    /// client cannot monopolise the loop.
    pub fn yield_now(&mut self) {
        self.core.flags.insert(Flags::YIELDED);
        self.shared.defer_read(self.core);
    }

    /// Sends `message` to the connection `to` on this reactor: its
    /// [`Handler::on_message`] runs after this callback returns, in the order sent. Sending
    /// to this connection itself works too (a way to continue after the current callback).
    ///
    /// # Errors
    ///
    /// [`SendError::Gone`] with the message if `to` is closed (or never existed, or its slot
    /// now holds another connection): counted in
    /// [`Stats::messages_dropped`](crate::Stats::messages_dropped). A connection that
    /// closes after the send and before delivery drops the message the same way.
    ///
    /// # Examples
    ///
    /// A relay: what one connection receives, its partner writes; `?` carries a closed
    /// partner out as an error, and the relay closes.
    ///
    /// ```
    /// use evloop::{Config, ConnId, Cx, Handler, Input, Reactor, SendError};
    /// use std::io::{Read, Write};
    /// use std::os::unix::net::UnixStream;
    /// use std::time::Duration;
    ///
    /// struct Relay {
    ///     partner: Option<ConnId>,
    /// }
    ///
    /// impl Relay {
    ///     fn pass(&mut self, bytes: &[u8], cx: &mut Cx<'_, Self>) -> Result<(), SendError<Vec<u8>>> {
    ///         if let Some(partner) = self.partner {
    ///             cx.send(partner, bytes.to_vec())?;
    ///         }
    ///         Ok(())
    ///     }
    /// }
    ///
    /// impl Handler for Relay {
    ///     type Msg = Vec<u8>;
    ///     fn on_data(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
    ///         if let Err(e) = self.pass(input.bytes(), cx) {
    ///             println!("{}: {e}", cx.id()); // "#0.2: the connection is closed"
    ///             cx.close();
    ///         }
    ///         input.consume_all();
    ///     }
    ///     fn on_message(&mut self, bytes: Vec<u8>, cx: &mut Cx<'_, Self>) {
    ///         cx.write(&bytes);
    ///     }
    /// }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut reactor = Reactor::new(Config::default())?;
    /// let (a, mut a_peer) = UnixStream::pair()?;
    /// let (b, mut b_peer) = UnixStream::pair()?;
    /// let b_id = reactor.adopt(b, Relay { partner: None })?;
    /// reactor.adopt(a, Relay { partner: Some(b_id) })?;
    ///
    /// a_peer.write_all(b"hi")?;
    /// let mut got = [0; 2];
    /// b_peer.set_read_timeout(Some(Duration::from_millis(10)))?;
    /// while b_peer.read(&mut got).is_err() {
    ///     reactor.run_once(Some(Duration::from_millis(10)))?;
    /// }
    /// assert_eq!(&got, b"hi");
    ///
    /// drop(b_peer); // b's peer hangs up: b closes, and the relay's next send fails
    /// a_peer.write_all(b"again")?;
    /// a_peer.set_read_timeout(Some(Duration::from_millis(10)))?;
    /// let mut rest = Vec::new();
    /// loop {
    ///     reactor.run_once(Some(Duration::from_millis(10)))?;
    ///     match a_peer.read_to_end(&mut rest) {
    ///         Ok(_) => break, // EOF: the relay closed
    ///         Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
    ///         Err(e) => return Err(e.into()),
    ///     }
    /// }
    /// assert_eq!(reactor.stats().messages_dropped, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn send(&mut self, to: ConnId, message: H::Msg) -> Result<(), SendError<H::Msg>> {
        self.shared.post(to, message).map_err(SendError::Gone)
    }

    /// From now on, input from this connection's peer is written to the connection `to`
    /// (on this reactor) as it arrives, from the read buffer, with no copy and no
    /// [`Handler::on_data`]: the data path of a proxy or a tunnel. Input this connection
    /// holds unconsumed goes first. Backpressure crosses over: while `to` has more than
    /// [`Config::out_high_watermark`](crate::Config::out_high_watermark) bytes pending, this
    /// connection is not read, until `to` drains below the low watermark (or closes).
    ///
    /// Everything else stays with the handler: [`Handler::on_eof`] when the peer finishes
    /// (carry the half-close over with a message, say), timers, messages, closing. Forwarding
    /// ends by [`stop_forwarding`](Cx::stop_forwarding), or by itself when `to` closes or
    /// stops taking output (closing, write side shut down): later input goes to `on_data`
    /// again, and bytes read after `to` failed are lost with it. `to` may still be
    /// connecting: bytes wait in its output buffer, within the watermarks.
    ///
    /// # Errors
    ///
    /// `NotFound` if `to` is closed (or never existed), `InvalidInput` if it is this
    /// connection (an echo is `on_data` writing its input back).
    ///
    /// # Examples
    ///
    /// Two streams joined: what one's peer writes, the other's peer reads.
    ///
    /// ```
    /// use evloop::{Config, ConnId, Cx, Handler, Input, Reactor};
    /// use std::io::{Read, Write};
    /// use std::os::unix::net::UnixStream;
    /// use std::time::Duration;
    ///
    /// /// One side of a pair; its message names the partner.
    /// struct Side;
    /// impl Handler for Side {
    ///     type Msg = ConnId;
    ///     fn on_message(&mut self, partner: ConnId, cx: &mut Cx<'_, Self>) {
    ///         if cx.forward_to(partner).is_err() {
    ///             cx.close(); // the partner is gone already
    ///         }
    ///     }
    ///     // Input before the pairing is kept (forwarded first); none comes after it.
    ///     fn on_data(&mut self, _input: &mut Input<'_>, _cx: &mut Cx<'_, Self>) {}
    /// }
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let mut reactor = Reactor::new(Config::default())?;
    /// let (a, mut a_peer) = UnixStream::pair()?;
    /// let (b, mut b_peer) = UnixStream::pair()?;
    /// let (a_id, b_id) = (reactor.adopt(a, Side)?, reactor.adopt(b, Side)?);
    /// reactor.send(a_id, b_id).unwrap();
    /// reactor.send(b_id, a_id).unwrap();
    ///
    /// a_peer.write_all(b"ping")?;
    /// b_peer.set_nonblocking(true)?;
    /// let mut got = Vec::new();
    /// while got.len() < 4 {
    ///     reactor.run_once(Some(Duration::from_millis(10)))?;
    ///     let mut buf = [0; 4];
    ///     match b_peer.read(&mut buf) {
    ///         Ok(n) => got.extend_from_slice(&buf[..n]),
    ///         Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
    ///         Err(e) => return Err(e),
    ///     }
    /// }
    /// assert_eq!(got, b"ping");
    /// # Ok(())
    /// # }
    /// ```
    pub fn forward_to(&mut self, to: ConnId) -> io::Result<()> {
        if to == self.core.id {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "a connection cannot forward to itself"));
        }
        if !self.shared.is_live(to) {
            return Err(io::Error::new(io::ErrorKind::NotFound, "the connection to forward to is closed"));
        }
        self.core.forward = Some(to);
        self.core.flags.insert(Flags::FORWARDING);
        // Input held from before, or left in the socket by this callback's caller, would
        // wait for an event that may not come: go back for it.
        self.shared.defer_read(self.core);
        Ok(())
    }

    /// Ends [`forward_to`](Cx::forward_to): input goes to [`Handler::on_data`] again.
    pub fn stop_forwarding(&mut self) {
        if self.core.forward.take().is_some() {
            self.core.flags.remove(Flags::FORWARDING | Flags::PAUSED_BY_PARTNER);
            self.shared.defer_read(self.core);
        }
    }

    /// Where this connection's input is being forwarded, if it is (see
    /// [`forward_to`](Cx::forward_to); `None` also once forwarding ended by itself).
    pub fn forwarding_to(&self) -> Option<ConnId> {
        self.core.forward
    }
}
