//! Echo integrity: every byte comes back, exactly and in order, under concurrency, random
//! chunking, pauses and half-close.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::thread;
use std::time::Duration;

use evloop_support::testing::{round_trip, small_config, stream_and_verify, Echo, Rng, Server};

/// Bytes each client streams: 1 MiB in release builds or with `EVLOOP_FULL=1`, 64 KiB in
/// the default debug run so the suite stays quick.
fn bytes_per_client() -> usize {
    let full = !cfg!(debug_assertions) || std::env::var_os("EVLOOP_FULL").is_some();
    if full {
        1 << 20
    } else {
        64 << 10
    }
}

/// 300 concurrent clients, each streaming random bytes in random chunks and then
/// half-closing: each gets exactly its own bytes back, then EOF, and the server records 300
/// connections closed by their peers.
#[test]
fn three_hundred_clients_get_every_byte_back_in_order() {
    const CLIENTS: usize = 300;
    let server = Server::start(small_config(), |_| Echo);
    let mut rng = Rng::seeded("three_hundred_clients");
    let size = bytes_per_client();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let payload = rng.bytes(size);
            let client_rng = Rng::new(rng.next_u64());
            let addr = server.addr;
            thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || stream_and_verify(addr, payload, client_rng))
                .unwrap()
        })
        .collect();
    for client in clients {
        client.join().expect("a client failed");
    }
    let stats = server.wait_for(Duration::from_secs(10), "every connection closed", |s| {
        s.closed.peer == CLIENTS as u64 && s.active == 0
    });
    assert_eq!(stats.accepted, CLIENTS as u64);
    assert_eq!(stats.bytes_in, (CLIENTS * size) as u64);
    assert_eq!(stats.bytes_out, (CLIENTS * size) as u64);
    assert_eq!(stats.out_buffered, 0);
}

/// A client that half-closes without sending anything gets an immediate EOF.
#[test]
fn half_close_with_nothing_sent_gets_eof() {
    let server = Server::start(small_config(), |_| Echo);
    let mut stream = server.connect();
    stream.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    server.wait_for(Duration::from_secs(5), "peer close counted", |s| s.closed.peer == 1);
}

/// Many small messages, one at a time, on one connection (ping-pong).
#[test]
fn ping_pong_keeps_order() {
    let server = Server::start(small_config(), |_| Echo);
    let mut stream = server.connect();
    for i in 0..2000u32 {
        round_trip(&mut stream, &i.to_le_bytes());
    }
}

/// Payload sizes at and around buffer boundaries (4 KiB, 8 KiB, 64 KiB, one past the read
/// chunk, several MiB) arrive whole: no readiness edge is lost when a read or write fills a
/// buffer exactly.
#[test]
fn buffer_boundary_sizes_do_not_stall() {
    let server = Server::start(small_config(), |_| Echo);
    let mut rng = Rng::seeded("buffer_boundary_sizes");
    for size in [1, 4095, 4096, 4097, 8192, 65535, 65536, 65537, 262_145, 3 << 20] {
        let payload = rng.bytes(size);
        stream_and_verify(server.addr, payload, rng.clone());
    }
}

/// A client that stops reading for a while and then resumes gets everything: writing
/// resumes after the pause (the writable edge is not lost).
#[test]
fn reader_that_pauses_then_resumes_gets_everything() {
    let server = Server::start(small_config(), |_| Echo);
    let mut stream = server.connect();
    let mut writer = stream.try_clone().unwrap();
    let payload = Rng::seeded("pause_resume").bytes(16 << 20);
    let expected = payload.clone();
    let sender = thread::spawn(move || {
        writer.write_all(&payload).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    });
    // Not reading until the echo backs up far enough that the server pauses reading.
    server.wait_for(Duration::from_secs(20), "the stalled reader to pause reading", |s| {
        s.backpressure_pauses >= 1
    });
    let mut echoed = Vec::new();
    stream.read_to_end(&mut echoed).unwrap();
    sender.join().unwrap();
    assert!(echoed == expected);
}
