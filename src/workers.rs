//! Multi-core, share-nothing: N reactors, one per thread, each with its own listening socket
//! on the same address (`SO_REUSEPORT`), so the kernel spreads new connections across them.
//!
//! ```text
//!                       ┌─► thread 0: Reactor ◄── listener (SO_REUSEPORT) ─┐
//!  clients ─► kernel ───┼─► thread 1: Reactor ◄── listener (SO_REUSEPORT) ─┼── same address
//!   (hash of 4-tuple)   └─► thread N: Reactor ◄── listener (SO_REUSEPORT) ─┘
//! ```
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
use crate::{Config, Handle, Handler, Reactor, Stats};

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
pub struct Workers {
    addr: SocketAddr,
    handles: Vec<Handle>,
    threads: Vec<JoinHandle<io::Result<()>>>,
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
        config.validate()?;
        let mut workers = Workers { addr, handles: Vec::new(), threads: Vec::new() };
        for index in 0..count.max(1) {
            // Worker 0 may bind port 0; the others must join the port it got.
            let bind_to = workers.addr;
            let (ready_tx, ready_rx) = mpsc::channel();
            let (config, setup) = (config.clone(), setup.clone());
            let spawned = thread::Builder::new().name(format!("evloop-worker-{index}")).spawn(move || {
                let started = (|| -> io::Result<(Reactor<H>, SocketAddr)> {
                    let mut reactor = Reactor::new(config.clone())?;
                    let options = ListenOptions { backlog: config.backlog, reuse_port: true };
                    let factory = setup(index, &mut reactor);
                    let bound = reactor.add_listener(listen(bind_to, options)?, factory)?;
                    Ok((reactor, bound))
                })();
                match started {
                    Ok((mut reactor, bound)) => {
                        // The receiver waits for this message; it cannot have gone away.
                        let _ = ready_tx.send(Ok((bound, reactor.handle())));
                        reactor.run()
                    }
                    Err(e) => {
                        let message = io::Error::new(e.kind(), format!("worker {index}: {e}"));
                        let _ = ready_tx.send(Err(message));
                        Err(e)
                    }
                }
            });
            let result = spawned.and_then(|thread| {
                workers.threads.push(thread);
                ready_rx.recv().unwrap_or_else(|_| Err(io::Error::other("worker thread died while starting")))
            });
            match result {
                Ok((bound, handle)) => {
                    workers.addr = bound;
                    workers.handles.push(handle);
                }
                Err(e) => {
                    workers.shutdown();
                    let _ = workers.join_all();
                    return Err(e);
                }
            }
        }
        Ok(workers)
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

impl Drop for Workers {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.shutdown();
            let _ = self.join_all();
        }
    }
}
