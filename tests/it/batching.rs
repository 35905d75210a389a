//! Output written once per connection per turn: what a turn's callbacks other than `on_data`
//! (messages, timers, offload results) write to a connection leaves in one write at the
//! turn's flush step (`Stats::batched_writes`), in order, and a handler streaming from those
//! callbacks still hears `on_drained` when output had to wait for the peer.
//! The reactor runs in the test's own thread; peers are Unix socket pairs.

use std::cell::RefCell;
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

use evloop::{Config, Cx, Handler, Input, Reactor, TimerId};
use evloop_support::testing::turn_until;

/// Writes every message it gets; on open, optionally arms timers that each write a line;
/// on `Big`, writes that many bytes and counts the `on_drained` calls that follow.
struct Writer {
    timers_on_open: usize,
    drained: Rc<RefCell<usize>>,
}

enum Msg {
    Line(String),
    Big(usize),
}

impl Handler for Writer {
    type Msg = Msg;

    fn on_open(&mut self, cx: &mut Cx<'_, Self>) {
        for _ in 0..self.timers_on_open {
            cx.set_timer(Duration::ZERO);
        }
    }
    fn on_data(&mut self, input: &mut Input<'_>, _cx: &mut Cx<'_, Self>) {
        input.consume_all();
    }
    fn on_message(&mut self, message: Msg, cx: &mut Cx<'_, Self>) {
        match message {
            Msg::Line(line) => cx.write(line.as_bytes()),
            Msg::Big(n) => cx.write(&vec![b'x'; n]),
        }
    }
    fn on_timer(&mut self, _id: TimerId, cx: &mut Cx<'_, Self>) {
        cx.write(b"tick\n");
    }
    fn on_drained(&mut self, _cx: &mut Cx<'_, Self>) {
        *self.drained.borrow_mut() += 1;
    }
}

fn writer(timers_on_open: usize) -> Writer {
    Writer { timers_on_open, drained: Rc::default() }
}

/// Reads what has arrived, without blocking.
fn read_available(peer: &mut UnixStream, into: &mut Vec<u8>) {
    let mut buf = [0u8; 64 * 1024];
    loop {
        match peer.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => into.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// Three connections, fifty messages each, sent between turns: one turn delivers all 150
/// and writes three times, one per connection; each peer gets its lines in order.
#[test]
fn a_turns_messages_leave_in_one_write_per_connection() {
    let mut reactor = Reactor::new(Config::default()).unwrap();
    let mut peers = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (ours, theirs) = UnixStream::pair().unwrap();
        theirs.set_nonblocking(true).unwrap();
        ids.push(reactor.adopt(ours, writer(0)).unwrap());
        peers.push(theirs);
    }
    turn_until(&mut reactor, "the connections to open", |r| r.stats().active == 3);
    let before = reactor.stats();
    for (n, &id) in ids.iter().enumerate() {
        for i in 0..50 {
            assert!(reactor.send(id, Msg::Line(format!("{n}:{i}\n"))).is_ok());
        }
    }
    reactor.run_once(Some(Duration::ZERO)).unwrap();
    let after = reactor.stats();
    assert_eq!(after.messages_delivered - before.messages_delivered, 150);
    assert_eq!(after.batched_writes - before.batched_writes, 3, "one write per connection");
    for (n, peer) in peers.iter_mut().enumerate() {
        let mut got = Vec::new();
        read_available(peer, &mut got);
        let want: String = (0..50).map(|i| format!("{n}:{i}\n")).collect();
        assert_eq!(String::from_utf8(got).unwrap(), want);
    }
}

/// Twenty timers due in the same turn, each writing a line: one write.
#[test]
fn timers_due_together_write_once() {
    let mut reactor = Reactor::new(Config::default()).unwrap();
    let (ours, mut theirs) = UnixStream::pair().unwrap();
    theirs.set_nonblocking(true).unwrap();
    reactor.adopt(ours, writer(20)).unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while reactor.stats().timers_fired < 20 {
        assert!(Instant::now() < deadline, "the timers did not fire");
        reactor.run_once(Some(Duration::from_millis(5))).unwrap();
    }
    read_available(&mut theirs, &mut got);
    assert_eq!(got, b"tick\n".repeat(20));
    assert_eq!(reactor.stats().batched_writes, 1, "{:?}", reactor.stats());
}

/// A message's output too big for the socket waits for the peer; once the peer has read
/// it all, the handler hears `on_drained`, as it would had the write been made at once.
#[test]
fn batched_output_that_waits_still_ends_in_on_drained() {
    let mut reactor = Reactor::new(Config::default()).unwrap();
    let (ours, mut theirs) = UnixStream::pair().unwrap();
    theirs.set_nonblocking(true).unwrap();
    let handler = writer(0);
    let drained = Rc::clone(&handler.drained);
    let id = reactor.adopt(ours, handler).unwrap();
    let size = 4 * 1024 * 1024;
    assert!(reactor.send(id, Msg::Big(size)).is_ok());
    let mut got = Vec::new();
    turn_until(&mut reactor, "the peer to read it all and on_drained", |_| {
        read_available(&mut theirs, &mut got);
        got.len() == size && *drained.borrow() == 1
    });
    assert!(got.iter().all(|&b| b == b'x'));
}
