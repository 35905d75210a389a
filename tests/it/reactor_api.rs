//! The embedding API: shutdown from another thread, `run_once` in a host loop, the
//! embedder's own sources, handler timers, read pausing, write shutdown, `on_drained`.

use std::cell::Cell;
use std::io::{Read, Write};
use std::net::Shutdown;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use evloop::{Config, Cx, Handler, Input, Reactor, TimerId, Turn};

use evloop_support::observe::{far_end, wait_until};
use evloop_support::testing::{round_trip, small_config, Echo, ReadSome, Server};

/// `Handle::shutdown()` from another thread makes `run()` return, with every connection
/// closed by the shutdown (counted as such): the clients read EOF.
#[test]
fn shutdown_from_another_thread_closes_everything() {
    let server = Server::start(small_config(), |_| Echo);
    let mut clients: Vec<_> = (0..10).map(|_| server.connect()).collect();
    for client in &mut clients {
        round_trip(client, b"hi");
    }
    let handle = server.handle.clone();
    let stats_handle = server.handle.clone();
    thread::spawn(move || handle.shutdown()).join().unwrap();
    server.stop().expect("run() returned an error");
    let stats = stats_handle.stats();
    assert_eq!((stats.closed.shutdown, stats.active), (10, 0), "{stats:?}");
    assert_eq!(stats.timers, 0, "the shutdown left a timer behind");
    for client in &mut clients {
        let mut buf = [0; 4];
        assert_eq!(client.read_some(&mut buf).unwrap(), 0, "client should see EOF after shutdown");
    }
}

/// Shutdown flushes pending output before closing: a handler wrote far more than the
/// kernel's buffers hold to a client that is not reading yet; after shutdown begins the
/// client still gets every byte, then EOF.
#[test]
fn shutdown_flushes_pending_output() {
    const BIG: usize = 16 << 20;
    struct Dumper;
    impl Handler for Dumper {
        type Msg = ();
        fn on_data(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
            input.consume_all();
            cx.write(&vec![b'd'; BIG]);
        }
    }
    let server = Server::start(small_config(), |_| Dumper);
    let mut client = server.connect();
    client.write_all(b"go").unwrap();
    // Output is waiting in the reactor itself, not only in kernel buffers.
    server.wait_for(Duration::from_secs(5), "output pending in the reactor", |s| s.out_buffered > 0);
    server.handle.shutdown();
    let mut echoed = Vec::new();
    client.read_to_end(&mut echoed).expect("every byte, then EOF");
    assert_eq!(echoed.len(), BIG);
    server.stop().unwrap();
}

/// An embedder drives the reactor with `run_once` from its own loop and registers its own
/// mio source (a UDP socket), whose callback runs on the loop thread.
#[test]
fn run_once_drives_the_loop_and_user_sources_fire() {
    let mut reactor: Reactor<Echo> = Reactor::new(small_config()).unwrap();
    let (_, addr) = reactor.listen("127.0.0.1:0".parse().unwrap(), |_| Echo).unwrap();
    let udp = evloop::mio::net::UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let udp_addr = udp.local_addr().unwrap();
    let datagrams = Rc::new(Cell::new(0));
    let seen = Rc::clone(&datagrams);
    reactor
        .register(udp, evloop::mio::Interest::READABLE, move |socket, _ready, _reactor| {
            let mut buf = [0; 64];
            while socket.recv_from(&mut buf).is_ok() {
                seen.set(seen.get() + 1);
            }
        })
        .unwrap();

    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sender.send_to(b"ping", udp_addr).unwrap();
    let client = thread::spawn(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        round_trip(&mut stream, b"embedded");
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(client.is_finished() && datagrams.get() == 1) {
        assert!(Instant::now() < deadline, "host loop timed out");
        assert_eq!(reactor.run_once(Some(Duration::from_millis(10))).unwrap(), Turn::Running);
    }
    client.join().unwrap();
    // An empty turn with a zero timeout returns at once.
    let started = Instant::now();
    reactor.run_once(Some(Duration::ZERO)).unwrap();
    // Generous: a turn that blocked would wait forever (nothing more arrives).
    assert!(started.elapsed() < Duration::from_secs(5), "a zero-timeout turn took {:?}", started.elapsed());
    reactor.handle().shutdown();
    while reactor.run_once(Some(Duration::from_millis(10))).unwrap() == Turn::Running {}
    assert_eq!(reactor.stats().accepted, 1);
}

/// Handler timers: one fires after its delay, a cancelled one never fires.
#[test]
fn handler_timers_fire_once_and_cancelled_ones_never() {
    #[derive(Default)]
    struct Timed {
        fire: Option<TimerId>,
        cancelled: Option<TimerId>,
    }
    impl Handler for Timed {
        type Msg = ();
        fn on_open(&mut self, cx: &mut Cx<'_, Self>) {
            self.fire = Some(cx.set_timer(Duration::from_millis(100)));
            let doomed = cx.set_timer(Duration::from_millis(50));
            assert!(cx.cancel_timer(doomed));
            assert!(!cx.cancel_timer(doomed), "cancelling twice is a no-op");
            self.cancelled = Some(doomed);
        }
        fn on_data(&mut self, input: &mut Input<'_>, _cx: &mut Cx<'_, Self>) {
            input.consume_all();
        }
        fn on_timer(&mut self, id: TimerId, cx: &mut Cx<'_, Self>) {
            let which = if Some(id) == self.fire { "fired\n" } else { "WRONG TIMER\n" };
            cx.write(which.as_bytes());
            cx.close();
        }
    }
    let server = Server::start(small_config(), |_| Timed::default());
    let started = Instant::now();
    let mut client = server.connect();
    let mut reply = String::new();
    client.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, "fired\n");
    assert!(started.elapsed() >= Duration::from_millis(100));
    // Stats are published at the end of each turn, possibly after the client saw the reply.
    server.wait_for(Duration::from_secs(5), "one timer fired", |s| s.timers_fired == 1 && s.active == 0);
}

/// `pause_read` stops input until `resume_read`; bytes that arrived meanwhile are then
/// delivered (the edge they raised is not lost). Also `shutdown_write` sends FIN while the
/// connection keeps reading.
#[test]
fn pause_resume_and_write_shutdown() {
    /// Echoes one line, then pauses reading for 200 ms, then echoes the rest; on "fin",
    /// shuts down its write side but keeps counting input.
    struct Pauser {
        paused_once: bool,
        resume: Option<TimerId>,
    }
    impl Handler for Pauser {
        type Msg = ();
        fn on_data(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
            while let Some(line) = input.take_line(b'\n') {
                if line == b"fin" {
                    cx.write(b"bye\n");
                    cx.shutdown_write();
                    continue;
                }
                cx.write(line);
                cx.write(b"\n");
                if !self.paused_once {
                    self.paused_once = true;
                    cx.pause_read();
                    self.resume = Some(cx.set_timer(Duration::from_millis(200)));
                    return;
                }
            }
        }
        fn on_timer(&mut self, _id: TimerId, cx: &mut Cx<'_, Self>) {
            cx.resume_read();
        }
        fn on_eof(&mut self, cx: &mut Cx<'_, Self>) {
            cx.close();
        }
    }
    let server = Server::start(small_config(), |_| Pauser { paused_once: false, resume: None });
    let mut client = server.connect();
    let started = Instant::now();
    client.write_all(b"one\n").unwrap();
    let mut buf = [0; 4];
    client.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"one\n");
    client.write_all(b"two\nfin\n").unwrap();
    let mut rest = String::new();
    client.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "two\nbye\n");
    assert!(started.elapsed() >= Duration::from_millis(200), "input arrived while paused");
    // The write side is shut, the read side is open: the server still takes our bytes.
    client.write_all(b"more\n").unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    server.wait_for(Duration::from_secs(5), "close after EOF", |s| s.closed.peer == 1);
}

/// `on_drained` fires once output that had to wait has been sent: a handler streams a
/// large body in slices, producing the next slice only when the previous one drained.
#[test]
fn on_drained_paces_a_streaming_handler() {
    const TOTAL: usize = 8 << 20;
    const SLICE: usize = 256 << 10;
    struct Streamer {
        sent: usize,
    }
    impl Streamer {
        /// Writes slices while the kernel takes them whole; stops once output is pending.
        fn produce(&mut self, cx: &mut Cx<'_, Self>) {
            while self.sent < TOTAL && cx.pending_output() == 0 {
                cx.write(&[b'z'; SLICE]);
                cx.flush();
                self.sent += SLICE;
            }
            if self.sent == TOTAL {
                cx.close();
            }
        }
    }
    impl Handler for Streamer {
        type Msg = ();
        fn on_open(&mut self, cx: &mut Cx<'_, Self>) {
            self.produce(cx);
        }
        fn on_data(&mut self, input: &mut Input<'_>, _cx: &mut Cx<'_, Self>) {
            input.consume_all();
        }
        fn on_drained(&mut self, cx: &mut Cx<'_, Self>) {
            self.produce(cx);
        }
    }
    let config = Config { out_high_watermark: 1 << 20, ..small_config() };
    let server = Server::start(config, |_| Streamer { sent: 0 });
    let mut client = server.connect();
    // Not reading until the streamer has filled the socket (its sends back up).
    wait_until(Duration::from_secs(10), "the streamer fills the socket", || {
        far_end(&client).is_some_and(|s| s.unsent > 0)
    });
    let mut total = 0;
    let mut buf = vec![0; 1 << 16];
    loop {
        let n = client.read_some(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        assert!(buf[..n].iter().all(|&b| b == b'z'));
        total += n;
    }
    assert_eq!(total, TOTAL);
    let stats =
        server.wait_for(Duration::from_secs(5), "all output counted", |s| s.bytes_out == TOTAL as u64);
    assert!(stats.out_buffered_peak <= SLICE as u64, "streamer buffered {}", stats.out_buffered_peak);
}

/// Regression (found in review): input held while the handler paused reading was stranded
/// when `resume_read` came while backpressure also paused reading. Here "sleep" pauses the
/// connection with "ping" still unread; the timer then writes a reply far above the high
/// watermark and resumes. "PONG" must still come once the client drains the reply.
#[test]
fn resume_read_during_backpressure_serves_held_input() {
    // More than the server's send buffer can take (`tcp_wmem` max: 4 MiB here) plus the
    // client's fixed small window, so most of it stays pending in the server.
    const BIG: usize = 16 << 20;
    struct Sleeper;
    impl Handler for Sleeper {
        type Msg = ();
        fn on_data(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
            while let Some(line) = input.take_line(b'\n') {
                if line == b"sleep" {
                    cx.pause_read();
                    cx.set_timer(Duration::from_millis(50));
                    return;
                }
                cx.write(b"PONG\n");
            }
        }
        fn on_timer(&mut self, _id: TimerId, cx: &mut Cx<'_, Self>) {
            cx.write(&vec![b'z'; BIG]);
            cx.write(b"slept\n");
            cx.resume_read();
        }
    }
    let server = Server::start(small_config(), |_| Sleeper);
    let mut client = server.connect_small_window();
    client.write_all(b"sleep\nping\n").unwrap();
    // Let the big reply hit the watermark before reading anything.
    server.wait_for(Duration::from_secs(5), "backpressure", |s| s.backpressure_pauses >= 1);
    let mut expected = vec![b'z'; BIG];
    expected.extend_from_slice(b"slept\nPONG\n");
    let mut got = vec![0u8; expected.len()];
    client.read_exact(&mut got).expect("the held ping is answered");
    assert!(got == expected);
}

/// Regression (found in review): a closing connection whose peer never reads but trickles
/// bytes was kept alive forever, because discarded input counted as activity. The idle
/// timeout must close it.
#[test]
fn a_closing_connection_that_trickles_input_still_times_out() {
    struct Dumper;
    impl Handler for Dumper {
        type Msg = ();
        fn on_data(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
            input.consume_all();
            cx.write(&vec![b'd'; 16 << 20]);
            cx.close();
        }
    }
    let config = Config { idle_timeout: Some(Duration::from_millis(300)), ..small_config() };
    let server = Server::start(config, |_| Dumper);
    let mut client = server.connect();
    client.write_all(b"go").unwrap();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if server.stats().closed.idle_timeout == 1 {
            break;
        }
        // Never read; keep sending a byte now and then.
        let _ = client.write_all(b".");
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(server.stats().closed.idle_timeout, 1, "the trickler kept the connection alive");
}

/// `yield_now` hands the loop to the others: two clients pipelining 300 requests each, to a
/// handler that answers one request per call and yields, are served interleaved (without
/// the yield, one client's whole batch would be answered before the other's first), and
/// every request is answered, in order per client. Handlers hold off (yielding, without
/// consuming) until both clients' data has arrived, so the interleaving does not depend on
/// how fast the test thread writes.
#[test]
fn yield_now_interleaves_pipelining_clients() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    struct OneAtATime {
        me: usize,
        log: Arc<Mutex<Vec<usize>>>,
        arrived: Arc<AtomicUsize>,
        counted: bool,
    }
    impl Handler for OneAtATime {
        type Msg = ();
        fn on_data(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
            if !self.counted {
                self.counted = true;
                self.arrived.fetch_add(1, Ordering::SeqCst);
            }
            if self.arrived.load(Ordering::SeqCst) < 2 {
                cx.yield_now();
                return;
            }
            if let Some(line) = input.take_line(b'\n') {
                self.log.lock().unwrap().push(self.me);
                cx.write(line);
                cx.write(b"\n");
                if !input.is_empty() {
                    cx.yield_now();
                }
            }
        }
    }
    let log = Arc::new(Mutex::new(Vec::new()));
    let arrived = Arc::new(AtomicUsize::new(0));
    let (factory_log, factory_arrived) = (Arc::clone(&log), Arc::clone(&arrived));
    let mut next = 0;
    let server = Server::start(small_config(), move |_| {
        next += 1;
        let (log, arrived) = (Arc::clone(&factory_log), Arc::clone(&factory_arrived));
        OneAtATime { me: next, log, arrived, counted: false }
    });
    let mut a = server.connect();
    let mut b = server.connect();
    let batch = |tag: &str| (0..300).map(|i| format!("{tag}{i}\n")).collect::<String>();
    a.write_all(batch("a").as_bytes()).unwrap();
    b.write_all(batch("b").as_bytes()).unwrap();
    for (stream, tag) in [(&mut a, "a"), (&mut b, "b")] {
        let mut got = vec![0u8; batch(tag).len()];
        stream.read_exact(&mut got).unwrap();
        assert_eq!(String::from_utf8(got).unwrap(), batch(tag));
    }
    let log = log.lock().unwrap();
    let switches = log.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(switches > 10, "clients were served one after the other ({switches} switches)");
}

/// A listener handed over blocking (`std::net::TcpListener::bind` makes it so) is made
/// non-blocking by `add_listener`: after a client is accepted, `run_once` still returns
/// within its timeout and reactor timers still fire. Before, the second `accept` blocked
/// the loop until the next client came. The same for a Unix listener.
#[test]
fn a_blocking_listener_cannot_stall_the_loop() {
    let mut reactor = Reactor::new(Config { accept_batch: 2, ..Config::default() }).unwrap();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (_, addr) = reactor.add_listener(tcp, |_| Echo).unwrap();
    let dir = evloop_support::testing::temp_dir("blocking-listener");
    let path = dir.join("sock");
    let unix = std::os::unix::net::UnixListener::bind(&path).unwrap();
    reactor.add_unix_listener(unix, |_| Echo).unwrap();

    let fired = Rc::new(Cell::new(0));
    for _ in 0..3 {
        let fired = Rc::clone(&fired);
        reactor.set_timer(Duration::from_millis(20), move |_| fired.set(fired.get() + 1));
    }
    let mut tcp_client = std::net::TcpStream::connect(addr).unwrap();
    let mut unix_client = std::os::unix::net::UnixStream::connect(&path).unwrap();
    // Each turn is bounded; the clients are served and the timers fire, with no other
    // client arriving to unblock a stuck accept.
    tcp_client.write_all(b"ping").unwrap();
    unix_client.write_all(b"pong").unwrap();
    tcp_client.set_nonblocking(true).unwrap();
    unix_client.set_nonblocking(true).unwrap();
    // If an accept blocks the loop, clients arriving later unblock it (a batch of two
    // accepts a turn), so the test fails on the turn's length instead of hanging.
    let stop = Arc::new(AtomicBool::new(false));
    let (unblocker_path, unblocker_stop) = (path.clone(), Arc::clone(&stop));
    let unblocker = thread::spawn(move || {
        for tick in 1..=600 {
            thread::sleep(Duration::from_millis(50));
            if unblocker_stop.load(Ordering::Relaxed) {
                return;
            }
            if tick % 30 != 0 {
                continue;
            }
            let _ = std::net::TcpStream::connect(addr);
            let _ = std::os::unix::net::UnixStream::connect(&unblocker_path);
        }
    });
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while fired.get() < 3 || got.len() < 8 {
        assert!(Instant::now() < deadline, "stalled: {} timers fired, {got:?} echoed", fired.get());
        let started = Instant::now();
        reactor.run_once(Some(Duration::from_millis(10))).unwrap();
        assert!(started.elapsed() < Duration::from_secs(5), "a turn blocked for {:?}", started.elapsed());
        let mut buf = [0; 8];
        for client in [&mut tcp_client as &mut dyn Read, &mut unix_client] {
            if let Ok(n) = client.read(&mut buf) {
                got.extend_from_slice(&buf[..n]);
            }
        }
    }
    got.sort_unstable();
    let mut want = b"pingpong".to_vec();
    want.sort_unstable();
    assert_eq!(got, want);
    stop.store(true, Ordering::Relaxed);
    drop(reactor);
    unblocker.join().unwrap();
}

/// The reactor nested in another event loop through its descriptor (`AsRawFd`): a host's
/// own `mio::Poll` watches it, sleeps at most `next_timeout()`, and turns the reactor when it
/// wakes. Connections are served and reactor timers fire, with the host's loop the only one
/// that blocks.
#[test]
fn a_reactor_nested_in_another_poll_serves_and_keeps_its_timers() {
    use std::os::fd::AsRawFd;
    let mut reactor = Reactor::new(Config::default()).unwrap();
    let (_, addr) = reactor.listen("127.0.0.1:0".parse().unwrap(), |_| Echo).unwrap();
    let fired = std::rc::Rc::new(std::cell::Cell::new(0));
    let counter = std::rc::Rc::clone(&fired);
    reactor.set_timer(Duration::from_millis(30), move |_| counter.set(counter.get() + 1));
    let mut host = mio::Poll::new().unwrap();
    let fd = reactor.as_raw_fd();
    host.registry().register(&mut mio::unix::SourceFd(&fd), mio::Token(7), mio::Interest::READABLE).unwrap();
    let client = std::thread::spawn(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        for round in 0..20 {
            round_trip(&mut stream, format!("nested {round}\n").as_bytes());
        }
    });
    let mut events = mio::Events::with_capacity(8);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut woken_by_the_reactor = 0;
    while !client.is_finished() || fired.get() == 0 {
        assert!(std::time::Instant::now() < deadline, "the nested reactor stalled");
        // The host sleeps until the reactor's next timer, or (no timer) a long while: only
        // the reactor's descriptor can wake it sooner.
        let wait = reactor.next_timeout().unwrap_or(Duration::from_secs(5));
        host.poll(&mut events, Some(wait)).unwrap();
        woken_by_the_reactor += usize::from(!events.is_empty());
        reactor.run_once(Some(Duration::ZERO)).unwrap();
    }
    client.join().unwrap();
    assert_eq!(fired.get(), 1);
    // Woken by the descriptor, not by the 5 s fallback: without the wake-ups, 20 round trips
    // would take 100 s and the deadline above would fail first. (One wake may serve several
    // round trips, so the count is not 20.)
    assert!(woken_by_the_reactor > 0, "the descriptor never woke the host");
    assert_eq!(
        reactor.stats().bytes_in,
        (0..20).map(|r: i32| format!("nested {r}\n").len() as u64).sum::<u64>()
    );
}
