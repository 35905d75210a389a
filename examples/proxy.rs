//! A TCP (or Unix-domain) proxy: each client gets its own connection to the upstream, and
//! bytes flow both ways with backpressure and half-close carried across.
//!
//! Run:  cargo run --release --example proxy -- --listen 127.0.0.1:7100 --upstream 127.0.0.1:7000
//! Try:  cargo run --release --example echo  &  nc 127.0.0.1 7100
//!
//! Each client is a pair of connections on one reactor, linked by messages:
//!
//! ```text
//!   client ──on_data──► Data(bytes) ──► upstream ──write──► server      (and the same the other way)
//!   a side whose output backs up past HIGH ──Pause──► its partner stops reading;
//!   on_drained ──Resume──► it reads again          (memory: HIGH + one read per side)
//!   EOF on one side ──Eof──► shutdown(Write) on the other;  close ──Gone──► the other closes
//! ```

mod common;

use std::time::Duration;

use clap::Parser;
use common::cli::{count, IdleTimeout, LOGS};
use common::Endpoint;
use evloop::{Config, ConnId, Cx, Handler, Input, Reactor, Reason};

/// proxy: forwards every client to its own upstream connection, both directions.
#[derive(Debug, Parser)]
#[command(name = "proxy", version, allow_negative_numbers = true, after_help = LOGS)]
struct Args {
    /// Where clients connect: HOST:PORT or unix:PATH
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7100")]
    listen: Endpoint,

    /// Where to forward: HOST:PORT or unix:PATH
    #[arg(long, value_name = "ADDR")]
    upstream: Endpoint,

    /// Most connections at once, clients and upstreams together
    #[arg(long, value_name = "N", default_value_t = 2048, value_parser = count(1..))]
    max_conns: usize,

    /// Time an upstream has to accept the connection; past it, its client is closed
    #[arg(long, value_name = "SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..))]
    connect_timeout: u64,

    #[command(flatten)]
    idle: IdleTimeout<300>,
}

/// Output a side may hold for its peer before the partner is told to stop reading.
const HIGH: usize = 256 * 1024;

/// What the two sides of a pair tell each other.
enum Msg {
    /// The upstream is connected: here is its id (the client may start reading).
    Linked(ConnId),
    Data(Vec<u8>),
    /// The partner's peer finished sending: finish ours.
    Eof,
    Pause,
    Resume,
    /// The partner closed, and why.
    Gone(Reason),
}

/// One side of a pair: a client, or the upstream connection made for it.
struct Side {
    upstream: Endpoint,
    /// The other side; a client learns its upstream's id from `Linked`.
    partner: Option<ConnId>,
    /// We told the partner to pause, waiting for our output to drain.
    holding_partner: bool,
    /// Our peer has finished sending, and the partner's peer has (we shut down writing).
    eof_in: bool,
    eof_out: bool,
}

impl Side {
    fn new(upstream: Endpoint, partner: Option<ConnId>) -> Side {
        Side { upstream, partner, holding_partner: false, eof_in: false, eof_out: false }
    }

    fn tell(&self, cx: &mut Cx<'_, Self>, message: Msg) {
        if let Some(partner) = self.partner {
            // A partner that is gone has told us so (Gone) or is about to: nothing to do.
            let _ = cx.send(partner, message);
        }
    }
}

impl Handler for Side {
    type Msg = Msg;

    fn on_open(&mut self, cx: &mut Cx<'_, Self>) {
        match self.partner {
            // An upstream connection is up: tell the client who we are.
            Some(client) => {
                let _ = cx.send(client, Msg::Linked(cx.id()));
            }
            // A new client: read nothing until its upstream is connected.
            None => {
                cx.pause_read();
                let side = Side::new(self.upstream.clone(), Some(cx.id()));
                let opened = match &self.upstream {
                    Endpoint::Tcp(addr) => cx.connect(*addr, side),
                    Endpoint::Unix(path) => cx.connect_unix(path, side),
                };
                match opened {
                    // Known as the partner at once, not only when `Linked` arrives: a client
                    // that goes before then must still tell its upstream (Gone), or the
                    // upstream connection would be left open with no one to serve.
                    Ok(upstream) => self.partner = Some(upstream),
                    Err(e) => {
                        log::warn!("client {}: upstream {}: {e}", cx.peer_addr(), self.upstream);
                        cx.close();
                    }
                }
            }
        }
    }

    fn on_data(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
        self.tell(cx, Msg::Data(input.bytes().to_vec()));
        input.consume_all();
    }

    fn on_eof(&mut self, cx: &mut Cx<'_, Self>) {
        self.eof_in = true;
        self.tell(cx, Msg::Eof);
        if self.eof_out {
            cx.close();
        }
    }

    fn on_drained(&mut self, cx: &mut Cx<'_, Self>) {
        if self.holding_partner {
            self.holding_partner = false;
            self.tell(cx, Msg::Resume);
        }
    }

    fn on_message(&mut self, message: Msg, cx: &mut Cx<'_, Self>) {
        match message {
            Msg::Linked(upstream) => {
                self.partner = Some(upstream);
                cx.resume_read();
            }
            Msg::Data(bytes) => {
                cx.write(&bytes);
                if cx.pending_output() > HIGH && !self.holding_partner {
                    self.holding_partner = true;
                    self.tell(cx, Msg::Pause);
                }
            }
            Msg::Eof => {
                self.eof_out = true;
                cx.shutdown_write();
                if self.eof_in {
                    cx.close();
                }
            }
            Msg::Pause => cx.pause_read(),
            Msg::Resume => cx.resume_read(),
            Msg::Gone(reason) => {
                if matches!(reason, Reason::ConnectFailed(_) | Reason::ConnectTimeout) {
                    log::warn!("client {}: upstream {}: {reason}", cx.peer_addr(), self.upstream);
                }
                self.partner = None;
                cx.close();
            }
        }
    }

    fn on_close(&mut self, reason: Reason, cx: &mut Cx<'_, Self>) {
        self.tell(cx, Msg::Gone(reason));
    }
}

fn main() {
    let Args { listen, upstream, max_conns, connect_timeout, idle } = Args::parse();
    common::init_logging();
    let config = Config {
        max_conns,
        connect_timeout: Duration::from_secs(connect_timeout),
        // A side closed for silence takes its partner along (`Gone`).
        idle_timeout: idle.get(),
        slow_callback: Some(common::SLOW_CALLBACK),
        ..Config::default()
    };
    let served = Reactor::new(config).and_then(|mut reactor| {
        let bound = common::listen(&mut reactor, &listen, move || Side::new(upstream.clone(), None))?;
        common::run_reactor(reactor, bound)
    });
    if let Err(e) = served {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
