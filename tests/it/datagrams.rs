//! Datagram endpoints: exact echo of every size up to UDP's largest, truncation, a flood
//! that fills the send queue (bounded, counted), an ICMP refusal surfaced while the loop
//! serves on, timers and messages from another thread, a panicking handler isolated,
//! shutdown, and datagrams beside streams on one reactor. Each reactor runs in the test's
//! own thread with `run_once`, against real sockets on 127.0.0.1 or in a temp directory.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::rc::Rc;
use std::time::Duration;

use evloop::{Config, DatagramAddr, DatagramCx, DatagramOptions, Datagrams, Handler, Reactor, TimerId};
// The TCP side of the mixed reactor: the tests' stream echo.
use evloop_support::testing::Echo as TcpEcho;
use evloop_support::testing::{temp_dir, turn_until};

const LOCALHOST: &str = "127.0.0.1:0";

/// Echoes every datagram to its sender.
struct Echo;

impl<H: Handler> Datagrams<H> for Echo {
    fn on_datagram(&mut self, datagram: &[u8], from: &DatagramAddr, cx: &mut DatagramCx<'_, Self, H>) {
        let _ = cx.send_to(datagram, from);
    }
}

fn client() -> UdpSocket {
    let socket = UdpSocket::bind(LOCALHOST).unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    socket
}

/// Turns the reactor until `socket` receives a datagram; returns it.
fn receive<H: Handler>(reactor: &mut Reactor<H>, socket: &UdpSocket) -> Vec<u8> {
    let mut buffer = vec![0; 70_000];
    let mut got = None;
    // One turn first: the datagram is usually echoed by then, and the read below finds it
    // without waiting out its timeout.
    reactor.run_once(Some(Duration::from_millis(10))).unwrap();
    turn_until(reactor, "a datagram back", |_| match socket.recv(&mut buffer) {
        Ok(n) => {
            got = Some(buffer[..n].to_vec());
            true
        }
        Err(_) => false,
    });
    got.unwrap()
}

/// Every size from 0 to 2,048 bytes, then every 97th up to 65,507 (UDP's largest over
/// IPv4) and that size itself: each echoed exactly, byte for byte.
#[test]
fn udp_echo_is_exact_for_every_size() {
    let mut reactor: Reactor = Reactor::new(Config::default()).unwrap();
    let (_id, addr) = reactor.bind_udp(LOCALHOST.parse().unwrap(), Echo).unwrap();
    let socket = client();
    socket.connect(addr).unwrap();
    let sizes = (0..=2_048).chain((2_049..65_507).step_by(97)).chain([65_507]);
    let mut count = 0;
    for size in sizes {
        let datagram: Vec<u8> = (0..size).map(|i| (i * 31 + size) as u8).collect();
        socket.send(&datagram).unwrap();
        let back = receive(&mut reactor, &socket);
        assert!(back == datagram, "size {size}: {} bytes came back, not the same", back.len());
        count += 1;
    }
    let stats = reactor.stats().datagrams;
    assert_eq!((stats.received, stats.sent), (count, count));
    assert_eq!(stats.truncated, 0);
}

/// A datagram longer than `max_datagram` is dropped and counted, never delivered cut short;
/// one of exactly that size is delivered.
#[test]
fn a_datagram_longer_than_the_limit_is_dropped_and_counted() {
    let mut reactor: Reactor = Reactor::new(Config::default()).unwrap();
    let options = DatagramOptions::default().with_max_datagram(100);
    let (_id, addr) = reactor.bind_udp_with(LOCALHOST.parse().unwrap(), options, Echo).unwrap();
    let socket = client();
    socket.connect(addr).unwrap();
    socket.send(&[7; 101]).unwrap();
    socket.send(&[8; 100]).unwrap();
    assert_eq!(receive(&mut reactor, &socket), vec![8; 100]);
    assert_eq!(reactor.stats().datagrams.truncated, 1);
    assert_eq!(reactor.stats().datagrams.received, 1);
}

/// Sends `copies` datagrams of `size` bytes back for every datagram received.
struct Amplifier {
    copies: usize,
    size: usize,
    refused: Rc<RefCell<usize>>,
}

impl Datagrams for Amplifier {
    fn on_datagram(&mut self, _datagram: &[u8], from: &DatagramAddr, cx: &mut DatagramCx<'_, Self>) {
        let reply = vec![b'x'; self.size];
        for _ in 0..self.copies {
            if cx.send_to(&reply, from).is_err() {
                *self.refused.borrow_mut() += 1;
            }
        }
    }
}

/// A peer that never reads, over Unix datagrams (where a full receiver makes the sender
/// block, unlike UDP on loopback, which drops): the endpoint queues up to its bound, then
/// drops and counts; memory never passes the bound; once the peer reads, the queue drains
/// in order and the loop has served on throughout.
#[test]
fn a_flood_to_a_peer_that_never_reads_is_bounded_and_counted() {
    let dir = temp_dir("dgram-flood");
    let (server_path, client_path) = (dir.join("server.sock"), dir.join("client.sock"));
    let mut reactor: Reactor = Reactor::new(Config::default()).unwrap();
    let refused = Rc::new(RefCell::new(0));
    let amplifier = Amplifier { copies: 5_000, size: 1_000, refused: Rc::clone(&refused) };
    reactor.bind_unix_datagram(&server_path, amplifier).unwrap();
    let peer = UnixDatagram::bind(&client_path).unwrap();
    peer.send_to(b"go", &server_path).unwrap();
    turn_until(&mut reactor, "the flood", |r| r.stats().datagrams.received == 1);
    let stats = reactor.stats().datagrams;
    let bound = DatagramOptions::default().send_queue as u64;
    assert!(stats.dropped > 0, "nothing was dropped: {stats:?}");
    assert_eq!(stats.dropped, *refused.borrow() as u64, "every drop refused to the caller");
    assert!(stats.queued_peak <= bound, "queue passed its bound: {stats:?}");
    assert!(stats.queued_peak > bound / 2, "the queue was barely used: {stats:?}");
    // The peer reads: what was queued arrives, the rest was dropped, nothing else lost.
    peer.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    let mut received = 0u64;
    let mut buffer = [0; 2_000];
    turn_until(&mut reactor, "the queue drained", |r| {
        while peer.recv(&mut buffer).is_ok() {
            received += 1;
        }
        received + r.stats().datagrams.dropped == 5_000
    });
    assert_eq!(reactor.stats().datagrams.sent, received);
    drop(reactor);
}

/// What a connected endpoint learned: each error's kind, and each reply.
#[derive(Default)]
struct Seen {
    errors: Vec<std::io::ErrorKind>,
    replies: Vec<Vec<u8>>,
    timers: Vec<TimerId>,
}

/// A connected endpoint: sends a query when told (by a timer or a message), records what
/// comes back and what the socket reports.
struct Querier {
    seen: Rc<RefCell<Seen>>,
}

impl Datagrams for Querier {
    fn on_datagram(&mut self, datagram: &[u8], _from: &DatagramAddr, _cx: &mut DatagramCx<'_, Self>) {
        self.seen.borrow_mut().replies.push(datagram.to_vec());
    }
    fn on_timer(&mut self, id: TimerId, cx: &mut DatagramCx<'_, Self>) {
        self.seen.borrow_mut().timers.push(id);
        if let Err(e) = cx.send(b"query") {
            self.seen.borrow_mut().errors.push(e.kind());
        }
    }
    fn on_error(&mut self, error: &std::io::Error, _cx: &mut DatagramCx<'_, Self>) {
        self.seen.borrow_mut().errors.push(error.kind());
    }
}

/// A port nobody listens on: the endpoint's sends are refused by ICMP; the refusal reaches
/// `on_error` (or the next send's result), is counted, and the loop, this endpoint and
/// another endpoint keep serving.
#[test]
fn an_icmp_refusal_is_surfaced_and_the_loop_serves_on() {
    let nobody = {
        let probe = UdpSocket::bind(LOCALHOST).unwrap();
        probe.local_addr().unwrap()
    };
    let mut reactor: Reactor = Reactor::new(Config::default()).unwrap();
    let (_echo, echo_addr) = reactor.bind_udp(LOCALHOST.parse().unwrap(), Echo).unwrap();
    let seen = Rc::new(RefCell::new(Seen::default()));
    let querier = reactor.connect_udp(nobody, Querier { seen: Rc::clone(&seen) }).unwrap();
    // Send a few queries on timers, 20 ms apart, from the endpoint's own callbacks.
    for _ in 0..3 {
        reactor
            .with_endpoint(querier, |_q: &mut Querier, cx| cx.set_timer(Duration::from_millis(20)))
            .unwrap();
    }
    turn_until(&mut reactor, "a refusal", |_| {
        seen.borrow().errors.contains(&std::io::ErrorKind::ConnectionRefused)
    });
    assert_eq!(seen.borrow().timers.len(), 3, "all three timers fired");
    assert!(reactor.stats().datagrams.errors >= 1);
    // The other endpoint is unharmed.
    let socket = client();
    socket.send_to(b"still here", echo_addr).unwrap();
    assert_eq!(receive(&mut reactor, &socket), b"still here");
}

/// Another thread reaches an endpoint by id through `Sender::call` (the way messages reach
/// endpoints), and the endpoint's reply goes out from that call.
#[test]
fn another_thread_reaches_an_endpoint_through_its_sender() {
    let mut reactor: Reactor = Reactor::new(Config::default()).unwrap();
    let (id, _addr) = reactor.bind_udp(LOCALHOST.parse().unwrap(), Echo).unwrap();
    let socket = client();
    let target: DatagramAddr = socket.local_addr().unwrap().into();
    let sender = reactor.sender();
    std::thread::spawn(move || {
        sender
            .call(move |reactor| {
                reactor.with_endpoint(id, |_echo: &mut Echo, cx| cx.send_to(b"hello from a thread", &target));
            })
            .unwrap();
    })
    .join()
    .unwrap();
    assert_eq!(receive(&mut reactor, &socket), b"hello from a thread");
}

/// Panics on the datagram "boom"; echoes the rest.
struct Fragile;

impl Datagrams for Fragile {
    fn on_datagram(&mut self, datagram: &[u8], from: &DatagramAddr, cx: &mut DatagramCx<'_, Self>) {
        assert!(datagram != b"boom", "a handler bug");
        let _ = cx.send_to(datagram, from);
    }
}

/// A datagram that makes the handler panic is dropped and counted; the endpoint goes on
/// serving the next one.
#[test]
fn a_panicking_handler_loses_one_datagram_not_the_endpoint() {
    let mut reactor: Reactor = Reactor::new(Config::default()).unwrap();
    let (_id, addr) = reactor.bind_udp(LOCALHOST.parse().unwrap(), Fragile).unwrap();
    let socket = client();
    socket.connect(addr).unwrap();
    socket.send(b"boom").unwrap();
    socket.send(b"after").unwrap();
    assert_eq!(receive(&mut reactor, &socket), b"after");
    let stats = reactor.stats().datagrams;
    assert_eq!((stats.panics, stats.endpoints), (1, 1));
}

/// Records its close.
struct Closing {
    closed: Rc<RefCell<bool>>,
}

impl Datagrams for Closing {
    fn on_datagram(&mut self, _datagram: &[u8], _from: &DatagramAddr, _cx: &mut DatagramCx<'_, Self>) {}
    fn on_close(&mut self, _cx: &mut DatagramCx<'_, Self>) {
        *self.closed.borrow_mut() = true;
    }
}

/// Shutdown closes every endpoint (`on_close`), removes a Unix endpoint's file, and stops a
/// reactor that serves only datagrams.
#[test]
fn shutdown_closes_endpoints_and_stops() {
    let dir = temp_dir("dgram-stop");
    let path = dir.join("stats.sock");
    let mut reactor: Reactor = Reactor::new(Config::default()).unwrap();
    let (udp_closed, unix_closed) = (Rc::new(RefCell::new(false)), Rc::new(RefCell::new(false)));
    reactor.bind_udp(LOCALHOST.parse().unwrap(), Closing { closed: Rc::clone(&udp_closed) }).unwrap();
    let unix = reactor.bind_unix_datagram(&path, Closing { closed: Rc::clone(&unix_closed) }).unwrap();
    assert!(path.exists());
    // A second server on the live path is refused.
    let err = reactor.bind_unix_datagram(&path, Echo).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
    assert!(reactor.close_endpoint(unix));
    assert!(!reactor.close_endpoint(unix), "closed twice");
    assert!(*unix_closed.borrow() && !path.exists());
    reactor.handle().shutdown();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while reactor.run_once(Some(Duration::from_millis(10))).unwrap() == evloop::Turn::Running {
        assert!(std::time::Instant::now() < deadline, "shutdown did not finish");
    }
    assert!(*udp_closed.borrow());
    assert_eq!(reactor.stats().datagrams.endpoints, 0);
}

/// One reactor serving a TCP echo and a UDP echo at once, each exact.
#[test]
fn datagrams_and_streams_share_one_reactor() {
    let mut reactor: Reactor<TcpEcho> = Reactor::new(Config::default()).unwrap();
    let (_, tcp_addr) = reactor.listen(LOCALHOST.parse().unwrap(), |_| TcpEcho).unwrap();
    let (_id, udp_addr): (_, SocketAddr) = reactor.bind_udp(LOCALHOST.parse().unwrap(), Echo).unwrap();
    let mut stream = std::net::TcpStream::connect(tcp_addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    let socket = client();
    for round in 0..50u32 {
        let line = format!("round {round}\n");
        stream.write_all(line.as_bytes()).unwrap();
        socket.send_to(line.as_bytes(), udp_addr).unwrap();
        assert_eq!(receive(&mut reactor, &socket), line.as_bytes());
        let mut back = vec![0; line.len()];
        let mut have = 0;
        turn_until(&mut reactor, "the TCP echo", |_| {
            if let Ok(n) = stream.read(&mut back[have..]) {
                have += n;
            }
            have == back.len()
        });
        assert_eq!(back, line.as_bytes());
    }
}

/// Answers `N` with fib(N), computed on the offload pool; a job that panics (N > 90
/// overflows) is answered with its error. The answer goes out from `then`, on the loop.
struct Offloader;

impl Datagrams for Offloader {
    fn on_datagram(&mut self, datagram: &[u8], from: &DatagramAddr, cx: &mut DatagramCx<'_, Self>) {
        let n: u64 = String::from_utf8_lossy(datagram).trim().parse().unwrap_or(0);
        let to = from.clone();
        let job = move || (0..n).fold((0u64, 1u64), |(a, b), _| (b, a.checked_add(b).expect("overflow"))).0;
        let then =
            move |_: &mut Self, result: Result<u64, evloop::JobError>, cx: &mut DatagramCx<'_, Self>| {
                let reply = match result {
                    Ok(value) => value.to_string(),
                    Err(e) => format!("error: {e}"),
                };
                let _ = cx.send_to(reply.as_bytes(), &to);
            };
        if cx.offload(job, then).is_err() {
            let _ = cx.send_to(b"busy", from);
        }
    }
}

#[test]
fn an_endpoint_offloads_and_answers_from_the_result() {
    let mut reactor: Reactor = Reactor::new(Config { offload_threads: 1, ..Config::default() }).unwrap();
    let (_id, addr) = reactor.bind_udp(LOCALHOST.parse().unwrap(), Offloader).unwrap();
    let socket = client();
    socket.connect(addr).unwrap();
    socket.send(b"90").unwrap();
    assert_eq!(receive(&mut reactor, &socket), b"2880067194370816120");
    socket.send(b"200").unwrap();
    let answer = String::from_utf8(receive(&mut reactor, &socket)).unwrap();
    assert!(answer.starts_with("error: job panicked: overflow"), "{answer}");
    assert_eq!(reactor.stats().offload_completed, 2);
}
