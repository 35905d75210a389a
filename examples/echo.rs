//! The echo server: every byte a client sends comes back, in order.
//!
//! Run:  cargo run --release --example echo
//! Talk: nc -N 127.0.0.1 7000     (type lines; Ctrl-D half-closes, the server echoes the rest and closes)
//! Unix: cargo run --release --example echo -- --addr unix:/tmp/echo.sock;  nc -U /tmp/echo.sock
//! UDP:  cargo run --release --example echo -- --udp;  nc -u 127.0.0.1 7000  (each line comes back)
//! Stop: Ctrl-C (SIGINT) or SIGTERM: pending output is flushed, then every connection closed.
//!       SIGQUIT drains: no new clients, the open ones served until they leave (--drain-timeout).
//! Upgrade: --pid-file PATH, then `kill -USR2 $(cat PATH)`: a new process of the binary takes
//!       the listening sockets, rewrites the pid file, and this one drains and exits.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{CommandFactory, Parser};
use evloop::{Config, Cx, DatagramAddr, DatagramCx, Datagrams, Handler, Input, Reactor};
use evloop_support::app::upgrade::{self, Inherited, UpgradeFlags};
use evloop_support::app::{self, Endpoint};
use evloop_support::cli::{self, IdleTimeout, Millis, LOGS};

/// echo: an evloop echo server; every byte sent comes back, in order.
#[derive(Debug, Parser)]
#[command(name = "echo", version, allow_negative_numbers = true, after_help = LOGS)]
struct Args {
    /// Address to listen on: HOST:PORT, or unix:PATH for a Unix-domain socket (a stale
    /// socket file from a server that is gone is replaced; one reactor serves it)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7000")]
    addr: Endpoint,

    /// The same as --addr unix:PATH
    #[arg(long, value_name = "PATH", conflicts_with_all = ["addr", "workers"])]
    unix: Option<PathBuf>,

    /// Echo UDP datagrams on --addr instead of TCP: each datagram goes back to its sender
    /// whole (one reactor)
    #[arg(long, conflicts_with_all = ["unix", "workers"])]
    udp: bool,

    /// Reactor threads sharing the address with SO_REUSEPORT
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = cli::count(1, 256))]
    workers: usize,

    /// Most clients served at once, per worker; past it, the one quiet longest makes room
    /// (else new ones wait in the listen backlog)
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = cli::count(1, usize::MAX))]
    max_conns: usize,

    #[command(flatten)]
    idle: IdleTimeout<300>,

    #[command(flatten)]
    upgrade: UpgradeFlags,

    /// Warn when a callback holds the loop longer (0: off; on, it costs two clock reads per
    /// message)
    #[arg(long, alias = "slow-callback-ms", value_name = "MS", default_value_t = Millis::from(0),
          value_parser = cli::duration_ms)]
    slow_callback: Millis,
}

/// One client's protocol: echo is stateless, so the state machine has a single state.
struct Echo;

impl Handler for Echo {
    type Msg = ();

    fn on_data(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
        cx.write(input.bytes());
        input.consume_all();
    }
    // on_eof's default closes gracefully: what was echoed is flushed, then FIN.
    // Memory: nothing per connection but what the kernel could not take yet.
}

/// The same over UDP: each datagram back to its sender, whole. A full send queue (a peer
/// that cannot take them) drops the echo and counts it, as UDP itself may drop.
struct DatagramEcho;

impl Datagrams for DatagramEcho {
    fn on_datagram(&mut self, datagram: &[u8], from: &DatagramAddr, cx: &mut DatagramCx<'_, Self>) {
        let _ = cx.send_to(datagram, from);
    }
}

fn main() {
    let args = Args::parse();
    app::init_logging();
    let config = Config {
        max_conns: args.max_conns,
        idle_timeout: args.idle.get(),
        // Off unless asked: echo is the hot-path benchmark, and two clock reads per
        // callback double its user-space instructions per message (BENCHMARKS.md).
        slow_callback: (!args.slow_callback.0.is_zero()).then_some(args.slow_callback.0),
        ..Config::default()
    };
    let endpoint = args.unix.map_or(args.addr, Endpoint::Unix);
    if endpoint.tcp().is_none() && (args.udp || args.workers > 1) {
        let flag = if args.udp { "--udp" } else { "--workers" };
        let message = format!("{flag} needs a HOST:PORT address, not {endpoint}");
        Args::command().error(clap::error::ErrorKind::ArgumentConflict, message).exit()
    }
    let served = upgrade::take_inherited().and_then(|inherited| match endpoint.tcp() {
        Some(addr) if args.udp => serve_udp(addr, config),
        Some(addr) if args.workers > 1 => {
            serve_on_workers(args.workers, addr, config, inherited, &args.upgrade)
        }
        _ => serve(endpoint, config, inherited, &args.upgrade),
    });
    if let Err(e) = served {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// One reactor on the main thread, on TCP or a Unix-domain socket (or the sockets an older
/// process or a supervisor handed this one).
fn serve(
    endpoint: Endpoint,
    config: Config,
    inherited: Vec<Inherited>,
    upgrade: &UpgradeFlags,
) -> std::io::Result<()> {
    let mut reactor = Reactor::new(config)?;
    let bound = app::listen_or_inherit(&mut reactor, &endpoint, || Echo, inherited)?;
    app::serve_reactor(reactor, bound, Some(upgrade))
}

/// One reactor with one UDP endpoint and no streams.
fn serve_udp(addr: SocketAddr, config: Config) -> std::io::Result<()> {
    let mut reactor: Reactor = Reactor::new(config)?;
    let (_id, bound) = reactor.bind_udp(addr, DatagramEcho)?;
    app::run_reactor(reactor, format!("udp {bound}"))
}

/// `count` share-nothing reactors on their own threads (one per inherited listener, if this
/// process was handed some); the main thread only waits.
fn serve_on_workers(
    count: usize,
    addr: SocketAddr,
    config: Config,
    inherited: Vec<Inherited>,
    upgrade: &UpgradeFlags,
) -> std::io::Result<()> {
    let workers = app::start_workers_or_inherit(count, addr, config, || Echo, inherited)?;
    app::serve_workers(workers, Some(upgrade))
}
