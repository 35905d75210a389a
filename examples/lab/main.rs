//! The concurrency-models lab: one small CPU-bound line protocol (`N` → fib(N), in
//! `protocol.rs`) served by each classic server design, one file per model, and a driver
//! (`measure.rs`) that runs them side by side under the same load — the table of UNIX Network
//! Programming's chapter 30 ("Client/Server Design Alternatives"), plus the select loop and
//! the event loop, in Rust, measured.
//!
//! Run:  cargo run --release --example lab -- measure
//!       cargo run --release --example lab -- burst     (ten clients at once, LAB.md)
//!       cargo run --release --example lab -- siege     (siege -b -c 100 -t 10s per model)
//!       cargo run --release --example lab -- serve --model event-loop+offload   (port 7070)
//!
//! `burst` and `siege` also start Python's servers (`python/*.py`, standard library only)
//! beside Rust's, when `python3` is there. `server.rs` starts and stops every server process;
//! `cli.rs` is the command line.
//!
//! | model | file | one thread serves | a long request |
//! |---|---|---|---|
//! | serial | `serial.rs` | every connection, one after another | stalls everyone |
//! | thread-per-conn | `threads.rs` | one connection (a new thread each) | stalls only its client |
//! | thread-pool | `pool.rs` | one connection at a time, K threads accept | takes one of K threads |
//! | select | `select_loop.rs` | every connection, interleaved | stalls everyone |
//! | event-loop | `event_loop.rs` | every connection, interleaved | stalls everyone |
//! | event-loop+offload | `event_loop.rs` | every connection; fib(N > 20) on K workers | takes one of K workers |
//! | fork-per-conn | `fork.rs` | one connection (in a new process each) | stalls only its client |
//! | prefork | `prefork.rs` | one connection at a time, P processes accept | takes one of P processes |
//! | fd-passing | `fdpass.rs` | the connections the parent passes it while idle, P processes | takes one of P processes |
//! | procs-x-threads | `prefork.rs` | one connection at a time, P processes x K threads | takes one of P x K threads |
//! | event-loops | `event_loop.rs` | its share of connections, K loops with offload | takes one loop's worker |
//! | fd-passing-loops | `fdpass.rs` | the connections the parent passes it, P processes with a loop each | takes one process's worker |
//!
//! The process models need `fork`, `_exit`, `waitpid` and `SCM_RIGHTS`; that `unsafe` code
//! is all in `sys.rs`, each block with its safety argument.

mod burst;
mod cli;
mod event_loop;
mod fdpass;
mod fork;
mod measure;
mod pool;
mod prefork;
mod select_loop;
mod serial;
mod server;
mod siege;
mod sys;
mod threads;

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use cli::{Command, YesNo};
use evloop::net::ListenOptions;
use evloop_support::app;
// The wire protocol (shared with tests/it/lab.rs, which speaks it as a client) and the
// charts (shared with examples/chart.rs) live in support/.
use evloop_support::{lab_protocol as protocol, plot};
use protocol::Wire;

/// The server designs the lab compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    Serial,
    ThreadPerConn,
    ThreadPool,
    Select,
    EventLoop,
    EventLoopOffload,
    ForkPerConn,
    Prefork,
    FdPassing,
    ProcsThreads,
    EventLoops,
    FdPassingLoops,
}

impl Model {
    pub const ALL: [Model; 12] = [
        Model::Serial,
        Model::ThreadPerConn,
        Model::ThreadPool,
        Model::Select,
        Model::EventLoop,
        Model::EventLoopOffload,
        Model::ForkPerConn,
        Model::Prefork,
        Model::FdPassing,
        Model::ProcsThreads,
        Model::EventLoops,
        Model::FdPassingLoops,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Model::Serial => "serial",
            Model::ThreadPerConn => "thread-per-conn",
            Model::ThreadPool => "thread-pool",
            Model::Select => "select",
            Model::EventLoop => "event-loop",
            Model::EventLoopOffload => "event-loop+offload",
            Model::ForkPerConn => "fork-per-conn",
            Model::Prefork => "prefork",
            Model::FdPassing => "fd-passing",
            Model::ProcsThreads => "procs-x-threads",
            Model::EventLoops => "event-loops",
            Model::FdPassingLoops => "fd-passing-loops",
        }
    }
}

impl std::str::FromStr for Model {
    type Err = String;

    fn from_str(name: &str) -> Result<Model, String> {
        Model::ALL.into_iter().find(|model| model.name() == name).ok_or_else(|| {
            let names: Vec<&str> = Model::ALL.iter().map(|model| model.name()).collect();
            format!("unknown model {name:?} (one of {})", names.join(", "))
        })
    }
}

/// What the blocking models do when `accept` fails: a resource limit (descriptors) clears
/// when connections close, so wait a little rather than spin; anything else is logged.
pub fn accept_failed(error: &io::Error) {
    log::warn!("accept failed: {error}");
    std::thread::sleep(Duration::from_millis(10));
}

fn main() {
    app::init_logging();
    let cli = cli::parse();
    let result = match cli.command {
        Command::Serve(args) => {
            serve(args.model, args.addr, args.pools.threads, args.pools.processes, args.protocol.into())
        }
        Command::Measure(args) => measure::run(&measure::Options {
            models: args.models.unwrap_or_else(|| Model::ALL.to_vec()),
            clients: args.clients,
            requests: args.requests,
            short: args.short,
            long: args.long,
            threads: args.pools.threads,
            processes: args.pools.processes,
            rounds: args.rounds,
            keep_alive: args.keep_alive == YesNo::Yes,
            plot: args.plot,
        }),
        Command::Burst(args) => burst::run(args),
        Command::Siege(args) => siege::run(args),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn serve(model: Model, addr: SocketAddr, threads: usize, processes: usize, wire: Wire) -> io::Result<()> {
    if model == Model::EventLoops {
        // The loops open their own listeners (one each, `SO_REUSEPORT`).
        return event_loop::run_workers(addr, threads, wire);
    }
    let listener = evloop::net::listen(addr, ListenOptions::default())?;
    let listener = TcpListener::from(std::os::fd::OwnedFd::from(listener));
    let bound = listener.local_addr()?;
    // The blocking models want a blocking socket; the loops set it back to non-blocking.
    listener.set_nonblocking(false)?;
    log::info!("model {}", model.name());
    app::announce(bound);
    match model {
        Model::Serial => serial::run(&listener, wire),
        Model::ThreadPerConn => threads::run(listener, wire),
        Model::ThreadPool => pool::run(listener, threads, wire),
        Model::Select => select_loop::run(listener, wire),
        Model::EventLoop => event_loop::run(listener, false, threads, wire),
        Model::EventLoopOffload => event_loop::run(listener, true, threads, wire),
        Model::ForkPerConn => fork::run(listener, wire),
        Model::Prefork => prefork::run(listener, processes, 1, wire),
        Model::FdPassing => fdpass::run(listener, processes, fdpass::Children::Blocking, wire),
        Model::ProcsThreads => prefork::run(listener, processes, threads, wire),
        Model::FdPassingLoops => fdpass::run(listener, processes, fdpass::Children::Loops, wire),
        Model::EventLoops => unreachable!("started above"),
    }
}
