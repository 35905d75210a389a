//! Hostile and broken peers: floods, resets, handler bugs, requests that never end. In each
//! case only the offending connection suffers and everyone else keeps being served.

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use evloop::{Config, Cx, Handler, Input};

use evloop_support::testing::{
    round_trip, set_linger_zero, small_config, Echo, ReadSome, Rng, Server, WriteSome,
};

/// A client that floods and never reads: the server's buffered output for it stays under
/// the high watermark (reading pauses instead), and another client is served meanwhile.
#[test]
fn flooder_that_never_reads_is_throttled_not_buffered() {
    let config = small_config();
    let high = config.out_high_watermark as u64;
    let server = Server::start(config, |_| Echo);
    let mut flooder = server.connect();
    flooder.set_write_timeout(Some(Duration::from_millis(300))).unwrap();
    let chunk = vec![0x5a; 64 * 1024];
    let mut sent = 0usize;
    let deadline = Instant::now() + Duration::from_secs(20);
    // Write until the kernel's buffers and the server's are all full and writes block.
    loop {
        match flooder.write_some(&chunk) {
            Ok(n) => sent += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => panic!("flood write failed: {e}"),
        }
        assert!(Instant::now() < deadline, "the flood never blocked: the server keeps reading");
    }
    let stats = server.stats();
    assert!(stats.backpressure_pauses >= 1, "{stats:?}");
    assert!(stats.out_buffered_peak <= high, "buffered {} > high watermark {high}", stats.out_buffered_peak);
    assert!(stats.out_buffered <= high);
    assert!(sent as u64 > high, "sent only {sent} bytes before blocking");

    // Everyone else is still served.
    let mut other = server.connect();
    round_trip(&mut other, b"still served");

    // And once the flooder reads, it gets every byte back.
    flooder.shutdown(Shutdown::Write).unwrap();
    let mut echoed = 0usize;
    let mut buf = vec![0; 64 * 1024];
    loop {
        match flooder.read_some(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                assert!(buf[..n].iter().all(|&b| b == 0x5a));
                echoed += n;
            }
            Err(e) => panic!("reading the echo back failed after {echoed} bytes: {e}"),
        }
    }
    assert_eq!(echoed, sent);
}

/// An abrupt reset (SO_LINGER 0) in the middle of a stream disturbs no other connection.
#[test]
fn reset_mid_stream_disturbs_no_one_else() {
    let server = Server::start(small_config(), |_| Echo);
    let mut bystander = server.connect();
    round_trip(&mut bystander, b"before");
    for _ in 0..20 {
        let mut victim = server.connect();
        victim.write_all(&vec![7; 200_000]).unwrap();
        let mut some = [0; 1000];
        victim.read_exact(&mut some).unwrap();
        set_linger_zero(&victim);
        drop(victim);
        round_trip(&mut bystander, b"during");
    }
    server.wait_for(Duration::from_secs(5), "all victims closed", |s| s.active == 1);
    round_trip(&mut bystander, b"after");
}

/// A handler that panics on some input: that connection is closed, the loop and every
/// other connection carry on.
#[test]
fn a_panicking_handler_closes_only_its_connection() {
    struct Fragile;
    impl Handler for Fragile {
        type Msg = ();
        fn on_data(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
            assert!(!input.bytes().contains(&b'!'), "handler bug triggered by input");
            cx.write(input.bytes());
            input.consume_all();
        }
    }
    let server = Server::start(small_config(), |_| Fragile);
    let mut good = server.connect();
    round_trip(&mut good, b"hello");
    let mut bad = server.connect();
    bad.write_all(b"boom!").unwrap();
    let mut rest = Vec::new();
    // The server closes it (EOF or reset, depending on timing).
    let _ = bad.read_to_end(&mut rest);
    assert!(rest.is_empty());
    round_trip(&mut good, b"still here");
    server.wait_for(Duration::from_secs(5), "error close counted", |s| s.closed.error == 1);
}

/// A handler that never consumes its input (a request that never ends) gets its
/// connection closed at `max_input`, with the reason counted, gracefully: the client's
/// writes are read and discarded and it sees EOF, not a reset. Others are unaffected.
#[test]
fn input_that_is_never_consumed_hits_the_input_limit() {
    struct Hoarder;
    impl Handler for Hoarder {
        type Msg = ();
        fn on_data(&mut self, _input: &mut Input<'_>, _cx: &mut Cx<'_, Self>) {}
    }
    let config = Config { max_input: 4096, ..small_config() };
    let server = Server::start(config, |_| Hoarder);
    let mut stream = server.connect();
    stream.write_all(&vec![b'x'; 100_000]).expect("the lingering close reads what we send");
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).expect("EOF, not a reset");
    drop(stream);
    let stats = server.wait_for(Duration::from_secs(5), "input limit close", |s| s.closed.input_limit == 1);
    assert_eq!(stats.active, 0);
}

/// A handler that answers an error and closes while the client is still sending (4 MiB,
/// far more than it reads before closing): the client reads the whole reply and then EOF,
/// not a reset. Without the lingering close, the unread input would turn the close into an
/// RST that destroys the reply (`linger.rs` covers each policy).
#[test]
fn close_while_peer_still_sends_delivers_the_reply() {
    struct Refuser;
    impl Handler for Refuser {
        type Msg = ();
        fn on_data(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
            input.consume_all();
            cx.write(b"ERR go away\n");
            // It answers without reading the rest: say so, or (under the default
            // `Linger::WhenNeeded`) a close with nothing unread in hand would not linger.
            cx.linger_on_close();
            cx.close();
        }
    }
    let server = Server::start(small_config(), |_| Refuser);
    let mut stream = server.connect();
    let mut writer = stream.try_clone().unwrap();
    let sender = thread::spawn(move || {
        // The lingering close reads (and discards) all of it, so the write completes.
        writer.write_all(&vec![b'y'; 4 << 20]).expect("the server keeps reading while it lingers");
        writer.shutdown(Shutdown::Write).unwrap();
    });
    sender.join().unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).expect("the reply then EOF, not a reset");
    assert_eq!(reply, b"ERR go away\n");
    server.wait_for(Duration::from_secs(5), "local close", |s| s.closed.local == 1);
}

/// Random garbage — every byte value, lengths from 0 to 10,000 — from 50 clients one after
/// another never upsets the loop: the echo handler returns it all.
#[test]
fn random_garbage_is_echoed_exactly() {
    let server = Server::start(small_config(), |_| Echo);
    let mut rng = Rng::seeded("random_garbage");
    for _ in 0..50 {
        let mut stream = server.connect();
        let len = rng.range(0, 10_000);
        let data = rng.bytes(len);
        stream.write_all(&data).unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let mut back = Vec::new();
        stream.read_to_end(&mut back).unwrap();
        assert!(back == data);
    }
}

/// A flooding client that reads its echo as fast as it can: its reads are cut off by the
/// per-turn budget (counted) and resumed next turn, a canary's 200 round trips complete
/// while the flood is still going (it only stops once the canary is done), and the flooder
/// still gets every byte back. (That the canary would starve without the budget is not
/// shown here: on loopback the reactor usually drains the flooder faster than it sends.)
#[test]
fn a_flooder_is_cut_off_by_the_read_budget_and_others_are_served() {
    let config = Config { read_budget: 16 * 1024, ..small_config() };
    let server = Server::start(config, |_| Echo);
    let mut flooder = server.connect();
    let mut flood_writer = flooder.try_clone().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop_writer = Arc::clone(&stop);
    let writer = thread::spawn(move || {
        let chunk = vec![0xf1u8; 1 << 20];
        let mut sent = 0;
        while !stop_writer.load(Ordering::Relaxed) {
            flood_writer.write_all(&chunk).unwrap();
            sent += chunk.len();
        }
        flood_writer.shutdown(Shutdown::Write).unwrap();
        sent
    });
    let reader = thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0;
        loop {
            let n = flooder.read_some(&mut buf).unwrap();
            if n == 0 {
                return total;
            }
            assert!(buf[..n].iter().all(|&b| b == 0xf1));
            total += n;
        }
    });
    server.wait_for(Duration::from_secs(10), "the flood to start", |s| s.bytes_in > 4 << 20);
    let mut canary = server.connect();
    for i in 0..200u32 {
        round_trip(&mut canary, &i.to_le_bytes());
    }
    stop.store(true, Ordering::Relaxed);
    let stats = server.stats();
    assert!(stats.read_budget_yields > 0, "the flooder was never cut off: {stats:?}");
    let sent = writer.join().unwrap();
    assert_eq!(reader.join().unwrap(), sent, "the flooder got every byte back");
}

/// A paused connection (its handler waits on a long timer) whose client resets is closed
/// at once, not when the timer fires: a dead peer must not hold a slot.
#[test]
fn a_reset_is_noticed_while_the_handler_has_paused_reading() {
    struct Waiter;
    impl Handler for Waiter {
        type Msg = ();
        fn on_data(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
            input.consume_all();
            cx.pause_read();
            cx.set_timer(Duration::from_secs(600));
        }
    }
    let server = Server::start(small_config(), |_| Waiter);
    for k in 1..=20u64 {
        let mut client = server.connect();
        client.write_all(b"wait for me\n").unwrap();
        server.wait_for(Duration::from_secs(5), "request read", |s| s.bytes_in == 12 * k);
        set_linger_zero(&client);
    }
    let stats = server.wait_for(Duration::from_secs(5), "resets noticed", |s| s.closed.error == 20);
    assert_eq!(stats.active, 0);
    assert_eq!(stats.timers, 0, "the closed connections' timers were cancelled");
}

/// A panicking handler factory drops that one connection; the listener keeps serving.
#[test]
fn a_panicking_factory_drops_only_that_connection() {
    let mut count = 0;
    let server = Server::start(small_config(), move |_| {
        count += 1;
        assert!(count != 2, "factory bug on the second connection");
        Echo
    });
    let mut first = server.connect();
    round_trip(&mut first, b"one");
    let mut second = server.connect();
    second.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let _ = second.write_all(b"two");
    let mut rest = Vec::new();
    // Dropped at once: EOF or a reset, quickly — not a connection left open.
    match second.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty()),
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}"),
    }
    let mut third = server.connect();
    round_trip(&mut third, b"three");
    round_trip(&mut first, b"still");
    let stats = server.wait_for(Duration::from_secs(5), "two connections open", |s| s.active == 2);
    assert_eq!(stats.accepted, 2, "the dropped connection never became one");
}
