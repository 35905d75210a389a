//! A connection per message against any echo server: connect, one ping-pong of `-s` bytes,
//! close — the load of health checks and of clients that never reuse a connection, where
//! what a server spends per connection (accept, registration, close) outweighs the echo.
//!
//! ```text
//!   -c threads, each: loop { connect ─► write S bytes ─► read S bytes back (checked) ─► close }
//!   until -t seconds have passed  ──►  RESULT conns_per_s= p50_us= p99_us= errors= [server_cpu_us_per_conn=]
//! ```
//!
//! Std only (blocking sockets, one thread per concurrent client) so it measures the server,
//! not a client runtime. With `--pid PID[,PID...]` it also reads the server's on-CPU time
//! (`/proc/PID/task/*/schedstat`, nanoseconds) before and after, and reports it per
//! connection. The client closes first, so `TIME_WAIT` is on its side; Linux reuses such
//! ports on loopback after a second (`tcp_tw_reuse`), which keeps the run going.
//!
//! Run (BENCHMARKS.md has the full comparison):
//! `cargo bench --bench conn_per_msg -- --addr 127.0.0.1:7000 -c 8 -s 64 -t 5 --pid $(pgrep -n echo)`

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::exit;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const USAGE: &str = "\
conn_per_msg: a connection per message against an echo server.

usage: conn_per_msg --addr HOST:PORT [-c THREADS] [-s SIZE] [-t SECS] [--pid PID[,PID...]]

  --addr HOST:PORT   the echo server
  -c THREADS         concurrent clients, a thread each (default 8)
  -s SIZE            message size in bytes (default 64)
  -t SECS            seconds to run (default 5)
  --pid PIDS         server processes whose CPU time to report per connection
  -h, --help         this help
";

struct Options {
    addr: SocketAddr,
    threads: usize,
    size: usize,
    secs: u64,
    pids: Vec<u32>,
}

fn fail(message: &str) -> ! {
    eprintln!("conn_per_msg: {message}\n\n{USAGE}");
    exit(2)
}

fn parse_args() -> Option<Options> {
    let mut addr = None;
    let (mut threads, mut size, mut secs, mut pids) = (8, 64, 5, Vec::new());
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().unwrap_or_else(|| fail(&format!("{name} needs a value")));
        match arg.as_str() {
            "-h" | "--help" => {
                print!("{USAGE}");
                exit(0);
            }
            // Cargo passes `--bench` to every bench target it runs.
            "--bench" => {}
            "--addr" => addr = Some(value("--addr").parse().unwrap_or_else(|_| fail("bad --addr"))),
            "-c" => threads = value("-c").parse().unwrap_or_else(|_| fail("bad -c")),
            "-s" => size = value("-s").parse().unwrap_or_else(|_| fail("bad -s")),
            "-t" => secs = value("-t").parse().unwrap_or_else(|_| fail("bad -t")),
            "--pid" => {
                pids = value("--pid")
                    .split(',')
                    .map(|p| p.parse().unwrap_or_else(|_| fail("bad --pid")))
                    .collect()
            }
            other => fail(&format!("unknown argument {other}")),
        }
    }
    if !(1..=1024).contains(&threads) || size == 0 || secs == 0 {
        fail("-c must be 1 to 1024, -s and -t positive");
    }
    Some(Options { addr: addr?, threads, size, secs, pids })
}

/// On-CPU nanoseconds so far of every thread of these processes.
fn cpu_ns(pids: &[u32]) -> u64 {
    let mut total = 0;
    for pid in pids {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { continue };
        for task in tasks.flatten() {
            let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            total += stat.split_whitespace().next().and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    total
}

/// What one client thread did: connection latencies (µs) and failures.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    errors: u64,
}

/// One client: connections one after another until `stop`. Each message carries the
/// thread and connection number, so an echo from the wrong connection is caught.
fn client(addr: SocketAddr, size: usize, id: usize, stop: &AtomicBool) -> Tally {
    let mut tally = Tally::default();
    let mut message = vec![0u8; size];
    let mut back = vec![0u8; size];
    let mut n: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        for (i, byte) in message.iter_mut().enumerate() {
            *byte = (n as usize).wrapping_mul(31).wrapping_add(i).wrapping_add(id * 7) as u8;
        }
        let started = Instant::now();
        let result = TcpStream::connect(addr).and_then(|mut stream| {
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(Duration::from_secs(5)))?;
            stream.write_all(&message)?;
            stream.read_exact(&mut back)
        });
        match result {
            Ok(()) if back == message => tally.latencies_us.push(started.elapsed().as_micros() as u32),
            _ => tally.errors += 1,
        }
    }
    tally
}

fn main() {
    let Some(options) = parse_args() else {
        // `cargo bench` with no arguments runs every bench target: this one needs a server.
        println!("conn_per_msg: no --addr given; skipped (see BENCHMARKS.md for how to run it)");
        return;
    };
    let stop = Arc::new(AtomicBool::new(false));
    let cpu_before = cpu_ns(&options.pids);
    let started = Instant::now();
    let clients: Vec<_> = (0..options.threads)
        .map(|id| {
            let stop = Arc::clone(&stop);
            let (addr, size) = (options.addr, options.size);
            thread::spawn(move || client(addr, size, id, &stop))
        })
        .collect();
    thread::sleep(Duration::from_secs(options.secs));
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    let mut errors = 0;
    for handle in clients {
        let tally = handle.join().expect("client thread panicked");
        latencies.extend(tally.latencies_us);
        errors += tally.errors;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_ns(&options.pids).saturating_sub(cpu_before);
    latencies.sort_unstable();
    let percentile = |p: f64| {
        latencies.get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
    };
    let conns = latencies.len();
    print!(
        "RESULT conns_per_s={:.0} conns={conns} p50_us={} p99_us={} errors={errors}",
        conns as f64 / elapsed,
        percentile(0.50).copied().unwrap_or(0),
        percentile(0.99).copied().unwrap_or(0),
    );
    if !options.pids.is_empty() && conns > 0 {
        print!(" server_cpu_us_per_conn={:.2}", cpu as f64 / 1000.0 / conns as f64);
    }
    println!();
    if errors > 0 {
        exit(1);
    }
}
