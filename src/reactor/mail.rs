//! Messages between connections: on the loop thread (`Cx::send`, `Reactor::send`) and from
//! other threads (`Sender`), and streams handed over from other threads (`Sender::adopt`).
//!
//! ```text
//!   Cx::send / Reactor::send ───────────────────────────────► Shared::mail ──┐
//!   other thread: Sender::send / adopt ─► Inbox (bounded, Mutex) ─► Waker   │
//!                                           └─ loop, when woken: take all ─┬─┘
//!                                                         adopt ◄─ streams ┘
//!   deliver_mail (each turn, after the events): for each message queued before the pass,
//!     recipient live? ─ yes ─► on_message ─ no ─► dropped, counted (Stats::messages_dropped)
//! ```
//!
//! Delivery is never re-entrant: a message sent during a callback is delivered after it
//! returns, and one sent while mail is being delivered waits for the next pass (the next
//! poll does not block while mail waits), so two connections messaging each other cannot
//! hold the loop. Order is kept per sender: one queue, first in first out. A message for a
//! connection that closed — even if its slot was reused since — is dropped by the same
//! generation check that guards events, timers and offload results.
//!
//! Other threads wake the loop through its one `Waker`, once per batch: `wake_pending` is
//! set by the sender that finds it clear, and cleared by the loop before it takes the
//! queue, so a message pushed after the take always wakes the loop again (the offload
//! pool's coalescing, `offload.rs`). The queue is bounded (`Config::remote_queue`): a
//! sender that outruns the loop gets its message back rather than growing memory.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use mio::Waker;

use super::Reactor;
use crate::handler::Handler;
use crate::send_error::SendError;
use crate::stream::Stream;
use crate::token::ConnId;

/// What another thread hands the loop.
enum Inbound<H: Handler> {
    Message(ConnId, H::Msg),
    Adopt(Stream, Box<dyn FnOnce() -> H + Send>),
    Call(RemoteCall<H>),
}

/// Work another thread hands the loop (`Sender::call`).
type RemoteCall<H> = Box<dyn FnOnce(&mut Reactor<H>) + Send>;

/// The queue other threads fill and the loop empties.
pub(super) struct Inbox<H: Handler> {
    queue: Mutex<VecDeque<Inbound<H>>>,
    capacity: usize,
    /// A wake is on its way (or the loop is about to look): senders need not wake again.
    wake_pending: AtomicBool,
    /// The reactor has stopped: refuse everything.
    closed: AtomicBool,
}

impl<H: Handler> Inbox<H> {
    pub(super) fn new(capacity: usize) -> Inbox<H> {
        Inbox {
            queue: Mutex::new(VecDeque::new()),
            capacity,
            wake_pending: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        }
    }

    /// Refuses everything from now on and drops what waits (the reactor stopped).
    pub(super) fn close(&self) {
        // Under the queue's lock, as `push` checks it: a push racing the close either lands
        // before it (and is dropped here) or sees `closed` (and gets its item back).
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        self.closed.store(true, Ordering::SeqCst);
        queue.clear();
    }
}

/// A thread-safe way into a reactor: send messages to its connections, hand it streams to
/// serve. Cheap to clone; get one with [`Reactor::sender`].
///
/// # Examples
///
/// Push a tick to a connection from another thread:
///
/// ```
/// use evloop::{Config, Cx, Handler, Input, Reactor};
/// use std::io::Read;
///
/// struct Ticker;
/// impl Handler for Ticker {
///     type Msg = &'static str;
///     fn on_data(&mut self, input: &mut Input<'_>, _cx: &mut Cx<'_, Self>) {
///         input.consume_all();
///     }
///     fn on_message(&mut self, message: &'static str, cx: &mut Cx<'_, Self>) {
///         cx.write(message.as_bytes());
///     }
/// }
///
/// # fn main() -> std::io::Result<()> {
/// let mut reactor = Reactor::new(Config::default())?;
/// let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
/// let id = reactor.adopt(ours, Ticker)?;
/// let sender = reactor.sender();
/// let handle = reactor.handle();
/// let other = std::thread::spawn(move || {
///     sender.send(id, "tick\n").unwrap();
///     let mut line = [0; 5];
///     (&theirs).read_exact(&mut line).unwrap();
///     handle.shutdown();
///     line
/// });
/// reactor.run()?;
/// assert_eq!(&other.join().unwrap(), b"tick\n");
/// # Ok(())
/// # }
/// ```
pub struct Sender<H: Handler> {
    inbox: Arc<Inbox<H>>,
    waker: Arc<Waker>,
}

impl<H: Handler> Clone for Sender<H> {
    fn clone(&self) -> Self {
        Sender { inbox: Arc::clone(&self.inbox), waker: Arc::clone(&self.waker) }
    }
}

impl<H: Handler> fmt::Debug for Sender<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").field("capacity", &self.inbox.capacity).finish()
    }
}

impl<H: Handler> Sender<H> {
    pub(super) fn new(inbox: Arc<Inbox<H>>, waker: Arc<Waker>) -> Sender<H> {
        Sender { inbox, waker }
    }

    /// Sends `message` to the connection `to`: its [`Handler::on_message`] runs on the loop
    /// thread, in the order this thread sent. Whether `to` is still open cannot be known on
    /// this thread: a message for a connection that is gone by the time it arrives is
    /// dropped on the loop and counted in [`Stats::messages_dropped`](crate::Stats::messages_dropped)
    /// (on the loop thread, [`Reactor::send`] and [`Cx::send`](crate::Cx::send) refuse it
    /// with [`SendError::Gone`] instead).
    ///
    /// # Errors
    ///
    /// [`SendError::Full`] when [`Config::remote_queue`](crate::Config::remote_queue)
    /// items wait already, [`SendError::Closed`] once the reactor has stopped; both give
    /// the message back.
    pub fn send(&self, to: ConnId, message: H::Msg) -> Result<(), SendError<H::Msg>> {
        self.push(Inbound::Message(to, message)).map_err(|e| match e {
            SendError::Full(Inbound::Message(_, m)) => SendError::Full(m),
            SendError::Closed(Inbound::Message(_, m)) => SendError::Closed(m),
            _ => unreachable!("a message comes back as a message"),
        })
    }

    /// Hands a connected stream to the reactor, to be served by the handler `make` builds on
    /// the loop thread (so the handler itself need not be `Send`).
    ///
    /// # Errors
    ///
    /// The stream back, as for [`send`](Sender::send). Failing to adopt it on the loop
    /// (it is not connected) is logged there.
    pub fn adopt<F>(&self, stream: impl Into<Stream>, make: F) -> Result<(), SendError<Stream>>
    where
        F: FnOnce() -> H + Send + 'static,
    {
        self.push(Inbound::Adopt(stream.into(), Box::new(make))).map_err(|e| match e {
            SendError::Full(Inbound::Adopt(s, _)) => SendError::Full(s),
            SendError::Closed(Inbound::Adopt(s, _)) => SendError::Closed(s),
            _ => unreachable!("a stream comes back as a stream"),
        })
    }

    /// Runs `f` on the loop thread with the reactor, after the events of the turn that
    /// takes it, in the order this thread sent: how another thread reaches what has no
    /// connection id — a datagram endpoint ([`Reactor::with_endpoint`]), a reactor timer, a
    /// new listener. A panic in `f` is logged and ends `f` only.
    ///
    /// # Errors
    ///
    /// [`SendError::Full`] or [`SendError::Closed`] as for [`send`](Sender::send) (`f` is
    /// dropped unrun).
    pub fn call<F>(&self, f: F) -> Result<(), SendError<()>>
    where
        F: FnOnce(&mut Reactor<H>) + Send + 'static,
    {
        self.push(Inbound::Call(Box::new(f))).map_err(|e| match e {
            SendError::Full(_) => SendError::Full(()),
            SendError::Closed(_) => SendError::Closed(()),
            SendError::Gone(_) => SendError::Gone(()),
        })
    }

    fn push(&self, item: Inbound<H>) -> Result<(), SendError<Inbound<H>>> {
        {
            let mut queue = self.inbox.queue.lock().unwrap_or_else(PoisonError::into_inner);
            // Checked under the lock `close` takes (regression: a loom model in tests/loom.rs).
            if self.inbox.closed.load(Ordering::SeqCst) {
                return Err(SendError::Closed(item));
            }
            if queue.len() >= self.inbox.capacity {
                return Err(SendError::Full(item));
            }
            queue.push_back(item);
        }
        if !self.inbox.wake_pending.swap(true, Ordering::AcqRel) {
            if let Err(e) = self.waker.wake() {
                log::error!("a sender could not wake the reactor: {e}");
            }
        }
        Ok(())
    }
}

impl<H: Handler> Reactor<H> {
    /// A [`Sender`] for other threads: messages to this reactor's connections, streams to
    /// adopt.
    #[must_use]
    pub fn sender(&self) -> Sender<H> {
        Sender::new(Arc::clone(&self.inbox), Arc::clone(&self.shared.waker))
    }

    /// Sends `message` to the connection `to` from the loop thread, outside any callback
    /// (from a source's callback, a reactor timer, or between `run_once` calls); see
    /// [`Cx::send`](crate::Cx::send).
    ///
    /// # Errors
    ///
    /// [`SendError::Gone`] with the message if `to` is closed (or its slot reused).
    pub fn send(&mut self, to: ConnId, message: H::Msg) -> Result<(), SendError<H::Msg>> {
        self.shared.post(to, message).map_err(SendError::Gone)
    }

    /// Takes what other threads queued: messages join the loop's own mail, streams are
    /// adopted.
    pub(super) fn take_inbox(&mut self) {
        // Cleared before the queue is taken: a push after the take finds it clear and wakes.
        self.inbox.wake_pending.store(false, Ordering::Release);
        let taken = std::mem::take(&mut *self.inbox.queue.lock().unwrap_or_else(PoisonError::into_inner));
        for item in taken {
            match item {
                Inbound::Message(to, message) => {
                    if self.shared.post(to, message).is_err() {
                        log::trace!("message from another thread for a closed connection dropped");
                    }
                }
                Inbound::Adopt(stream, make) => {
                    let handler = make();
                    if let Err(e) = self.adopt(stream, handler) {
                        log::warn!("a stream handed over by another thread could not be adopted: {e}");
                    }
                }
                Inbound::Call(f) => self.defer_call(f),
            }
        }
    }

    /// Delivers the mail queued before this pass, in order; installs connections that
    /// callbacks opened first, so mail for them finds them.
    pub(super) fn deliver_mail(&mut self) {
        self.open_queued();
        for _ in 0..self.shared.mail.len() {
            let Some((to, message)) = self.shared.mail.pop_front() else { break };
            match self.live_slot(to) {
                Some(slot) => {
                    self.shared.stats.messages_delivered += 1;
                    self.callback(slot, "on_message", |handler, cx| handler.on_message(message, cx));
                }
                None => self.shared.stats.messages_dropped += 1,
            }
            self.open_queued();
        }
    }
}
