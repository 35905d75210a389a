//! The load generator: a single-threaded, closed-loop client on `mio` that checks every byte.
//!
//! [`run_load`] opens `conns` connections to one [`Server`], keeps `depth` messages of
//! `size` bytes in flight on each ([`ClientConn::refill`], [`ClientConn::flush`]), and
//! verifies each echoed chunk against the message it should be ([`ClientConn::absorb`]: the
//! content is a function of connection and sequence number, see [`Spec`]). After the warm-up
//! a [`Recorder`] counts completions and latencies, and the server's and client's CPU time is
//! read at both ends of the window (`cpu.rs`); [`summarize`] turns that into one [`Sample`],
//! which `main` collects per round. Then sending stops and the client waits for every reply
//! still in flight, so no byte goes unchecked.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use evloop_support::stats::percentile_sorted;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::cpu::{cpu_ns, cpu_since, cpu_snapshot, current_tid, CpuSnapshot};
use crate::servers::Server;

/// How long the client waits, after the window, for the replies still in flight.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// Client errors are messages for the user; any of them ends the bench with exit code 1.
pub type Res<T = ()> = Result<T, String>;

#[derive(Clone, Copy)]
pub struct Load {
    pub conns: usize,
    pub size: usize,
    pub depth: usize,
}

impl std::fmt::Display for Load {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "conns={} size={} depth={}", self.conns, self.size, self.depth)
    }
}

/// What every message looks like. Message `seq` on connection `conn` is
/// `pattern[offset..offset + size]`: consecutive messages start at different offsets, so a
/// duplicated, lost or misrouted message fails the comparison, and checking a reply is a
/// `memcmp` rather than per-byte arithmetic.
struct Spec {
    load: Load,
    pattern: Vec<u8>,
}

impl Spec {
    fn new(load: Load) -> Spec {
        let pattern = (0..load.size + 256).map(|i| (i.wrapping_mul(131) ^ (i >> 7)) as u8).collect();
        Spec { load, pattern }
    }

    fn message(&self, conn: usize, seq: u64) -> &[u8] {
        let offset = (conn * 7 + (seq % 251) as usize * 13) % 251;
        &self.pattern[offset..offset + self.load.size]
    }
}

/// What the measurement window collects; completions outside it are verified but not counted.
#[derive(Default)]
struct Recorder {
    measuring: bool,
    msgs: u64,
    latencies_ns: Vec<u64>,
}

struct ClientConn {
    id: usize,
    stream: TcpStream,
    /// Bytes queued for the server; `tx[tx_pos..]` is still unwritten.
    tx: Vec<u8>,
    tx_pos: usize,
    /// Messages queued so far / fully echoed so far; the difference is in flight.
    sent: u64,
    done: u64,
    /// Bytes of message `done` already received.
    rx_off: usize,
    /// When each in-flight message was queued, oldest first.
    queued_at: VecDeque<Instant>,
}

impl ClientConn {
    /// Tops the connection up to `depth` messages in flight.
    fn refill(&mut self, spec: &Spec, now: Instant) {
        while self.sent - self.done < spec.load.depth as u64 {
            self.tx.extend_from_slice(spec.message(self.id, self.sent));
            self.queued_at.push_back(now);
            self.sent += 1;
        }
    }

    /// Writes what is queued until done or the socket is full (a writable event resumes it).
    fn flush(&mut self) -> Res {
        while self.tx_pos < self.tx.len() {
            match self.stream.write(&self.tx[self.tx_pos..]) {
                Ok(0) => return Err(format!("conn {}: write returned 0", self.id)),
                Ok(n) => self.tx_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("conn {}: write: {e}", self.id)),
            }
        }
        self.tx.clear();
        self.tx_pos = 0;
        Ok(())
    }

    /// Reads until the socket is empty (edge-triggered), verifying and timing each message.
    fn read_all(&mut self, buf: &mut [u8], spec: &Spec, rec: &mut Recorder) -> Res {
        loop {
            let n = match self.stream.read(buf) {
                Ok(0) => return Err(format!("conn {}: server closed the connection", self.id)),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("conn {}: read: {e}", self.id)),
            };
            // One clock read per chunk: every message completed by this chunk arrived now.
            self.absorb(&buf[..n], Instant::now(), spec, rec)?;
        }
    }

    /// Checks `data` against what was sent and completes the messages it finishes.
    fn absorb(&mut self, mut data: &[u8], now: Instant, spec: &Spec, rec: &mut Recorder) -> Res {
        while !data.is_empty() {
            if self.done == self.sent {
                return Err(format!("conn {}: {} bytes echoed that were never sent", self.id, data.len()));
            }
            let expected = &spec.message(self.id, self.done)[self.rx_off..];
            let n = expected.len().min(data.len());
            if data[..n] != expected[..n] {
                let at = (0..n).find(|&i| data[i] != expected[i]).unwrap_or(0);
                let (id, seq, pos, got, want) =
                    (self.id, self.done, self.rx_off + at, data[at], expected[at]);
                return Err(format!(
                    "MISMATCH conn {id} message {seq} byte {pos}: got {got:#04x}, expected {want:#04x}"
                ));
            }
            self.rx_off += n;
            data = &data[n..];
            if self.rx_off == spec.load.size {
                self.rx_off = 0;
                self.done += 1;
                let queued = self.queued_at.pop_front().expect("a queue time per message in flight");
                if rec.measuring {
                    rec.msgs += 1;
                    rec.latencies_ns.push(now.duration_since(queued).as_nanos() as u64);
                }
            }
        }
        Ok(())
    }
}

/// One run's results.
#[derive(Clone, Copy)]
pub struct Sample {
    pub msgs_per_s: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub cpu_per_msg_us: f64,
    pub server_util: f64,
    pub client_util: f64,
}

/// Connects, warms up for `warmup`, measures one window of `secs` against `server`, drains,
/// and closes.
pub fn run_load(server: &Server, load: Load, warmup: Duration, secs: Duration) -> Res<Sample> {
    let err = |what: &str, e: io::Error| format!("{what}: {e}");
    let spec = Spec::new(load);
    let mut poll = Poll::new().map_err(|e| err("poll", e))?;
    let mut conns = Vec::with_capacity(load.conns);
    for id in 0..load.conns {
        // Connect blocking (simple, and outside any window), then hand the socket to mio.
        let std = std::net::TcpStream::connect(server.addr).map_err(|e| err("connect", e))?;
        std.set_nodelay(true).map_err(|e| err("nodelay", e))?;
        std.set_nonblocking(true).map_err(|e| err("nonblocking", e))?;
        let mut stream = TcpStream::from_std(std);
        poll.registry()
            .register(&mut stream, Token(id), Interest::READABLE | Interest::WRITABLE)
            .map_err(|e| err("register", e))?;
        let (tx, queued_at) = (Vec::new(), VecDeque::new());
        conns.push(ClientConn { id, stream, tx, tx_pos: 0, sent: 0, done: 0, rx_off: 0, queued_at });
    }

    let mut rec = Recorder::default();
    let mut buf = vec![0u8; 64 * 1024];
    let mut events = Events::with_capacity(1024);
    let client_tid = current_tid();
    let client_ns = || cpu_ns(client_tid).expect("read the client's schedstat");
    let start = Instant::now();
    let (measure_at, end_at) = (start + warmup, start + warmup + secs);
    let mut window: Option<(Instant, CpuSnapshot, u64)> = None; // (start, server ns, client ns)
    let mut sample = None;
    let mut sending = true;
    for c in &mut conns {
        c.refill(&spec, start);
        c.flush()?;
    }

    loop {
        let now = Instant::now();
        if !rec.measuring && sample.is_none() && now >= measure_at {
            rec.measuring = true;
            window = Some((now, cpu_snapshot(&server.tids), client_ns()));
        } else if rec.measuring && now >= end_at {
            // Close the window first, then stop sending and collect what is still in flight.
            let (t0, srv0, cli0) = window.take().expect("window opened");
            let cpu = (cpu_since(&srv0, &server.tids), client_ns() - cli0);
            rec.measuring = false;
            sending = false;
            sample = Some(summarize(&mut rec, now.duration_since(t0), cpu)?);
        } else if !sending {
            if conns.iter().all(|c| c.done == c.sent) {
                return Ok(sample.expect("window closed")); // dropping `conns` closes them
            }
            if now >= end_at + DRAIN_GRACE {
                let lost: u64 = conns.iter().map(|c| c.sent - c.done).sum();
                return Err(format!("{lost} messages not echoed within {DRAIN_GRACE:?}"));
            }
        }

        match poll.poll(&mut events, Some(Duration::from_millis(10))) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(err("poll", e)),
        }
        for event in events.iter() {
            let c = &mut conns[event.token().0];
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                c.read_all(&mut buf, &spec, &mut rec)?;
            }
            if sending {
                c.refill(&spec, Instant::now());
            }
            c.flush()?;
        }
    }
}

/// Turns one window's counts into a sample; `cpu` is (server, client) on-CPU nanoseconds.
fn summarize(rec: &mut Recorder, elapsed: Duration, (server_ns, client_ns): (u64, u64)) -> Res<Sample> {
    if rec.msgs == 0 {
        return Err("no message completed in the measurement window".into());
    }
    rec.latencies_ns.sort_unstable();
    let pct = |q: f64| percentile_sorted(&rec.latencies_ns, q).map_or(f64::NAN, |ns| ns as f64 / 1e3);
    let secs = elapsed.as_secs_f64();
    Ok(Sample {
        msgs_per_s: rec.msgs as f64 / secs,
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        cpu_per_msg_us: server_ns as f64 / rec.msgs as f64 / 1e3,
        server_util: server_ns as f64 / 1e9 / secs,
        client_util: client_ns as f64 / 1e9 / secs,
    })
}
