//! A line chat: every line a client sends goes to every other client, with join and leave
//! notices. A client that stops reading is disconnected once its backlog passes a cap, and
//! never slows the others.
//!
//! Run:  cargo run --release --example chat
//! Talk: nc 127.0.0.1 7001   (in two terminals; type lines)
//!
//! ```text
//!   line from A ──► for each member M ≠ A: cx.send(M, line) ──► M.on_message ──► write to M
//!                                            (M's backlog > cap: M is dropped, A never waits)
//! ```
//!
//! The member list is shared by the handlers of one reactor: one thread, so an
//! `Rc<RefCell<..>>` and no lock. Lines are `Arc<str>`, so a fan-out to N members copies a
//! pointer N times, not the line.

mod common;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use evloop::{Config, ConnId, Cx, Handler, Input, Reactor, Reason};

const USAGE: &str = "\
chat: every line a client sends is delivered to every other client.

usage: chat [--addr HOST:PORT] [--max-backlog BYTES] [--max-line BYTES] [--idle-timeout SECS]

  --addr HOST:PORT     address to listen on (default 127.0.0.1:7001)
  --max-backlog BYTES  output a client may leave unread before it is disconnected (default 1048576)
  --max-line BYTES     longest line accepted; a longer one closes its sender (default 4096)
  --idle-timeout SECS  close a client silent this long, 0 = never (default 600)
  -h, --help           this help
";

type Members = Rc<RefCell<BTreeSet<ConnId>>>;

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
            let text = String::from_utf8_lossy(line);
            self.broadcast(cx, me, format!("{me}: {}\n", text.trim_end_matches('\r')).into());
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
    common::init_logging();
    let mut flags = common::Flags::parse(USAGE);
    let addr: std::net::SocketAddr = flags.value("--addr", "127.0.0.1:7001".parse().unwrap());
    let max_backlog: usize = flags.value("--max-backlog", 1 << 20);
    let max_line: usize = flags.value("--max-line", 4096);
    let idle_secs: u64 = flags.value("--idle-timeout", 600);
    if max_backlog == 0 || max_line == 0 {
        flags.fail("--max-backlog and --max-line must be at least 1");
    }
    flags.finish();
    let config = Config {
        idle_timeout: (idle_secs > 0).then(|| Duration::from_secs(idle_secs)),
        max_input: max_line + 1,
        slow_callback: Some(common::SLOW_CALLBACK),
        ..Config::default()
    };
    let members = Members::default();
    let served = Reactor::new(config).and_then(|mut reactor| {
        let bound =
            reactor.listen(addr, move |_| Member { members: Rc::clone(&members), max_backlog, max_line })?;
        common::run_reactor(reactor, bound)
    });
    if let Err(e) = served {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
