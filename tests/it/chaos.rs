//! The reactor's state machine under a handler that does everything at random — writes,
//! partial consumes, pauses and resumes, yields, timers, offloaded jobs, flushes, closes,
//! aborts, write shutdowns, panics, forwarding to another connection and stopping — against clients that send, stop reading, half-close
//! and reset at random. No byte-level oracle here (the echo tests have that); what must hold
//! is the bookkeeping: every connection ends, no timer or buffered byte outlives its
//! connection, and the counters add up.

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use std::cell::Cell;

use evloop::{Config, ConnId, Cx, Handler, Input, JobError, TimerId};

use evloop_support::testing::{set_linger_zero, small_config, ReadSome, Rng, Server};

thread_local! {
    /// The connection opened last on this reactor's thread: whom a chaotic handler forwards to.
    static LAST_OPENED: Cell<Option<ConnId>> = const { Cell::new(None) };
}

/// A handler whose every decision is a die roll.
struct Chaotic {
    rng: Rng,
    paused: bool,
}

impl Chaotic {
    fn act(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
        // Per mille: mostly ordinary work, rarely an ending, so connections live long
        // enough to meet pauses, backpressure and timers.
        match self.rng.range(0, 999) {
            0..=399 => {
                cx.write(input.bytes());
                input.consume_all();
            }
            400..=549 => {
                let n = self.rng.range(0, input.len());
                cx.write(&input.bytes()[..n]);
                input.consume(n);
            }
            550..=619 => {
                cx.pause_read();
                self.paused = true;
                cx.set_timer(Duration::from_millis(self.rng.range(0, 30) as u64));
            }
            620..=679 => cx.yield_now(),
            680..=729 => {
                let id = cx.set_timer(Duration::from_millis(self.rng.range(0, 50) as u64));
                if self.rng.range(0, 1) == 0 {
                    cx.cancel_timer(id);
                }
            }
            730..=789 => {
                let n = self.rng.range(0, 30) as u64;
                let _ = cx.offload(move || n * 2);
            }
            790..=859 => {
                let len = self.rng.range(1, 40_000);
                cx.write(&vec![b'z'; len]);
                cx.flush();
            }
            // Rarely, more than the kernel's buffers take: the rest waits in the connection,
            // past the high watermark if the client is not reading.
            860..=869 => cx.write(&vec![b'y'; self.rng.range(100_000, 1 << 20)]),
            870..=874 => cx.shutdown_write(),
            875..=879 => cx.close(),
            880..=881 => cx.abort(),
            882..=883 => panic!("a handler bug, on purpose"),
            884..=969 => {
                cx.write(input.bytes());
                input.consume_all();
            }
            // Send the rest of this connection's input to another client (perhaps closed by
            // now, perhaps this one: refused), until a timer stops it.
            970..=994 => {
                if let Some(other) = LAST_OPENED.with(Cell::get) {
                    let _ = cx.forward_to(other);
                    cx.set_timer(Duration::from_millis(self.rng.range(0, 100) as u64));
                }
            }
            _ => {} // keep everything: the input limit will have its say
        }
    }
}

impl Handler for Chaotic {
    type Msg = u64;

    fn on_open(&mut self, cx: &mut Cx<'_, Self>) {
        LAST_OPENED.with(|last| last.set(Some(cx.id())));
        if self.rng.range(0, 9) == 0 {
            cx.write(b"hello\n");
        }
    }

    fn on_data(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
        self.act(input, cx);
    }

    fn on_timer(&mut self, _id: TimerId, cx: &mut Cx<'_, Self>) {
        if self.paused {
            self.paused = false;
            cx.resume_read();
        }
        if self.rng.range(0, 3) == 0 {
            cx.write(b"tick\n");
        }
        if self.rng.range(0, 2) == 0 {
            cx.stop_forwarding();
        }
    }

    fn on_done(&mut self, result: Result<u64, JobError>, cx: &mut Cx<'_, Self>) {
        if let Ok(value) = result {
            cx.write(format!("{value}\n").as_bytes());
        }
    }

    fn on_drained(&mut self, cx: &mut Cx<'_, Self>) {
        if self.rng.range(0, 4) == 0 {
            cx.write(b"drained\n");
        }
    }
}

/// 40 clients against the chaotic handler; then every connection must be gone, with no
/// timer, buffered output or unaccounted close left behind.
#[test]
fn random_handler_and_clients_leave_nothing_behind() {
    let mut seeds = Rng::seeded("random_handler_and_clients_leave_nothing_behind");
    let handler_seed = Arc::new(AtomicU64::new(seeds.next_u64()));
    let config = Config {
        idle_timeout: Some(Duration::from_millis(500)),
        linger_timeout: Duration::from_millis(300),
        max_input: 4096,
        out_high_watermark: 32 * 1024,
        out_low_watermark: 8 * 1024,
        offload_threads: 2,
        ..small_config()
    };
    let server = Server::start(config, move |_peer| {
        let seed = handler_seed.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        Chaotic { rng: Rng::new(seed), paused: false }
    });
    let addr = server.addr;
    let clients: Vec<_> = (0..40)
        .map(|_| {
            let mut rng = Rng::new(seeds.next_u64());
            thread::spawn(move || {
                // A small receive window, so what the server writes to a client that does
                // not read piles up on the server's side (backpressure), not in the kernel.
                let socket =
                    socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
                socket.set_recv_buffer_size(4096).unwrap();
                if socket.connect(&addr.into()).is_err() {
                    return;
                }
                let mut stream = TcpStream::from(socket);
                stream.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
                stream.set_write_timeout(Some(Duration::from_millis(200))).unwrap();
                let reads = rng.range(0, 3) != 0; // a third never read
                let mut buf = vec![0u8; 16 * 1024];
                for _ in 0..rng.range(1, 60) {
                    let len = rng.range(1, 3000);
                    let chunk = rng.bytes(len);
                    if stream.write_all(&chunk).is_err() {
                        break;
                    }
                    if reads {
                        let _ = stream.read_some(&mut buf);
                    }
                }
                match rng.range(0, 3) {
                    0 => set_linger_zero(&stream), // reset on drop
                    1 => {
                        let _ = stream.shutdown(Shutdown::Write);
                        let deadline = Instant::now() + Duration::from_secs(3);
                        while Instant::now() < deadline && !matches!(stream.read_some(&mut buf), Ok(0)) {}
                    }
                    _ => {} // plain close
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    let stats = server
        .wait_for(Duration::from_secs(10), "every connection closed", |s| s.active == 0 && s.accepted > 0);
    assert_eq!(stats.accepted, stats.closed.total(), "{stats:?}");
    let stats = server.wait_for(Duration::from_secs(5), "no timer left", |s| s.timers == 0);
    assert_eq!(stats.out_buffered, 0, "{stats:?}");
    // What this run exercised (with --nocapture): closes by reason, backpressure, timers, jobs.
    eprintln!("chaos run: {stats:?}");
    // The reactor itself is intact: a new client is served (with the same dice, so only
    // check that the connection is accepted and closed again).
    let stream = TcpStream::connect(addr).unwrap();
    drop(stream);
    let after = server
        .wait_for(Duration::from_secs(5), "the new client closed", |s| s.accepted == stats.accepted + 1);
    server.wait_for(Duration::from_secs(5), "and gone", |s| {
        s.active == 0 && s.closed.total() == after.accepted
    });
    server.stop().expect("the reactor shut down cleanly");
}
