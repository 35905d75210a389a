//! Models 5, 6 and 11, the event loop: an evloop reactor, one thread, a state machine per
//! connection. Inline (model 5) it computes each fib(N) on the loop thread, so a long one
//! stalls every client exactly as the select loop does, only with less bookkeeping per
//! event. With offload (model 6) requests over N = 20 go to the reactor's worker pool and
//! the loop goes on serving everyone; the answer comes back through the reactor's waker.
//! One loop uses one core; `run_workers` (model 11) runs K share-nothing loops, each with
//! its own `SO_REUSEPORT` listener on the same address and its own offload pool.

use std::io;
use std::net::TcpListener;

use std::net::SocketAddr;

use evloop::workers::Workers;
use evloop::{Config, Cx, Handler, Input, JobError, OffloadError, Reactor};

use crate::protocol;

/// Requests up to this N are computed on the loop even with offload: tens of
/// microseconds, less than a round trip through the pool.
const INLINE_MAX_N: u32 = 20;

/// Requests answered per `on_data` before yielding to the other connections.
const MAX_LINES_PER_TURN: usize = 64;

struct LabConn {
    offload: bool,
    /// A job is on the pool: reading is paused so replies stay in request order.
    computing: bool,
}

impl Handler for LabConn {
    type Msg = u64;

    fn on_data(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
        let mut served = 0;
        while !self.computing {
            if served == MAX_LINES_PER_TURN {
                cx.yield_now();
                return;
            }
            served += 1;
            let Some(line) = input.take_line(b'\n') else {
                if input.len() >= protocol::MAX_LINE {
                    cx.write(b"ERR line too long\n");
                    cx.close();
                }
                return;
            };
            match protocol::parse(line) {
                Err(reply) => cx.write(reply),
                Ok(n) if self.offload && n > INLINE_MAX_N => match cx.offload(move || protocol::fib(n)) {
                    Ok(()) => {
                        self.computing = true;
                        cx.pause_read();
                    }
                    Err(OffloadError::Busy) => cx.write(b"ERR busy\n"),
                    Err(OffloadError::Closed) => cx.write(b"ERR shutting down\n"),
                },
                Ok(n) => cx.write(format!("{}\n", protocol::fib(n)).as_bytes()),
            }
        }
    }

    fn on_done(&mut self, result: Result<u64, JobError>, cx: &mut Cx<'_, Self>) {
        match result {
            Ok(value) => cx.write(format!("{value}\n").as_bytes()),
            Err(_) => cx.write(b"ERR internal\n"),
        }
        self.computing = false;
        cx.resume_read();
    }
}

pub fn run(listener: TcpListener, offload: bool, threads: usize) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let config = Config { max_conns: 4096, offload_threads: threads, ..Config::default() };
    let mut reactor = Reactor::new(config)?;
    let listener = evloop::mio::net::TcpListener::from_std(listener);
    reactor.add_listener(listener, move |_peer| LabConn { offload, computing: false })?;
    reactor.run()
}

/// K reactors on K threads sharing `addr`, offloading like model 6 (one offload thread per
/// reactor: the cores are already shared out among the loops). Announces the address.
pub fn run_workers(addr: SocketAddr, loops: usize) -> io::Result<()> {
    let config = Config { max_conns: 4096, offload_threads: 1, ..Config::default() };
    let workers =
        Workers::start(loops, addr, config, |_worker| |_peer| LabConn { offload: true, computing: false })?;
    crate::common::announce(workers.addr());
    workers.join().map(|_stats| ())
}
