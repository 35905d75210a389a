//! Models 5, 6 and 11, the event loop: an evloop reactor, one thread, a state machine per
//! connection. Inline (model 5) it computes each fib(N) on the loop thread, so a long one
//! stalls every client exactly as the select loop does, only with less bookkeeping per
//! event. With offload (model 6) requests over N = 20 go to the reactor's worker pool and
//! the loop goes on serving everyone; the answer comes back through the reactor's waker.
//! One loop uses one core; `run_workers` (model 11) runs K share-nothing loops, each with
//! its own `SO_REUSEPORT` listener on the same address and its own offload pool.
//!
//! A `sleep MS` request arms a reactor timer (`Cx::set_timer`) in every variant: waiting
//! costs the loop nothing, so all the sleeping clients are answered together when their
//! timers fire.
//!
//! [`LabConn`] is also the handler of model 12's children (`fdpass.rs`), which serve the
//! connections their parent passes them on a reactor of their own (`Reactor::adopt`) and
//! count each one's end with [`LabConn::on_close`].

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use evloop::workers::Workers;
use evloop::{Config, Cx, Handler, Input, JobError, OffloadError, Reactor, Reason, TimerId};

use crate::protocol::{self, Answer, Frame, Rejection, Request, Wire};

/// Requests up to this N are computed on the loop even with offload: tens of
/// microseconds, less than a round trip through the pool.
const INLINE_MAX_N: u32 = 20;

/// Requests answered per `on_data` before yielding to the other connections.
const MAX_LINES_PER_TURN: usize = 64;

/// One connection's state machine: frames requests, answers them in order, parks the
/// connection while a sleep's timer or an offloaded job runs.
pub struct LabConn {
    wire: Wire,
    offload: bool,
    /// A job is on the pool or a sleep's timer is armed: reading is paused so replies stay
    /// in request order. Holds what the reply needs when it comes.
    waiting: Option<Waiting>,
    /// Called once when the connection closes, however it ends (see [`LabConn::on_close`]).
    closed: Option<Box<dyn FnOnce()>>,
}

struct Waiting {
    /// The `sleep` asked for, in milliseconds (`None`: a fib job).
    slept: Option<u64>,
    /// Close after the reply (HTTP `Connection: close`).
    close: bool,
}

impl LabConn {
    /// A connection speaking `wire`; with `offload`, fib(N > 20) goes to the reactor's pool.
    pub fn new(wire: Wire, offload: bool) -> LabConn {
        LabConn { wire, offload, waiting: None, closed: None }
    }

    /// Calls `closed` when the connection has closed (the peer left, an error, the reactor
    /// shut down): how a descriptor-passing child knows a passed connection is finished.
    pub fn on_close(mut self, closed: impl FnOnce() + 'static) -> LabConn {
        self.closed = Some(Box::new(closed));
        self
    }

    fn respond(&self, result: Result<Answer, Rejection>, close: bool, cx: &mut Cx<'_, Self>) {
        cx.write(&protocol::reply(self.wire, result, close));
        if close {
            cx.close();
        }
    }

    /// Parks the connection until its timer or job ends.
    fn wait(&mut self, waiting: Waiting, cx: &mut Cx<'_, Self>) {
        self.waiting = Some(waiting);
        cx.pause_read();
    }

    /// The timer or job has ended: reply, and read again (bytes that arrived meanwhile are
    /// delivered on the next turn).
    fn finish(&mut self, result: Result<Answer, Rejection>, cx: &mut Cx<'_, Self>) {
        let close = self.waiting.take().is_some_and(|waiting| waiting.close);
        self.respond(result, close, cx);
        if !close {
            cx.resume_read();
        }
    }
}

impl Handler for LabConn {
    type Msg = u64;

    fn on_data(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
        let mut served = 0;
        while self.waiting.is_none() {
            if served == MAX_LINES_PER_TURN {
                cx.yield_now();
                return;
            }
            served += 1;
            let (len, request, close) = match protocol::next_frame(self.wire, input.bytes()) {
                Frame::Incomplete => return,
                Frame::Invalid(rejection) => return self.respond(Err(rejection), true, cx),
                Frame::Request { len, request, close } => (len, request, close),
            };
            input.consume(len);
            match request {
                Err(rejection) => self.respond(Err(rejection), close, cx),
                Ok(Request::Sleep(ms)) => {
                    cx.set_timer(Duration::from_millis(ms));
                    self.wait(Waiting { slept: Some(ms), close }, cx);
                }
                Ok(Request::Fib(n)) if self.offload && n > INLINE_MAX_N => {
                    match cx.offload(move || protocol::fib(n)) {
                        Ok(()) => self.wait(Waiting { slept: None, close }, cx),
                        Err(OffloadError::Busy) => {
                            self.respond(Err(Rejection { status: 503, reason: "busy" }), close, cx)
                        }
                        Err(OffloadError::Closed) => {
                            self.respond(Err(Rejection { status: 503, reason: "shutting down" }), true, cx)
                        }
                    }
                }
                Ok(Request::Fib(n)) => self.respond(Ok(Answer::Fib(protocol::fib(n))), close, cx),
            }
            if close {
                return;
            }
        }
    }

    fn on_timer(&mut self, _id: TimerId, cx: &mut Cx<'_, Self>) {
        if let Some(ms) = self.waiting.as_ref().and_then(|waiting| waiting.slept) {
            self.finish(Ok(Answer::Slept(ms)), cx);
        }
    }

    fn on_done(&mut self, result: Result<u64, JobError>, cx: &mut Cx<'_, Self>) {
        let answer = result.map(Answer::Fib).map_err(|_| Rejection { status: 500, reason: "internal" });
        self.finish(answer, cx);
    }

    fn on_close(&mut self, _reason: Reason, _cx: &mut Cx<'_, Self>) {
        if let Some(closed) = self.closed.take() {
            closed();
        }
    }
}

pub fn run(listener: TcpListener, offload: bool, threads: usize, wire: Wire) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let config = Config {
        max_conns: 4096,
        offload_threads: threads,
        slow_callback: Some(crate::app::SLOW_CALLBACK),
        ..Config::default()
    };
    let mut reactor = Reactor::new(config)?;
    let listener = evloop::mio::net::TcpListener::from_std(listener);
    reactor.add_listener(listener, move |_peer| LabConn::new(wire, offload))?;
    reactor.run()
}

/// K reactors on K threads sharing `addr`, offloading like model 6 (one offload thread per
/// reactor: the cores are already shared out among the loops). Announces the address.
pub fn run_workers(addr: SocketAddr, loops: usize, wire: Wire) -> io::Result<()> {
    let config = Config { max_conns: 4096, offload_threads: 1, ..Config::default() };
    let workers = Workers::start(loops, addr, config, move |_worker| move |_peer| LabConn::new(wire, true))?;
    crate::app::announce(workers.addr());
    workers.join().map(|_stats| ())
}
