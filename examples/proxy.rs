//! A TCP (or Unix-domain) proxy: each client gets its own connection to the upstream, and
//! bytes flow both ways with backpressure and half-close carried across.
//!
//! Run:  cargo run --release --example proxy -- --addr 127.0.0.1:7100 --upstream 127.0.0.1:7000
//! Try:  cargo run --release --example echo  &  nc 127.0.0.1 7100
//!
//! Each client is a pair of connections on one reactor. Bytes go from one to the other by
//! forwarding (`Cx::forward_to`): read into the reactor's buffer and written from it to the
//! partner's socket, with no handler call and no copy; everything else is messages.
//!
//! ```text
//!   client ──forward_to──► upstream ──► server          (and the same the other way)
//!   a side whose output backs up past the high watermark: its partner stops reading,
//!   until it drains to the low one                     (memory: watermark + one read a side)
//!   EOF on one side ──Eof──► shutdown(Write) on the other;  close ──Gone──► the other closes
//!   (aborts, if the side went with an error: a reset client takes its upstream at once)
//! ```
//!
//! A pair never outlives its use: when one side goes with an error (a reset, a failed
//! write), the other is aborted; when it goes cleanly, the other flushes what it owes for
//! `--fin-timeout` at most (HAProxy's `timeout client-fin`), then is cut off. At
//! `--max-conns`, a client silent since it connected (a second or more) is displaced for a
//! new one, its upstream with it; a pair that has talked never is.

use std::time::Duration;

use clap::Parser;
use evloop::{Config, ConnId, Cx, Handler, Input, Reactor, Reason, TimerId};
use evloop_support::app;
use evloop_support::app::Endpoint;
use evloop_support::cli::{self, IdleTimeout, Secs, LOGS};

/// proxy: forwards every client to its own upstream connection, both directions.
#[derive(Debug, Parser)]
#[command(name = "proxy", version, allow_negative_numbers = true, after_help = LOGS)]
struct Args {
    /// Where clients connect: HOST:PORT or unix:PATH
    #[arg(long, visible_alias = "listen", value_name = "ADDR", default_value = "127.0.0.1:7100")]
    addr: Endpoint,

    /// Where to forward: HOST:PORT or unix:PATH
    #[arg(long, value_name = "ADDR")]
    upstream: Endpoint,

    /// Most connections at once, clients and upstreams together
    #[arg(long, value_name = "N", default_value_t = 2048, value_parser = cli::count(1, usize::MAX))]
    max_conns: usize,

    /// Time an upstream has to accept the connection; past it, its client is closed
    #[arg(long, value_name = "SECS", default_value_t = Secs::from(10), value_parser = cli::positive_secs)]
    connect_timeout: Secs,

    /// Time a side has to flush what it owes once its partner has closed; past it, it is
    /// cut off (an abandoned pair never holds its slots until the idle timeout)
    #[arg(long, value_name = "SECS", default_value_t = Secs::from(5), value_parser = cli::positive_secs)]
    fin_timeout: Secs,

    #[command(flatten)]
    idle: IdleTimeout<300>,
}

/// What the two sides of a pair tell each other (the bytes go by forwarding).
enum Msg {
    /// The partner's peer finished sending: finish ours.
    Eof,
    /// The partner closed, and why.
    Gone(Reason),
}

/// One side of a pair: a client, or the upstream connection made for it.
struct Side {
    upstream: Endpoint,
    /// How long this side may flush after its partner closed (`--fin-timeout`).
    fin_timeout: Duration,
    /// The other side: a client learns its upstream's id when it starts the connect.
    partner: Option<ConnId>,
    /// Our peer has finished sending, and the partner's peer has (we shut down writing).
    eof_in: bool,
    eof_out: bool,
}

impl Side {
    fn new(upstream: Endpoint, fin_timeout: Duration, partner: Option<ConnId>) -> Side {
        Side { upstream, fin_timeout, partner, eof_in: false, eof_out: false }
    }

    fn tell(&self, cx: &mut Cx<'_, Self>, message: Msg) {
        if let Some(partner) = self.partner {
            // A partner that is gone has told us so (Gone) or is about to: nothing to do.
            let _ = cx.send(partner, message);
        }
    }

    /// Sends everything our peer sends to the partner, from now on.
    fn forward(&self, cx: &mut Cx<'_, Self>) {
        if let Some(partner) = self.partner {
            if cx.forward_to(partner).is_err() {
                cx.close(); // the partner is gone already
            }
        }
    }
}

impl Handler for Side {
    type Msg = Msg;

    fn on_open(&mut self, cx: &mut Cx<'_, Self>) {
        if self.partner.is_none() {
            // A new client: connect its upstream. Its bytes may flow at once; they wait in
            // the upstream's output until the connect completes.
            let side = Side::new(self.upstream.clone(), self.fin_timeout, Some(cx.id()));
            let opened = match &self.upstream {
                Endpoint::Tcp(addr) => cx.connect(*addr, side),
                Endpoint::Unix(path) => cx.connect_unix(path, side),
            };
            match opened {
                Ok(upstream) => self.partner = Some(upstream),
                Err(e) => {
                    log::warn!("client {}: upstream {}: {e}", cx.peer_addr(), self.upstream);
                    cx.close();
                    return;
                }
            }
        }
        self.forward(cx);
    }

    /// Reached only once forwarding has ended, the partner being gone: its `Gone` closes us.
    fn on_data(&mut self, input: &mut Input<'_>, _cx: &mut Cx<'_, Self>) {
        input.consume_all();
    }

    fn on_eof(&mut self, cx: &mut Cx<'_, Self>) {
        self.eof_in = true;
        self.tell(cx, Msg::Eof);
        if self.eof_out {
            cx.close();
        }
    }

    fn on_message(&mut self, message: Msg, cx: &mut Cx<'_, Self>) {
        match message {
            Msg::Eof => {
                self.eof_out = true;
                cx.shutdown_write();
                if self.eof_in {
                    cx.close();
                }
            }
            Msg::Gone(reason) => {
                if matches!(reason, Reason::ConnectFailed(_) | Reason::ConnectTimeout) {
                    log::warn!("client {}: upstream {}: {reason}", cx.peer_addr(), self.upstream);
                }
                self.partner = None;
                if matches!(reason, Reason::Error(_)) {
                    // Its peer reset (or a write failed): nothing this side owes will be
                    // wanted; let go of it and its slot now.
                    cx.abort();
                } else {
                    // Flush what it owes, for a while at most (`on_timer`).
                    cx.close();
                    cx.set_timer(self.fin_timeout);
                }
            }
        }
    }

    /// The partner closed `--fin-timeout` ago and this side has still not flushed: its peer
    /// is not reading what it is owed. Cut it off.
    fn on_timer(&mut self, _id: TimerId, cx: &mut Cx<'_, Self>) {
        log::debug!(
            "{} ({}): not flushed {:?} after its partner closed",
            cx.id(),
            cx.peer_addr(),
            self.fin_timeout
        );
        cx.abort();
    }

    fn on_close(&mut self, reason: Reason, cx: &mut Cx<'_, Self>) {
        self.tell(cx, Msg::Gone(reason));
    }
}

fn main() {
    let Args { addr: listen, upstream, max_conns, connect_timeout, fin_timeout, idle } = Args::parse();
    let fin_timeout = fin_timeout.0;
    app::init_logging();
    let config = Config {
        max_conns,
        connect_timeout: connect_timeout.0,
        // A side closed for silence takes its partner along (`Gone`).
        idle_timeout: idle.get(),
        slow_callback: Some(app::SLOW_CALLBACK),
        ..Config::default()
    };
    let served = Reactor::new(config).and_then(|mut reactor| {
        let bound =
            app::listen(&mut reactor, &listen, move || Side::new(upstream.clone(), fin_timeout, None))?;
        app::run_reactor(reactor, bound)
    });
    if let Err(e) = served {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
