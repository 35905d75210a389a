//! Reactor-level timers: callbacks not tied to any connection (periodic stats, a cache
//! sweep, a reconnect), run on the loop thread with the whole reactor in hand.
//!
//! ```text
//!   Reactor::set_timer(after, f) ──► loop_timers[key] = f ──► Timers: (deadline, TimerOwner::Loop(key))
//!   deadline passes (turn.rs: expire_timers) ──► loop_timer_due(key) ──► f(&mut reactor)
//!                                                   (panic: logged, the loop goes on)
//! ```
//!
//! A callback that wants to run again sets a new timer from inside itself; a timer set
//! during the expiry pass waits for the next turn, so a zero-delay timer cannot hold the
//! loop. Connection timers (`Cx::set_timer`, written here too) are separate: they belong to a
//! connection, fire its `on_timer`, and die with it.

use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

use super::Reactor;
use crate::handler::{Cx, Handler};
use crate::shared::TimerOwner;
use crate::timer::{deadline_after, TimerId};

impl<H: Handler> Cx<'_, H> {
    /// Arms a timer that calls [`Handler::on_timer`] once, `after` from now. It dies with
    /// the connection.
    ///
    /// # Examples
    ///
    /// A heartbeat: `tick` every 10 ms until the peer has three.
    ///
    /// ```
    /// use evloop::{Config, Cx, Handler, Input, Reactor, TimerId};
    /// use std::io::Read;
    /// use std::time::Duration;
    ///
    /// struct Heartbeat {
    ///     beats: u32,
    /// }
    /// impl Handler for Heartbeat {
    ///     type Msg = ();
    ///     fn on_open(&mut self, cx: &mut Cx<'_, Self>) {
    ///         cx.set_timer(Duration::from_millis(10));
    ///     }
    ///     fn on_timer(&mut self, _id: TimerId, cx: &mut Cx<'_, Self>) {
    ///         cx.write(b"tick\n");
    ///         self.beats += 1;
    ///         if self.beats < 3 {
    ///             cx.set_timer(Duration::from_millis(10)); // the next one
    ///         }
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
    /// reactor.adopt(ours, Heartbeat { beats: 0 })?;
    /// let handle = reactor.handle();
    /// let client = std::thread::spawn(move || {
    ///     let mut ticks = [0; 15];
    ///     theirs.read_exact(&mut ticks).unwrap();
    ///     handle.shutdown();
    ///     ticks
    /// });
    /// reactor.run()?;
    /// assert_eq!(&client.join().unwrap(), b"tick\ntick\ntick\n");
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_timer(&mut self, after: Duration) -> TimerId {
        let (core, shared) = self.parts();
        let id = shared.set_conn_timer(core.id, after);
        core.timers.push(id);
        id
    }

    /// Cancels a timer this connection set. Returns `false` if it already fired, was
    /// cancelled, or belongs to another connection.
    pub fn cancel_timer(&mut self, id: TimerId) -> bool {
        let (core, shared) = self.parts();
        let cancelled = shared.cancel_conn_timer(core.id, id);
        if cancelled {
            core.forget_timer(id);
        }
        cancelled
    }
}

/// A reactor-level timer's callback, told its own id.
pub(super) type LoopTimer<H> = Box<dyn FnOnce(&mut Reactor<H>, TimerId)>;

impl<H: Handler> Reactor<H> {
    /// Runs `f` on the loop thread once, `after` from now, with the reactor: it can send
    /// messages, connect, register sources, set the next timer. Not tied to any connection.
    ///
    /// # Examples
    ///
    /// A periodic job re-arms itself:
    ///
    /// ```
    /// # use evloop::{Config, Cx, Handler, Input, Reactor};
    /// # struct Echo;
    /// # impl Handler for Echo {
    /// #     type Msg = ();
    /// #     fn on_data(&mut self, input: &mut Input<'_>, _cx: &mut Cx<'_, Self>) { input.consume_all(); }
    /// # }
    /// use std::time::Duration;
    ///
    /// fn every_10ms(reactor: &mut Reactor<Echo>, left: u32) {
    ///     if left == 0 {
    ///         return reactor.handle().shutdown();
    ///     }
    ///     reactor.set_timer(Duration::from_millis(10), move |r| every_10ms(r, left - 1));
    /// }
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let mut reactor = Reactor::<Echo>::new(Config::default())?;
    /// every_10ms(&mut reactor, 3);
    /// reactor.run()?;
    /// assert_eq!(reactor.stats().loop_timers_fired, 3);
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_timer<F>(&mut self, after: Duration, f: F) -> TimerId
    where
        F: FnOnce(&mut Reactor<H>) + 'static,
    {
        self.set_timer_with_id(after, move |reactor, _| f(reactor))
    }

    /// [`set_timer`](Reactor::set_timer) for a callback that needs its timer's id (a datagram
    /// endpoint's `on_timer`).
    pub(super) fn set_timer_with_id<F>(&mut self, after: Duration, f: F) -> TimerId
    where
        F: FnOnce(&mut Reactor<H>, TimerId) + 'static,
    {
        let key = self.loop_timers.insert(None);
        let deadline = deadline_after(self.shared.now, after);
        let id = self.shared.timers.insert(deadline, TimerOwner::Loop(key));
        self.loop_timers[key] = Some((id, Box::new(f)));
        id
    }

    /// Cancels a timer set with [`set_timer`](Reactor::set_timer). Returns `false` if it
    /// already ran or was cancelled.
    pub fn cancel_timer(&mut self, id: TimerId) -> bool {
        let Some(key) = self
            .loop_timers
            .iter()
            .find(|(_, t)| t.as_ref().is_some_and(|(tid, _)| *tid == id))
            .map(|(k, _)| k)
        else {
            return false;
        };
        self.loop_timers.remove(key);
        self.shared.timers.cancel(id).is_some()
    }

    /// A reactor-level timer is due: run its callback.
    pub(super) fn loop_timer_due(&mut self, key: usize) {
        let Some(Some((id, f))) = self.loop_timers.try_remove(key) else { return };
        self.shared.stats.loop_timers_fired += 1;
        if panic::catch_unwind(AssertUnwindSafe(|| f(self, id))).is_err() {
            log::error!("a reactor timer's callback panicked");
        }
    }
}
