//! `Handle`: what other threads may ask of a running reactor — shut it down, read its
//! counters. Everything crosses through two shared values and the reactor's one `Waker`.
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

use mio::Waker;

use crate::stats::Stats;

/// What other threads can see and ask for.
#[derive(Debug, Default)]
pub(super) struct Remote {
    pub(super) shutdown: AtomicBool,
    pub(super) stats: Mutex<Stats>,
}

impl Remote {
    /// Has any thread asked for shutdown?
    pub(super) fn shutdown_requested(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }
}

/// A thread-safe handle to a running [`Reactor`](crate::Reactor): ask it to shut down, read
/// its stats.
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

    /// The reactor's counters as of the end of its latest turn.
    pub fn stats(&self) -> Stats {
        *self.remote.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
