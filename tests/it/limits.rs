//! Limits that keep a server alive under pressure: idle timeouts and the connection cap.

use std::io::{ErrorKind, Read};
use std::thread;
use std::time::{Duration, Instant};

use evloop::{Config, Cx, Handler, Input, TimerId};

use evloop_support::testing::{round_trip, small_config, Echo, ReadSome, Server};

/// The idle timeout closes a silent connection, and leaves an active one alone.
#[test]
fn idle_timeout_closes_silent_connections_only() {
    let config = Config { idle_timeout: Some(Duration::from_millis(300)), ..small_config() };
    let server = Server::start(config, |_| Echo);
    let mut silent = server.connect();
    let mut active = server.connect();
    let started = Instant::now();
    // The active client talks every 50 ms for well over the timeout.
    while started.elapsed() < Duration::from_millis(900) {
        round_trip(&mut active, b"tick");
        thread::sleep(Duration::from_millis(50));
    }
    // By now (three timeouts later) the silent one has been closed: EOF is already there.
    silent.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut buf = [0; 8];
    assert_eq!(silent.read_some(&mut buf).unwrap(), 0, "silent connection should be closed");
    round_trip(&mut active, b"still open");
    let stats = server.wait_for(Duration::from_secs(5), "idle close counted", |s| s.closed.idle_timeout == 1);
    assert_eq!(stats.active, 1);
}

/// Output counts as activity too: a connection whose server pushes on a timer while the
/// client never sends is not idle, and stays open well past the idle timeout.
#[test]
fn a_server_that_only_pushes_is_not_idle() {
    struct Ticker;
    impl Handler for Ticker {
        type Msg = ();
        fn on_open(&mut self, cx: &mut Cx<'_, Self>) {
            cx.set_timer(Duration::from_millis(50));
        }
        fn on_data(&mut self, input: &mut Input<'_>, _cx: &mut Cx<'_, Self>) {
            input.consume_all();
        }
        fn on_timer(&mut self, _id: TimerId, cx: &mut Cx<'_, Self>) {
            cx.write(b"tick\n");
            cx.set_timer(Duration::from_millis(50));
        }
    }
    let config = Config { idle_timeout: Some(Duration::from_millis(300)), ..small_config() };
    let server = Server::start(config, |_| Ticker);
    let mut client = server.connect();
    // Three idle timeouts, reading every tick and never sending.
    let mut received = Vec::new();
    let started = Instant::now();
    let mut buf = [0; 64];
    while started.elapsed() < Duration::from_millis(900) {
        let n = client.read_some(&mut buf).expect("ticks keep coming");
        assert!(n > 0, "closed after {:?} although the server kept sending", started.elapsed());
        received.extend_from_slice(&buf[..n]);
    }
    assert!(received.len() >= 5 * 10, "{} bytes of ticks", received.len());
    assert!(received.chunks(5).all(|tick| tick == b"tick\n"));
    assert_eq!(server.stats().closed.idle_timeout, 0);
}

/// At `max_conns`, a further client is not served until a slot frees, and meanwhile the
/// server does not spin: it makes almost no loop turns and uses almost no CPU.
#[test]
fn at_max_conns_new_clients_wait_and_the_server_idles() {
    let config = Config { max_conns: 4, ..small_config() };
    let server = Server::start(config, |_| Echo);
    let mut served: Vec<_> = (0..4).map(|_| server.connect()).collect();
    for (i, stream) in served.iter_mut().enumerate() {
        round_trip(stream, format!("client {i}").as_bytes());
    }
    // The fifth connects (the kernel completes the handshake into the backlog) but gets
    // no service.
    let mut waiting = server.connect();
    waiting.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    std::io::Write::write_all(&mut waiting, b"anyone?").unwrap();
    let mut buf = [0; 7];
    let err = waiting.read_exact(&mut buf).expect_err("served beyond max_conns");
    assert!(matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut), "{err}");

    // Idle at the cap: no busy loop (the sleep is the measuring interval).
    let (turns0, cpu0) = (server.stats().turns, server.cpu_time());
    thread::sleep(Duration::from_millis(500));
    let (turns1, cpu1) = (server.stats().turns, server.cpu_time());
    assert!(turns1 - turns0 <= 5, "{} loop turns while idle at the cap", turns1 - turns0);
    assert!(cpu1 - cpu0 <= Duration::from_millis(50), "{:?} CPU while idle at the cap", cpu1 - cpu0);
    assert!(server.stats().accept_pauses >= 1);

    // A slot frees: the waiting client is served.
    drop(served.pop());
    waiting.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    waiting.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"anyone?");
}
