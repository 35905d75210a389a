//! One client connection: the state machine that turns the bytes evloop delivers into
//! commands, runs them against the shared store, and answers in order.
//!
//! ```text
//!            on_data: parse ─► execute ─► reply … (a batch of pipelined commands)
//!   ┌──────────► Serving ───────────────────────────────────────────────────────┐
//!   │              │ 64 commands done: yield_now (the others get a turn first)  │
//!   │              │ 1 MiB of replies unread: pause_read ─► Draining ──┐        │
//!   │              │ QUIT, protocol error: reply, close ─► Closing     │        │
//!   └── on_drained: resume_read ◄──────────────────────────────────────┘        │
//!   on_message (a publication for this subscriber): backlog over --pubsub-limit ?
//!                  disconnect : write                                 (pubsub.rs)
//! ```
//!
//! **Sharing the store without a lock.** Every connection of a reactor runs on the
//! reactor's one thread, and a callback runs to completion before the next starts, so no two
//! handlers ever touch the store at the same time. `Rc<RefCell<Shared>>` says exactly that:
//! `Rc` because the store is shared by the handlers but never crosses a thread (the compiler
//! enforces it: `Rc` is not `Send`), `RefCell` to get `&mut` in a callback, checked at run
//! time (a borrow held across callbacks would panic, and none is). The same `Shared` holds
//! the output buffer, so an idle connection owns no reply buffer of its own.
//!
//! **Pipelining.** A client may send many commands before reading any reply. They are
//! parsed and run in arrival order, their replies gathered in one buffer and handed to the
//! reactor once per batch: one `write` system call for a whole pipeline, as Redis does. A
//! batch ends after [`BATCH`] commands with [`Cx::yield_now`], so a client pipelining a
//! million commands takes turns with everyone else; and a client that sends but never reads
//! is not read from while [`MAX_PENDING`] bytes of its replies wait (Redis instead buffers
//! without limit by default: `client-output-buffer-limit normal 0 0 0`).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use evloop::{Cx, Handler, Input, Reason};

use super::pubsub::{Channels, Publication};

use super::commands::{execute, Ctx, ServerInfo, Session};
use super::reply;
use super::resp::{Argv, Limits, Parser};
use super::store::Store;

/// Commands run per `on_data` call before yielding to the other connections.
const BATCH: usize = 64;
/// Replies waiting for a slow reader above which its commands are no longer read.
const MAX_PENDING: usize = 1024 * 1024;
/// The shared output buffer is freed after a batch that grew it past this.
const KEEP_OUT: usize = 256 * 1024;
/// How often the store is swept for expired keys while few expire. Redis runs its active
/// expiry 10 times a second (`hz 10`) with a time budget, and faster while keys expire
/// faster than a sweep keeps up; so does kv (`Shared::sweep`).
pub const SWEEP_EVERY: Duration = Duration::from_millis(100);
/// How soon the next sweep comes when one stopped on its time budget with keys still
/// expiring fast.
pub const SWEEP_SOON: Duration = Duration::from_millis(10);
/// The longest one sweep holds the loop: at most about a quarter of the loop's time goes to
/// expiry while it races (3 ms every 10 ms), as Redis's slow cycle allows 25 %.
const SWEEP_TIME: Duration = Duration::from_millis(3);
/// Keys one round of sampling may look at before the clock is read again.
const SWEEP_CHUNK: usize = 1000;

/// What the connections of one reactor share (see the module docs for why no lock).
pub struct Shared {
    pub store: Store,
    pub server: ServerInfo,
    pub channels: Channels,
    /// Replies of the batch being served, handed to the reactor at its end.
    out: Vec<u8>,
}

impl Shared {
    pub fn new(server: ServerInfo) -> Shared {
        Shared { store: Store::new(), server, channels: Channels::default(), out: Vec::new() }
    }

    /// The active expiry, run by a reactor-level timer (main.rs), so an idle server reclaims
    /// expired keys too: chunks of sampling while more than a quarter of each was expired,
    /// for [`SWEEP_TIME`] at most. Returns whether it stopped on that budget with keys still
    /// expiring fast: then the next sweep comes after [`SWEEP_SOON`], not [`SWEEP_EVERY`],
    /// so reclaiming keeps pace with keys written with short lives (it reclaimed 2,000 keys
    /// a second before: a workload writing faster grew without bound).
    pub fn sweep(&mut self, now: Instant) -> bool {
        let started = Instant::now();
        let mut removed = 0;
        let busy = loop {
            let got = self.store.sweep(now, SWEEP_CHUNK);
            removed += got;
            if got * 4 < SWEEP_CHUNK {
                break false; // few expired in this chunk: probably few left
            }
            if started.elapsed() >= SWEEP_TIME {
                break true;
            }
        };
        if removed > 0 {
            log::debug!("sweep removed {removed} expired keys");
        }
        busy
    }
}

/// Where a connection is in its conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading commands and answering them.
    Serving,
    /// Its replies pile up unread: reading is paused until they drain.
    Draining,
    /// The last reply is on its way (after `QUIT` or a protocol error); nothing more is read.
    Closing,
}

/// One client's protocol state machine.
pub struct KvConn {
    shared: Rc<RefCell<Shared>>,
    parser: Parser,
    argv: Argv,
    session: Session,
    state: State,
    /// Largest request held while incomplete (also the reactor's `max_input`).
    max_query: usize,
    /// Unread publications past which a subscriber is disconnected.
    pubsub_limit: usize,
    /// Counted among the clients (`ServerInfo::clients`): false for one refused at
    /// `--max-clients`.
    counted: bool,
    /// Complete commands wait in the held input: the batch was cut short (a yield) or
    /// replies piled up (`Draining`). A half-close then waits for them (`on_eof`).
    holding: bool,
    /// The client has half-closed: close once every command it sent is answered.
    peer_finished: bool,
}

impl KvConn {
    pub fn new(shared: Rc<RefCell<Shared>>, limits: Limits, max_query: usize, pubsub_limit: usize) -> KvConn {
        KvConn {
            shared,
            parser: Parser::new(limits),
            argv: Argv::default(),
            session: Session::default(),
            state: State::Serving,
            counted: false,
            holding: false,
            peer_finished: false,
            max_query,
            pubsub_limit,
        }
    }

    /// Runs the commands that are complete in `input`, until the batch is full, replies
    /// pile up, a command ends the conversation, or the input runs out.
    fn serve(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
        let mut shared = self.shared.borrow_mut();
        let Shared { store, server, channels, out } = &mut *shared;
        let mut served = 0;
        self.holding = false;
        while self.state == State::Serving {
            if served == BATCH {
                if !input.is_empty() {
                    cx.yield_now(); // the rest next turn, after the other connections
                    self.holding = true;
                }
                break;
            }
            if out.len() + cx.pending_output() >= MAX_PENDING {
                cx.write(out);
                out.clear();
                cx.flush();
                if cx.pending_output() > 0 {
                    self.state = State::Draining;
                    cx.pause_read();
                    self.holding = !input.is_empty();
                    break;
                }
            }
            match self.parser.parse(input.bytes(), &mut self.argv) {
                Ok(Some(len)) => {
                    input.consume(len);
                    served += 1; // blank lines count too: a flood of them is work as well
                    if self.argv.is_empty() {
                        continue;
                    }
                    let session = &mut self.session;
                    execute(&mut Ctx { store, channels, session, server, now: cx.now(), out }, &self.argv);
                    for (subscriber, publication) in session.outbox.drain(..) {
                        // A subscriber closing this very turn is still listed until its
                        // on_close: the message is dropped (and counted) by the reactor.
                        let _ = cx.send(subscriber, publication);
                    }
                    if session.close_after_reply {
                        self.state = State::Closing;
                    }
                    if std::mem::take(&mut session.shutdown_requested) {
                        // Nothing after SHUTDOWN runs, as in Redis. A callback cannot stop
                        // the reactor that is calling it; a deferred call can, once the
                        // callback has returned.
                        self.state = State::Closing;
                        cx.defer(|reactor| reactor.handle().shutdown());
                    }
                }
                Ok(None) => {
                    // The reactor would close silently at `max_input`; say why first.
                    if input.len() >= self.max_query {
                        let message = format!("query buffer over {} bytes", self.max_query);
                        refuse(&mut self.state, out, &message, cx);
                    }
                    break;
                }
                Err(error) => refuse(&mut self.state, out, &error.0, cx),
            }
        }
        if !out.is_empty() {
            cx.write(out);
            out.clear();
        }
        if self.state == State::Closing || (self.peer_finished && !self.holding) {
            // After the replies: a close discards later writes. (A client that half-closed
            // after pipelining is answered to its last command first.)
            cx.close();
        }
        // A subscriber waits for publications, quiet by design: no idle timeout for it (as
        // Redis never times out its pub/sub clients); unsubscribed, the timeout applies again.
        cx.set_idle_exempt(self.session.is_subscribed());
        if out.capacity() > KEEP_OUT {
            *out = Vec::new();
        }
        if self.parser.is_idle() {
            self.argv.shrink();
        }
    }
}

/// `-ERR Protocol error: ...`, then close: after bad framing, nothing that follows can be
/// trusted to start a command (Redis does the same).
fn refuse(state: &mut State, out: &mut Vec<u8>, message: &str, cx: &mut Cx<'_, KvConn>) {
    log::debug!("conn {} protocol error: {message}", cx.id());
    reply::error(out, &format!("ERR Protocol error: {message}"));
    *state = State::Closing;
}

impl Handler for KvConn {
    /// A publication for this connection, a subscriber.
    type Msg = Publication;

    fn on_open(&mut self, cx: &mut Cx<'_, Self>) {
        let mut shared = self.shared.borrow_mut();
        if shared.server.clients >= shared.server.max_clients {
            // Redis's answer at maxclients: refused, not queued, and never another client's
            // slot taken (the reactor's own cap, a little higher, bounds the refusals).
            log::debug!("conn {}: refused, {} clients already", cx.id(), shared.server.clients);
            cx.write(b"-ERR max number of clients reached\r\n");
            self.state = State::Closing;
            cx.close();
            return;
        }
        self.counted = true;
        shared.server.accepted += 1;
        shared.server.clients += 1;
        self.session.id = shared.server.accepted;
        self.session.conn = Some(cx.id());
    }

    fn on_message(&mut self, publication: Publication, cx: &mut Cx<'_, Self>) {
        if !self.session.is_subscribed() || self.state == State::Closing {
            return; // unsubscribed since it was sent
        }
        if cx.pending_output() + publication.len() > self.pubsub_limit {
            log::warn!(
                "client {} ({}) disconnected: more than {} bytes of publications unread",
                self.session.id,
                cx.peer_addr(),
                self.pubsub_limit
            );
            self.state = State::Closing;
            cx.abort();
            return;
        }
        cx.write(&publication);
    }

    fn on_data(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
        match self.state {
            State::Serving => self.serve(input, cx),
            // Paused or closing: leave the bytes where they are.
            State::Draining | State::Closing => {}
        }
    }

    /// The client half-closed (`nc -N`, a pipelining script): the commands it sent before
    /// still get their replies, then the connection closes (the default `on_eof` closed at
    /// once and dropped the held commands: 1,216 replies of 2,000 in the issue's test).
    fn on_eof(&mut self, cx: &mut Cx<'_, Self>) {
        self.peer_finished = true;
        if !self.holding || self.state == State::Closing {
            cx.close();
        }
    }

    fn on_drained(&mut self, cx: &mut Cx<'_, Self>) {
        if self.state == State::Draining {
            self.state = State::Serving;
            cx.resume_read(); // held commands are offered again
        }
    }

    fn on_close(&mut self, reason: Reason, cx: &mut Cx<'_, Self>) {
        log::debug!("client {} closed: {reason:?}", self.session.id);
        let mut shared = self.shared.borrow_mut();
        if self.counted {
            shared.server.clients -= 1;
        }
        shared.channels.drop_subscriber(cx.id(), &self.session);
    }
}
