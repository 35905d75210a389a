//! Work a callback hands off: to the offload pool (`Cx::offload`: CPU-bound jobs, results to
//! `on_done`), or to the reactor itself: `Cx::defer(|reactor| …)`. A callback holds one
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
use crate::offload::{Cancel, OffloadError};
use crate::shared::{Done, LoopCall};

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

impl<H: Handler> Cx<'_, H> {
    /// Runs `job` on the offload pool's worker threads; its result comes back to
    /// [`Handler::on_done`] on the loop thread. Results for a connection that has closed
    /// meanwhile are dropped.
    ///
    /// # Errors
    ///
    /// [`OffloadError::Busy`] when the pool's queue is full — answer "busy" rather than
    /// queue without bound — and [`OffloadError::Closed`] once the reactor is shutting down.
    ///
    /// # Examples
    ///
    /// CPU-bound work off the loop: the sum of 1..=N for each line N, the loop free for
    /// others meanwhile.
    ///
    /// ```
    /// use evloop::{Config, Cx, Handler, Input, JobError, Reactor};
    /// use std::io::{Read, Write};
    ///
    /// struct Summer;
    /// impl Handler for Summer {
    ///     type Msg = u64;
    ///     fn on_data(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
    ///         while let Some(line) = input.take_line(b'\n') {
    ///             let n: u64 = std::str::from_utf8(line).ok().and_then(|t| t.trim().parse().ok()).unwrap_or(0);
    ///             if cx.offload(move || (1..=n).sum()).is_err() {
    ///                 cx.write(b"busy\n");
    ///             }
    ///         }
    ///     }
    ///     fn on_done(&mut self, result: Result<u64, JobError>, cx: &mut Cx<'_, Self>) {
    ///         match result {
    ///             Ok(sum) => cx.write(format!("{sum}\n").as_bytes()),
    ///             Err(e) => cx.write(format!("error: {e}\n").as_bytes()),
    ///         }
    ///     }
    /// }
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let mut reactor = Reactor::new(Config { offload_threads: 1, ..Config::default() })?;
    /// let (ours, mut theirs) = std::os::unix::net::UnixStream::pair()?;
    /// # theirs.set_read_timeout(Some(std::time::Duration::from_secs(10)))?; // a failure fails, not hangs
    /// reactor.adopt(ours, Summer)?;
    /// let handle = reactor.handle();
    /// let client = std::thread::spawn(move || {
    ///     theirs.write_all(b"1000000\n").unwrap();
    ///     let mut reply = [0; 13];
    ///     theirs.read_exact(&mut reply).unwrap();
    ///     handle.shutdown();
    ///     reply
    /// });
    /// reactor.run()?;
    /// assert_eq!(&client.join().unwrap(), b"500000500000\n");
    /// # Ok(())
    /// # }
    /// ```
    pub fn offload<F>(&mut self, job: F) -> Result<(), OffloadError>
    where
        F: FnOnce() -> H::Msg + Send + 'static,
    {
        let (core, shared) = self.parts();
        let cancel = core.cancel.get_or_insert_with(Cancel::new).clone();
        shared.offload(core.id, cancel, Box::new(move || Done::Msg(job())))
    }

    /// [`offload`](Cx::offload) for a long job that can stop early: it gets the
    /// connection's [`Cancel`] flag, raised when the connection closes, to poll now and then
    /// (a job still waiting when the connection closes never runs at all, either way).
    ///
    /// # Errors
    ///
    /// As for `offload`.
    pub fn offload_cancellable<F>(&mut self, job: F) -> Result<(), OffloadError>
    where
        F: FnOnce(&Cancel) -> H::Msg + Send + 'static,
    {
        let (core, shared) = self.parts();
        let cancel = core.cancel.get_or_insert_with(Cancel::new).clone();
        let flag = cancel.clone();
        shared.offload(core.id, cancel, Box::new(move || Done::Msg(job(&flag))))
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
