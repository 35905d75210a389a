//! Half-closes in both directions, arriving while the connection is not reading: every byte
//! the peer sent before its FIN reaches `on_data`, then `on_eof`, and the connection closes
//! as "closed by peer", never as a reset.
//!
//! The kernel reports `EPOLLHUP` (with no socket error) once both directions have sent FIN:
//! the peer's, and ours after `Cx::shutdown_write`. That hang-up is not a failure: the input
//! before the peer's FIN is still in the socket. These tests hold reading back each way the
//! API allows (a handler's pause, a yield from a message) at the moment the hang-up is
//! reported, over TCP and Unix sockets. The reactor runs in the test's own thread, so the
//! order of events is fixed, not raced. (`tests/it/model/` tries such orders at random.)

use std::cell::RefCell;
use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::Duration;

use evloop::{Config, Cx, Handler, Input, Reactor, Reason, Stream};
use evloop_support::testing::turn_until;

/// What the handler saw.
#[derive(Default)]
struct Seen {
    data: Vec<u8>,
    eof: bool,
    closed: Option<Reason>,
}

impl std::fmt::Debug for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} bytes, eof: {}, closed: {:?}", self.data.len(), self.eof, self.closed)
    }
}

type Board = Rc<RefCell<Seen>>;

/// What the test asks of the handler, by message.
enum Msg {
    Resume,
    ShutdownAndYield,
}

/// Records everything; on open, optionally shuts its write side and pauses.
struct Recorder {
    board: Board,
    shut_and_pause_on_open: bool,
}

impl Handler for Recorder {
    type Msg = Msg;

    fn on_open(&mut self, cx: &mut Cx<'_, Self>) {
        if self.shut_and_pause_on_open {
            cx.shutdown_write();
            cx.pause_read();
        }
    }
    fn on_data(&mut self, input: &mut Input<'_>, _cx: &mut Cx<'_, Self>) {
        self.board.borrow_mut().data.extend_from_slice(input.bytes());
        input.consume_all();
    }
    fn on_eof(&mut self, cx: &mut Cx<'_, Self>) {
        self.board.borrow_mut().eof = true;
        cx.close();
    }
    fn on_message(&mut self, message: Msg, cx: &mut Cx<'_, Self>) {
        match message {
            Msg::Resume => cx.resume_read(),
            Msg::ShutdownAndYield => {
                cx.shutdown_write();
                cx.yield_now();
            }
        }
    }
    fn on_close(&mut self, reason: Reason, _cx: &mut Cx<'_, Self>) {
        self.board.borrow_mut().closed = Some(reason);
    }
}

/// The peer's end of a connection: TCP over loopback or Unix.
enum Peer {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Peer {
    fn send(&mut self, data: &[u8]) {
        match self {
            Peer::Tcp(s) => s.write_all(data).unwrap(),
            Peer::Unix(s) => s.write_all(data).unwrap(),
        }
    }

    /// The peer's FIN; its end stays open (a close would be a full hang-up).
    fn half_close(&self) {
        match self {
            Peer::Tcp(s) => s.shutdown(Shutdown::Write).unwrap(),
            Peer::Unix(s) => s.shutdown(Shutdown::Write).unwrap(),
        }
    }
}

/// A connected pair: (the reactor's end, the peer's end).
fn pair(unix: bool) -> (Stream, Peer) {
    if unix {
        let (ours, peer) = UnixStream::pair().unwrap();
        (ours.into(), Peer::Unix(peer))
    } else {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (ours, _) = listener.accept().unwrap();
        (ours.into(), Peer::Tcp(peer))
    }
}

/// Runs a few turns, so every event the kernel has for the connection (the hang-up
/// included) has been polled and acted on.
fn some_turns(reactor: &mut Reactor<Recorder>) {
    for _ in 0..5 {
        reactor.run_once(Some(Duration::from_millis(5))).unwrap();
    }
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[track_caller]
fn assert_all_then_eof(board: &Board, sent: &[u8]) {
    let seen = board.borrow();
    assert_eq!(seen.data.len(), sent.len(), "bytes delivered before the close ({seen:?})");
    assert!(seen.data == sent, "the bytes delivered differ from the ones sent");
    assert!(seen.eof, "on_eof after the last byte");
    assert_eq!(seen.closed, Some(Reason::PeerClosed));
}

/// `shutdown_write` and `pause_read` in `on_open`; the peer sends and half-closes while the
/// connection is paused, so the kernel reports the double FIN as a hang-up; reading resumes
/// later. Before the fix the hang-up was taken for a reset: 0 bytes, `I/O error: connection
/// reset`.
fn paused_connection_reads_everything_after_a_double_fin(unix: bool) {
    let board: Board = Rc::default();
    let mut reactor = Reactor::new(Config::default()).unwrap();
    let (ours, mut peer) = pair(unix);
    let handler = Recorder { board: Rc::clone(&board), shut_and_pause_on_open: true };
    let id = reactor.adopt(ours, handler).unwrap();
    some_turns(&mut reactor);

    let sent = payload(20_000);
    peer.send(&sent);
    peer.half_close();
    some_turns(&mut reactor);
    assert!(board.borrow().closed.is_none(), "closed while paused: {:?}", board.borrow());

    assert!(reactor.send(id, Msg::Resume).is_ok(), "the connection is gone");
    turn_until(&mut reactor, "the connection to close", |_| board.borrow().closed.is_some());
    assert_all_then_eof(&board, &sent);
}

#[test]
fn paused_tcp_connection_reads_everything_after_a_double_fin() {
    paused_connection_reads_everything_after_a_double_fin(false);
}

#[test]
fn paused_unix_connection_reads_everything_after_a_double_fin() {
    paused_connection_reads_everything_after_a_double_fin(true);
}

/// `shutdown_write` then `yield_now` from `on_message`: the yield holds reading back until
/// the next turn's deferred work, after that turn's events; the peer's data and FIN arrive
/// in between, reported as a hang-up. Before the fix: half the bytes, no `on_eof`, a reset.
fn yield_after_shutdown_keeps_the_rest(unix: bool) {
    let board: Board = Rc::default();
    let mut reactor = Reactor::new(Config::default()).unwrap();
    let (ours, mut peer) = pair(unix);
    let id =
        reactor.adopt(ours, Recorder { board: Rc::clone(&board), shut_and_pause_on_open: false }).unwrap();
    let sent = payload(2_000);
    peer.send(&sent[..1_000]);
    turn_until(&mut reactor, "the first half", |_| board.borrow().data.len() == 1_000);

    assert!(reactor.send(id, Msg::ShutdownAndYield).is_ok(), "the connection is gone");
    reactor.run_once(Some(Duration::ZERO)).unwrap();
    peer.send(&sent[1_000..]);
    peer.half_close();
    turn_until(&mut reactor, "the connection to close", |_| board.borrow().closed.is_some());
    assert_all_then_eof(&board, &sent);
}

#[test]
fn yield_after_shutdown_keeps_the_rest_tcp() {
    yield_after_shutdown_keeps_the_rest(false);
}

#[test]
fn yield_after_shutdown_keeps_the_rest_unix() {
    yield_after_shutdown_keeps_the_rest(true);
}
