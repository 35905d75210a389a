//! `Handle`: what other threads may ask of a running reactor — shut it down or drain it,
//! pause, resume or remove a listener, read its counters. Everything crosses through
//! `Remote` (a flag, a request queue, the stats) and the reactor's one `Waker`.
//!
//! ```text
//!   any thread ──Handle::shutdown──► Remote.shutdown = true ──► Waker ──► loop: begin draining
//!   loop, end of every turn ──copy of Stats──► Remote.stats ──► Handle::stats (any thread)
//! ```
//!
//! This module holds no loop state and never blocks the loop: the loop only reads the flag
//! when woken and writes the stats once per turn.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use mio::Waker;

use super::listeners::{ListenerId, Request};
use crate::stats::Stats;

/// What other threads can see and ask for.
#[derive(Debug, Default)]
pub(super) struct Remote {
    pub(super) shutdown: AtomicBool,
    pub(super) stats: Mutex<Stats>,
    /// Listener changes and drains asked for, in order (`listeners.rs` carries them out).
    requests: Mutex<Vec<Request>>,
}

impl Remote {
    /// Has any thread asked for shutdown?
    pub(super) fn shutdown_requested(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    /// What was asked since the last call.
    pub(super) fn take_requests(&self) -> Vec<Request> {
        std::mem::take(&mut *self.requests.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// A thread-safe handle to a running [`Reactor`](crate::Reactor): ask it to shut down or
/// drain, pause or resume its listeners, read its stats. Cheap to clone.
///
/// # Examples
///
/// The reactor runs on its own thread; the main thread watches it and stops it:
///
/// ```
/// use evloop::{Config, Cx, Handler, Input, Reactor};
/// use std::time::Duration;
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
/// let (tx, rx) = std::sync::mpsc::channel();
/// let server = std::thread::spawn(move || -> std::io::Result<()> {
///     let mut reactor = Reactor::new(Config::default())?;
///     let (_id, addr) = reactor.listen("127.0.0.1:0".parse().unwrap(), |_| Quiet)?;
///     tx.send((reactor.handle(), addr)).unwrap(); // a Handle is Send; the reactor is not
///     reactor.run()
/// });
/// let (handle, addr) = rx.recv().unwrap();
/// let _client = std::net::TcpStream::connect(addr)?;
/// while handle.stats().accepted == 0 {
///     std::thread::sleep(Duration::from_millis(1));
/// }
/// handle.shutdown(); // from any thread; run() returns once every connection is closed
/// server.join().unwrap()?;
/// assert_eq!(handle.stats().closed.shutdown, 1);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Handle {
    waker: Arc<Waker>,
    remote: Arc<Remote>,
}

impl Handle {
    pub(super) fn new(waker: Arc<Waker>, remote: Arc<Remote>) -> Handle {
        Handle { waker, remote }
    }

    /// Asks the reactor to shut down gracefully: it stops accepting, flushes pending output
    /// for up to [`Config::shutdown_timeout`](crate::Config::shutdown_timeout), closes every
    /// connection, stops the offload pool, and `run()` returns. Safe to call from any
    /// thread, any number of times.
    pub fn shutdown(&self) {
        self.remote.shutdown.store(true, Ordering::SeqCst);
        if let Err(e) = self.waker.wake() {
            log::error!("shutdown could not wake the reactor: {e}");
        }
    }

    /// Drains gracefully ([`Reactor::drain`](crate::Reactor::drain)): stop accepting, let
    /// accepted connections finish, close the rest after `timeout`. From any thread.
    pub fn drain(&self, timeout: Duration) {
        self.ask(Request::Drain(timeout));
    }

    /// [`Reactor::pause_listener`](crate::Reactor::pause_listener), from any thread (an
    /// unknown id is logged on the loop).
    pub fn pause_listener(&self, id: ListenerId) {
        self.ask(Request::Pause(id));
    }

    /// [`Reactor::resume_listener`](crate::Reactor::resume_listener), from any thread.
    pub fn resume_listener(&self, id: ListenerId) {
        self.ask(Request::Resume(id));
    }

    /// [`Reactor::remove_listener`](crate::Reactor::remove_listener), from any thread.
    pub fn remove_listener(&self, id: ListenerId) {
        self.ask(Request::Remove(id));
    }

    fn ask(&self, request: Request) {
        self.remote.requests.lock().unwrap_or_else(PoisonError::into_inner).push(request);
        if let Err(e) = self.waker.wake() {
            log::error!("{request:?} could not wake the reactor: {e}");
        }
    }

    /// The reactor's counters as of the end of its latest turn.
    pub fn stats(&self) -> Stats {
        *self.remote.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
