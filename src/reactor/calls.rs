//! Work a callback hands to the reactor itself: `Cx::defer(|reactor| …)`. A callback holds one
//! connection of the table and the loop's services (`Shared`), never the whole reactor; what
//! only the reactor can do — set a reactor timer, connect, register a source, anything of
//! its public API — is queued here and run with the reactor once the turn's mail is
//! delivered (step 6 of `turn.rs`). From `on_close` too, where the connection's own timers
//! and messages are gone: reconnecting with backoff needs no loop of the host's.
//!
//! ```text
//!   Cx::defer(f) ──► Shared::calls (a LoopCall: f behind a downcast) ──► after the mail:
//!       run_calls: each f(&mut reactor), in order, under its own panic guard
//!       (calls they queue wait for the next turn, which then does not block)
//! ```

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};

use super::Reactor;
use crate::handler::{Cx, Handler};
use crate::shared::LoopCall;

impl<H: Handler> Cx<'_, H> {
    /// Runs `f` with the reactor itself, after this callback returns (in this turn, once the
    /// turn's messages are delivered), in the order deferred. Usable from every callback,
    /// `on_close` included: set a reactor timer, open or adopt a connection, register a
    /// source, send a message — anything [`Reactor`] offers. A panic in `f` is logged and
    /// ends `f` only.
    ///
    /// # Examples
    ///
    /// A client that reconnects with backoff when its connection closes:
    ///
    /// ```
    /// use evloop::{Config, Cx, Handler, Input, Reactor, Reason};
    /// use std::net::SocketAddr;
    /// use std::time::Duration;
    ///
    /// struct Client {
    ///     server: SocketAddr,
    ///     attempt: u32,
    /// }
    ///
    /// impl Handler for Client {
    ///     type Msg = ();
    ///     fn on_data(&mut self, input: &mut Input<'_>, _cx: &mut Cx<'_, Self>) {
    ///         input.consume_all();
    ///     }
    ///     fn on_close(&mut self, reason: Reason, cx: &mut Cx<'_, Self>) {
    ///         let (server, attempt) = (self.server, self.attempt + 1);
    ///         if attempt > 3 {
    ///             return; // give up
    ///         }
    ///         let backoff = Duration::from_millis(10 << attempt);
    ///         println!("{reason}; reconnecting in {backoff:?}");
    ///         cx.defer(move |reactor| {
    ///             reactor.set_timer(backoff, move |reactor| {
    ///                 let _ = reactor.connect(server, Client { server, attempt });
    ///             });
    ///         });
    ///     }
    /// }
    ///
    /// # fn main() -> std::io::Result<()> {
    /// // Nothing listens here: every connect is refused, and each close schedules the next.
    /// let server: SocketAddr = {
    ///     let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
    ///     probe.local_addr()?
    /// };
    /// let mut reactor = Reactor::new(Config::default())?;
    /// reactor.connect(server, Client { server, attempt: 0 })?;
    /// let deadline = std::time::Instant::now() + Duration::from_secs(10);
    /// while reactor.stats().closed.connect_failed < 4 && std::time::Instant::now() < deadline {
    ///     reactor.run_once(Some(Duration::from_millis(10)))?;
    /// }
    /// assert_eq!(reactor.stats().closed.connect_failed, 4);
    /// # Ok(())
    /// # }
    /// ```
    pub fn defer<F>(&mut self, f: F)
    where
        F: FnOnce(&mut Reactor<H>) + 'static,
    {
        self.shared_mut().calls.push(loop_call(f));
    }
}

/// `f` behind the downcast `Shared` needs (it knows no `Reactor` type).
fn loop_call<H: Handler, F>(f: F) -> LoopCall
where
    F: FnOnce(&mut Reactor<H>) + 'static,
{
    LoopCall(Box::new(move |reactor: &mut dyn Any| match reactor.downcast_mut::<Reactor<H>>() {
        Some(reactor) => f(reactor),
        None => unreachable!("calls of a Reactor<H> run with that reactor"),
    }))
}

impl<H: Handler> Reactor<H> {
    /// Queues `f` to run with the reactor after this turn's events and mail (step 6 of
    /// `turn.rs`), as `Cx::defer` does from a callback.
    pub(super) fn defer_call<F>(&mut self, f: F)
    where
        F: FnOnce(&mut Reactor<H>) + 'static,
    {
        self.shared.calls.push(loop_call(f));
    }

    /// Runs the work callbacks deferred before this call, in order; what they defer waits
    /// for the next turn.
    pub(super) fn run_calls(&mut self) {
        let calls = std::mem::take(&mut self.shared.calls);
        for LoopCall(call) in calls {
            let reactor: &mut dyn Any = self;
            if panic::catch_unwind(AssertUnwindSafe(|| call(reactor))).is_err() {
                log::error!("a deferred call (Cx::defer) panicked; the loop goes on");
            }
        }
    }
}
