//! Forwarding (`Cx::forward_to`): two clients of one reactor joined so each one's bytes go
//! to the other with no handler in between. Exactly and in order both ways, held input
//! first; backpressure across the pair with memory bounded by the watermark; forwarding
//! ending when the partner goes or the handler stops it; the errors it refuses with.
//! The reactor turns in the test's thread (bounded by deadlines); clients are real
//! loopback sockets.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::thread;
use std::time::{Duration, Instant};

use evloop::{Config, ConnId, Cx, Handler, Input, Reactor, Reason};
use evloop_support::testing::{turn_until, ReadSome, Rng, WriteSome};

/// What the handlers saw.
#[derive(Default)]
struct Seen {
    /// A connection waiting for a partner.
    waiting: Option<ConnId>,
    /// Connections in the order they opened.
    opened: Vec<ConnId>,
    /// Input handed to `on_data` after a connection was paired (forwarding ended or was
    /// stopped), with what `forwarding_to` said then.
    data: Vec<(ConnId, Vec<u8>, Option<ConnId>)>,
    closed: Vec<ConnId>,
    /// What `forward_to` refused with.
    refused: Vec<io::ErrorKind>,
}

type Board = Rc<RefCell<Seen>>;

#[derive(Debug)]
enum Msg {
    /// Your partner: forward to it.
    Partner(ConnId),
    /// Stop forwarding.
    Stop,
}

/// Pairs connections as they open, two by two: the first waits, keeping its input
/// unconsumed (held); the second forwards to the first and tells it to forward back.
struct Joint {
    board: Board,
    partner: Option<ConnId>,
}

impl Joint {
    fn forward(&mut self, to: ConnId, cx: &mut Cx<'_, Self>) {
        self.partner = Some(to);
        if let Err(e) = cx.forward_to(to) {
            self.board.borrow_mut().refused.push(e.kind());
        }
    }
}

impl Handler for Joint {
    type Msg = Msg;

    fn on_open(&mut self, cx: &mut Cx<'_, Self>) {
        let waiting = {
            let mut board = self.board.borrow_mut();
            board.opened.push(cx.id());
            board.waiting.take()
        };
        match waiting {
            Some(first) => {
                self.forward(first, cx);
                let _ = cx.send(first, Msg::Partner(cx.id()));
            }
            None => self.board.borrow_mut().waiting = Some(cx.id()),
        }
    }
    fn on_data(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
        if self.partner.is_some() {
            self.board.borrow_mut().data.push((cx.id(), input.bytes().to_vec(), cx.forwarding_to()));
            input.consume_all();
        }
        // Not paired yet: leave it, to be forwarded first once paired.
    }
    fn on_message(&mut self, message: Msg, cx: &mut Cx<'_, Self>) {
        match message {
            Msg::Partner(to) => self.forward(to, cx),
            Msg::Stop => cx.stop_forwarding(),
        }
    }
    fn on_close(&mut self, _reason: Reason, cx: &mut Cx<'_, Self>) {
        self.board.borrow_mut().closed.push(cx.id());
    }
}

/// A reactor that pairs its clients, and its address.
fn joint_reactor(config: Config) -> (Reactor<Joint>, SocketAddr, Board) {
    let board = Board::default();
    let mut reactor = Reactor::new(config).unwrap();
    let theirs = Rc::clone(&board);
    let (_, addr) = reactor
        .listen("127.0.0.1:0".parse().unwrap(), move |_| Joint { board: Rc::clone(&theirs), partner: None })
        .unwrap();
    (reactor, addr, board)
}

/// Connects a client and waits until the reactor has opened its connection.
fn join(reactor: &mut Reactor<Joint>, addr: SocketAddr, board: &Board) -> (TcpStream, ConnId) {
    let before = board.borrow().opened.len();
    let client = TcpStream::connect(addr).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    turn_until(reactor, "the connection to open", |_| board.borrow().opened.len() > before);
    let id = board.borrow().opened[before];
    (client, id)
}

/// Two clients joined through the reactor.
fn joined(reactor: &mut Reactor<Joint>, addr: SocketAddr, board: &Board) -> [(TcpStream, ConnId); 2] {
    let first = join(reactor, addr, board);
    let second = join(reactor, addr, board);
    // The first learns its partner by message: one more turn delivers it.
    turn_until(reactor, "the pair to form", |_| board.borrow().waiting.is_none());
    reactor.run_once(Some(Duration::ZERO)).unwrap();
    [first, second]
}

/// Megabytes each way between two clients, written and read at once on threads: every byte
/// arrives, in order; the first client's opening bytes, sent before it had a partner, come
/// first; no handler sees any of it.
#[test]
fn forwarded_bytes_arrive_exactly_both_ways_without_the_handler() {
    let (mut reactor, addr, board) = joint_reactor(Config::default());
    let mut rng = Rng::seeded("forwarded_bytes_arrive_exactly_both_ways_without_the_handler");
    let (a_bytes, b_bytes) = (rng.bytes(3 << 20), rng.bytes(3 << 20));
    let (mut a, _) = join(&mut reactor, addr, &board);
    // Sent while `a` waits alone: held unconsumed, forwarded first once paired.
    a.write_all(&a_bytes[..1000]).unwrap();
    turn_until(&mut reactor, "the early bytes to be read", |r| r.stats().bytes_in >= 1000);
    let (b, _) = join(&mut reactor, addr, &board);

    // Each client writes its payload and reads the other's, on threads, while the reactor turns here.
    let spawn_side = |mut stream: TcpStream, send: Vec<u8>, expect_len: usize| {
        let mut writer = stream.try_clone().unwrap();
        let write = thread::spawn(move || writer.write_all(&send));
        thread::spawn(move || {
            let mut got = vec![0; expect_len];
            let read = stream.read_exact(&mut got);
            write.join().unwrap().and(read).map(|()| got)
        })
    };
    let a_side = spawn_side(a, a_bytes[1000..].to_vec(), b_bytes.len());
    let b_side = spawn_side(b, b_bytes.clone(), a_bytes.len());
    turn_until(&mut reactor, "both clients to finish", |_| a_side.is_finished() && b_side.is_finished());
    assert!(a_side.join().unwrap().unwrap() == b_bytes, "what a read differs from what b sent");
    assert!(b_side.join().unwrap().unwrap() == a_bytes, "what b read differs from what a sent");
    assert!(board.borrow().data.is_empty(), "no handler saw forwarded bytes");
    assert!(board.borrow().refused.is_empty());
    let stats = reactor.stats();
    assert_eq!(stats.bytes_in, (a_bytes.len() + b_bytes.len()) as u64);
    assert_eq!(stats.bytes_out, stats.bytes_in);
    assert_eq!(stats.out_buffered, 0);
}

/// A client whose partner does not read is stopped: the reactor holds no more than the
/// high watermark and one read for the pair, and the writer's socket fills. When the
/// partner reads, every byte arrives in order and the writer is read again.
#[test]
fn a_partner_that_does_not_read_stops_the_forwarder_with_memory_bounded() {
    const HIGH: usize = 64 * 1024;
    let config = Config { out_high_watermark: HIGH, out_low_watermark: 16 * 1024, ..Config::default() };
    let (mut reactor, addr, board) = joint_reactor(config);
    let [(mut writer, _), (mut reader, _)] = joined(&mut reactor, addr, &board);
    writer.set_nonblocking(true).unwrap();
    let payload = Rng::seeded("a_partner_that_does_not_read_stops_the_forwarder").bytes(64 << 20);

    // Write until the writer's socket stays full for a while with the reactor turning.
    let mut sent = 0;
    let mut stalled_since = Instant::now();
    while stalled_since.elapsed() < Duration::from_millis(300) {
        assert!(sent < payload.len(), "64 MiB went through a partner that reads nothing");
        match writer.write_some(&payload[sent..(sent + 65536).min(payload.len())]) {
            Ok(n) => {
                sent += n;
                stalled_since = Instant::now();
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("write failed: {e}"),
        }
        reactor.run_once(Some(Duration::from_millis(1))).unwrap();
    }
    let stats = reactor.stats();
    assert!(stats.backpressure_pauses >= 1, "the forwarder was paused: {stats:?}");
    assert!(
        stats.out_buffered_peak <= (HIGH + 64 * 1024) as u64,
        "buffered {} bytes",
        stats.out_buffered_peak
    );
    assert!(stats.out_buffered <= HIGH as u64);

    // The reader drains it all; what it gets is exactly what was written.
    reader.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let got = read_turning(&mut reactor, &mut reader, sent, deadline, "what was written");
    assert!(got == payload[..sent], "the bytes that arrived differ from those sent");
    // Released: new bytes from the writer go through.
    writer.set_nonblocking(false).unwrap();
    writer.write_all(b"more").unwrap();
    let more = read_turning(&mut reactor, &mut reader, 4, deadline, "the writer's next bytes");
    assert_eq!(more, b"more");
    assert!(board.borrow().data.is_empty());
}

/// Reads `len` bytes from a non-blocking `reader`, turning the reactor while none are there.
#[track_caller]
fn read_turning<H: Handler>(
    reactor: &mut Reactor<H>,
    reader: &mut TcpStream,
    len: usize,
    deadline: Instant,
    what: &str,
) -> Vec<u8> {
    let (mut got, mut buf) = (Vec::with_capacity(len), vec![0; 65536]);
    while got.len() < len {
        assert!(Instant::now() < deadline, "read {} of {len} bytes of {what}", got.len());
        match reader.read_some(&mut buf) {
            Ok(0) => panic!("the reader's connection closed"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                reactor.run_once(Some(Duration::from_millis(1))).unwrap();
            }
            Err(e) => panic!("read failed: {e}"),
        }
    }
    got
}

/// When the partner closes, forwarding ends by itself: the connection's later input goes to
/// its `on_data`, which sees `forwarding_to` empty.
#[test]
fn forwarding_ends_when_the_partner_closes() {
    let (mut reactor, addr, board) = joint_reactor(Config::default());
    let [(mut a, a_id), (b, b_id)] = joined(&mut reactor, addr, &board);
    drop(b);
    turn_until(&mut reactor, "b's connection to close", |_| board.borrow().closed.contains(&b_id));
    a.write_all(b"after").unwrap();
    turn_until(&mut reactor, "a's input to reach on_data", |_| !board.borrow().data.is_empty());
    let (id, bytes, forwarding) = board.borrow().data[0].clone();
    assert_eq!((id, bytes.as_slice(), forwarding), (a_id, &b"after"[..], None));
}

/// `stop_forwarding` gives the input back to the handler.
#[test]
fn stop_forwarding_gives_input_back_to_the_handler() {
    let (mut reactor, addr, board) = joint_reactor(Config::default());
    let [(mut a, a_id), (mut b, b_id)] = joined(&mut reactor, addr, &board);
    // Still forwarding: a's bytes reach b.
    a.write_all(b"ping").unwrap();
    let mut got = [0; 4];
    let reading = thread::spawn(move || b.read_exact(&mut got).map(|()| got));
    turn_until(&mut reactor, "b to read", |_| reading.is_finished());
    assert_eq!(&reading.join().unwrap().unwrap(), b"ping");

    reactor.send(a_id, Msg::Stop).unwrap();
    reactor.run_once(Some(Duration::ZERO)).unwrap();
    a.write_all(b"mine").unwrap();
    turn_until(&mut reactor, "a's input to reach on_data", |_| !board.borrow().data.is_empty());
    let (id, bytes, forwarding) = board.borrow().data[0].clone();
    assert_eq!((id, bytes.as_slice(), forwarding), (a_id, &b"mine"[..], None));
    // b goes on forwarding to a.
    assert!(b_id != a_id);
}

/// `forward_to` refuses the connection itself (`InvalidInput`) and a connection that has
/// closed (`NotFound`), and forwards nothing.
#[test]
fn forward_to_refuses_itself_and_a_closed_connection() {
    struct Asker {
        board: Board,
        target: Option<ConnId>,
    }
    impl Handler for Asker {
        type Msg = ();
        fn on_open(&mut self, cx: &mut Cx<'_, Self>) {
            let me = cx.id();
            let mut board = self.board.borrow_mut();
            board.opened.push(me);
            for to in [Some(me), self.target].into_iter().flatten() {
                if let Err(e) = cx.forward_to(to) {
                    board.refused.push(e.kind());
                }
            }
            assert_eq!(cx.forwarding_to(), None);
            if self.target.is_none() {
                cx.close(); // the first is the closed connection the second aims at
            }
        }
        fn on_data(&mut self, input: &mut Input<'_>, _cx: &mut Cx<'_, Self>) {
            input.consume_all();
        }
        fn on_close(&mut self, _reason: Reason, cx: &mut Cx<'_, Self>) {
            self.board.borrow_mut().closed.push(cx.id());
        }
    }
    let board = Board::default();
    let mut reactor = Reactor::new(Config::default()).unwrap();
    let (_keep_first, first) = std::os::unix::net::UnixStream::pair().unwrap();
    let first_id = reactor.adopt(first, Asker { board: Rc::clone(&board), target: None }).unwrap();
    turn_until(&mut reactor, "the first to close", |_| board.borrow().closed.contains(&first_id));
    let (_keep_second, second) = std::os::unix::net::UnixStream::pair().unwrap();
    reactor.adopt(second, Asker { board: Rc::clone(&board), target: Some(first_id) }).unwrap();
    turn_until(&mut reactor, "the second to open", |_| board.borrow().opened.len() == 2);
    use io::ErrorKind::{InvalidInput, NotFound};
    assert_eq!(board.borrow().refused, [InvalidInput, InvalidInput, NotFound]);
}
