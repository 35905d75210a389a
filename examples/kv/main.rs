//! kv: a Redis-compatible (RESP2) key-value server on evloop, driven by `redis-cli` and
//! `redis-benchmark`, and measured against `redis-server` (BENCHMARKS.md).
//!
//! Run:  cargo run --release --example kv                  (127.0.0.1:6380)
//! Try:  redis-cli -p 6380 set greeting hello EX 60        then  redis-cli -p 6380 ttl greeting
//!       printf 'PING\r\nGET greeting\r\n' | nc -q1 127.0.0.1 6380      (inline commands)
//!       redis-benchmark -p 6380 -t ping,set,get,incr,mset -P 16 -q
//!
//! Redis is the best-known program built on a hand-rolled event loop (`ae.c`: one thread,
//! a callback per descriptor, timers, replies flushed before each sleep), which is
//! evloop's shape. How the pieces fit:
//!
//! ```text
//!  socket bytes ─► conn.rs (KvConn: Serving / Draining / Closing)
//!                    │ resp.rs    Parser: bytes → Argv, incremental, bounded
//!                    │ commands.rs TABLE: name → arity, flags, fn; dispatch, COMMAND
//!                    │   keys.rs    GET SET MGET MSET INCR APPEND… DEL EXISTS EXPIRE TTL DBSIZE FLUSHALL
//!                    │   keyspace.rs KEYS SCAN TYPE PERSIST
//!                    │   server.rs  PING ECHO QUIT SELECT CLIENT HELLO CONFIG INFO SHUTDOWN
//!                    │   pubsub.rs  SUBSCRIBE PUBLISH …: channels, fan-out by messages
//!                    │ store.rs   Store: the keyspace, lazy expiry + sampling sweep
//!                    ▼ reply.rs   RESP2 replies into one buffer, one write per batch
//! ```
//!
//! One reactor, one thread, one store shared by every connection as `Rc<RefCell<_>>`
//! (conn.rs says why no lock is needed). Publish/subscribe (pubsub.rs) delivers each
//! message to its subscribers' connections with evloop's messages (`Cx::send`).

mod commands;
mod conn;
mod glob;
mod keys;
mod keyspace;
mod pubsub;
mod reply;
mod server;
mod store;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use clap::{CommandFactory, Parser};
use evloop_support::app::{self, Endpoint};
// The RESP parser lives in support/ so that the fuzz target and property tests drive it too.
use evloop::{Config, Reactor};
use evloop_support::cli::{self, Secs};
use evloop_support::resp;

use commands::ServerInfo;
use conn::{KvConn, Shared, SWEEP_EVERY, SWEEP_SOON};
use resp::Limits;

/// A Redis-compatible (RESP2) key-value server on evloop: strings with expiry, pipelining,
/// inline commands; enough of COMMAND, CLIENT, CONFIG GET and HELLO for redis-cli and
/// redis-benchmark.
#[derive(Parser, Debug)]
#[command(name = "kv", version)]
struct Args {
    /// Address to listen on: HOST:PORT (port 0 picks a free one), or unix:PATH for a
    /// Unix-domain socket (redis-cli -s PATH)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:6380")]
    addr: Endpoint,

    /// Longest bulk string (key or value) accepted; longer is a protocol error. Accepts
    /// k/m/g suffixes. Redis's proto-max-bulk-len is 512m; this default is small on purpose
    #[arg(long, value_name = "BYTES", default_value = "1m", value_parser = cli::size(1, usize::MAX))]
    max_bulk: usize,

    /// Largest request (one command's bytes) held while incomplete; beyond it the client
    /// gets a protocol error and is closed. Default: 4 × --max-bulk
    #[arg(long, value_name = "BYTES", value_parser = cli::size(1, usize::MAX))]
    max_query: Option<usize>,

    /// Largest reply one command may build (MGET of large values): a larger one is refused
    /// with an error while it is built. Accepts k/m/g suffixes
    #[arg(long, value_name = "BYTES", default_value = "16m", value_parser = cli::size(1, usize::MAX))]
    max_reply: usize,

    /// Most clients connected at once; one more is answered `-ERR max number of clients
    /// reached` and closed (Redis: maxclients)
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = cli::count(1, usize::MAX))]
    max_clients: usize,

    /// Unread publications a subscriber may leave before it is disconnected (Redis:
    /// client-output-buffer-limit pubsub, soft 8mb)
    #[arg(long, value_name = "BYTES", default_value = "8m", value_parser = cli::size(1, usize::MAX))]
    pubsub_limit: usize,

    /// Close a client silent this long, 0 = never (Redis: timeout, 0 by default; a server
    /// facing the open network wants one: idle clients otherwise hold their slots)
    #[arg(long, value_name = "SECS", default_value_t = Secs::from(300), value_parser = cli::duration_secs)]
    idle_timeout: Secs,
}

fn main() {
    let args = Args::parse();
    app::init_logging();
    let max_query = args.max_query.unwrap_or(args.max_bulk.saturating_mul(4));
    // A request needs room for its largest argument plus its framing.
    if max_query < args.max_bulk.saturating_add(1024) {
        let message = "--max-query must be at least --max-bulk + 1024 bytes";
        Args::command().error(clap::error::ErrorKind::ValueValidation, message).exit();
    }
    let limits = Limits { max_bulk: args.max_bulk, ..Limits::default() };
    let config = Config {
        // Room for the refusals too: a client past --max-clients is accepted, told, closed.
        max_conns: args.max_clients.saturating_add(REFUSAL_ROOM),
        // The reactor keeps at most this much unconsumed input per connection: the
        // largest incomplete request (conn.rs answers before the reactor would close).
        max_input: max_query,
        idle_timeout: (!args.idle_timeout.0.is_zero()).then_some(args.idle_timeout.0),
        slow_callback: Some(app::SLOW_CALLBACK),
        ..Config::default()
    };
    let caps =
        Caps { max_clients: args.max_clients, max_reply: args.max_reply, pubsub_limit: args.pubsub_limit };
    if let Err(e) = serve(args.addr, config, limits, caps) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// Connections the reactor takes beyond `--max-clients`, to refuse them with a reply
/// rather than leave them in the backlog; past this, new ones wait in the backlog.
const REFUSAL_ROOM: usize = 64;

/// The per-client caps `serve` hands the connections and the server's settings.
struct Caps {
    max_clients: usize,
    max_reply: usize,
    pubsub_limit: usize,
}

fn serve(addr: Endpoint, config: Config, limits: Limits, caps: Caps) -> std::io::Result<()> {
    let Caps { max_clients, max_reply, pubsub_limit } = caps;
    let max_query = config.max_input;
    let mut reactor = Reactor::new(config)?;
    // Created before the listener so the factory can hand every connection a reference;
    // the port is filled in once bound (port 0 means "pick one").
    let shared = Rc::new(RefCell::new(Shared::new(ServerInfo {
        // As Redis reports a server with only a Unix socket: port 0.
        port: addr.tcp().map_or(0, |addr| addr.port()),
        max_bulk: limits.max_bulk,
        max_query,
        max_reply,
        max_clients,
        started: Instant::now(),
        clients: 0,
        accepted: 0,
        commands: 0,
    })));
    let for_conns = Rc::clone(&shared);
    let bound = app::listen(&mut reactor, &addr, move || {
        KvConn::new(Rc::clone(&for_conns), limits, max_query, pubsub_limit)
    })?;
    shared.borrow_mut().server.port = bound.tcp().map_or(0, |addr| addr.port());
    sweep_every(&mut reactor, shared);
    log::info!("kv server: max bulk {} bytes, max query {max_query} bytes", limits.max_bulk);
    app::run_reactor(reactor, bound)
}

/// Redis's active expiry: a reactor-level timer sweeps the store every [`SWEEP_EVERY`],
/// busy or idle, or after [`SWEEP_SOON`] while keys expire faster than one sweep reclaims.
fn sweep_every(reactor: &mut Reactor<KvConn>, shared: Rc<RefCell<Shared>>) {
    sweep_after(reactor, shared, SWEEP_EVERY);
}

fn sweep_after(reactor: &mut Reactor<KvConn>, shared: Rc<RefCell<Shared>>, after: std::time::Duration) {
    reactor.set_timer(after, move |reactor| {
        let busy = shared.borrow_mut().sweep(Instant::now());
        sweep_after(reactor, shared, if busy { SWEEP_SOON } else { SWEEP_EVERY });
    });
}
