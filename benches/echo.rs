//! Echo benchmark: evloop against the standard tokio echo server, in one process, same load.
//!
//! Two servers run side by side, each on its own thread started here:
//!
//! - **evloop**: `Reactor<Echo>` with `Config::default()`, `on_data` writes back what it got.
//! - **tokio**: a `current_thread` runtime, one task per connection, a 64 KiB buffer,
//!   `read` then `write_all`, `TCP_NODELAY` — the echo everyone writes first.
//!
//! A single-threaded, closed-loop client (written here on `mio`) opens C connections and keeps
//! D messages of S bytes in flight on each (D = 1 is ping-pong). Every echoed byte is checked
//! against what was sent; a wrong, extra or missing byte aborts the run with exit code 1.
//! After 0.5 s of unmeasured warm-up, it measures for T seconds:
//!
//! - **msgs/s** and **p50/p99 latency** (from queueing a message to its last echoed byte);
//! - **server µs/msg**: the server threads' on-CPU time (`/proc/self/task/TID/schedstat`,
//!   first field, nanoseconds, summed over the server's threads) over the window, divided by
//!   the messages echoed in it.
//!
//! # Why CPU per message
//!
//! On a 2-core machine the client and the server each get a core, and the client (which does
//! more work per message: it generates, verifies and times every byte) saturates its core
//! first. Throughput then mostly measures the client, so two servers look alike; the CPU each
//! server spends per message is the figure that still separates them. `srv cpu%` and
//! `cli cpu%` in the table show which side was the bottleneck.
//!
//! # Running
//!
//! ```text
//! cargo bench --bench echo                        # 5 configs x 7 rounds x 2 s (~4 min)
//! cargo bench --bench echo -- --quick             # 1 round x 1 s: a smoke test
//! cargo bench --bench echo -- --secs 2 --rounds 5 --conns 100 --configs 50x64x1,10x4096x4
//! cargo bench --bench echo -- --workers 2 --configs 50x64x1,1000x64x1   # multi-core mode
//! cargo bench --bench echo -- --help
//! ```
//!
//! Server threads are pinned to CPU 0 and the client to CPU 1 (with `taskset`; `--no-pin`
//! turns that off): unpinned, the scheduler tends to put both on one core. Other load on the
//! machine still shows up as noise, so compare ratios from the same run, not across runs.
//! Rounds are interleaved (evloop then tokio, then tokio then evloop, ...) so slow drifts in
//! the machine's load hit both servers alike. Tables show medians over rounds.
//!
//! # Reading the ratios
//!
//! The final `RATIO` lines give, per config, the median over rounds of the ratio
//! evloop/tokio measured in the same round: `throughput_... > 1` means evloop echoed more
//! messages per second; `cpu_per_msg_... < 1` means evloop spent less CPU per message
//! (cheaper). With the client as the bottleneck, expect throughput near 1.0 and look at CPU.
//!
//! # Multi-core mode: `--workers N`
//!
//! With `--workers N` (N ≥ 2) the same echo runs on N threads per side:
//!
//! - **evloop x N**: `evloop::workers::Workers`, N share-nothing reactors, each with its own
//!   `SO_REUSEPORT` listener on one address (the kernel spreads connections by hash);
//! - **tokio mt x N**: a `multi_thread` runtime with `worker_threads(N)`, the same task per
//!   connection; its accept loop runs in `block_on` on one more thread, as under
//!   `#[tokio::main]`.
//!
//! Server CPU is summed over **all** of a server's threads (each records its thread id as it
//! starts: evloop's in the per-worker factory closure, tokio's in `on_thread_start`), so
//! `srv_cpu%` can exceed 100. Servers are not pinned (on one CPU the workers would take turns);
//! the client stays pinned to CPU 1 (`--no-pin` unpins it). On a 2-core machine the client
//! then competes with the server threads for CPU, so these figures show scheduling and
//! contention as much as server efficiency; a `# pinning` line in the output says so. Rows are
//! labelled `evloop x N` / `tokio mt x N`, and `RATIO` lines start with `workers=N`.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use evloop::workers::Workers;
use evloop::{Config, Cx, Handle, Handler, Input, Reactor};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

const USAGE: &str = "\
echo bench: evloop vs tokio current_thread echo servers, same process, same load
(with --workers N: N evloop workers vs a tokio multi_thread runtime with N workers).

usage: cargo bench --bench echo -- [options]

  --secs S          measured seconds per run (default 2)
  --warmup S        unmeasured seconds before each run's window (default 0.5)
  --rounds R        interleaved rounds per config (default 7)
  --configs LIST    comma-separated CONNSxSIZExDEPTH (default 1x64x1,50x64x1,1000x64x1,50x16384x1,50x64x16)
  --conns N         override the connection count of every config
  --quick           1 round x 1 s (smoke test)
  --workers N       multi-core mode, N >= 2: evloop::workers::Workers vs tokio multi_thread
  --no-pin          do not pin servers to CPU 0 and the client to CPU 1 (uses taskset);
                    with --workers, servers are never pinned and this unpins the client
  -h, --help        this help
";

/// How long the client waits, after the window, for the replies still in flight.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------------
// The two servers
// ---------------------------------------------------------------------------------------------

/// evloop's echo: the reactor reads into its shared buffer, we copy to the output buffer.
struct Echo;

impl Handler for Echo {
    type Msg = ();

    fn on_data(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
        cx.write(input.bytes());
        input.consume_all();
    }
}

/// Kernel thread ids of a server's threads, for their schedstat. Each thread records itself
/// (evloop workers in their factory closure, tokio's in `on_thread_start`), hence the mutex.
type Tids = Arc<Mutex<Vec<u32>>>;

enum Stop {
    Evloop(Handle, JoinHandle<()>),
    Workers(Workers),
    /// tokio's accept loop checks this flag after each accept; stopping sets it and connects
    /// once so the loop wakes up (avoids needing tokio's "sync" feature for a oneshot).
    Tokio(Arc<AtomicBool>, JoinHandle<()>),
}

struct Server {
    name: String,
    addr: SocketAddr,
    /// Every thread the server runs on; its CPU time is the sum over them.
    tids: Tids,
    stop: Stop,
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn start_evloop() -> Server {
    let (tx, rx) = mpsc::channel();
    let thread = thread::Builder::new()
        .name("evloop-server".into())
        .spawn(move || {
            // The reactor is not Send: build it on the thread that runs it.
            let mut reactor = Reactor::<Echo>::new(Config::default()).expect("evloop: reactor");
            let addr = reactor.listen(loopback(), |_peer| Echo).expect("evloop: listen");
            tx.send((addr, reactor.handle(), current_tid())).expect("evloop: report");
            reactor.run().expect("evloop: run");
        })
        .expect("spawn evloop thread");
    let (addr, handle, tid) = rx.recv().expect("evloop server thread died during startup");
    let tids = Arc::new(Mutex::new(vec![tid]));
    Server { name: "evloop".into(), addr, tids, stop: Stop::Evloop(handle, thread) }
}

/// `count` share-nothing reactors on `count` threads, one `SO_REUSEPORT` listener each.
fn start_evloop_workers(count: usize) -> Server {
    let tids = Tids::default();
    let record = Arc::clone(&tids);
    let workers = Workers::start(count, loopback(), Config::default(), move |_worker| {
        // Runs once on each worker's own thread, before its reactor starts.
        record.lock().expect("tids lock").push(current_tid());
        |_peer| Echo
    })
    .expect("evloop: workers");
    let addr = workers.addr();
    Server { name: format!("evloop x {count}"), addr, tids, stop: Stop::Workers(workers) }
}

/// tokio's echo: a `current_thread` runtime, or with `workers: Some(n)` a `multi_thread` one
/// with `n` worker threads. Either way the accept loop runs in `block_on` on the thread started
/// here (as under `#[tokio::main]`) and each connection is a spawned task.
fn start_tokio(workers: Option<usize>) -> Server {
    let listener = std::net::TcpListener::bind(loopback()).expect("tokio: bind");
    listener.set_nonblocking(true).expect("tokio: nonblocking");
    let addr = listener.local_addr().expect("tokio: local_addr");
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let tids = Tids::default();
    let record = Arc::clone(&tids);
    let (tx, rx) = mpsc::channel();
    let thread = thread::Builder::new()
        .name("tokio-server".into())
        .spawn(move || {
            record.lock().expect("tids lock").push(current_tid());
            let rt = match workers {
                None => tokio::runtime::Builder::new_current_thread().enable_io().build(),
                Some(n) => tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(n)
                    .enable_io()
                    .on_thread_start(move || record.lock().expect("tids lock").push(current_tid()))
                    .build(),
            }
            .expect("tokio: rt");
            tx.send(()).expect("tokio: report");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio: from_std");
                loop {
                    let Ok((stream, _peer)) = listener.accept().await else { continue };
                    if flag.load(Ordering::SeqCst) {
                        break;
                    }
                    tokio::spawn(tokio_echo(stream));
                }
            });
            // Dropping the runtime drops any task still alive (none: the client closed them).
        })
        .expect("spawn tokio thread");
    rx.recv().expect("tokio server thread died during startup");
    let name = workers.map_or_else(|| "tokio".into(), |n| format!("tokio mt x {n}"));
    Server { name, addr, tids, stop: Stop::Tokio(stop, thread) }
}

async fn tokio_echo(mut stream: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if stream.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

impl Server {
    /// Stops the server and waits for its threads to end.
    fn shutdown(self) {
        let name = self.name;
        let joined = |thread: JoinHandle<()>| {
            thread.join().unwrap_or_else(|_| panic!("{name} server thread panicked"));
        };
        let stats = match self.stop {
            Stop::Evloop(handle, thread) => {
                handle.shutdown();
                joined(thread);
                handle.stats()
            }
            Stop::Workers(workers) => {
                workers.shutdown();
                workers.join().unwrap_or_else(|e| panic!("{name}: {e}"))
            }
            Stop::Tokio(flag, thread) => {
                flag.store(true, Ordering::SeqCst);
                let _ = std::net::TcpStream::connect(self.addr); // wakes the accept loop
                joined(thread);
                return;
            }
        };
        println!(
            "# {name} stats: accepted={} closed_by_error={} bytes_in={} bytes_out={}",
            stats.accepted, stats.closed.error, stats.bytes_in, stats.bytes_out
        );
    }
}

/// Pins thread `tid` of this process to one CPU with `taskset` (std has no affinity call and the
/// crate has no `libc` dependency to reach `sched_setaffinity`). Returns whether it worked.
fn pin(tid: u32, cpu: usize) -> bool {
    std::process::Command::new("taskset")
        .args(["-p", "-c", &cpu.to_string(), &tid.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// The calling thread's kernel id: `/proc/thread-self` links to `PID/task/TID`.
fn current_tid() -> u32 {
    let link = std::fs::read_link("/proc/thread-self").expect("read /proc/thread-self");
    link.file_name().and_then(|n| n.to_str()).and_then(|n| n.parse().ok()).expect("parse thread id")
}

/// Nanoseconds thread `tid` of this process has spent on a CPU (user + system), or `None` if
/// the thread is gone.
fn cpu_ns(tid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok()?;
    Some(text.split_whitespace().next().and_then(|f| f.parse().ok()).expect("parse schedstat"))
}

/// (thread id, on-CPU nanoseconds) for each of a server's threads at one instant.
type CpuSnapshot = Vec<(u32, u64)>;

/// On-CPU nanoseconds of each of the server's threads, read now.
fn cpu_snapshot(tids: &Tids) -> CpuSnapshot {
    let tids = tids.lock().expect("tids lock").clone();
    tids.into_iter().filter_map(|tid| Some((tid, cpu_ns(tid)?))).collect()
}

/// On-CPU nanoseconds the server's threads spent since `before`, summed over all of them. A
/// thread started since then counts from zero; one that has ended is left out (neither happens
/// here: every server thread lives as long as its server).
fn cpu_since(before: &CpuSnapshot, tids: &Tids) -> u64 {
    let since = |&(tid, now): &(u32, u64)| now - before.iter().find(|b| b.0 == tid).map_or(0, |b| b.1);
    cpu_snapshot(tids).iter().map(since).sum()
}

// ---------------------------------------------------------------------------------------------
// The client: closed loop, C connections x D messages in flight, every byte checked
// ---------------------------------------------------------------------------------------------

/// Client errors are messages for the user; any of them ends the bench with exit code 1.
type Res<T = ()> = Result<T, String>;

#[derive(Clone, Copy)]
struct Load {
    conns: usize,
    size: usize,
    depth: usize,
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
struct Sample {
    msgs_per_s: f64,
    p50_us: f64,
    p99_us: f64,
    cpu_per_msg_us: f64,
    server_util: f64,
    client_util: f64,
}

/// Connects, warms up, measures one window against `server`, drains, and closes.
fn run_load(server: &Server, load: Load, opts: &Opts) -> Res<Sample> {
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
    let (measure_at, end_at) = (start + opts.warmup, start + opts.warmup + opts.secs);
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
    let pct = |q: f64| {
        let i = ((rec.latencies_ns.len() - 1) as f64 * q).round() as usize;
        rec.latencies_ns[i] as f64 / 1e3
    };
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

// ---------------------------------------------------------------------------------------------
// Options, rounds, report
// ---------------------------------------------------------------------------------------------

struct Opts {
    secs: Duration,
    warmup: Duration,
    rounds: usize,
    loads: Vec<Load>,
    pin: bool,
    /// `--workers N`: the multi-core mode.
    workers: Option<usize>,
}

fn parse_args() -> Opts {
    let fail = |msg: String| -> ! {
        eprintln!("error: {msg}\n\n{USAGE}");
        std::process::exit(2)
    };
    // Many short interleaved rounds: this VM's speed drifts by up to 2x over seconds, so the
    // median of per-round paired ratios is steadier than fewer, longer runs.
    let (mut secs, mut warmup, mut rounds) = (2.0_f64, 0.5_f64, 7_usize);
    let mut configs = "1x64x1,50x64x1,1000x64x1,50x16384x1,50x64x16".to_string();
    let mut conns: Option<usize> = None;
    let mut pin = true;
    let mut workers: Option<usize> = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| fail(format!("{flag} needs a value")));
        let num = |v: String| v.parse::<f64>().unwrap_or_else(|_| fail(format!("bad number: {v}")));
        match flag.as_str() {
            "--bench" => {} // cargo bench passes this to every bench binary
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            "--quick" => (secs, rounds) = (1.0, 1),
            "--secs" => secs = num(value()),
            "--warmup" => warmup = num(value()),
            "--rounds" => rounds = num(value()) as usize,
            "--conns" => conns = Some(num(value()) as usize),
            "--configs" => configs = value(),
            "--no-pin" => pin = false,
            "--workers" => workers = Some(num(value()) as usize),
            _ => fail(format!("unknown argument: {flag}")),
        }
    }
    let loads: Vec<Load> = configs
        .split(',')
        .map(|c| {
            let parts: Vec<usize> = c.split('x').filter_map(|p| p.trim().parse().ok()).collect();
            match parts[..] {
                [n, size, depth] if n > 0 && size > 0 && depth > 0 => {
                    Load { conns: conns.unwrap_or(n), size, depth }
                }
                _ => fail(format!("bad config {c:?}: want CONNSxSIZExDEPTH, all positive")),
            }
        })
        .collect();
    if secs <= 0.0 || warmup < 0.0 || rounds == 0 || loads.iter().any(|l| l.conns == 0) {
        fail("--secs, --rounds and --conns must be positive".into());
    }
    if workers.is_some_and(|n| n < 2) {
        fail("--workers needs N >= 2 (leave it out for one server thread each)".into());
    }
    let (secs, warmup) = (Duration::from_secs_f64(secs), Duration::from_secs_f64(warmup));
    Opts { secs, warmup, rounds, loads, pin, workers }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

fn main() {
    let opts = parse_args();
    let configs: Vec<String> =
        opts.loads.iter().map(|l| format!("{}x{}x{}", l.conns, l.size, l.depth)).collect();
    println!(
        "# reproduce: cargo bench --bench echo -- --secs {} --warmup {} --rounds {} --configs {}{}{}",
        opts.secs.as_secs_f64(),
        opts.warmup.as_secs_f64(),
        opts.rounds,
        configs.join(","),
        opts.workers.map_or(String::new(), |n| format!(" --workers {n}")),
        if opts.pin { "" } else { " --no-pin" }
    );
    // Servers start before the client thread is pinned: threads inherit their creator's CPUs.
    let servers = match opts.workers {
        None => [start_evloop(), start_tokio(None)],
        Some(n) => [start_evloop_workers(n), start_tokio(Some(n))],
    };
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    let on_off = |pinned: bool| if pinned { "on" } else { "FAILED, off" };
    match opts.workers {
        // Left alone, the scheduler often runs client and server on the same core (a loopback
        // wake-up pulls the woken thread next to its waker), and the two then share one CPU.
        // Like the shared bench scripts: servers on CPU 0, the client on CPU 1.
        None if opts.pin => {
            let all_tids = |s: &Server| s.tids.lock().expect("tids lock").clone();
            let pinned = cpus >= 2
                && servers.iter().all(|s| all_tids(s).into_iter().all(|tid| pin(tid, 0)))
                && pin(current_tid(), 1);
            println!("# pinning (servers cpu 0, client cpu 1): {}", on_off(pinned));
        }
        None => {}
        // Pinning the workers to one CPU would serialize them: they float over all CPUs.
        Some(n) => {
            let client = if opts.pin {
                format!("client cpu 1: {}", on_off(cpus >= 2 && pin(current_tid(), 1)))
            } else {
                "client unpinned".into()
            };
            println!("# pinning (workers mode): servers unpinned, {client}");
            println!(
                "# pinning note: with {cpus} CPUs the client competes with each server's {n} workers for CPU; \
                 these figures show scheduling and contention as much as server efficiency"
            );
        }
    }
    // In workers mode, table headers and RATIO lines start with `workers=N`.
    let mode = opts.workers.map_or(String::new(), |n| format!("workers={n} "));
    let name_width = servers.iter().map(|s| s.name.len()).max().unwrap_or(0).max(8);
    let mut ratio_lines = Vec::new();

    for load in &opts.loads {
        let mut samples: [Vec<Sample>; 2] = [Vec::new(), Vec::new()];
        for round in 0..opts.rounds {
            // Alternate who goes first so a drift in machine load does not favour one side.
            let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for i in order {
                let s = run_load(&servers[i], *load, &opts).unwrap_or_else(|e| {
                    eprintln!("error: {} {load}: {e}", servers[i].name);
                    std::process::exit(1)
                });
                eprintln!(
                    "  round {}/{} {:<6} {:>9.0} msgs/s  {:.2} µs/msg",
                    round + 1,
                    opts.rounds,
                    servers[i].name,
                    s.msgs_per_s,
                    s.cpu_per_msg_us
                );
                samples[i].push(s);
            }
        }

        println!("\n== {mode}{load}  (median of {} rounds x {} s)", opts.rounds, opts.secs.as_secs_f64());
        println!(
            "{:<name_width$} {:>10} {:>9} {:>9} {:>9} {:>11} {:>9} {:>9}",
            "server", "msgs/s", "MB/s", "p50_us", "p99_us", "srv_us/msg", "srv_cpu%", "cli_cpu%"
        );
        for (server, runs) in servers.iter().zip(&samples) {
            let med = |f: fn(&Sample) -> f64| median(runs.iter().map(f).collect());
            let rate = med(|s| s.msgs_per_s);
            println!(
                "{:<name_width$} {:>10.0} {:>9.1} {:>9.1} {:>9.1} {:>11.3} {:>9.0} {:>9.0}",
                server.name,
                rate,
                rate * load.size as f64 / 1e6,
                med(|s| s.p50_us),
                med(|s| s.p99_us),
                med(|s| s.cpu_per_msg_us),
                med(|s| s.server_util * 100.0),
                med(|s| s.client_util * 100.0)
            );
        }
        // Paired ratios: each round's evloop run against that same round's tokio run.
        let paired = |f: fn(&Sample) -> f64| {
            median(samples[0].iter().zip(&samples[1]).map(|(e, t)| f(e) / f(t)).collect())
        };
        let (tput, cpu, p99) = (paired(|s| s.msgs_per_s), paired(|s| s.cpu_per_msg_us), paired(|s| s.p99_us));
        println!(
            "evloop/tokio (median of per-round ratios): throughput {tput:.3}  cpu/msg {cpu:.3}  p99 {p99:.3}"
        );
        ratio_lines.push(format!(
            "RATIO {mode}{load} throughput_evloop_vs_tokio={tput:.3} cpu_per_msg_evloop_vs_tokio={cpu:.3} \
             p99_evloop_vs_tokio={p99:.3}"
        ));
    }

    println!();
    for line in &ratio_lines {
        println!("{line}");
    }
    for server in servers {
        server.shutdown();
    }
}
