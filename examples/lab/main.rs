//! The concurrency-models lab: one small CPU-bound line protocol (`N` → fib(N), in
//! `protocol.rs`) served by each classic server design, one file per model, and a driver
//! (`measure.rs`) that runs them side by side under the same load — the table of UNIX Network
//! Programming's chapter 30 ("Client/Server Design Alternatives"), plus the select loop and
//! the event loop, in Rust, measured.
//!
//! Run:  cargo run --release --example lab -- measure
//!       cargo run --release --example lab -- serve --model event-loop+offload   (port 7070)
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
//!
//! The process models need `fork`, `_exit`, `waitpid` and `SCM_RIGHTS`; that `unsafe` code
//! is all in `sys.rs`, each block with its safety argument.

mod event_loop;
mod fdpass;
mod fork;
mod measure;
mod pool;
mod prefork;
mod protocol;
mod select_loop;
mod serial;
mod sys;
mod threads;

#[path = "../common/mod.rs"]
mod common;

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use evloop::net::ListenOptions;

const USAGE: &str = "\
lab: classic server concurrency models side by side, serving `N` -> fib(N) per line.

usage: lab serve --model MODEL [--addr HOST:PORT] [--threads K] [--processes P]
       lab measure [--models LIST] [--clients C] [--requests R] [--short N] [--long N]
                   [--rounds N] [--keep-alive yes|no] [--threads K] [--processes P]

  serve      run one model (default address 127.0.0.1:7070)
  measure    run every model (or --models a,b,...) as its own process under the same
             load and print a table: C clients x R requests of fib(short), a new
             connection each (default 8 x 2000, short 15), then the stall probe: one
             fib(long) (default 38, about 0.1 s) beside short requests; each model
             --rounds times (default 3, order rotated), medians printed;
             --keep-alive yes: each client makes its requests on one connection
  --threads    K pool threads, offload workers, threads per process, or event loops
               (default 4)
  --processes  P worker processes of the prefork, fd-passing and procs-x-threads models
               (default 4; procs-x-threads uses P x K threads)

Models: serial, thread-per-conn, thread-pool, select, event-loop, event-loop+offload,
        fork-per-conn, prefork, fd-passing, procs-x-threads, event-loops (K reactors)
";

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
}

impl Model {
    pub const ALL: [Model; 11] = [
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
    common::init_logging();
    let mut flags = common::Flags::parse(USAGE);
    let command = flags.command();
    let threads: usize = flags.value("--threads", 4);
    if !(1..=1024).contains(&threads) {
        flags.fail("--threads must be from 1 to 1024");
    }
    let processes: usize = flags.value("--processes", 4);
    if !(1..=256).contains(&processes) {
        flags.fail("--processes must be from 1 to 256");
    }
    let result = match command.as_deref() {
        Some("serve") => {
            let model: Model = flags.optional("--model").unwrap_or_else(|| flags.fail("serve needs --model"));
            let addr: SocketAddr = flags.value("--addr", "127.0.0.1:7070".parse().unwrap());
            flags.finish();
            serve(model, addr, threads, processes)
        }
        Some("measure") => {
            let models = match flags.optional::<String>("--models") {
                Some(list) => list
                    .split(',')
                    .map(|name| name.parse().unwrap_or_else(|e: String| flags.fail(&e)))
                    .collect(),
                None => Model::ALL.to_vec(),
            };
            let clients: usize = flags.value("--clients", 8);
            let requests: usize = flags.value("--requests", 2000);
            let short: u32 = flags.value("--short", 15);
            let long: u32 = flags.value("--long", 38);
            let rounds: usize = flags.value("--rounds", 3);
            let keep_alive = match flags.value("--keep-alive", "no".to_string()).as_str() {
                "yes" => true,
                "no" => false,
                other => flags.fail(&format!("--keep-alive must be yes or no, not {other:?}")),
            };
            if clients == 0 || requests == 0 || rounds == 0 {
                flags.fail("--clients, --requests and --rounds must be at least 1");
            }
            if short > protocol::MAX_N || long > protocol::MAX_N {
                flags.fail(&format!("--short and --long must be at most {}", protocol::MAX_N));
            }
            flags.finish();
            measure::run(&measure::Options {
                models,
                clients,
                requests,
                short,
                long,
                threads,
                processes,
                rounds,
                keep_alive,
            })
        }
        _ => flags.fail("expected a command: serve or measure"),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn serve(model: Model, addr: SocketAddr, threads: usize, processes: usize) -> io::Result<()> {
    if model == Model::EventLoops {
        // The loops open their own listeners (one each, `SO_REUSEPORT`).
        return event_loop::run_workers(addr, threads);
    }
    let listener = evloop::net::listen(addr, ListenOptions::default())?;
    let listener = TcpListener::from(std::os::fd::OwnedFd::from(listener));
    let bound = listener.local_addr()?;
    // The blocking models want a blocking socket; the loops set it back to non-blocking.
    listener.set_nonblocking(false)?;
    log::info!("model {}", model.name());
    common::announce(bound);
    match model {
        Model::Serial => serial::run(&listener),
        Model::ThreadPerConn => threads::run(listener),
        Model::ThreadPool => pool::run(listener, threads),
        Model::Select => select_loop::run(listener),
        Model::EventLoop => event_loop::run(listener, false, threads),
        Model::EventLoopOffload => event_loop::run(listener, true, threads),
        Model::ForkPerConn => fork::run(listener),
        Model::Prefork => prefork::run(listener, processes, 1),
        Model::FdPassing => fdpass::run(listener, processes),
        Model::ProcsThreads => prefork::run(listener, processes, threads),
        Model::EventLoops => unreachable!("started above"),
    }
}
