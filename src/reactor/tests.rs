//! Unit tests that feed the dispatcher synthetic events, which a real poll cannot be made to
//! produce on demand: a stale token for a reused slot, and spurious readiness. They go
//! through `dispatch`, the same routing every polled event takes.

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::*;
use crate::flags::Flags;
use crate::{ConnId, Cx, Input, Reason};

/// What each connection received, by connection name.
type Log = Rc<RefCell<Vec<(&'static str, Vec<u8>)>>>;

/// Records every byte its connection receives, tagged with the connection's name. Panics
/// on input containing `!` (a handler bug, for the panic test).
struct Recorder {
    name: &'static str,
    log: Log,
}

impl Handler for Recorder {
    type Msg = ();
    fn on_data(&mut self, input: &mut Input<'_>, _cx: &mut Cx<'_, Self>) {
        assert!(!input.bytes().contains(&b'!'), "deliberate handler bug");
        self.log.borrow_mut().push((self.name, input.bytes().to_vec()));
        input.consume_all();
    }
}

/// Turns the loop until `done` holds (bounded).
fn turn_until<H: Handler>(reactor: &mut Reactor<H>, done: impl Fn(&Reactor<H>) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done(reactor) {
        assert!(Instant::now() < deadline, "condition not reached");
        reactor.run_once(Some(Duration::from_millis(10))).unwrap();
    }
}

/// A reactor whose connections are `Recorder`s named, in order of arrival, `names`; and
/// its address and the shared log.
fn recorders(names: &[&'static str]) -> (Reactor<Recorder>, std::net::SocketAddr, Log) {
    let log = Rc::new(RefCell::new(Vec::new()));
    let mut names: Vec<&'static str> = names.iter().rev().copied().collect();
    let mut reactor = Reactor::new(Config::default()).unwrap();
    let factory_log = Rc::clone(&log);
    let (_, addr) = reactor
        .listen("127.0.0.1:0".parse().unwrap(), move |_| Recorder {
            name: names.pop().expect("more connections than names"),
            log: Rc::clone(&factory_log),
        })
        .unwrap();
    (reactor, addr, log)
}

fn the_only_id(reactor: &Reactor<Recorder>) -> ConnId {
    let (_, conn) = reactor.conns.iter().next().expect("one connection");
    conn.core.id
}

/// The ABA case: connection A closes, its table slot is reused by B, and an event still
/// carrying A's token (as one later in the same poll batch would) arrives. It must be
/// dropped and counted, never delivered to B.
#[test]
fn a_stale_token_for_a_reused_slot_is_dropped() {
    let (mut reactor, addr, log) = recorders(&["A", "B"]);

    let _a = std::net::TcpStream::connect(addr).unwrap();
    turn_until(&mut reactor, |r| r.conn_count() == 1);
    let a_id = the_only_id(&reactor);
    reactor.close_now(a_id.slot(), Reason::Local);

    let mut b = std::net::TcpStream::connect(addr).unwrap();
    turn_until(&mut reactor, |r| r.conn_count() == 1);
    let b_id = the_only_id(&reactor);
    assert_eq!(b_id.slot(), a_id.slot(), "the table reuses the freed slot");
    assert_ne!(b_id.generation(), a_id.generation());

    b.write_all(b"for B").unwrap();
    // Let the bytes reach B's socket without dispatching them, so only our synthetic
    // events can deliver them.
    std::thread::sleep(Duration::from_millis(50));
    reactor.dispatch(a_id.token(), Ready::READABLE);
    assert_eq!(reactor.stats().stale_events, 1);
    assert!(log.borrow().is_empty(), "a stale event reached the new connection");

    reactor.dispatch(b_id.token(), Ready::READABLE);
    assert_eq!(*log.borrow(), vec![("B", b"for B".to_vec())]);
}

/// Spurious readiness — a readable event with no data, delivered twice — is a no-op:
/// the read says `WouldBlock` and the connection stays open and unchanged.
#[test]
fn spurious_readiness_is_harmless() {
    let (mut reactor, addr, log) = recorders(&["X"]);
    let _x = std::net::TcpStream::connect(addr).unwrap();
    turn_until(&mut reactor, |r| r.conn_count() == 1);
    let id = the_only_id(&reactor);
    for _ in 0..2 {
        reactor.dispatch(id.token(), Ready::READABLE | Ready::WRITABLE);
    }
    assert_eq!(reactor.conn_count(), 1);
    assert!(log.borrow().is_empty());
    assert_eq!(reactor.stats().closed.total(), 0);
}

/// `on_data` runs without a `catch_unwind` of its own; a panic unwinds to the turn's guard.
/// Here five connections are readable in the same poll batch and the first one's handler
/// panics: that connection alone is closed, and the same turn goes on to serve the other
/// four (they are not left for a later event that, edge-triggered, would never come).
#[test]
fn a_panic_mid_batch_closes_one_connection_and_the_turn_goes_on() {
    let (mut reactor, addr, log) = recorders(&["A", "B", "C", "D", "E"]);
    let mut clients = Vec::new();
    for _ in 0..5 {
        clients.push(std::net::TcpStream::connect(addr).unwrap());
        let connected = clients.len();
        turn_until(&mut reactor, |r| r.conn_count() == connected);
    }
    // The panicking input first, so its event leads the batch and the others follow it.
    clients[0].write_all(b"boom!").unwrap();
    for client in &mut clients[1..] {
        client.write_all(b"fine").unwrap();
    }
    std::thread::sleep(Duration::from_millis(100));

    let turns = reactor.stats().turns;
    reactor.run_once(Some(Duration::ZERO)).unwrap();
    assert_eq!(reactor.stats().turns, turns + 1, "one turn");
    let mut served: Vec<_> = log.borrow().iter().map(|(name, bytes)| (*name, bytes.clone())).collect();
    served.sort();
    let fine = |name| (name, b"fine".to_vec());
    assert_eq!(served, vec![fine("B"), fine("C"), fine("D"), fine("E")]);
    assert_eq!(reactor.conn_count(), 4, "only the panicking connection closed");
    assert_eq!(reactor.stats().closed.error, 1);
}

/// A write that fails inside a callback (`Cx::flush`) closes the connection when the
/// callback returns, with the write's error. The socket's sending side is shut behind the
/// reactor's back, so the handler's `send` gets `EPIPE`.
#[test]
fn a_failed_flush_in_a_callback_closes_the_connection() {
    struct Flusher;
    impl Handler for Flusher {
        type Msg = ();
        fn on_data(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
            input.consume_all();
            cx.write(b"reply");
            cx.flush();
        }
    }
    let mut reactor = Reactor::new(Config::default()).unwrap();
    let (_, addr) = reactor.listen("127.0.0.1:0".parse().unwrap(), |_| Flusher).unwrap();
    let mut client = std::net::TcpStream::connect(addr).unwrap();
    turn_until(&mut reactor, |r| r.conn_count() == 1);
    let (_, conn) = reactor.conns.iter().next().unwrap();
    conn.core.stream.shutdown(std::net::Shutdown::Write).unwrap();
    client.write_all(b"go").unwrap();
    turn_until(&mut reactor, |r| r.conn_count() == 0);
    assert_eq!(reactor.stats().closed.error, 1);
    assert_eq!(reactor.stats().bytes_out, 0);
}

/// `TCP_NODELAY` is set once, on the listener, and Linux passes it to every socket it
/// accepts: an accepted connection has it (read back with `getsockopt`) although the
/// reactor made no `setsockopt` for it; elsewhere `install` sets it per connection. With
/// `nodelay: false` accepted sockets keep the kernel's default (off).
#[test]
fn accepted_sockets_have_nodelay_from_their_listener() {
    for nodelay in [true, false] {
        let mut reactor = Reactor::new(Config { nodelay, ..Config::default() }).unwrap();
        let log = Log::default();
        let (_, addr) = reactor
            .listen("127.0.0.1:0".parse().unwrap(), move |_| Recorder { name: "N", log: Rc::clone(&log) })
            .unwrap();
        let _client = std::net::TcpStream::connect(addr).unwrap();
        turn_until(&mut reactor, |r| r.conn_count() == 1);
        let (_, conn) = reactor.conns.iter().next().unwrap();
        let crate::Stream::Tcp(accepted) = &conn.core.stream else { panic!("a TCP connection") };
        assert_eq!(accepted.nodelay().unwrap(), nodelay, "TCP_NODELAY on the accepted socket");
    }
}

/// Writes `BULK` bytes when it reads anything.
struct Bulk;

const BULK: usize = 8 << 20;

impl Handler for Bulk {
    type Msg = ();
    fn on_data(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
        input.consume_all();
        cx.write(&vec![b'b'; BULK]);
    }
}

/// An accepted socket is registered for reading only; the first write the kernel does not
/// take whole asks for writable events (one `EPOLL_CTL_MOD`), and the rest of the output
/// then goes out on them, to the last byte.
#[test]
fn writable_events_are_asked_for_after_the_first_short_write() {
    let mut reactor = Reactor::new(Config::default()).unwrap();
    let (_, addr) = reactor.listen("127.0.0.1:0".parse().unwrap(), |_| Bulk).unwrap();
    let mut client = std::net::TcpStream::connect(addr).unwrap();
    turn_until(&mut reactor, |r| r.conns.iter().count() == 1);
    let interest = |r: &Reactor<Bulk>| r.conns.iter().next().unwrap().1.core.flags.has(Flags::WRITE_INTEREST);
    assert!(!interest(&reactor), "registered for reading only");

    client.write_all(b"go").unwrap();
    turn_until(&mut reactor, |r| r.stats().bytes_out > 0);
    assert!(interest(&reactor), "8 MiB do not fit the send buffer: the short write asked for writability");
    client.set_nonblocking(true).unwrap();
    let (mut got, mut buf) = (0, vec![0; 1 << 16]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while got < BULK {
        assert!(Instant::now() < deadline, "received {got} of {BULK} bytes");
        match std::io::Read::read(&mut client, &mut buf) {
            Ok(0) => panic!("closed early"),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                reactor.run_once(Some(Duration::from_millis(1))).unwrap();
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("read failed: {e}"),
        }
    }
    assert_eq!(reactor.stats().out_buffered, 0);
}
