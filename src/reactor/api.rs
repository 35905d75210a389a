//! `Reactor`'s own API, the part a newcomer reads first: `new`, listening (`listen`,
//! `listen_unix`, `add_listener`, `add_unix_listener`), the embedder's sources (`register`),
//! `handle`, `stats`, and running it (`run`, `run_once`, with `run_once`'s panic guard). The
//! struct and its fields are in `mod.rs`; the rest of its methods sit beside what they
//! concern (listeners' lifecycle in `listeners.rs`, datagrams in `endpoints.rs`, timers,
//! messages, opening connections).

use super::*;

impl<H: Handler> Reactor<H> {
    /// Builds a reactor with its own `mio::Poll`.
    ///
    /// # Errors
    ///
    /// An invalid `config` (`InvalidInput`), or the OS refusing an epoll instance or waker.
    ///
    /// # Examples
    ///
    /// ```
    /// use evloop::{Config, Cx, Handler, Input, Reactor};
    ///
    /// struct Discard;
    /// impl Handler for Discard {
    ///     type Msg = ();
    ///     fn on_data(&mut self, input: &mut Input<'_>, _cx: &mut Cx<'_, Self>) {
    ///         input.consume_all();
    ///     }
    /// }
    ///
    /// // The defaults suit most servers; change what you need.
    /// let reactor: Reactor<Discard> = Reactor::new(Config { max_conns: 10_000, ..Config::default() })?;
    /// assert_eq!(reactor.stats().accepted, 0);
    /// // A configuration that cannot work is refused up front, saying why.
    /// let refused = Reactor::<Discard>::new(Config { max_conns: 0, ..Config::default() }).err();
    /// assert!(refused.is_some_and(|e| e.to_string().contains("max_conns must be greater than zero")));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(config: Config) -> io::Result<Reactor<H>> {
        config.validate()?;
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), token::WAKER)?);
        Ok(Reactor {
            events: Events::with_capacity(config.events_capacity),
            conns: Table::default(),
            listeners: Vec::new(),
            sources: Slab::new(),
            loop_timers: Slab::new(),
            inbox: Arc::new(Inbox::new(config.remote_queue)),
            // No bigger than one read may be: a handler may hold at most `max_input`, and an
            // echo-like handler should not be handed more than the output headroom.
            scratch: vec![0; config.read_chunk.min(config.max_input).min(config.out_high_watermark)],
            remote: Arc::new(Remote::default()),
            completions: Vec::new(),
            lifecycle: Lifecycle::Running,
            shutdown_escalated: false,
            shared: Shared::new(config, waker, poll.registry().try_clone()?),
            poll,
            _not_send: PhantomData,
        })
    }

    /// Listens on `addr`; every accepted connection gets a handler from `factory(peer)`.
    /// Returns the listener's id (to pause, resume or remove it) and the bound address
    /// (useful with port 0).
    ///
    /// # Errors
    ///
    /// Binding or listening failed (address in use, permission denied, ...).
    pub fn listen<F>(&mut self, addr: SocketAddr, factory: F) -> io::Result<(ListenerId, SocketAddr)>
    where
        F: FnMut(SocketAddr) -> H + 'static,
    {
        let options = crate::net::ListenOptions { backlog: self.shared.config.backlog, reuse_port: false };
        self.add_listener(crate::net::listen(addr, options)?, factory)
    }

    /// Serves connections from a listener built elsewhere: with `SO_REUSEPORT` through
    /// [`net::listen`](crate::net::listen), inherited from a supervisor, or a plain
    /// `std::net::TcpListener` (std's or mio's: it is made non-blocking here, so a blocking
    /// one cannot stall the loop). Returns its id and its local address.
    ///
    /// # Errors
    ///
    /// The listener's address could not be read, it could not be made non-blocking, or
    /// registering it with the poll failed.
    ///
    /// # Examples
    ///
    /// ```
    /// use evloop::{Config, Cx, Handler, Input, Reactor};
    ///
    /// struct Quiet;
    /// impl Handler for Quiet {
    ///     type Msg = ();
    ///     fn on_data(&mut self, input: &mut Input<'_>, _cx: &mut Cx<'_, Self>) {
    ///         input.consume_all();
    ///     }
    /// }
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let mut reactor = Reactor::new(Config::default())?;
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?; // blocking, as std makes it
    /// let (_id, addr) = reactor.add_listener(listener, |_peer| Quiet)?;
    /// let _client = std::net::TcpStream::connect(addr)?;
    /// reactor.run_once(Some(std::time::Duration::from_millis(10)))?; // accepts, and returns
    /// # Ok(())
    /// # }
    /// ```
    pub fn add_listener<F>(
        &mut self,
        socket: impl IntoTcpListener,
        mut factory: F,
    ) -> io::Result<(ListenerId, SocketAddr)>
    where
        F: FnMut(SocketAddr) -> H + 'static,
    {
        let socket = socket.into_mio();
        crate::net::set_nonblocking(socket.as_fd())?;
        let addr = socket.local_addr()?;
        let factory = move |peer: PeerAddr| factory(peer.tcp().expect("cannot fail: a TCP listener's peer"));
        let index = self.add_listen_socket(ListenSocket::Tcp(socket), Box::new(factory))?;
        Ok((ListenerId(index), addr))
    }

    /// [`add_listener`](Reactor::add_listener) for a Unix-domain listener (std's or mio's,
    /// made non-blocking here): every accepted connection gets a handler from
    /// `factory(peer)`. Returns its id.
    ///
    /// # Errors
    ///
    /// It could not be made non-blocking, or registering it with the poll failed.
    pub fn add_unix_listener<F>(
        &mut self,
        socket: impl IntoUnixListener,
        factory: F,
    ) -> io::Result<ListenerId>
    where
        F: FnMut(PeerAddr) -> H + 'static,
    {
        let socket = socket.into_mio();
        crate::net::set_nonblocking(socket.as_fd())?;
        let index = self.add_listen_socket(ListenSocket::Unix(socket), Box::new(factory))?;
        Ok(ListenerId(index))
    }

    /// Listens on a Unix-domain socket at `path` (a stale socket file left by a server that
    /// is gone is replaced; see [`net::listen_unix`](crate::net::listen_unix)); every accepted
    /// connection gets a handler from `factory(peer)`. The socket file is not removed when
    /// the reactor stops (a restart replaces it). Returns the listener's id.
    ///
    /// # Errors
    ///
    /// The path is too long, in use by a running server, not a socket, or not writable.
    pub fn listen_unix<F>(&mut self, path: &Path, factory: F) -> io::Result<ListenerId>
    where
        F: FnMut(PeerAddr) -> H + 'static,
    {
        let options = crate::net::ListenOptions { backlog: self.shared.config.backlog, reuse_port: false };
        self.add_unix_listener(crate::net::listen_unix(path, options)?, factory)
    }

    /// Registers an embedder's own `mio` source (a signal pipe, a UDP socket, a channel
    /// with a waker of its own, ...). `on_ready` runs on the loop thread for each of its
    /// events, with the source, what the event said, and the reactor itself — so it can
    /// register or deregister sources (itself included) and use every other method here.
    ///
    /// A panic in `on_ready` deregisters and drops that source only: it is logged and
    /// counted in [`Stats::source_panics`], and the turn goes on with its other events.
    ///
    /// # Errors
    ///
    /// Registering with the poll failed.
    pub fn register<S, F>(&mut self, source: S, interest: Interest, on_ready: F) -> io::Result<SourceId>
    where
        S: Source + 'static,
        F: FnMut(&mut S, Ready<'_>, &mut Reactor<H>) + 'static,
    {
        self.add_source(source, interest, on_ready)
    }

    /// Deregisters and drops a source added with [`register`](Reactor::register). From the
    /// source's own callback too: it is dropped when the callback returns.
    ///
    /// # Errors
    ///
    /// `NotFound` for an unknown id; otherwise whatever deregistering returned.
    pub fn deregister(&mut self, id: SourceId) -> io::Result<()> {
        self.remove_source(id)
    }

    /// Changes what a source added with [`register`](Reactor::register) is polled for
    /// (readable, writable or both): a UDP socket that wants writable events only while
    /// its send queue is not empty, say. From the source's own callback too: the change is
    /// made when the callback returns.
    ///
    /// # Errors
    ///
    /// `NotFound` for an unknown id; otherwise whatever re-registering returned.
    ///
    /// # Examples
    ///
    /// ```
    /// use evloop::{Config, Cx, Handler, Input, Reactor};
    /// use mio::{net::UnixDatagram, Interest};
    ///
    /// struct Quiet;
    /// impl Handler for Quiet {
    ///     type Msg = ();
    ///     fn on_data(&mut self, input: &mut Input<'_>, _cx: &mut Cx<'_, Self>) {
    ///         input.consume_all();
    ///     }
    /// }
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let mut reactor = Reactor::<Quiet>::new(Config::default())?;
    /// let (socket, _other) = UnixDatagram::pair()?;
    /// let id = reactor.register(socket, Interest::READABLE, |_socket, _ready, _reactor| {})?;
    /// reactor.reregister(id, Interest::READABLE | Interest::WRITABLE)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn reregister(&mut self, id: SourceId, interest: Interest) -> io::Result<()> {
        self.change_source_interest(id, interest)
    }

    /// A handle other threads can use to stop this reactor or read its stats.
    #[must_use]
    pub fn handle(&self) -> Handle {
        Handle::new(Arc::clone(&self.shared.waker), Arc::clone(&self.remote))
    }

    /// The counters, as of now.
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.shared.stats
    }

    /// Connections open now (and ones a callback opened, about to be installed).
    pub(super) fn conn_count(&self) -> usize {
        self.shared.slots.len()
    }

    /// How long an outer loop that nests this reactor (see its `AsRawFd`) may wait before
    /// calling [`run_once`](Reactor::run_once): zero while work is pending, until the
    /// nearest timer otherwise, `None` when only an event on its descriptor can give it work.
    #[must_use]
    pub fn next_timeout(&mut self) -> Option<Duration> {
        self.poll_timeout(None)
    }

    /// Runs turns until shutdown completes.
    ///
    /// # Errors
    ///
    /// Only if polling itself fails — errors on single connections close those
    /// connections and are never returned.
    ///
    /// # Examples
    ///
    /// `run` returns once a shutdown has completed, asked for from any thread through a
    /// [`Handle`]:
    ///
    /// ```
    /// use evloop::{Config, Cx, Handler, Input, Reactor};
    /// # struct Discard;
    /// # impl Handler for Discard {
    /// #     type Msg = ();
    /// #     fn on_data(&mut self, input: &mut Input<'_>, _cx: &mut Cx<'_, Self>) { input.consume_all(); }
    /// # }
    /// let mut reactor: Reactor<Discard> = Reactor::new(Config::default())?;
    /// let handle = reactor.handle();
    /// let stopper = std::thread::spawn(move || handle.shutdown());
    /// reactor.run()?; // serves until the shutdown is done
    /// stopper.join().unwrap();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn run(&mut self) -> io::Result<()> {
        while self.run_once(None)? == Turn::Running {}
        Ok(())
    }

    /// Runs one turn, blocking for at most `timeout` (`None`: until something happens), for
    /// embedding in a host's own loop.
    ///
    /// # Errors
    ///
    /// Only if polling itself fails.
    ///
    /// # Examples
    ///
    /// A host's loop that does its own work between turns, and stops the reactor when done:
    ///
    /// ```
    /// use evloop::{Config, Cx, Handler, Input, Reactor, Turn};
    /// use std::io::{Read, Write};
    /// use std::time::Duration;
    ///
    /// struct Echo;
    /// impl Handler for Echo {
    ///     type Msg = ();
    ///     fn on_data(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
    ///         cx.write(input.bytes());
    ///         input.consume_all();
    ///     }
    /// }
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let mut reactor = Reactor::new(Config::default())?;
    /// let (_id, addr) = reactor.listen("127.0.0.1:0".parse().unwrap(), |_peer| Echo)?;
    /// let mut client = std::net::TcpStream::connect(addr)?;
    /// client.write_all(b"ping")?;
    /// client.set_nonblocking(true)?;
    /// let mut reply = Vec::new();
    /// let mut turns = 0;
    /// while reply.len() < 4 && turns < 1000 {
    ///     reactor.run_once(Some(Duration::from_millis(10)))?; // the reactor's turn
    ///     let mut buffer = [0; 16];
    ///     if let Ok(n) = client.read(&mut buffer) {
    ///         reply.extend_from_slice(&buffer[..n]); // the host's own work
    ///     }
    ///     turns += 1;
    /// }
    /// assert_eq!(reply, b"ping");
    /// reactor.handle().shutdown();
    /// while reactor.run_once(Some(Duration::from_millis(10)))? != Turn::Stopped {}
    /// # Ok(())
    /// # }
    /// ```
    pub fn run_once(&mut self, timeout: Option<Duration>) -> io::Result<Turn> {
        if matches!(self.lifecycle, Lifecycle::Stopped) {
            return Ok(Turn::Stopped);
        }
        let timeout = self.poll_timeout(timeout);
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            // A signal interrupted the wait: an empty turn, not a failure.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        self.shared.now = std::time::Instant::now();
        self.shared.clock_mark = self.shared.now;
        self.shared.stats.turns += 1;

        // The events are taken out of `self` so dispatch can borrow `self` mutably;
        // `Events::with_capacity(0)` does not allocate.
        let events = std::mem::replace(&mut self.events, Events::with_capacity(0));
        let mut next_event = 0;
        // `on_data` runs without a guard of its own: a `catch_unwind` per message would stop
        // the handler from being inlined and cost more than the rest of the dispatch. A
        // panic in it unwinds to here instead; the guard closes the connection whose handler
        // panicked and resumes the turn at the next event.
        loop {
            let turn = panic::catch_unwind(AssertUnwindSafe(|| self.turn(&events, &mut next_event)));
            let Err(payload) = turn else { break };
            match self.shared.in_handler.take() {
                Some(slot) => self.handler_panicked(slot),
                None => {
                    // Not a handler's panic but the reactor's own: a bug, not to be hidden.
                    self.events = events;
                    panic::resume_unwind(payload);
                }
            }
        }
        self.events = events;
        if self.shared.staging.capacity() > STAGING_KEEP_BYTES {
            // A callback wrote a lot at once; don't keep the peak allocation forever.
            self.shared.staging = Vec::new();
        }
        self.shared.stats.timers = self.shared.timers.len() as u64;
        if let Some(pool) = self.shared.offload.pool() {
            self.shared.stats.offload_cancelled = pool.cancelled();
        }
        *self.remote.stats.lock().unwrap_or_else(PoisonError::into_inner) = self.shared.stats;
        Ok(if matches!(self.lifecycle, Lifecycle::Stopped) { Turn::Stopped } else { Turn::Running })
    }
}
