//! The clients of the fib bench: blocking line-protocol connections, and the measurements
//! made with them.
//!
//! `main` hands [`measure`] the address of one running server (and [`calibrate`] one, to pick
//! N). [`measure`] times a single request, then releases [`CLIENTS`] fib requests at once
//! from as many threads (a barrier starts them together) while the ping probe runs on one
//! more, then [`CLIENTS`] sleepers; every reply is checked against [`fib_iter`] or the
//! expected `slept MS`. The results come back as one [`ModeResult`] per server, which `main`
//! prints as a table row and `RESULT` line.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use evloop_support::stats::{median, sorted};

use crate::{Res, MAX_N, MIN_N};

/// Concurrent fib clients, and concurrent sleepers.
pub const CLIENTS: usize = 10;
/// What each sleeper asks for.
const SLEEP_MS: u64 = 1000;

/// fib(n) the fast way, to check the server's answers.
pub fn fib_iter(n: u32) -> u64 {
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..n {
        (a, b) = (b, a + b);
    }
    a
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
pub fn calibrate(addr: SocketAddr, target_s: f64) -> Res<u32> {
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
    let latencies: Vec<f64> =
        times.iter().map(|(sent, done)| done.duration_since(*sent).as_secs_f64()).collect();
    Ok((sorted(&latencies), last.duration_since(first).as_secs_f64()))
}

/// Everything measured against one server.
pub struct ModeResult {
    /// `inline` / `offload` (evloop's modes) or `tokio`.
    pub mode: &'static str,
    pub one_s: f64,
    pub wall_s: f64,
    /// Each fib client's latency, seconds, sorted.
    pub latencies_s: Vec<f64>,
    /// Each ping's round trip, milliseconds, sorted.
    pub pings_ms: Vec<f64>,
    pub sleep_wall_s: f64,
}

/// Measures one server, already started and answering at `addr`: one request alone, the
/// 10 fib clients with the ping probe, then the 10 sleepers. Every server goes through this
/// same client code.
pub fn measure(addr: SocketAddr, mode: &'static str, n: u32, ping_gap: Duration) -> Res<ModeResult> {
    let ones = (0..3).map(|_| one_request(addr, n)).collect::<Res<Vec<f64>>>()?;
    let one_s = median(&ones);
    // Inline mode answers the last of 10 after ~10 × one: leave room for a slow machine.
    let timeout = Duration::from_secs_f64(10.0 + 30.0 * one_s);

    // Connect everyone first, so that connecting is not part of what is timed.
    let fib_clients = (0..CLIENTS).map(|_| Client::connect(addr, timeout)).collect::<Res<Vec<_>>>()?;
    let probe = Client::connect(addr, timeout)?;
    let go = Arc::new(Barrier::new(CLIENTS + 1));
    let stop = Arc::new(AtomicBool::new(false));
    let pinger = start_pinger(probe, go.clone(), stop.clone(), ping_gap);
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

    Ok(ModeResult { mode, one_s, wall_s, latencies_s, pings_ms: sorted(&pings_ms), sleep_wall_s })
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
            thread::sleep(gap); // see "Pacing the ping" in the bench's doc in `main.rs`
        }
        Ok(rtts)
    })
}
