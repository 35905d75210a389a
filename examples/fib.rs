//! The fib server: CPU-bound requests that must not stall the event loop.
//!
//! Run:  cargo run --release --example fib                 (offload mode, port 40404)
//!       cargo run --release --example fib -- --mode inline (computes on the loop: watch it stall)
//! Talk: nc 127.0.0.1 40404    then type `30` (→ 832040) or `sleep 500` (→ slept 500)
//!
//! Protocol, one request per line (`\n` or `\r\n`):
//!   `N`          → `fib(N)` by the naive recursive function (CPU-bound; offloaded for N > 20)
//!   `sleep MS`   → `slept MS` after a reactor timer (I/O-bound: never blocks anything)
//!   anything bad → `ERR <reason>`; the connection stays usable, except after a line over
//!                  64 bytes, which is answered and then closed.
//! Requests on one connection are answered in order: while one is being computed, the
//! connection stops reading (its next lines wait in the buffers).

use std::time::Duration;

use clap::{CommandFactory, Parser, ValueEnum};
use evloop::{Config, Cx, Handler, Input, JobError, OffloadError, Reactor, TimerId};
use evloop_support::app::{self, Endpoint};
use evloop_support::cli::{self, IdleTimeout};
// The request line and fib itself live in support/, where the fuzz target and the property
// tests reach exactly the parser this server runs.
use evloop_support::fib::{parse, Request};

const REQUESTS: &str = "\
Requests, one per line:  N  |  sleep MS

When the server is full, a client waiting for its next request makes room for a new one.";

/// fib: an evloop server computing fib(N) the slow way, without stalling the loop.
#[derive(Debug, Parser)]
#[command(name = "fib", version, allow_negative_numbers = true, after_help = REQUESTS)]
struct Args {
    /// Address to listen on: HOST:PORT, or unix:PATH for a Unix-domain socket
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:40404")]
    addr: Endpoint,

    /// Where fib(N) is computed
    #[arg(long, value_enum, default_value_t = Mode::Offload)]
    mode: Mode,

    /// Offload worker threads (0: one per CPU)
    #[arg(long, value_name = "K", default_value_t = 0, value_parser = cli::count(0, 1024))]
    threads: usize,

    /// Jobs that may wait for a worker before clients get `ERR busy`
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = cli::count(1, usize::MAX))]
    queue: usize,

    /// Largest N accepted (fib(93) overflows 64 bits)
    #[arg(long, value_name = "N", default_value_t = 45, value_parser = cli::number(0, 92))]
    max_n: u32,

    /// Compute fib(N) as soon as a client connects, send the decimal digits, close (the
    /// classic demo server whose clients only recv); N at most --max-n
    #[arg(long, value_name = "N", value_parser = cli::number(0, 92))]
    on_connect: Option<u32>,

    #[command(flatten)]
    idle: IdleTimeout<300>,
}

/// Longest request line accepted, delimiter included.
const MAX_LINE: usize = 64;
/// Requests up to this N are computed on the loop even in offload mode: fib(20) is about
/// 20,000 calls (tens of microseconds), cheaper than a round trip through the pool, and it
/// must not wait in the queue behind long jobs.
const INLINE_MAX_N: u32 = 20;
/// Requests answered per `on_data` call before yielding to the other connections: a client
/// that pipelines thousands of small requests must not hold the loop (each may cost up to
/// fib(20) of CPU).
const MAX_LINES_PER_TURN: usize = 64;
/// Replies pending for the client above which no more requests are read until they drain:
/// a client that pipelines but never reads must not make us buffer without bound.
const MAX_PENDING_REPLIES: usize = 16 * 1024;

use evloop_support::fib::{fib, fib_cancellable};

#[derive(Debug, Clone, Copy, PartialEq, ValueEnum)]
enum Mode {
    /// On the offload pool's worker threads
    Offload,
    /// On the loop thread, stalling every client (the demo)
    Inline,
}

/// Settings every connection shares.
#[derive(Debug, Clone, Copy)]
struct Settings {
    mode: Mode,
    max_n: u32,
    on_connect: Option<u32>,
}

/// Where a connection is in its conversation.
#[derive(Debug, PartialEq)]
enum State {
    /// Waiting for a request line.
    Reading,
    /// A fib job is on the offload pool; reading is paused until `on_done`.
    Computing,
    /// A `sleep` timer is armed; reading is paused until `on_timer`.
    Sleeping { ms: u64, timer: TimerId },
    /// Replies are piling up unread; reading is paused until `on_drained`.
    Draining,
    /// The reply is out (or on its way) and the connection is closing.
    Done,
}

/// One client's protocol state machine.
struct FibConn {
    settings: Settings,
    state: State,
}

impl FibConn {
    /// Handles complete lines until one starts something that takes time, a batch is done
    /// (then it yields the loop), or replies pile up unread (then it waits for them to drain).
    fn serve_lines(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
        let mut served = 0;
        while self.state == State::Reading {
            if served == MAX_LINES_PER_TURN {
                cx.yield_now();
                return;
            }
            if cx.pending_output() >= MAX_PENDING_REPLIES {
                cx.flush();
                if cx.pending_output() > 0 {
                    self.wait(State::Draining, cx);
                    return;
                }
            }
            served += 1;
            let Some(line) = input.take_line(b'\n') else {
                if input.len() > MAX_LINE {
                    self.refuse_and_close("line too long", cx);
                }
                return;
            };
            if line.len() + 1 > MAX_LINE {
                self.refuse_and_close("line too long", cx);
                return;
            }
            match parse(line, self.settings.max_n) {
                Ok(Request::Fib(n)) => self.compute(n, cx),
                Ok(Request::Sleep(ms)) => {
                    let timer = cx.set_timer(Duration::from_millis(ms));
                    self.wait(State::Sleeping { ms, timer }, cx);
                }
                Err(reason) => cx.write(format!("ERR {reason}\n").as_bytes()),
            }
        }
    }

    /// Computes fib(n) according to the mode: on the pool, or right here (stalling the loop
    /// in inline mode; harmless for small n).
    fn compute(&mut self, n: u32, cx: &mut Cx<'_, Self>) {
        let mode = if n <= INLINE_MAX_N { Mode::Inline } else { self.settings.mode };
        match mode {
            Mode::Inline => cx.write(format!("{}\n", fib(n)).as_bytes()),
            // A client that goes away stops its job (`fib_cancellable` polls the flag the
            // reactor raises when the connection closes); queued ones never start.
            Mode::Offload => {
                match cx.offload_cancellable(move |cancel| fib_cancellable(n, cancel).unwrap_or(0)) {
                    Ok(()) => self.wait(State::Computing, cx),
                    Err(OffloadError::Busy) => cx.write(b"ERR busy\n"),
                    Err(OffloadError::Closed) => cx.write(b"ERR shutting down\n"),
                }
            }
        }
    }

    /// Enters a waiting state: no more requests are read until it ends, so replies stay
    /// in request order and a pipelining client cannot queue unbounded work.
    fn wait(&mut self, state: State, cx: &mut Cx<'_, Self>) {
        self.state = state;
        cx.pause_read();
    }

    /// Leaves a waiting state: reading resumes, and lines that arrived meanwhile are served.
    fn resume(&mut self, cx: &mut Cx<'_, Self>) {
        self.state = State::Reading;
        cx.resume_read();
    }

    fn refuse_and_close(&mut self, reason: &str, cx: &mut Cx<'_, Self>) {
        cx.write(format!("ERR {reason}\n").as_bytes());
        self.state = State::Done;
        cx.close();
    }
}

impl Handler for FibConn {
    type Msg = u64;

    fn on_open(&mut self, cx: &mut Cx<'_, Self>) {
        // (Waiting for a first request: at the connection cap, a client silent since it
        // connected is what the reactor reclaims for a new one; one that has talked never is.)
        let Some(n) = self.settings.on_connect else { return };
        match self.settings.mode {
            Mode::Inline => {
                cx.write(fib(n).to_string().as_bytes());
                self.state = State::Done;
                cx.close();
            }
            Mode::Offload => match cx.offload(move || fib(n)) {
                Ok(()) => {
                    // The client has nothing to say; not reading also means an early
                    // half-close (EOF) cannot close the connection before the answer.
                    self.wait(State::Computing, cx);
                }
                Err(e) => self.refuse_and_close(&e.to_string(), cx),
            },
        }
    }

    fn on_data(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
        match self.state {
            State::Reading => self.serve_lines(input, cx),
            // Busy: leave the bytes for later (reading is paused, so few can arrive).
            State::Computing | State::Sleeping { .. } | State::Draining | State::Done => {}
        }
    }

    fn on_done(&mut self, result: Result<u64, JobError>, cx: &mut Cx<'_, Self>) {
        if self.settings.on_connect.is_some() {
            match result {
                Ok(value) => cx.write(value.to_string().as_bytes()),
                Err(e) => log::error!("on-connect job failed: {e}"),
            }
            self.state = State::Done;
            cx.close();
            return;
        }
        match result {
            Ok(value) => cx.write(format!("{value}\n").as_bytes()),
            Err(e) => {
                log::error!("conn {}: {e}", cx.id());
                cx.write(b"ERR internal\n");
            }
        }
        self.resume(cx);
    }

    fn on_drained(&mut self, cx: &mut Cx<'_, Self>) {
        if self.state == State::Draining {
            self.resume(cx);
        }
    }

    fn on_timer(&mut self, id: TimerId, cx: &mut Cx<'_, Self>) {
        if let State::Sleeping { ms, timer } = self.state {
            if timer == id {
                cx.write(format!("slept {ms}\n").as_bytes());
                self.resume(cx);
            }
        }
    }
}

fn main() {
    let args = Args::parse();
    app::init_logging();
    if args.on_connect.is_some_and(|n| n > args.max_n) {
        let message = "--on-connect N must not exceed --max-n";
        Args::command().error(clap::error::ErrorKind::ArgumentConflict, message).exit();
    }
    let settings = Settings { mode: args.mode, max_n: args.max_n, on_connect: args.on_connect };
    let config = Config {
        offload_threads: args.threads,
        offload_queue: args.queue,
        idle_timeout: args.idle.get(),
        // The stall detector: `--mode inline` shows what it reports.
        slow_callback: Some(app::SLOW_CALLBACK),
        ..Config::default()
    };
    if let Err(e) = serve(args.addr, config, settings) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn serve(addr: Endpoint, config: Config, settings: Settings) -> std::io::Result<()> {
    let mut reactor = Reactor::new(config)?;
    let bound = app::listen(&mut reactor, &addr, move || FibConn { settings, state: State::Reading })?;
    log::info!("fib server, mode {:?}", settings.mode);
    app::run_reactor(reactor, bound)
}
