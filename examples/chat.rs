//! A line chat: every line a client sends goes to every other client, with join and leave
//! notices. A client that stops reading is disconnected once its backlog passes a cap, and
//! never slows the others.
//!
//! Run:  cargo run --release --example chat
//! Talk: nc 127.0.0.1 7001   (in two terminals; type lines)
//! Unix: cargo run --release --example chat -- --addr unix:/tmp/chat.sock;  nc -U /tmp/chat.sock
//!
//! ```text
//!   line from A ──► for each member M ≠ A: cx.send(M, line) ──► M.on_message ──► write to M
//!                                            (M's backlog > cap: M is dropped, A never waits)
//! ```
//!
//! The member list is shared by the handlers of one reactor: one thread, so an
//! `Rc<RefCell<..>>` and no lock. Lines are `Arc<str>`, so a fan-out to N members copies a
//! pointer N times, not the line.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::sync::Arc;

use clap::Parser;
use evloop::{Config, ConnId, Cx, Handler, Input, Reactor, Reason};
use evloop_support::app::{self, Endpoint};
use evloop_support::cli::{self, IdleTimeout, LOGS};

/// chat: every line a client sends is delivered to every other client.
#[derive(Debug, Parser)]
#[command(name = "chat", version, allow_negative_numbers = true, after_help = LOGS)]
struct Args {
    /// Address to listen on: HOST:PORT, or unix:PATH for a Unix-domain socket
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7001")]
    addr: Endpoint,

    /// Output a client may leave unread before it is disconnected
    #[arg(long, value_name = "BYTES", default_value = "1m", value_parser = cli::size(1, usize::MAX))]
    max_backlog: usize,

    /// Longest line accepted; a longer one closes its sender
    #[arg(long, value_name = "BYTES", default_value = "4k", value_parser = cli::size(1, usize::MAX))]
    max_line: usize,

    #[command(flatten)]
    idle: IdleTimeout<600>,
}

type Members = Rc<RefCell<BTreeSet<ConnId>>>;

/// A line as the other members may see it: valid UTF-8 (invalid bytes become U+FFFD) with no
/// control characters but tabs, so no member can move another's cursor, clear its screen or
/// forge a notice with escape sequences or a bare carriage return.
fn printable(line: &[u8]) -> String {
    String::from_utf8_lossy(line).chars().filter(|&c| c == '\t' || !c.is_control()).collect()
}

struct Member {
    members: Members,
    max_backlog: usize,
    max_line: usize,
}

impl Member {
    /// Sends `line` to every member but `from`.
    fn broadcast(&self, cx: &mut Cx<'_, Self>, from: ConnId, line: Arc<str>) {
        for &member in self.members.borrow().iter().filter(|&&m| m != from) {
            // A member closing this very turn is still listed until its on_close: the
            // message is dropped and counted then, harmlessly.
            let _ = cx.send(member, Arc::clone(&line));
        }
    }
}

impl Handler for Member {
    type Msg = Arc<str>;

    fn on_open(&mut self, cx: &mut Cx<'_, Self>) {
        let me = cx.id();
        self.members.borrow_mut().insert(me);
        cx.write(format!("* welcome, you are {me}\n").as_bytes());
        self.broadcast(cx, me, format!("* {me} joined\n").into());
    }

    fn on_data(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
        let me = cx.id();
        while let Some(line) = input.take_line(b'\n') {
            let text = printable(line);
            // The cap counts what is sent: invalid UTF-8 becomes U+FFFD, three bytes a byte.
            if text.len() > self.max_line {
                cx.write(b"* line too long\n");
                cx.close();
                input.consume_all();
                return;
            }
            self.broadcast(cx, me, format!("{me}: {text}\n").into());
        }
        if input.len() > self.max_line {
            cx.write(b"* line too long\n");
            cx.close();
            input.consume_all();
        }
    }

    fn on_message(&mut self, line: Arc<str>, cx: &mut Cx<'_, Self>) {
        if cx.pending_output() + line.len() > self.max_backlog {
            log::info!(
                "{} ({}) disconnected: more than {} bytes unread",
                cx.id(),
                cx.peer_addr(),
                self.max_backlog
            );
            cx.abort();
            return;
        }
        cx.write(line.as_bytes());
    }

    fn on_close(&mut self, reason: Reason, cx: &mut Cx<'_, Self>) {
        let me = cx.id();
        self.members.borrow_mut().remove(&me);
        self.broadcast(cx, me, format!("* {me} left ({reason})\n").into());
    }
}

fn main() {
    let Args { addr, max_backlog, max_line, idle } = Args::parse();
    app::init_logging();
    let config = Config {
        idle_timeout: idle.get(),
        // The line being assembled, plus the byte that proves it too long.
        max_input: max_line.saturating_add(1),
        slow_callback: Some(app::SLOW_CALLBACK),
        ..Config::default()
    };
    let members = Members::default();
    let served = Reactor::new(config).and_then(|mut reactor| {
        let bound = app::listen(&mut reactor, &addr, move || Member {
            members: Rc::clone(&members),
            max_backlog,
            max_line,
        })?;
        app::run_reactor(reactor, bound)
    });
    if let Err(e) = served {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
