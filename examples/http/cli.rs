//! The http example's command line. One `clap` derive struct is the parser, the `--help` text
//! (each doc comment below is a flag's help line; defaults are shown beside them) and the
//! range checks, so the three cannot drift apart. A bad flag or value is an error naming the
//! flag, with exit status 2 (clap's convention for usage errors).
//!
//! ```text
//! argv ──Args::parse──► Args ──settings()──► Settings (every connection)
//!                            ──config()────► evloop::Config (the reactor)
//! ```

use std::time::Duration;

use clap::Parser;
use evloop::Config;

use super::route::Limits;
use evloop_support::app::Endpoint;
use evloop_support::cli::{self, Millis, Secs};

pub const ROUTES: &str = "\
Routes:
  GET|HEAD /            200 \"hello\\n\"
  POST|PUT /echo        200, the request body streamed back as it arrives
  GET|HEAD /bytes/N     200, N bytes of 'x', streamed at the pace the client reads
  GET|HEAD /fib/N       200, fib(N) computed recursively on the offload pool

Deadlines: a connection must send a complete request head within --header-timeout of its
accept (nothing at all: closed without an answer; part of a head: 408). Between keep-alive
requests it may stay silent for --idle-timeout; the next request's head has --header-timeout
from its first byte. A body has --body-timeout, extended by one second for every
--body-min-rate bytes received (Apache mod_reqtimeout's MinRate); too slow: 408.";

/// http: an evloop HTTP/1.1 server (keep-alive, pipelining, streamed bodies, offloaded work).
#[derive(Debug, Parser)]
#[command(name = "http", version, after_help = ROUTES)]
pub struct Args {
    /// Address to listen on: HOST:PORT, or unix:PATH for a Unix-domain socket (then
    /// one reactor serves it: --workers needs HOST:PORT)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub addr: Endpoint,

    /// Reactor threads sharing the address with SO_REUSEPORT
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = cli::count(1, 256))]
    pub workers: usize,

    /// Most clients served at once, per worker
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = cli::count(1, usize::MAX))]
    pub max_conns: usize,

    /// Close a connection silent this long, e.g. between keep-alive requests: seconds, or
    /// with a unit (500ms, 2m); 0: never
    #[arg(long, value_name = "SECS", default_value_t = Secs::from(15), value_parser = cli::duration_secs)]
    pub idle_timeout: Secs,

    /// Time for a request head: from the accept for the first request, from its first byte
    /// for later ones: milliseconds, or with a unit (10s)
    #[arg(long, value_name = "MS", default_value_t = Millis::from(10_000), value_parser = cli::positive_ms)]
    pub header_timeout: Millis,

    /// Time for a request body, before the extension earned by --body-min-rate:
    /// milliseconds, or with a unit (10s)
    #[arg(long, value_name = "MS", default_value_t = Millis::from(10_000), value_parser = cli::positive_ms)]
    pub body_timeout: Millis,

    /// Body bytes that earn one more second of --body-timeout
    #[arg(long, value_name = "BYTES", default_value_t = 500, value_parser = cli::size(1, usize::MAX))]
    pub body_min_rate: usize,

    /// After an answer that closes, how long to read and discard what the client still
    /// sends, waiting for its close, before the slot is freed regardless: milliseconds, or
    /// with a unit (1s); at most a minute
    #[arg(long, value_name = "MS", default_value_t = Millis::from(1000), value_parser = linger)]
    pub linger_timeout: Millis,

    /// Largest request head accepted (larger: 431; a request line alone larger: 414)
    #[arg(long, value_name = "BYTES", default_value = "8k", value_parser = cli::size(64, 1 << 20))]
    pub max_head: usize,

    /// Largest N for /fib/N (fib(93) overflows 64 bits)
    #[arg(long, value_name = "N", default_value_t = 40, value_parser = cli::number(0, 92))]
    pub max_fib: u32,

    /// Largest N for /bytes/N
    #[arg(long, value_name = "N", default_value_t = 1 << 30)]
    pub max_bytes: u64,

    /// Offload worker threads per reactor (0: one per CPU)
    #[arg(long, value_name = "K", default_value_t = 0, value_parser = cli::count(0, 1024))]
    pub threads: usize,
}

/// Settings every connection shares.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub body_min_rate: u64,
    pub max_head: usize,
    pub limits: Limits,
}

/// `--linger-timeout`: more than 0, at most a minute.
fn linger(text: &str) -> Result<Millis, String> {
    cli::positive_ms(text).and_then(|ms| {
        if ms.0 > Duration::from_secs(60) {
            Err("must be at most a minute".into())
        } else {
            Ok(ms)
        }
    })
}

impl Args {
    pub fn settings(&self) -> Settings {
        Settings {
            header_timeout: self.header_timeout.0,
            body_timeout: self.body_timeout.0,
            body_min_rate: self.body_min_rate as u64,
            max_head: self.max_head,
            limits: Limits { max_fib: self.max_fib, max_bytes: self.max_bytes },
        }
    }

    pub fn config(&self) -> Config {
        Config {
            max_conns: self.max_conns,
            idle_timeout: (!self.idle_timeout.0.is_zero()).then_some(self.idle_timeout.0),
            // Room for a whole head plus pipelined requests behind it.
            max_input: (self.max_head * 2).max(Config::default().max_input),
            // The default (2 s) is kind to slow links; a server under attack wants its slots
            // back sooner, and a client that reads its answer closes within a round trip.
            linger_timeout: self.linger_timeout.0,
            offload_threads: self.threads,
            // The loop-stall detector, at the examples' 100 ms.
            slow_callback: Some(evloop_support::app::SLOW_CALLBACK),
            ..Config::default()
        }
    }
}
