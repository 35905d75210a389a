//! Listeners with a lifecycle and the graceful drain: ids, pause and resume (on the loop and
//! from another thread), remove, a drain that answers the request in flight, the drain's
//! deadline, a shutdown during a drain, and a listener handed to a second reactor while the
//! first drains with nothing lost.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use evloop::{Config, Cx, Handler, Input, Reactor, Reason, TimerId, Turn};
use evloop_support::observe::{wait_until, wait_until_refused};
use evloop_support::testing::{turn_until, ReadSome};

/// Answers each line after `delay` (a request that takes a while), with `bye` appended and
/// a close once the server is going away; an idle connection closes at once then.
struct Slow {
    delay: Duration,
    pending: Vec<u8>,
}

impl Handler for Slow {
    type Msg = ();
    fn on_data(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
        self.pending.extend_from_slice(input.bytes());
        input.consume_all();
        cx.set_timer(self.delay);
    }
    fn on_timer(&mut self, _id: TimerId, cx: &mut Cx<'_, Self>) {
        cx.write(&std::mem::take(&mut self.pending));
        if cx.going_away() {
            cx.write(b"bye\n");
            cx.close();
        }
    }
    fn on_going_away(&mut self, cx: &mut Cx<'_, Self>) {
        if self.pending.is_empty() {
            cx.close(); // idle between requests: nothing to finish
        }
    }
}

fn slow(delay_ms: u64) -> Slow {
    Slow { delay: Duration::from_millis(delay_ms), pending: Vec::new() }
}

fn client(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    stream
}

/// Reads until `want` bytes came (or EOF), turning the reactor meanwhile.
fn read_while_turning<H: Handler>(reactor: &mut Reactor<H>, stream: &mut TcpStream, want: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let mut eof = false;
    turn_until(reactor, "the reply", |_| {
        let mut buffer = [0; 256];
        match stream.read_some(&mut buffer) {
            Ok(0) => eof = true,
            Ok(n) => got.extend_from_slice(&buffer[..n]),
            Err(_) => {}
        }
        eof || got.len() >= want
    });
    got
}

#[test]
fn listeners_have_ids_and_can_be_paused_resumed_and_removed() {
    let mut reactor = Reactor::new(Config::default()).unwrap();
    let (first, addr) = reactor.listen("127.0.0.1:0".parse().unwrap(), |_| slow(0)).unwrap();
    let (second, other) = reactor.listen("127.0.0.1:0".parse().unwrap(), |_| slow(0)).unwrap();
    assert_ne!(first, second);
    assert_eq!(reactor.listeners(), vec![first, second]);
    assert!(reactor.listener_fd(first).is_some());

    // Paused: the kernel completes the handshake, but nothing is accepted or answered.
    reactor.pause_listener(first).unwrap();
    let mut waiting = client(addr);
    waiting.write_all(b"hello\n").unwrap();
    for _ in 0..20 {
        reactor.run_once(Some(Duration::from_millis(5))).unwrap();
    }
    assert_eq!(reactor.stats().accepted, 0, "accepted while paused");
    // Resumed: the client that waited in the backlog is served.
    reactor.resume_listener(first).unwrap();
    assert_eq!(read_while_turning(&mut reactor, &mut waiting, 6), b"hello\n");

    // Removed: new clients are refused; the accepted one is still served; the id is gone.
    reactor.remove_listener(first).unwrap();
    wait_until_refused("the removed listener is closed", || TcpStream::connect(addr).map(drop));
    waiting.write_all(b"again\n").unwrap();
    assert_eq!(read_while_turning(&mut reactor, &mut waiting, 6), b"again\n");
    assert_eq!(reactor.remove_listener(first).unwrap_err().kind(), std::io::ErrorKind::NotFound);
    assert_eq!(reactor.pause_listener(first).unwrap_err().kind(), std::io::ErrorKind::NotFound);
    assert_eq!(reactor.listeners(), vec![second]);

    // The same from another thread, through the handle.
    let handle = reactor.handle();
    std::thread::spawn(move || handle.pause_listener(second)).join().unwrap();
    reactor.run_once(Some(Duration::from_millis(5))).unwrap();
    let mut later = client(other);
    later.write_all(b"x\n").unwrap();
    for _ in 0..20 {
        reactor.run_once(Some(Duration::from_millis(5))).unwrap();
    }
    assert_eq!(reactor.stats().accepted, 1, "accepted while paused from another thread");
    let handle = reactor.handle();
    std::thread::spawn(move || handle.resume_listener(second)).join().unwrap();
    assert_eq!(read_while_turning(&mut reactor, &mut later, 2), b"x\n");
}

/// A drain stops accepting, answers the request in flight (then the handler closes), closes
/// an idle connection at once (its handler's choice), and stops the reactor when the last
/// connection is gone, long before the deadline.
#[test]
fn a_drain_answers_the_request_in_flight_and_stops() {
    let mut reactor = Reactor::new(Config::default()).unwrap();
    let (_, addr) = reactor.listen("127.0.0.1:0".parse().unwrap(), |_| slow(200)).unwrap();
    let mut busy = client(addr);
    let mut idle = client(addr);
    turn_until(&mut reactor, "two connections", |r| r.stats().accepted == 2);
    busy.write_all(b"request\n").unwrap();
    turn_until(&mut reactor, "the request read", |r| r.stats().bytes_in == 8);
    let started = Instant::now();
    reactor.handle().drain(Duration::from_secs(30));
    reactor.run_once(Some(Duration::from_millis(5))).unwrap();
    wait_until_refused("the draining reactor's listener is closed", || TcpStream::connect(addr).map(drop));
    assert_eq!(idle.read_some(&mut [0; 8]).ok(), Some(0), "the idle connection is closed at once");
    // The answer in flight arrives, then the close; the reactor stops once it is gone.
    while reactor.run_once(Some(Duration::from_millis(5))).unwrap() == Turn::Running {
        assert!(started.elapsed() < Duration::from_secs(10), "the drain did not finish");
    }
    busy.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reply = Vec::new();
    busy.read_to_end(&mut reply).unwrap();
    assert_eq!(reply, b"request\nbye\n");
    let closed = reactor.stats().closed;
    assert_eq!((closed.local, closed.shutdown), (2, 0), "{closed:?}");
}

/// A reactor that has read one request it will not answer for a minute, and its client.
fn serving_a_stuck_request() -> (Reactor<Slow>, TcpStream) {
    let mut reactor = Reactor::new(Config::default()).unwrap();
    let (_, addr) = reactor.listen("127.0.0.1:0".parse().unwrap(), |_| slow(60_000)).unwrap();
    let mut stuck = client(addr);
    stuck.write_all(b"forever\n").unwrap();
    turn_until(&mut reactor, "the request read", |r| r.stats().bytes_in == 8);
    (reactor, stuck)
}

/// What does not finish by the drain's deadline is closed then, and counted.
#[test]
fn a_drain_closes_what_is_left_at_its_deadline() {
    let (mut reactor, mut stuck) = serving_a_stuck_request();
    reactor.drain(Duration::from_millis(100));
    let started = Instant::now();
    while reactor.run_once(Some(Duration::from_millis(5))).unwrap() == Turn::Running {
        assert!(started.elapsed() < Duration::from_secs(10), "the deadline did not close it");
    }
    assert_eq!(reactor.stats().closed.shutdown, 1);
    assert_eq!(stuck.read_some(&mut [0; 8]).ok(), Some(0));
}

/// A shutdown asked for during a drain closes what is left at once (after flushing).
#[test]
fn a_shutdown_during_a_drain_closes_the_rest_now() {
    let (mut reactor, _stuck) = serving_a_stuck_request();
    reactor.drain(Duration::from_secs(60));
    reactor.run_once(Some(Duration::from_millis(5))).unwrap();
    reactor.handle().shutdown();
    let started = Instant::now();
    while reactor.run_once(Some(Duration::from_millis(5))).unwrap() == Turn::Running {
        assert!(started.elapsed() < Duration::from_secs(10), "the shutdown did not close it");
    }
    assert_eq!(reactor.stats().closed.shutdown, 1);
}

/// Echoes lines.
struct Echo;

impl Handler for Echo {
    type Msg = ();
    fn on_data(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
        cx.write(input.bytes());
        input.consume_all();
    }
    fn on_close(&mut self, reason: Reason, _cx: &mut Cx<'_, Self>) {
        assert!(matches!(reason, Reason::PeerClosed | Reason::Local), "closed by {reason}");
    }
}

/// The handover the issue measured: reactor A serves a listener; reactor B (another thread)
/// starts serving a copy of the same socket; A drains. Clients doing request after request,
/// on new connections and on connections kept open, see every request answered and no
/// connection refused or reset, across the handover.
#[test]
fn a_listener_handed_to_another_reactor_loses_nothing_while_the_first_drains() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let copy = listener.try_clone().unwrap();
    let (a_handle, a_thread) = serve_on_a_thread(listener);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let stop = std::sync::Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut answered = 0u64;
                let mut round = 0u64;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    // A connection for five requests, then a new one: both kinds cross the handover.
                    let mut stream = TcpStream::connect(addr).expect("refused");
                    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    for _ in 0..5 {
                        round += 1;
                        let line = format!("client {c} request {round}\n");
                        stream.write_all(line.as_bytes()).expect("reset on write");
                        let mut back = vec![0; line.len()];
                        stream.read_exact(&mut back).expect("unanswered");
                        assert_eq!(back, line.as_bytes());
                        answered += 1;
                    }
                }
                answered
            })
        })
        .collect();
    // Each step waits for connections to be accepted where it matters, not for time: A
    // serves the load, then B serves some of it too, then A drains and B alone goes on.
    let within = Duration::from_secs(20);
    wait_until(within, "A serves the load", || a_handle.stats().accepted >= 20);
    let (b_handle, b_thread) = serve_on_a_thread(copy);
    wait_until(within, "B serves some of it too", || b_handle.stats().accepted >= 5);
    a_handle.drain(Duration::from_secs(20));
    let b_before = b_handle.stats().accepted;
    wait_until(within, "B serves on alone", || b_handle.stats().accepted >= b_before + 20);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let answered: u64 = clients.into_iter().map(|c| c.join().unwrap()).sum();
    let a_stats = a_thread.join().unwrap();
    b_handle.shutdown();
    let b_stats = b_thread.join().unwrap();
    assert!(
        a_stats.accepted > 0 && b_stats.accepted > 0,
        "both served: {} / {}",
        a_stats.accepted,
        b_stats.accepted
    );
    assert!(answered > 20, "{answered} requests answered");
    assert_eq!(a_stats.closed.shutdown, 0, "the drain cut connections off");
}

/// A reactor serving `listener` with `Echo` on a thread of its own (reactors are not `Send`:
/// it is built there); its handle, and its stats once `run` returns.
fn serve_on_a_thread(
    listener: std::net::TcpListener,
) -> (evloop::Handle, std::thread::JoinHandle<evloop::Stats>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let mut reactor = Reactor::new(Config::default()).unwrap();
        reactor.add_listener(listener, |_| Echo).unwrap();
        tx.send(reactor.handle()).unwrap();
        reactor.run().unwrap();
        reactor.stats()
    });
    (rx.recv().unwrap(), thread)
}
