//! Multi-core, share-nothing: N reactors, one per thread, each with its own listening socket
//! on the same address (`SO_REUSEPORT`), so the kernel spreads new connections across them.
//!
//! ```text
//!                       ┌─► thread 0: Reactor ◄── listener (SO_REUSEPORT) ─┐
//!  clients ─► kernel ───┼─► thread 1: Reactor ◄── listener (SO_REUSEPORT) ─┼── same address
//!   (hash of 4-tuple)   └─► thread N: Reactor ◄── listener (SO_REUSEPORT) ─┘
//! ```
//!
//! That is Linux (and Android). Where the kernel does not spread connections over sockets
//! sharing a port (macOS gives them all to one; FreeBSD needs `SO_REUSEPORT_LB`), the workers
//! share one listening socket instead, each polling its own copy of the descriptor: all wake
//! on a new connection, and whichever accepts first serves it (see
//! `platform::REUSEPORT_BALANCES`; both ways are tested on Linux).
//!
//! Nothing is shared between the workers: no locks, no queues, no connection ever moves
//! between threads (nginx's worker processes, as threads). The price is balance: the kernel
//! assigns each new connection to a worker by a hash, whatever that worker's load, so a few
//! long busy connections can leave one core idle while another is saturated. This module does
//! not balance load or share state; it starts, stops and counts.

use std::io;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};

use crate::net::{listen, ListenOptions};
use crate::platform::REUSEPORT_BALANCES;
use crate::{Config, Handle, Handler, ListenerId, Reactor, Stats};

/// How the workers' listening sockets share the address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spread {
    /// A socket per worker with `SO_REUSEPORT`: the kernel picks the worker.
    ReusePort,
    /// One socket, a duplicate of its descriptor per worker: the first to accept serves.
    SharedListener,
}

impl Spread {
    /// The way this platform's kernel supports.
    const NATIVE: Spread = if REUSEPORT_BALANCES { Spread::ReusePort } else { Spread::SharedListener };
}

/// N reactors on N threads serving one address. Dropping it shuts them all down and joins.
///
/// # Examples
///
/// ```
/// use evloop::{workers::Workers, Config, Cx, Handler, Input};
/// use std::io::{Read, Write};
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
/// // The closure runs once on each worker thread and returns that worker's handler factory,
/// // so handlers themselves need not be `Send`.
/// let workers = Workers::start(2, "127.0.0.1:0".parse().unwrap(), Config::default(), |_worker| {
///     |_peer| Echo
/// })?;
/// let mut stream = std::net::TcpStream::connect(workers.addr())?;
/// stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
/// stream.write_all(b"hi")?;
/// let mut back = [0; 2];
/// stream.read_exact(&mut back)?;
/// assert_eq!(&back, b"hi");
/// workers.shutdown();
/// let stats = workers.join()?;
/// assert_eq!(stats.accepted, 1);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
#[must_use = "dropping Workers shuts every worker down at once: keep it, and join() it"]
pub struct Workers {
    addr: SocketAddr,
    handles: Vec<Handle>,
    threads: Vec<JoinHandle<io::Result<()>>>,
    /// A duplicate descriptor of each listening socket the workers serve (one per worker
    /// with `SO_REUSEPORT`, one in all when they share it), for a handover.
    listeners: Vec<std::net::TcpListener>,
    /// Each worker's listener on its reactor, in worker order.
    listener_ids: Vec<ListenerId>,
}

/// Where a worker's listener comes from.
enum Source {
    /// Bind the address with `SO_REUSEPORT`, in the worker's thread.
    Bind(SocketAddr),
    /// Serve this one: a duplicate of a shared socket, or one handed over.
    Given(std::net::TcpListener),
}

impl Workers {
    /// Starts `count` worker threads (at least one) serving `addr`. `factory_for(worker)` runs
    /// on each worker's thread and returns its handler factory.
    ///
    /// With port 0, the first worker picks the port and the others join it.
    ///
    /// # Errors
    ///
    /// If a worker cannot build its reactor or bind (for example when `SO_REUSEPORT` is not
    /// supported); the workers already started are shut down and joined first.
    pub fn start<H, F, M>(
        count: usize,
        addr: SocketAddr,
        config: Config,
        factory_for: M,
    ) -> io::Result<Workers>
    where
        H: Handler,
        F: FnMut(SocketAddr) -> H + 'static,
        M: Fn(usize) -> F + Send + Sync + Clone + 'static,
    {
        Workers::start_with(count, addr, config, move |worker, _reactor: &mut Reactor<H>| factory_for(worker))
    }

    /// Like [`start`](Workers::start), with each worker's reactor in hand before it runs:
    /// `setup(worker, reactor)` runs on the worker's thread and may register sources, set
    /// reactor timers, open connections or hand out the reactor's [`Sender`](crate::Sender)
    /// (through a channel of its own), then returns the handler factory.
    ///
    /// # Errors
    ///
    /// As for `start`.
    pub fn start_with<H, F, S>(
        count: usize,
        addr: SocketAddr,
        config: Config,
        setup: S,
    ) -> io::Result<Workers>
    where
        H: Handler,
        F: FnMut(SocketAddr) -> H + 'static,
        S: Fn(usize, &mut Reactor<H>) -> F + Send + Sync + Clone + 'static,
    {
        Workers::start_spread(count, addr, config, setup, Spread::NATIVE)
    }

    /// `start_with`, with the way of sharing the address chosen (tests run both on Linux).
    fn start_spread<H, F, S>(
        count: usize,
        addr: SocketAddr,
        config: Config,
        setup: S,
        spread: Spread,
    ) -> io::Result<Workers>
    where
        H: Handler,
        F: FnMut(SocketAddr) -> H + 'static,
        S: Fn(usize, &mut Reactor<H>) -> F + Send + Sync + Clone + 'static,
    {
        config.validate()?;
        let mut workers = Workers::none_yet(addr);
        // Bound here, once, when the workers share it; each takes a duplicate descriptor.
        let shared = match spread {
            Spread::SharedListener => {
                let options = ListenOptions { backlog: config.backlog, reuse_port: false };
                let listener = std::net::TcpListener::from(listen(addr, options)?);
                workers.addr = listener.local_addr()?;
                Some(listener)
            }
            Spread::ReusePort => None,
        };
        if let Some(shared) = &shared {
            workers.listeners.push(shared.try_clone()?);
        }
        for index in 0..count.max(1) {
            // A duplicate of the shared listener, or (in the thread) a socket of its own;
            // worker 0 may bind port 0, and the others join the port it got.
            let source = match &shared {
                Some(listener) => Source::Given(listener.try_clone()?),
                None => Source::Bind(workers.addr),
            };
            workers.add_worker(index, &config, &setup, source, shared.is_none())?;
        }
        Ok(workers)
    }

    /// Serves listening sockets made elsewhere — inherited from an older process of the same
    /// server (an upgrade), or from a supervisor (socket activation) — one worker per
    /// listener, each with `setup` as in [`start_with`](Workers::start_with).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for no listeners; otherwise as for `start`.
    pub fn from_listeners<H, F, S>(
        listeners: Vec<std::net::TcpListener>,
        config: Config,
        setup: S,
    ) -> io::Result<Workers>
    where
        H: Handler,
        F: FnMut(SocketAddr) -> H + 'static,
        S: Fn(usize, &mut Reactor<H>) -> F + Send + Sync + Clone + 'static,
    {
        config.validate()?;
        let first =
            listeners.first().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no listeners"))?;
        let mut workers = Workers::none_yet(first.local_addr()?);
        for (index, listener) in listeners.into_iter().enumerate() {
            workers.listeners.push(listener.try_clone()?);
            workers.add_worker(index, &config, &setup, Source::Given(listener), false)?;
        }
        Ok(workers)
    }

    /// Starts worker `index` on `source` and waits until it serves; on failure, shuts down
    /// and joins the workers already started. With `keep`, a duplicate of the listener it
    /// bound is kept (for a handover).
    fn add_worker<H, F, S>(
        &mut self,
        index: usize,
        config: &Config,
        setup: &S,
        source: Source,
        keep: bool,
    ) -> io::Result<()>
    where
        H: Handler,
        F: FnMut(SocketAddr) -> H + 'static,
        S: Fn(usize, &mut Reactor<H>) -> F + Send + Sync + Clone + 'static,
    {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (config, setup) = (config.clone(), setup.clone());
        let result = (|| {
            let thread = thread::Builder::new().name(format!("evloop-worker-{index}")).spawn(move || {
                let listener = match source {
                    Source::Given(listener) => Ok(mio::net::TcpListener::from_std(listener)),
                    Source::Bind(addr) => {
                        listen(addr, ListenOptions { backlog: config.backlog, reuse_port: true })
                    }
                };
                run_worker(index, config, setup, listener, ready_tx)
            })?;
            self.threads.push(thread);
            ready_rx.recv().unwrap_or_else(|_| Err(io::Error::other("worker thread died while starting")))
        })();
        match result {
            Ok((bound, handle, duplicate, id)) => {
                self.addr = bound;
                self.handles.push(handle);
                self.listener_ids.push(id);
                if keep {
                    self.listeners.push(duplicate);
                }
                Ok(())
            }
            Err(e) => {
                self.shutdown();
                let _ = self.join_all();
                Err(e)
            }
        }
    }

    /// The listening sockets the workers serve (duplicate descriptors of them), to hand to
    /// a new process in an upgrade: one per worker with `SO_REUSEPORT`, else one for all.
    pub fn listeners(&self) -> &[std::net::TcpListener] {
        &self.listeners
    }

    /// Stops every worker accepting (see [`Reactor::pause_listener`]): new clients wait in
    /// the kernel's backlog; open connections are served on.
    pub fn pause(&self) {
        for (handle, &id) in self.handles.iter().zip(&self.listener_ids) {
            handle.pause_listener(id);
        }
    }

    /// Every worker accepts again (see [`Reactor::resume_listener`]).
    pub fn resume(&self) {
        for (handle, &id) in self.handles.iter().zip(&self.listener_ids) {
            handle.resume_listener(id);
        }
    }

    /// Drains every worker gracefully (see [`Handle::drain`]).
    pub fn drain(&self, timeout: std::time::Duration) {
        for handle in &self.handles {
            handle.drain(timeout);
        }
    }

    /// No worker yet, serving `addr` once they start.
    fn none_yet(addr: SocketAddr) -> Workers {
        Workers {
            addr,
            handles: Vec::new(),
            threads: Vec::new(),
            listeners: Vec::new(),
            listener_ids: Vec::new(),
        }
    }

    /// The address every worker listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// One handle per worker, in worker order (for per-worker stats or shutdown).
    pub fn handles(&self) -> &[Handle] {
        &self.handles
    }

    /// Asks every worker to shut down gracefully (see [`Handle::shutdown`]).
    pub fn shutdown(&self) {
        for handle in &self.handles {
            handle.shutdown();
        }
    }

    /// The workers' counters added together.
    pub fn stats(&self) -> Stats {
        self.handles.iter().map(Handle::stats).fold(Stats::default(), Stats::merged)
    }

    /// Waits for every worker to finish (after [`shutdown`](Workers::shutdown)) and returns
    /// their final counters, added together.
    ///
    /// # Errors
    ///
    /// The first error a worker's `run()` returned.
    pub fn join(mut self) -> io::Result<Stats> {
        self.join_all()?;
        Ok(self.stats())
    }

    fn join_all(&mut self) -> io::Result<()> {
        let mut first_error = Ok(());
        for thread in self.threads.drain(..) {
            let result = thread.join().unwrap_or_else(|_| Err(io::Error::other("worker thread panicked")));
            if first_error.is_ok() {
                first_error = result;
            }
        }
        first_error
    }
}

/// One worker's thread: builds its reactor, lets `setup` see it, adds `listener`, reports
/// the bound address and the reactor's handle (or the error) on `ready`, then runs.
fn run_worker<H, F, S>(
    index: usize,
    config: Config,
    setup: S,
    listener: io::Result<mio::net::TcpListener>,
    ready: mpsc::Sender<io::Result<(SocketAddr, Handle, std::net::TcpListener, ListenerId)>>,
) -> io::Result<()>
where
    H: Handler,
    F: FnMut(SocketAddr) -> H + 'static,
    S: Fn(usize, &mut Reactor<H>) -> F,
{
    let started = (|| -> io::Result<(Reactor<H>, SocketAddr, std::net::TcpListener, ListenerId)> {
        let mut reactor = Reactor::new(config)?;
        let factory = setup(index, &mut reactor);
        let listener = listener?;
        let duplicate = std::net::TcpListener::from(socket2::SockRef::from(&listener).try_clone()?);
        let (id, bound) = reactor.add_listener(listener, factory)?;
        Ok((reactor, bound, duplicate, id))
    })();
    match started {
        Ok((mut reactor, bound, duplicate, id)) => {
            // The receiver waits for this message; it cannot have gone away.
            let _ = ready.send(Ok((bound, reactor.handle(), duplicate, id)));
            reactor.run()
        }
        Err(e) => {
            let message = io::Error::new(e.kind(), format!("worker {index}: {e}"));
            let _ = ready.send(Err(message));
            Err(e)
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.shutdown();
            let _ = self.join_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::time::Duration;

    use super::{Spread, Workers};
    use crate::{Config, Cx, Handler, Input, Reactor};

    /// Answers each line with the index of the worker that serves the connection.
    struct WhoServes(usize);

    impl Handler for WhoServes {
        type Msg = ();
        fn on_data(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
            while input.take_line(b'\n').is_some() {
                cx.write(format!("{}\n", self.0).as_bytes());
            }
        }
    }

    /// Both ways of sharing the address serve every client, each on one of the workers (the
    /// shared listener is what platforms without a balancing `SO_REUSEPORT` get; Linux runs
    /// it only here and under `--cfg evloop_portable`).
    #[test]
    fn both_ways_of_sharing_the_address_serve_every_client() {
        for spread in [Spread::ReusePort, Spread::SharedListener] {
            let setup = |worker, _reactor: &mut Reactor<WhoServes>| move |_peer| WhoServes(worker);
            let workers =
                Workers::start_spread(3, "127.0.0.1:0".parse().unwrap(), Config::default(), setup, spread)
                    .unwrap();
            assert_eq!(workers.handles().len(), 3);
            let clients: Vec<_> = (0..30)
                .map(|_| {
                    let mut stream = std::net::TcpStream::connect(workers.addr()).unwrap();
                    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    stream.write_all(b"who?\nwho?\n").unwrap();
                    stream
                })
                .collect();
            for stream in clients {
                let mut lines = BufReader::new(stream).lines();
                let first: usize = lines.next().unwrap().unwrap().parse().unwrap();
                let second: usize = lines.next().unwrap().unwrap().parse().unwrap();
                assert!(first < 3, "{spread:?}: worker {first}");
                assert_eq!(first, second, "{spread:?}: a connection stays on its worker");
            }
            workers.shutdown();
            let stats = workers.join().unwrap();
            assert_eq!(stats.accepted, 30, "{spread:?}");
        }
    }
}
