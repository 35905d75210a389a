//! Fib benchmark: the classic "event loop stall" table, measured against the `fib` example.
//!
//! The classic demo (asyncio's, Node's, ...) goes: one thread runs the event loop, a handler
//! computes something CPU-bound (a recursive `fib(N)`) right there, and every other client —
//! even one asking for something trivial — waits until it is done. Ten concurrent fib
//! requests are then answered one after another, ~10 × one request, and a ping sent meanwhile
//! takes seconds. Moving the computation to worker threads (evloop's offload pool) fixes
//! both: the ten finish in ~ceil(10 / C) × one request on C cores, and the loop keeps
//! answering pings in microseconds. Timers (`sleep`) never block anything in either mode.
//!
//! The bench builds `examples/fib.rs`, starts it as a separate process (`--mode inline`, then
//! `--mode offload`, a fresh process each), then starts a **tokio peer** (below), and measures
//! all three servers with the same N, the same client code and the same probe, in one run,
//! from client threads here:
//!
//! - **one_req_s**: one `fib(N)` request alone (median of 3). N is calibrated first (against
//!   evloop offload) so this takes ~0.3–0.5 s (`--n` forces it).
//! - **10xfib_wall_s**: 10 connections send `N` at once; time until all 10 answered (every
//!   answer is checked against an iterative fib). **lat_s** gives each client's own latency,
//!   min/median/max.
//! - **target**: what the wall time should be. Inline: ≈ 10 × one (the requests run serially
//!   on the loop). Offload and tokio: ≤ 1.15 × ceil(10 / C) × one, C = worker threads
//!   (default: one per CPU; printed).
//! - **ping_***: an 11th connection sends `1` (fib(1), answered on the loop), one in flight
//!   at a time, for as long as the 10 fib clients run; count and p50 / p99 / max round trip.
//!   Target: p99 < 5 ms in offload mode (and tokio); in inline mode, up to one fib request
//!   per ping.
//! - **10xsleep1000_wall_s**: 10 connections send `sleep 1000` at once; time until all
//!   answered. Target: ≈ 1 s in every mode (they are timers, not work).
//!
//! The `RESULT` lines repeat the figures in key=value form: `ratio_to_bound` (offload and
//! tokio: wall / bound, ≤ 1 meets the target) and `ratio_to_serial` (inline: wall /
//! (10 × one)). A final `RATIO offload_vs_tokio` line divides evloop offload's wall time and
//! ping p99 by tokio's (< 1: evloop did better).
//!
//! # The tokio peer
//!
//! The `tokio` row is the same fib protocol served the standard tokio way, in this process on
//! a thread of its own: a current-thread runtime (one loop thread, like evloop), a task per
//! connection reading lines, `fib(N)` for N > 20 handed to `spawn_blocking` with the blocking
//! pool capped at C threads (`max_blocking_threads`, the same C as evloop's `--threads`), N ≤
//! 20 computed on the loop as evloop does, and `sleep MS` on a tokio timer. It is the fair
//! comparison for offload mode: both keep the loop thread free and hand the CPU work to C
//! threads, so any gap is the cost of the runtime itself — handing jobs over, waking the loop,
//! writing replies — not of a different design. (Inline mode has no tokio counterpart on
//! purpose: blocking a tokio task is the same stall.) Running in-process changes nothing the
//! clients can see: they talk to it over loopback TCP exactly as to the evloop processes.
//!
//! # Running
//!
//! ```text
//! cargo bench --bench fib                  # calibrated N (~0.4 s per request), ~10 s + build
//! cargo bench --bench fib -- --quick       # N for ~0.05 s per request: a smoke test
//! cargo bench --bench fib -- --n 32 --threads 4
//! ```
//!
//! # Pacing the ping
//!
//! The probe waits 1 ms after each reply before its next ping (`--ping-gap-ms`). Strictly
//! back to back (`--ping-gap-ms 0`), the probe and the loop thread ping-pong ~100,000 times a
//! second and together keep a whole core busy: on a 2-core machine the C = 2 workers then
//! share one core and offload misses its bound by 1.4–2× — a cost of the probe, not of the
//! server. One ping per millisecond still sees any stall longer than a millisecond.
//!
//! Nothing is pinned: the offload workload is meant to use every core. Other load on the
//! machine shows up directly in the offload wall time.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

const USAGE: &str = "\
fib bench: the event-loop stall table (inline vs offload) against examples/fib.rs, with
a tokio server of the standard design (spawn_blocking on C threads) as a peer.

usage: cargo bench --bench fib -- [options]

  --n N             use fib(N) instead of calibrating N to ~0.4 s per request (21..=45)
  --threads K       offload worker threads, and tokio's max_blocking_threads
                    (default: available parallelism)
  --quick           calibrate N to ~0.05 s per request (smoke test)
  --ping-gap-ms MS  pause after each ping's reply (default 1; 0 = strictly back to back,
                    which on a small machine takes a core from the offload workers)
  -h, --help        this help
";

/// Concurrent fib clients, and concurrent sleepers.
const CLIENTS: usize = 10;
/// What each sleeper asks for.
const SLEEP_MS: u64 = 1000;
/// Offload target: the ideal ceil(10 / C) × one request, plus this much slack.
const SLACK: f64 = 1.15;
/// The server computes N ≤ 20 on the loop even in offload mode, so calibration starts above.
const MIN_N: u32 = 21;
/// The server's default --max-n.
const MAX_N: u32 = 45;
/// Requests up to this N are computed on the loop thread, by evloop's example and the tokio
/// peer alike.
const INLINE_MAX_N: u32 = 20;

/// The table's header; `run` prints the rows with the same widths.
const HEADER: &str =
    "mode      C   N one_req_s 10xfib_wall_s lat_min/med/max_s  target                          \
                      pings ping_p50_ms ping_p99_ms ping_max_ms 10xsleep1000_wall_s";

type Res<T = ()> = Result<T, String>;

struct Opts {
    n: Option<u32>,
    threads: usize,
    /// Pause between a ping's reply and the next ping.
    ping_gap: Duration,
    /// Calibration aims one request at this many seconds.
    target_s: f64,
}

fn parse_args() -> Opts {
    let fail = |msg: String| -> ! {
        eprintln!("error: {msg}\n\n{USAGE}");
        std::process::exit(2)
    };
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    let mut opts = Opts { n: None, threads: cpus, ping_gap: Duration::from_millis(1), target_s: 0.38 };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| fail(format!("{flag} needs a value")));
        match flag.as_str() {
            "--bench" => {} // cargo bench passes this to every bench binary
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            "--quick" => opts.target_s = 0.05,
            "--n" => match value().parse() {
                Ok(n) if (MIN_N..=MAX_N).contains(&n) => opts.n = Some(n),
                _ => fail(format!("--n must be from {MIN_N} to {MAX_N}")),
            },
            "--threads" => match value().parse() {
                Ok(k) if k > 0 => opts.threads = k,
                _ => fail("--threads must be a positive integer".into()),
            },
            "--ping-gap-ms" => match value().parse() {
                Ok(ms) => opts.ping_gap = Duration::from_millis(ms),
                _ => fail("--ping-gap-ms must be a whole number of milliseconds".into()),
            },
            _ => fail(format!("unknown argument: {flag}")),
        }
    }
    opts
}

/// fib(n) the fast way, to check the server's answers.
fn fib_iter(n: u32) -> u64 {
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..n {
        (a, b) = (b, a + b);
    }
    a
}

/// Builds the example with the cargo running this bench, and returns the binary's path.
fn build_example() -> Res<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("# building: {cargo} build --release --example fib");
    let status = Command::new(&cargo)
        .args(["build", "--release", "--example", "fib"])
        .current_dir(root)
        .status()
        .map_err(|e| format!("running {cargo}: {e}"))?;
    if !status.success() {
        return Err(format!("building the fib example failed: {status}"));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |d| root.join(d));
    Ok(target.join("release").join("examples").join("fib"))
}

/// A running fib server process. Dropping it kills the process (by the PID we spawned) and
/// reaps it, so no path out of the bench — error or panic — leaves a server behind.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(bin: &Path, mode: &str, threads: usize) -> Res<Server> {
        let child = Command::new(bin)
            .args(["--mode", mode, "--threads", &threads.to_string(), "--addr", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", bin.display()))?;
        // The guard exists from here on: every early return below kills the child.
        let mut server = Server { child, addr: SocketAddr::from(([127, 0, 0, 1], 0)) };
        let stdout = server.child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut out = BufReader::new(stdout);
            let mut first = String::new();
            let _ = tx.send(out.read_line(&mut first).map(|_| first));
            // Keep draining, so the server never writes into a closed pipe.
            let _ = io::copy(&mut out, &mut io::sink());
        });
        let line = match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(line)) => line,
            Ok(Err(e)) => return Err(format!("{mode} server: reading its stdout: {e}")),
            Err(_) => return Err(format!("{mode} server: no `listening on` line within 10 s")),
        };
        server.addr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("{mode} server: unexpected first line {line:?}"))?;
        Ok(server)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The tokio peer: the fib protocol on a current-thread tokio runtime, on a thread of this
/// process (see the module doc). Dropping it stops the server and joins its thread.
struct TokioServer {
    addr: SocketAddr,
    /// Tells the accept loop to return; `None` once sent.
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// The loop thread; `None` once joined.
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl TokioServer {
    /// Binds 127.0.0.1:0 and starts the loop thread; `threads` caps the blocking pool.
    fn start(threads: usize) -> Res<TokioServer> {
        let err = |e: io::Error| format!("tokio server: {e}");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .max_blocking_threads(threads)
            .thread_name("tokio-fib-worker")
            .build()
            .map_err(err)?;
        // Bind here, so the address and any error are known before `start` returns. The
        // listener registers with the runtime's I/O driver, which moves with the runtime.
        let listener = {
            let _in_runtime = runtime.enter();
            let std_listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(err)?;
            std_listener.set_nonblocking(true).map_err(err)?;
            tokio::net::TcpListener::from_std(std_listener).map_err(err)?
        };
        let addr = listener.local_addr().map_err(err)?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let thread = thread::Builder::new()
            .name("tokio-fib-loop".into())
            // Dropping the runtime at the end of the thread cancels the connection tasks.
            .spawn(move || runtime.block_on(tokio_accept_loop(listener, stop_rx)))
            .map_err(err)?;
        Ok(TokioServer { addr, stop: Some(stop_tx), thread: Some(thread) })
    }

    /// Stops the server, joins its thread and reports how the accept loop ended.
    fn shut_down(&mut self) -> Res {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(()); // fails only if the loop already returned (an error)
        }
        match self.thread.take().map(JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(format!("tokio server: {e}")),
            Some(Err(_)) => Err("tokio server: its thread panicked".into()),
        }
    }
}

impl Drop for TokioServer {
    fn drop(&mut self) {
        let _ = self.shut_down();
    }
}

/// Accepts connections, a task each, until `stop` fires.
async fn tokio_accept_loop(
    listener: tokio::net::TcpListener,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> io::Result<()> {
    loop {
        tokio::select! {
            _ = &mut stop => return Ok(()),
            accepted = listener.accept() => {
                let (stream, _peer) = accepted?;
                tokio::spawn(async move {
                    // A failed connection only ends itself; the clients report what they saw.
                    let _ = tokio_serve_conn(stream).await;
                });
            }
        }
    }
}

/// One connection: answers request lines in order, one at a time, like the evloop server
/// (which stops reading while a request is in progress).
async fn tokio_serve_conn(mut stream: tokio::net::TcpStream) -> io::Result<()> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

    stream.set_nodelay(true)?; // as evloop does for every accepted connection
    let (read, mut write) = stream.split();
    let mut lines = tokio::io::BufReader::new(read).lines();
    while let Some(line) = lines.next_line().await? {
        let reply = match parse_request(&line) {
            // Small N on the loop thread, as evloop does: cheaper than a trip to the pool.
            Ok(Request::Fib(n)) if n <= INLINE_MAX_N => fib(n).to_string(),
            // The standard fix for CPU work under tokio: a blocking-pool thread.
            Ok(Request::Fib(n)) => match tokio::task::spawn_blocking(move || fib(n)).await {
                Ok(value) => value.to_string(),
                Err(_) => "ERR internal".into(),
            },
            Ok(Request::Sleep(ms)) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                format!("slept {ms}")
            }
            Err(reason) => format!("ERR {reason}"),
        };
        write.write_all(format!("{reply}\n").as_bytes()).await?;
    }
    Ok(())
}

/// A request of the fib protocol (see `examples/fib.rs`).
enum Request {
    Fib(u32),
    Sleep(u64),
}

/// Parses one request line for the tokio peer: the valid requests exactly as the example
/// parses them (`N` up to MAX_N, `sleep MS`); every other line gets a short `ERR`.
fn parse_request(line: &str) -> Result<Request, &'static str> {
    let text = line.trim();
    if let Some(ms) = text.strip_prefix("sleep") {
        return ms.trim().parse().map(Request::Sleep).map_err(|_| "bad sleep");
    }
    match text.parse() {
        Ok(n) if text.bytes().all(|b| b.is_ascii_digit()) && n <= MAX_N => Ok(Request::Fib(n)),
        _ => Err("bad request"),
    }
}

/// The server's CPU-bound workload, the same naive recursion as `examples/fib.rs`.
fn fib(n: u32) -> u64 {
    if n < 2 {
        u64::from(n)
    } else {
        fib(n - 1) + fib(n - 2)
    }
}

/// A blocking line-protocol client; every read and write times out.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(addr: SocketAddr, timeout: Duration) -> Res<Client> {
        let err = |e: io::Error| format!("connect {addr}: {e}");
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(err)?;
        stream.set_nodelay(true).map_err(err)?;
        stream.set_read_timeout(Some(timeout)).map_err(err)?;
        stream.set_write_timeout(Some(timeout)).map_err(err)?;
        Ok(Client { reader: BufReader::new(stream.try_clone().map_err(err)?), writer: stream })
    }

    /// Sends one request line and checks that the reply line is `want`.
    fn call(&mut self, request: &str, want: &str) -> Res {
        let fail = |what: String| format!("request {request:?}: {what}");
        self.writer.write_all(format!("{request}\n").as_bytes()).map_err(|e| fail(format!("write: {e}")))?;
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(_) if !line.ends_with('\n') => Err(fail(format!("connection closed after {line:?}"))),
            Ok(_) if line.trim_end() != want => {
                Err(fail(format!("got {:?}, want {want:?}", line.trim_end())))
            }
            Ok(_) => Ok(()),
            Err(e) => Err(fail(format!("read: {e}"))),
        }
    }
}

/// Times one fib(n) request on a fresh connection, in seconds.
fn one_request(addr: SocketAddr, n: u32) -> Res<f64> {
    let mut client = Client::connect(addr, Duration::from_secs(120))?;
    let start = Instant::now();
    client.call(&n.to_string(), &fib_iter(n).to_string())?;
    Ok(start.elapsed().as_secs_f64())
}

/// Picks the first N whose single request takes at least 0.8 × target: fib's cost grows by
/// ~1.62 per step, so that request takes between 0.8 and 1.3 × target.
fn calibrate(addr: SocketAddr, target_s: f64) -> Res<u32> {
    for n in MIN_N..=MAX_N {
        let t = one_request(addr, n)?;
        if t >= 0.8 * target_s || n == MAX_N {
            eprintln!("# calibration: fib({n}) took {t:.3} s (aiming at {target_s} s)");
            return Ok(n);
        }
    }
    unreachable!("the loop returns at MAX_N")
}

fn join<T>(handle: JoinHandle<Res<T>>) -> Res<T> {
    handle.join().unwrap_or_else(|_| Err("a client thread panicked".into()))
}

/// Starts one thread per client; each waits on `go`, sends `request`, checks the reply, and
/// returns when its answer arrived. Returns every client's latency (sorted) and the wall
/// time from the first send to the last reply, in seconds.
fn burst(clients: Vec<Client>, request: &str, want: &str, go: &Arc<Barrier>) -> Res<(Vec<f64>, f64)> {
    let threads: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            let (go, request, want) = (go.clone(), request.to_string(), want.to_string());
            thread::spawn(move || -> Res<(Instant, Instant)> {
                go.wait();
                let sent = Instant::now();
                client.call(&request, &want)?;
                Ok((sent, Instant::now()))
            })
        })
        .collect();
    // Join them all before looking at errors: no thread is left running.
    let results: Vec<_> = threads.into_iter().map(join).collect();
    let times = results.into_iter().collect::<Res<Vec<_>>>()?;
    let first = times.iter().map(|t| t.0).min().expect("at least one client");
    let last = times.iter().map(|t| t.1).max().expect("at least one client");
    let latencies = times.iter().map(|(sent, done)| done.duration_since(*sent).as_secs_f64()).collect();
    Ok((sorted(latencies), last.duration_since(first).as_secs_f64()))
}

/// Everything measured against one server.
struct ModeResult {
    /// `inline` / `offload` (evloop's modes) or `tokio`.
    mode: &'static str,
    one_s: f64,
    wall_s: f64,
    /// Each fib client's latency, seconds, sorted.
    latencies_s: Vec<f64>,
    /// Each ping's round trip, milliseconds, sorted.
    pings_ms: Vec<f64>,
    sleep_wall_s: f64,
}

/// Measures one server, already started and answering at `addr`: one request alone, the
/// 10 fib clients with the ping probe, then the 10 sleepers. Every server goes through this
/// same client code.
fn measure(addr: SocketAddr, mode: &'static str, opts: &Opts, n: u32) -> Res<ModeResult> {
    let ones = (0..3).map(|_| one_request(addr, n)).collect::<Res<Vec<f64>>>()?;
    let one_s = percentile(&sorted(ones), 0.5);
    // Inline mode answers the last of 10 after ~10 × one: leave room for a slow machine.
    let timeout = Duration::from_secs_f64(10.0 + 30.0 * one_s);

    // Connect everyone first, so that connecting is not part of what is timed.
    let fib_clients = (0..CLIENTS).map(|_| Client::connect(addr, timeout)).collect::<Res<Vec<_>>>()?;
    let probe = Client::connect(addr, timeout)?;
    let go = Arc::new(Barrier::new(CLIENTS + 1));
    let stop = Arc::new(AtomicBool::new(false));
    let pinger = start_pinger(probe, go.clone(), stop.clone(), opts.ping_gap);
    let fibs = burst(fib_clients, &n.to_string(), &fib_iter(n).to_string(), &go);
    stop.store(true, Ordering::Release); // also on error: the pinger must end either way
    let pings_ms = join(pinger)?;
    let (latencies_s, wall_s) = fibs?;

    let sleepers = (0..CLIENTS).map(|_| Client::connect(addr, timeout)).collect::<Res<Vec<_>>>()?;
    let (_, sleep_wall_s) = burst(
        sleepers,
        &format!("sleep {SLEEP_MS}"),
        &format!("slept {SLEEP_MS}"),
        &Arc::new(Barrier::new(CLIENTS)),
    )?;

    Ok(ModeResult { mode, one_s, wall_s, latencies_s, pings_ms: sorted(pings_ms), sleep_wall_s })
}

/// The ping probe: once past `go`, sends `1` (answered on the loop thread), one in flight at
/// a time with `gap` after each reply, until `stop`. Returns each round trip in milliseconds.
fn start_pinger(
    mut probe: Client,
    go: Arc<Barrier>,
    stop: Arc<AtomicBool>,
    gap: Duration,
) -> JoinHandle<Res<Vec<f64>>> {
    thread::spawn(move || {
        go.wait();
        let mut rtts = Vec::new();
        while !stop.load(Ordering::Acquire) {
            let start = Instant::now();
            probe.call("1", "1")?;
            rtts.push(start.elapsed().as_secs_f64() * 1e3);
            thread::sleep(gap); // see the note on pacing in the module doc
        }
        Ok(rtts)
    })
}

fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(|a, b| a.total_cmp(b));
    values
}

/// Nearest-rank percentile of sorted values (q in 0..=1); NaN when empty.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn run(opts: &Opts) -> Res {
    let bin = build_example()?;
    let c = opts.threads;
    println!(
        "# C = {c} offload threads / tokio max_blocking_threads (available parallelism: {:?})",
        thread::available_parallelism().ok()
    );
    let n = match opts.n {
        Some(n) => n,
        None => {
            let server = Server::start(&bin, "offload", c)?; // killed at the end of this block
            calibrate(server.addr, opts.target_s)?
        }
    };
    println!("# N = {n}{}", if opts.n.is_some() { " (forced with --n)" } else { " (calibrated)" });

    // Each server is fresh, and stopped (its guard dropped) before the next one starts.
    let mut results = Vec::new();
    for mode in ["inline", "offload"] {
        eprintln!("# measuring evloop {mode} mode ...");
        let server = Server::start(&bin, mode, c)?;
        results.push(measure(server.addr, mode, opts, n)?);
    }
    eprintln!("# measuring the tokio peer ...");
    let mut server = TokioServer::start(c)?;
    results.push(measure(server.addr, "tokio", opts, n)?);
    server.shut_down()?;

    println!("\n{HEADER}");
    let mut lines = Vec::new();
    for r in &results {
        let serial_s = CLIENTS as f64 * r.one_s;
        let bound_s = SLACK * CLIENTS.div_ceil(c) as f64 * r.one_s;
        let target = match r.mode {
            "inline" => format!("≈10×one = {serial_s:.2}"),
            _ => format!("≤{SLACK}×ceil(10/C)×one = {bound_s:.2}"),
        };
        let lat = &r.latencies_s;
        let (p50, p99, max) =
            (percentile(&r.pings_ms, 0.5), percentile(&r.pings_ms, 0.99), percentile(&r.pings_ms, 1.0));
        println!(
            "{:<8} {:>2} {:>3} {:>9.3} {:>13.3} {:>17}  {:<30} {:>6} {:>11.3} {:>11.3} {:>11.3} {:>19.3}",
            r.mode,
            c,
            n,
            r.one_s,
            r.wall_s,
            format!("{:.2}/{:.2}/{:.2}", lat[0], percentile(lat, 0.5), lat[lat.len() - 1]),
            target,
            r.pings_ms.len(),
            p50,
            p99,
            max,
            r.sleep_wall_s
        );
        let ratio = match r.mode {
            "inline" => format!("serial_s={serial_s:.3} ratio_to_serial={:.3}", r.wall_s / serial_s),
            _ => format!("bound_s={bound_s:.3} ratio_to_bound={:.3}", r.wall_s / bound_s),
        };
        lines.push(format!(
            "RESULT mode={} n={n} c={c} one_s={:.3} wall_s={:.3} {ratio} ping_p99_ms={p99:.3} sleep_wall_s={:.3}",
            r.mode, r.one_s, r.wall_s, r.sleep_wall_s
        ));
    }
    // evloop offload against its fair peer: < 1 means evloop did better.
    let by_mode = |mode| results.iter().find(|r| r.mode == mode).expect("every mode was measured");
    let (offload, tokio) = (by_mode("offload"), by_mode("tokio"));
    lines.push(format!(
        "RATIO offload_vs_tokio wall={:.3} ping_p99={:.3}",
        offload.wall_s / tokio.wall_s,
        percentile(&offload.pings_ms, 0.99) / percentile(&tokio.pings_ms, 0.99)
    ));
    println!();
    for line in &lines {
        println!("{line}");
    }
    Ok(())
}

fn main() {
    let opts = parse_args();
    // `run` owns every server guard, so they are all dropped (killed) before we exit.
    if let Err(e) = run(&opts) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
