//! Every way a connection enters the table — accepted, connected out, adopted — and the
//! end of an outbound connect.
//!
//! ```text
//!   accept.rs ───────────────────────────────┐
//!   Reactor::connect / connect_unix / adopt ─┼─► install: register, Core, timers ──► on_open
//!   Cx::connect / adopt (queued in Shared) ──┘         │ (connecting: Life::Connecting, WRITE_BLOCKED,
//!     └─ open_queued, when the callback returns         │  connect timer; on_open waits)
//!                                                       ▼
//!   writable / error event ──► connect_ready: SO_ERROR? ─ yes ─► close (ConnectFailed)
//!                                              │ no: peer known? ─ no ─► keep waiting
//!                                              └ yes ─► Open: idle timer, on_open, queued output
//!   connect timer ──► close (ConnectTimeout)
//! ```
//!
//! A connection opened from inside a callback gets its slot at once (`SlotIds::reserve`,
//! see `slots.rs`) and is installed when that callback returns: the table is borrowed
//! while a callback runs. An accepted or adopted connection is ready at once; a connecting
//! one reads nothing and queues what is written to it until the kernel reports the connect
//! done, the way libuv's `uv_tcp_connect` and gnet's client report it on the first
//! writable event.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use mio::Interest;

use super::Reactor;
use crate::conn::{Conn, Core};
use crate::flags::Flags;
use crate::handler::{Cx, Handler};
use crate::life::Life;
use crate::shared::{Opening, Origin, TimerOwner};
use crate::stats::Reason;
use crate::stream::{PeerAddr, Stream};
use crate::timer::deadline_after;
use crate::token::ConnId;

impl<H: Handler> Cx<'_, H> {
    /// Opens an outbound TCP connection served by `handler`: its [`Handler::on_open`] runs
    /// once the connect completes; a refused, unreachable or timed-out connect ends in its
    /// [`Handler::on_close`] with [`Reason::ConnectFailed`] or [`Reason::ConnectTimeout`].
    /// It has the same buffering, limits, timers and offload as an accepted connection.
    /// Returns its id at once, so messages can be sent to it before it is established.
    ///
    /// # Errors
    ///
    /// Creating the socket or starting the connect failed at once (no descriptors left,
    /// no route): `handler` is dropped without callbacks.
    ///
    /// # Examples
    ///
    /// A client connection opened from a server's callback: each request line is looked
    /// up on a backend, and its answer relayed back (the backend here is a thread).
    ///
    /// ```
    /// use evloop::{Config, ConnId, Cx, Handler, Input, Reactor, Reason};
    /// use std::io::{BufRead, BufReader, Read, Write};
    /// use std::net::SocketAddr;
    ///
    /// enum Side {
    ///     Front { backend: SocketAddr },
    ///     Back { front: ConnId, question: Vec<u8> },
    /// }
    /// impl Handler for Side {
    ///     type Msg = Vec<u8>;
    ///     fn on_open(&mut self, cx: &mut Cx<'_, Self>) {
    ///         if let Side::Back { question, .. } = self {
    ///             cx.write(question); // connected: ask
    ///         }
    ///     }
    ///     fn on_data(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
    ///         match self {
    ///             Side::Front { backend } => {
    ///                 while let Some(line) = input.take_line(b'\n') {
    ///                     let question = [line, b"\n"].concat();
    ///                     let back = Side::Back { front: cx.id(), question };
    ///                     if let Err(e) = cx.connect(*backend, back) {
    ///                         cx.write(format!("backend unreachable: {e}\n").as_bytes());
    ///                     }
    ///                 }
    ///             }
    ///             Side::Back { front, .. } => {
    ///                 let _ = cx.send(*front, input.bytes().to_vec()); // the answer, to the front
    ///                 input.consume_all();
    ///                 cx.close();
    ///             }
    ///         }
    ///     }
    ///     fn on_message(&mut self, answer: Vec<u8>, cx: &mut Cx<'_, Self>) {
    ///         cx.write(&answer);
    ///     }
    ///     fn on_close(&mut self, reason: Reason, _cx: &mut Cx<'_, Self>) {
    ///         if let (Side::Back { .. }, Reason::ConnectFailed(e)) = (self, reason) {
    ///             eprintln!("backend refused: {e}");
    ///         }
    ///     }
    /// }
    ///
    /// # fn main() -> std::io::Result<()> {
    /// // The backend: answers one line per connection with its length.
    /// let backend = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let backend_addr = backend.local_addr()?;
    /// std::thread::spawn(move || {
    ///     for stream in backend.incoming().flatten() {
    ///         let mut line = String::new();
    ///         BufReader::new(&stream).read_line(&mut line).unwrap();
    ///         writeln!(&stream, "{} bytes", line.len()).unwrap();
    ///     }
    /// });
    /// let mut reactor = Reactor::new(Config::default())?;
    /// let (ours, mut theirs) = std::os::unix::net::UnixStream::pair()?;
    /// # theirs.set_read_timeout(Some(std::time::Duration::from_secs(10)))?; // a failure fails, not hangs
    /// reactor.adopt(ours, Side::Front { backend: backend_addr })?;
    /// let handle = reactor.handle();
    /// let client = std::thread::spawn(move || {
    ///     theirs.write_all(b"hello\n").unwrap();
    ///     let mut answer = [0; 8];
    ///     theirs.read_exact(&mut answer).unwrap();
    ///     handle.shutdown();
    ///     answer
    /// });
    /// reactor.run()?;
    /// assert_eq!(&client.join().unwrap(), b"6 bytes\n");
    /// # Ok(())
    /// # }
    /// ```
    pub fn connect(&mut self, addr: SocketAddr, handler: H) -> io::Result<ConnId> {
        let stream = Stream::Tcp(mio::net::TcpStream::connect(addr)?);
        let origin = Origin::Connecting { timeout: None };
        Ok(self.shared_mut().open_later(stream, PeerAddr::Tcp(addr), handler, origin))
    }

    /// [`connect`](Cx::connect) with a deadline of its own instead of
    /// [`Config::connect_timeout`](crate::Config::connect_timeout): past it the new
    /// connection closes with [`Reason::ConnectTimeout`].
    ///
    /// # Errors
    ///
    /// As for `connect`.
    pub fn connect_timeout(&mut self, addr: SocketAddr, timeout: Duration, handler: H) -> io::Result<ConnId> {
        let stream = Stream::Tcp(mio::net::TcpStream::connect(addr)?);
        let origin = Origin::Connecting { timeout: Some(timeout) };
        Ok(self.shared_mut().open_later(stream, PeerAddr::Tcp(addr), handler, origin))
    }

    /// [`connect`](Cx::connect) to a Unix-domain socket at `path`.
    ///
    /// # Errors
    ///
    /// As for `connect`, and at once when nothing listens at `path` (a Unix connect does not
    /// wait): `NotFound`, `ConnectionRefused`, `PermissionDenied`.
    pub fn connect_unix(&mut self, path: &Path, handler: H) -> io::Result<ConnId> {
        let stream = Stream::Unix(mio::net::UnixStream::connect(path)?);
        let peer = PeerAddr::Unix(Some(path.to_path_buf()));
        Ok(self.shared_mut().open_later(stream, peer, handler, Origin::Connecting { timeout: None }))
    }

    /// Serves an already connected stream (TCP or Unix, std or mio; made non-blocking here)
    /// with `handler`, from this reactor: received over a Unix socket, handed over by
    /// another part of the program. Its `on_open` runs after this callback returns.
    ///
    /// # Errors
    ///
    /// The stream could not be made non-blocking or its peer read (it is not connected).
    pub fn adopt(&mut self, stream: impl Into<Stream>, handler: H) -> io::Result<ConnId> {
        let stream = stream.into();
        stream.set_nonblocking()?;
        let peer = stream.peer_addr()?;
        self.shared_mut().stats.adopted += 1;
        Ok(self.shared_mut().open_later(stream, peer, handler, Origin::Adopted))
    }
}

impl<H: Handler> Reactor<H> {
    /// Opens an outbound TCP connection served by `handler` (see [`Cx::connect`](crate::Cx::connect),
    /// which does the same from inside a callback).
    ///
    /// # Errors
    ///
    /// Creating the socket or starting the connect failed at once; registering it failed.
    pub fn connect(&mut self, addr: std::net::SocketAddr, handler: H) -> io::Result<ConnId> {
        let stream = Stream::Tcp(mio::net::TcpStream::connect(addr)?);
        self.open_now(stream, PeerAddr::Tcp(addr), handler, Origin::Connecting { timeout: None })
    }

    /// [`connect`](Reactor::connect) with a deadline of its own instead of
    /// [`Config::connect_timeout`](crate::Config::connect_timeout): past it the connection
    /// closes with [`Reason::ConnectTimeout`](crate::Reason::ConnectTimeout).
    ///
    /// # Errors
    ///
    /// As for `connect`.
    ///
    /// # Examples
    ///
    /// A health check that gives a backend half a second to answer the connect:
    ///
    /// ```
    /// use evloop::{Config, Cx, Handler, Input, Reactor, Reason};
    /// use std::time::Duration;
    ///
    /// struct Check;
    /// impl Handler for Check {
    ///     type Msg = ();
    ///     fn on_open(&mut self, cx: &mut Cx<'_, Self>) {
    ///         cx.close(); // reachable: done
    ///     }
    ///     fn on_data(&mut self, input: &mut Input<'_>, _cx: &mut Cx<'_, Self>) {
    ///         input.consume_all();
    ///     }
    ///     fn on_close(&mut self, reason: Reason, _cx: &mut Cx<'_, Self>) {
    ///         println!("{reason}"); // "closed by handler", or "connect timed out"
    ///     }
    /// }
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let backend = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let mut reactor = Reactor::new(Config::default())?;
    /// reactor.connect_timeout(backend.local_addr()?, Duration::from_millis(500), Check)?;
    /// while reactor.stats().closed.total() == 0 {
    ///     reactor.run_once(Some(Duration::from_millis(10)))?;
    /// }
    /// assert_eq!(reactor.stats().closed.local, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn connect_timeout(
        &mut self,
        addr: std::net::SocketAddr,
        timeout: std::time::Duration,
        handler: H,
    ) -> io::Result<ConnId> {
        let stream = Stream::Tcp(mio::net::TcpStream::connect(addr)?);
        self.open_now(stream, PeerAddr::Tcp(addr), handler, Origin::Connecting { timeout: Some(timeout) })
    }

    /// Opens an outbound Unix-domain connection to `path` served by `handler`.
    ///
    /// # Errors
    ///
    /// Nothing listens at `path` (`NotFound`, `ConnectionRefused`), permission denied, or
    /// registering failed.
    pub fn connect_unix(&mut self, path: &Path, handler: H) -> io::Result<ConnId> {
        let stream = Stream::Unix(mio::net::UnixStream::connect(path)?);
        let origin = Origin::Connecting { timeout: None };
        self.open_now(stream, PeerAddr::Unix(Some(path.to_path_buf())), handler, origin)
    }

    /// Serves an already connected stream (TCP or Unix, std or mio; made non-blocking
    /// here) with `handler`: descriptors received over a Unix socket, socket activation, a
    /// hand-off from blocking code. From another thread, use [`Sender::adopt`](crate::Sender::adopt).
    ///
    /// # Errors
    ///
    /// The stream could not be made non-blocking, is not connected, or registering failed.
    pub fn adopt(&mut self, stream: impl Into<Stream>, handler: H) -> io::Result<ConnId> {
        let stream = stream.into();
        stream.set_nonblocking()?;
        let peer = stream.peer_addr()?;
        let id = self.open_now(stream, peer, handler, Origin::Adopted)?;
        self.shared.stats.adopted += 1;
        Ok(id)
    }

    fn open_now(&mut self, stream: Stream, peer: PeerAddr, handler: H, origin: Origin) -> io::Result<ConnId> {
        let id = self.shared.slots.reserve();
        self.install(Opening { id, stream, peer, handler, origin }).map(|()| id)
    }

    /// Installs the connections callbacks opened (`Cx::connect`, `Cx::adopt`), in order.
    pub(super) fn open_queued(&mut self) {
        while !self.shared.opening.is_empty() {
            for opening in std::mem::take(&mut self.shared.opening) {
                let (slot, peer) = (opening.id.slot(), opening.peer.clone());
                if let Err(e) = self.install(opening) {
                    log::warn!("conn slot={slot} peer={peer}: could not register: {e}");
                }
            }
        }
    }

    /// Puts a connection in its reserved slot: registers the socket, starts its timers, and
    /// calls `on_open` (at once, or once a connect completes). On failure the slot is freed
    /// and the handler dropped.
    ///
    /// An accepted connection costs `accept4` and the `epoll_ctl` here, nothing more where
    /// its listener passed `TCP_NODELAY` on (as nginx's accept path: no per-socket option).
    pub(super) fn install(&mut self, opening: Opening<H>) -> io::Result<()> {
        let Opening { id, mut stream, peer, handler, origin } = opening;
        let slot = id.slot();
        // Reading only, unless connecting (the connect's end is a writable event): writable
        // events are asked for after the first short write (`wire::watch_writable`).
        let interest = match origin {
            Origin::Connecting { .. } => Interest::READABLE | Interest::WRITABLE,
            _ => Interest::READABLE,
        };
        let registered = self.poll.registry().register(&mut stream, id.token(), interest);
        if let Err(e) = registered {
            self.shared.slots.release(slot);
            return Err(e);
        }
        let inherited = matches!(origin, Origin::Accepted { nodelay_inherited: true });
        if self.shared.config.nodelay && !inherited {
            if let Err(e) = stream.set_nodelay() {
                log::debug!("peer={peer}: TCP_NODELAY failed: {e}");
            }
        }
        let now = self.shared.now;
        let life = if matches!(origin, Origin::Connecting { .. }) { Life::connecting() } else { Life::Open };
        let mut core = Core::new(stream, peer, id, life, now);
        self.shared.stats.active += 1;
        if origin == Origin::Adopted {
            core.flags.insert(Flags::ADOPTED);
        }
        if let Origin::Connecting { timeout } = origin {
            // Nothing is read and everything written queues until the kernel reports the
            // connect's end with a writable (or error) event: `on_writable` → `connect_ready`.
            core.flags.insert(Flags::WRITE_BLOCKED | Flags::WRITE_INTEREST);
            let deadline = deadline_after(now, timeout.unwrap_or(self.shared.config.connect_timeout));
            core.phase_timer = Some(self.shared.timers.insert(deadline, TimerOwner::Connect(id)));
            log::debug!("conn slot={slot} peer={} connecting", core.peer);
            self.conns.put(slot, Conn { handler, input: Vec::new(), core });
        } else {
            self.shared.arm_idle_timer(&mut core);
            log::debug!("conn slot={slot} peer={} open", core.peer);
            self.conns.put(slot, Conn { handler, input: Vec::new(), core });
            self.callback(slot, "on_open", |handler, cx| handler.on_open(cx));
        }
        Ok(())
    }

    /// A connecting socket reported writable or an error: the connect has ended, one way or
    /// the other (or the event was spurious: then keep waiting).
    pub(super) fn connect_ready(&mut self, slot: usize) {
        let Reactor { conns, shared, .. } = self;
        let core = &mut conns[slot].core;
        let failure = match core.stream.take_error() {
            Ok(Some(e)) | Err(e) => Some(e),
            Ok(None) => match core.stream.peer_addr() {
                Ok(_) => None,
                // Not connected yet: the event was not the connect's end.
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(e) => Some(e),
            },
        };
        if let Some(e) = failure {
            log::debug!("conn slot={slot} peer={} connect failed: {e}", core.peer);
            self.close_now(slot, Reason::ConnectFailed(e.kind()));
            return;
        }
        core.life.connected();
        core.flags.remove(Flags::WRITE_BLOCKED);
        if let Some(id) = core.phase_timer.take() {
            shared.timers.cancel(id);
        }
        // The idle clock starts now, not when the connect began.
        core.last_active = shared.now;
        shared.arm_idle_timer(core);
        shared.stats.connected += 1;
        log::debug!("conn slot={slot} peer={} connected", core.peer);
        if core.life.is_open() {
            self.callback(slot, "on_open", |handler, cx| handler.on_open(cx));
        } else {
            // Closed by its handler before the connect ended: what it queued goes out, then
            // it closes (no `on_open` for a connection the handler has already given up).
            self.settle_or_close(slot);
        }
    }

    /// The connect timer fired: a connection still connecting is closed.
    pub(super) fn connect_timer_due(&mut self, id: ConnId) {
        let Some(slot) = self.live_slot(id) else { return };
        let core = &mut self.conns[slot].core;
        if core.life.is_connecting() {
            core.phase_timer = None;
            log::debug!("conn slot={slot} peer={} connect timed out", core.peer);
            self.close_now(slot, Reason::ConnectTimeout);
        }
    }
}
