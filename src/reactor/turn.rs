//! One turn of the loop, step by step, and the loop's own lifecycle. This list is the one
//! description of a turn (ARCHITECTURE.md and the other modules point here):
//!
//! 1. **Timeout** (`poll_timeout`): zero while deferred work or mail waits, else until the
//!    nearest timer or the caller's limit, whichever is sooner.
//! 2. **Poll** (`Reactor::run_once`): `EINTR` is an empty turn, never an error. The loop's
//!    clock (`Shared::now`) is read once, here; every callback of the turn sees it.
//! 3. **Events**, each through `dispatch` by its token, under `run_once`'s panic guard
//!    (a panicking `on_data` closes its connection and the turn resumes at the next event):
//!    - connection: generation check; an error or hang-up takes `conn_trouble`; a writable
//!      event with output waiting writes first (`on_writable`); then reads under the
//!      per-turn budget, each read handed to `on_data` and settled (`conn_io.rs`), or
//!      forwarded (`forward.rs`);
//!    - listener: accept a bounded batch (`accept.rs`);
//!    - source: the embedder's callback (`sources.rs`);
//!    - waker: a shutdown request, streams and messages from other threads (`mail.rs`),
//!      offload results (`on_done`).
//! 4. **Deferred work** queued before this step (`serve_deferred`): reads cut off by the
//!    budget, resumed after a pause, yielded or released by a forwarding partner (held
//!    input first); accepts cut off by the batch or resumed below the connection cap.
//! 5. **Timers** due at the turn's start (`expire_timers`), each by its owner: handler
//!    timers, idle timeouts, linger and connect deadlines, accept retries, the shutdown
//!    deadline, reactor timers. Timers set meanwhile wait for the next turn.
//! 6. **Opens, mail and calls** (`after_step`): connections callbacks opened are installed,
//!    the messages queued before this step are delivered (`on_message`), in order, then the
//!    work callbacks handed to the reactor (`Cx::defer`) runs, in order (`calls.rs`).
//! 7. **Flush** (`flush_queued`, `conn_io.rs`): one write per connection for everything the
//!    turn's callbacks other than `on_data` wrote to it — messages, offload results, timers.
//! 8. **Lifecycle**: draining with no connection left → `Stopped`.
//! 9. **Publish** (`run_once`): an oversized staging buffer is freed, and the stats are
//!    copied for other threads (`Handle::stats`).
//!
//! After `on_data`, `Shared::settle` writes what it produced at once (a reply leaves in the
//! request's own step) and carries out what it asked; after every other callback,
//! `Shared::settle_later` keeps the output for step 7 (see `shared.rs`). Work created during a step that would repeat the
//! step (a read deferred while serving deferred reads, a timer set while timers fire, mail
//! sent while mail is delivered) waits for the next turn, after a poll, so nothing can
//! monopolise the loop. This module routes and sequences; what happens to one connection
//! is in `conn_io.rs`, to one listener in `accept.rs`.

use std::time::{Duration, Instant};

use mio::{Events, Token};

use super::{Lifecycle, Reactor, Ready};
use crate::flags::Flags;
use crate::handler::Handler;
use crate::shared::{Deferred, Done, TimerOwner};
use crate::stats::Reason;
use crate::timer::{deadline_after, TimerId};
use crate::token::{self, ConnId, Service};

impl<H: Handler> Reactor<H> {
    /// The work of one turn after the poll: the events from `next_event` on, then deferred
    /// work, timers and the end of a shutdown. Resumable: after a handler's panic,
    /// `run_once` calls it again and it carries on with the next event. (Deferred work and
    /// timers queued earlier in a turn that panicked may then be served in the same turn;
    /// that only shifts fairness, never correctness.)
    pub(super) fn turn(&mut self, events: &Events, next_event: &mut usize) {
        // Skip what an earlier call of this turn dispatched (by hand: `Iterator::skip`
        // costs a check per event, measured at 5 instructions per echoed message).
        let mut events = events.iter();
        for _ in 0..*next_event {
            events.next();
        }
        // The stall detector's setting is asked once per turn, not per event.
        match self.shared.config.slow_callback {
            None => {
                for event in events {
                    *next_event += 1;
                    self.dispatch(event.token(), Ready::of(event));
                }
            }
            Some(limit) => {
                // One clock read per event, each event's end being the next one's start.
                // No event can have been slow before the turn as a whole has run past the
                // limit: until then one comparison per event is the whole test.
                let mut started = Instant::now();
                let turn_slow_at = started.checked_add(limit);
                for event in events {
                    *next_event += 1;
                    // Callbacks the event runs start from here (see `callback`).
                    self.shared.clock_mark = started;
                    self.dispatch(event.token(), Ready::of(event));
                    let ended = Instant::now();
                    if turn_slow_at.is_some_and(|at| ended > at) && ended.duration_since(started) > limit {
                        self.report_slow_event(event.token(), ended.duration_since(started));
                    }
                    started = ended;
                }
                self.shared.clock_mark = started;
            }
        }
        self.mark_clock();
        self.serve_deferred();
        self.mark_clock();
        self.expire_timers();
        // Connections the turn's callbacks opened are installed and the mail they sent is
        // delivered once, at the end: one check per turn on the hot path. (What this
        // sends in turn waits for the next turn, which then does not block.)
        self.mark_clock();
        self.after_step();
        // Everything this turn's callbacks (but `on_data`) wrote, one write per connection.
        if !self.shared.flushes.is_empty() {
            self.flush_queued();
        }
        if matches!(self.lifecycle, Lifecycle::Draining { .. }) && self.conn_count() == 0 {
            self.finish_shutdown();
        }
    }

    /// Where the stall detector's next callback starts (`Config::slow_callback`): now, at
    /// the start of a step, so a callback is not charged for the reactor's work before it.
    #[inline]
    fn mark_clock(&mut self) {
        if self.shared.config.slow_callback.is_some() {
            self.shared.clock_mark = Instant::now();
        }
    }

    /// Installs the connections the turn's callbacks opened and delivers the mail they
    /// sent; two loads and a compare when there is none.
    #[inline]
    fn after_step(&mut self) {
        if !self.shared.mail.is_empty() || !self.shared.opening.is_empty() {
            self.deliver_mail();
        }
        if !self.shared.calls.is_empty() {
            self.run_calls();
        }
    }

    /// How long the poll may block: not at all while work is deferred (reads and accepts,
    /// mail, calls, output for the flush step), else until the
    /// nearest timer or the caller's limit, whichever is sooner.
    pub(super) fn poll_timeout(&mut self, caller: Option<Duration>) -> Option<Duration> {
        let shared = &self.shared;
        let waiting = !shared.deferred.is_empty() || !shared.mail.is_empty() || !shared.calls.is_empty();
        if waiting || !shared.flushes.is_empty() {
            return Some(Duration::ZERO);
        }
        let timer = self
            .shared
            .timers
            .next_deadline()
            .map(|deadline| deadline.saturating_duration_since(Instant::now()));
        match (timer, caller) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Routes one readiness event by what its token names: the one dispatch every event
    /// goes through, from the poll or from a test. Nearly every event is a connection's:
    /// that is one compare (`as_conn`); the rest are decoded out of line. Always inlined:
    /// with two callers (the plain and the timed path) the compiler made it a call, and its
    /// prologue and epilogue cost 17 instructions per echoed message (callgrind).
    #[inline(always)]
    pub(super) fn dispatch(&mut self, token: Token, ready: Ready<'_>) {
        match token::as_conn(token) {
            Some(id) => self.conn_ready(id, ready),
            None => self.service_ready(token::service(token), ready),
        }
    }

    /// The loop-stall detector (`Config::slow_callback`) found an event that held the loop
    /// `took`, too long — for a connection, its reads and `on_data`
    /// calls: reports it with the connection and its peer.
    #[cold]
    #[inline(never)]
    fn report_slow_event(&mut self, token: Token, took: Duration) {
        let Some(id) = token::as_conn(token) else { return };
        let peer = self.live_slot(id).map(|slot| self.conns[slot].core.peer.clone());
        self.shared.report_slow(took, "on_data", id.slot(), peer.as_ref());
    }

    /// An event for one of the loop's own services: a listener, a source, the waker.
    #[inline(never)]
    fn service_ready(&mut self, service: Service, ready: Ready<'_>) {
        match service {
            Service::Listener(index) => self.accept(index),
            Service::Source(index) => self.source_ready(index, ready),
            Service::Waker => self.woken(),
        }
    }

    /// Serves the work deferred before this call: reads cut off by the budget or resumed
    /// after a pause (held input first), and accepts cut off by the batch.
    fn serve_deferred(&mut self) {
        // Only what was deferred before this point: work deferred while serving waits for
        // the next turn, after a poll, so nothing can monopolise the loop.
        for _ in 0..self.shared.deferred.len() {
            let Some(work) = self.shared.deferred.pop_front() else { break };
            match work {
                Deferred::Read(id) => {
                    let Some(slot) = self.live_slot(id) else { continue };
                    self.conns[slot].core.flags.remove(Flags::READ_DEFERRED | Flags::YIELDED);
                    self.resume_read(slot);
                }
                Deferred::Accept(index) => self.accept(index),
            }
        }
    }

    /// Fires the timers due at the start of this turn, each by its owner. Timers set while
    /// these run wait for the next turn (the sequence fence).
    fn expire_timers(&mut self) {
        let now = self.shared.now;
        let fence = self.shared.timers.sequence();
        while let Some((id, owner)) = self.shared.timers.pop_expired(now, fence) {
            match owner {
                TimerOwner::Handler(conn) => self.handler_timer_due(conn, id),
                TimerOwner::Idle(conn) => self.idle_timer_due(conn),
                TimerOwner::Linger(conn) => self.linger_timer_due(conn),
                TimerOwner::AcceptRetry(index) => self.accept_retry_due(index),
                TimerOwner::ShutdownDeadline => self.shutdown_deadline_due(),
                TimerOwner::Connect(conn) => self.connect_timer_due(conn),
                TimerOwner::Loop(key) => self.loop_timer_due(key),
            }
        }
    }

    /// The slot of the connection `id`, if it is still open (and installed).
    pub(super) fn live_slot(&self, id: ConnId) -> Option<usize> {
        let slot = id.slot();
        self.conns.get(slot).filter(|conn| conn.core.id == id).map(|_| slot)
    }

    /// The waker fired: another thread asked for shutdown, sent messages or streams, or
    /// offload jobs finished.
    fn woken(&mut self) {
        if self.remote.shutdown_requested() {
            match self.lifecycle {
                Lifecycle::Running => self.begin_shutdown(),
                // Asked to stop while draining: what is left closes now.
                Lifecycle::Draining { .. } if !self.shutdown_escalated => {
                    self.shutdown_escalated = true;
                    self.shared.offload.drain();
                    self.close_all_gracefully();
                }
                _ => {}
            }
        }
        self.serve_requests();
        self.take_inbox();
        let Some(pool) = self.shared.offload.pool() else { return };
        let mut completions = std::mem::take(&mut self.completions);
        pool.drain(&mut completions);
        for (tag, result) in completions.drain(..) {
            match result {
                Ok(Done::Msg(message)) => self.job_done(ConnId::from_bits(tag), Ok(message)),
                Err(error) => self.job_done(ConnId::from_bits(tag), Err(error)),
                Ok(Done::Call(call)) => {
                    // An endpoint's job: the closure finds the endpoint (if still open).
                    self.shared.stats.offload_completed += 1;
                    call(self as &mut dyn std::any::Any);
                }
            }
        }
        self.completions = completions;
    }

    /// Running → Draining: close the listeners, refuse new jobs, let every connection flush
    /// and close, and arm the deadline after which the rest are closed regardless.
    fn begin_shutdown(&mut self) {
        log::info!("shutting down: {} connections open", self.conn_count());
        // Running jobs still deliver their results while draining; new ones are refused.
        self.shared.offload.drain();
        self.stop_accepting();
        let slots = self.conns.slots();
        for slot in slots {
            self.conns[slot].core.life.close(Reason::Shutdown);
            self.settle_or_close(slot);
        }
        let deadline = deadline_after(self.shared.now, self.shared.config.shutdown_timeout);
        let deadline: TimerId = self.shared.timers.insert(deadline, TimerOwner::ShutdownDeadline);
        self.lifecycle = Lifecycle::Draining { deadline };
    }

    /// The shutdown deadline passed: whatever is still open closes now, output or not.
    fn shutdown_deadline_due(&mut self) {
        let slots = self.conns.slots();
        if !slots.is_empty() {
            log::warn!("shutdown: closing {} connections with unsent output", slots.len());
        }
        for slot in slots {
            self.close_now(slot, Reason::Shutdown);
        }
    }

    /// Draining → Stopped: the last connection is gone; stop the pool and its threads.
    fn finish_shutdown(&mut self) {
        if let Lifecycle::Draining { deadline } = self.lifecycle {
            self.shared.timers.cancel(deadline);
        }
        self.shared.offload.close();
        self.inbox.close();
        self.lifecycle = Lifecycle::Stopped;
        log::info!("shut down");
    }
}
