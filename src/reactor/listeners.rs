//! Listeners with a life of their own: named by a `ListenerId`, paused, resumed and removed
//! on the loop or from any thread, their descriptors lent out for a handover; and the
//! graceful drain, which stops every listener but lets accepted connections finish.
//!
//! ```text
//!   listen / listen_unix / add_listener ──► ListenerId (its index in the table, never reused)
//!   pause_listener ──► held: events ignored, clients wait in the kernel's backlog
//!   resume_listener ──► not held: the backlog is accepted (deferred accept, next step)
//!   remove_listener ──► deregistered, closed (another process's copy of it lives on)
//!   Handle::{pause,resume,remove}_listener, Handle::drain ──► Remote.requests ──► Waker
//!        ──► loop, when woken: carried out in the order asked
//!
//!   drain(timeout): Running ──► Draining { deadline }: listeners closed, on_going_away for
//!        each connection; they finish and close on their own; at the deadline the rest
//!        are closed (Reason::Shutdown, counted); none left ──► Stopped
//! ```
//!
//! `Handle::shutdown` is the other way to stop: it asks every connection to close at once
//! (after flushing what it wrote). A drain is what an upgrade wants: the new process has the
//! listening sockets, and what the old one accepted is answered, not cut off.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use super::accept::ListenSocket;
use super::{Lifecycle, Reactor};
use crate::handler::Handler;
use crate::shared::{Deferred, TimerOwner};
use crate::stats::Reason;
use crate::timer::{deadline_after, TimerId};

/// Names a listener of a reactor (returned by [`Reactor::listen`] and friends). The table
/// never reuses an id, so a removed listener's id names nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenerId(pub(super) usize);

impl fmt::Display for ListenerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "listener {}", self.0)
    }
}

/// What another thread asked of the loop through its [`Handle`](crate::Handle).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Request {
    Pause(ListenerId),
    Resume(ListenerId),
    Remove(ListenerId),
    Drain(Duration),
}

impl<H: Handler> Reactor<H> {
    /// The listeners serving now, in the order they were added.
    #[must_use]
    pub fn listeners(&self) -> Vec<ListenerId> {
        self.listeners.iter().enumerate().filter(|(_, l)| l.is_some()).map(|(i, _)| ListenerId(i)).collect()
    }

    /// The listening socket of `id`, to hand to another process (set it inheritable and
    /// spawn, or send it with `SCM_RIGHTS`). `None` if `id` is removed.
    #[must_use]
    pub fn listener_fd(&self, id: ListenerId) -> Option<BorrowedFd<'_>> {
        let listener = self.listeners.get(id.0)?.as_ref()?;
        Some(match &listener.socket {
            ListenSocket::Tcp(socket) => socket.as_fd(),
            ListenSocket::Unix(socket) => socket.as_fd(),
        })
    }

    /// Stops accepting on `id`: new clients wait in the kernel's backlog (and past it, their
    /// connects are retried or refused by the kernel) until [`resume_listener`](Reactor::resume_listener).
    /// Connections already accepted are not touched.
    ///
    /// # Errors
    ///
    /// `NotFound` if `id` is removed.
    pub fn pause_listener(&mut self, id: ListenerId) -> io::Result<()> {
        self.listener_mut(id)?.held = true;
        Ok(())
    }

    /// Accepts on `id` again, starting with the clients that waited in the backlog.
    ///
    /// # Errors
    ///
    /// `NotFound` if `id` is removed.
    pub fn resume_listener(&mut self, id: ListenerId) -> io::Result<()> {
        self.listener_mut(id)?.held = false;
        // Edge-triggered: no new event announces the clients already waiting.
        self.shared.deferred.push_back(Deferred::Accept(id.0));
        Ok(())
    }

    /// Removes `id` from the loop and closes this reactor's descriptor of it. Clients in its
    /// backlog are refused by the kernel, unless another process holds the same socket (an
    /// upgrade's new process), which then accepts them.
    ///
    /// # Errors
    ///
    /// `NotFound` if `id` is already removed.
    pub fn remove_listener(&mut self, id: ListenerId) -> io::Result<()> {
        self.listener_mut(id)?;
        self.close_listener(id.0);
        Ok(())
    }

    fn listener_mut(&mut self, id: ListenerId) -> io::Result<&mut super::accept::Listener<H>> {
        self.listeners
            .get_mut(id.0)
            .and_then(Option::as_mut)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no {id}")))
    }

    /// Drains gracefully: stops accepting (every listener closed), tells every connection
    /// ([`Handler::on_going_away`]), and lets them finish and close on their own; after
    /// `timeout` the rest are closed, counted in `Stats::closed.shutdown`. `run()` returns
    /// once none is left. A drain already under way, or a shutdown, is not changed; a
    /// [`Handle::shutdown`](crate::Handle::shutdown) during a drain closes the rest at once.
    pub fn drain(&mut self, timeout: Duration) {
        if self.lifecycle != Lifecycle::Running {
            return;
        }
        log::info!("draining: {} connections open, {timeout:?} to finish", self.conn_count());
        self.stop_accepting();
        self.shared.going_away = true;
        let deadline = deadline_after(self.shared.now, timeout);
        let deadline: TimerId = self.shared.timers.insert(deadline, TimerOwner::ShutdownDeadline);
        self.lifecycle = Lifecycle::Draining { deadline };
        for slot in self.conns.slots() {
            if self.conns[slot].core.is_open() {
                self.callback(slot, "on_going_away", |handler, cx| handler.on_going_away(cx));
            }
        }
    }

    /// Carries out what other threads asked through `Handle`, in order.
    pub(super) fn serve_requests(&mut self) {
        for request in self.remote.take_requests() {
            let done = match request {
                Request::Pause(id) => self.pause_listener(id),
                Request::Resume(id) => self.resume_listener(id),
                Request::Remove(id) => self.remove_listener(id),
                Request::Drain(timeout) => {
                    self.drain(timeout);
                    Ok(())
                }
            };
            if let Err(e) = done {
                log::warn!("{request:?} from another thread: {e}");
            }
        }
    }

    /// A shutdown asked for while draining: what is still open closes now (after flushing
    /// what it wrote), as in a shutdown from the start.
    pub(super) fn close_all_gracefully(&mut self) {
        for slot in self.conns.slots() {
            self.conns[slot].core.life.close(Reason::Shutdown);
            self.settle_or_close(slot);
        }
    }
}
