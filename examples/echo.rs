//! The echo server: every byte a client sends comes back, in order.
//!
//! Run:  cargo run --release --example echo
//! Talk: nc 127.0.0.1 7000        (type lines; Ctrl-D half-closes, the server echoes the rest and closes)
//! Unix: cargo run --release --example echo -- --unix /tmp/echo.sock;  nc -U /tmp/echo.sock
//! Stop: Ctrl-C (SIGINT) or SIGTERM: pending output is flushed, then every connection closed.

mod common;

use std::time::Duration;

use evloop::workers::Workers;
use evloop::{Config, Cx, Handler, Input, Reactor};

const USAGE: &str = "\
echo: an evloop echo server; every byte sent comes back, in order.

usage: echo [--addr HOST:PORT | --unix PATH] [--workers N] [--max-conns N] [--idle-timeout SECS]

  --addr HOST:PORT     address to listen on (default 127.0.0.1:7000)
  --unix PATH          listen on a Unix-domain socket at PATH instead (a stale socket
                       file from a server that is gone is replaced)
  --workers N          reactor threads sharing the address with SO_REUSEPORT (default 1)
  --max-conns N        most clients served at once, per worker; others wait (default 1024)
  --idle-timeout SECS  close a connection silent this long, 0 = never (default 300)
  --slow-callback-ms MS  warn when a callback holds the loop longer, 0 = off (default 0;
                       on, it costs two clock reads per message)
  -h, --help           this help

Logs go to stderr; set RUST_LOG=debug to see every connection.
";

/// One client's protocol: echo is stateless, so the state machine has a single state.
struct Echo;

impl Handler for Echo {
    type Msg = ();

    fn on_open(&mut self, cx: &mut Cx<'_, Self>) {
        // Echo has no request boundaries: a quiet connection waits for its next bytes, so
        // when the server is full the one quiet longest makes room for a new client.
        cx.set_reusable(true);
    }

    fn on_data(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
        cx.write(input.bytes());
        input.consume_all();
    }
    // on_eof's default closes gracefully: what was echoed is flushed, then FIN.
    // Memory: nothing per connection but what the kernel could not take yet.
}

fn main() {
    common::init_logging();
    let mut flags = common::Flags::parse(USAGE);
    let addr: std::net::SocketAddr = flags.value("--addr", "127.0.0.1:7000".parse().unwrap());
    let max_conns: usize = flags.value("--max-conns", 1024);
    let idle_secs: u64 = flags.value("--idle-timeout", 300);
    let slow_ms: u64 = flags.value("--slow-callback-ms", 0);
    let workers: usize = flags.value("--workers", 1);
    let unix: Option<std::path::PathBuf> = flags.optional("--unix");
    if unix.is_some() && workers != 1 {
        flags.fail("--unix serves from one reactor: drop --workers");
    }
    if !(1..=256).contains(&workers) {
        flags.fail("--workers must be from 1 to 256");
    }
    if max_conns == 0 {
        flags.fail("--max-conns must be at least 1");
    }
    flags.finish();

    let config = Config {
        max_conns,
        idle_timeout: (idle_secs > 0).then(|| Duration::from_secs(idle_secs)),
        // Off unless asked: echo is the hot-path benchmark, and two clock reads per
        // callback double its user-space instructions per message (BENCHMARKS.md).
        slow_callback: (slow_ms > 0).then(|| Duration::from_millis(slow_ms)),
        ..Config::default()
    };
    let served = match unix {
        Some(path) => serve(common::Endpoint::Unix(path), config),
        None if workers == 1 => serve(common::Endpoint::Tcp(addr), config),
        None => serve_on_workers(workers, addr, config),
    };
    if let Err(e) = served {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// One reactor on the main thread, on TCP or a Unix-domain socket.
fn serve(endpoint: common::Endpoint, config: Config) -> std::io::Result<()> {
    let mut reactor = Reactor::new(config)?;
    let bound = common::listen(&mut reactor, &endpoint, || Echo)?;
    common::run_reactor(reactor, bound)
}

/// `count` share-nothing reactors on their own threads; the main thread only waits.
fn serve_on_workers(count: usize, addr: std::net::SocketAddr, config: Config) -> std::io::Result<()> {
    common::run_workers(Workers::start(count, addr, config, |_worker| |_peer| Echo)?)
}
