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

use clap::Parser;
use evloop_support::cli::{self, Secs};
use evloop_support::stats::percentile_sorted;

/// conn_per_msg: a connection per message against an echo server.
#[derive(Parser)]
#[command(
    name = "conn_per_msg",
    bin_name = "conn_per_msg",
    after_help = "Without --addr it does nothing (`cargo bench` runs every bench); \
                        BENCHMARKS.md has the full comparison."
)]
struct Args {
    /// The echo server
    #[arg(long, value_name = "HOST:PORT", value_parser = cli::addr)]
    addr: Option<SocketAddr>,
    /// Concurrent clients, a thread each
    #[arg(short = 'c', long, value_name = "THREADS", value_parser = cli::count(1, 1024), default_value_t = 8)]
    threads: usize,
    /// Message size in bytes (or 4k, 1m)
    #[arg(short = 's', long, value_name = "SIZE", value_parser = cli::size(1, usize::MAX), default_value_t = 64)]
    size: usize,
    /// Seconds to run
    #[arg(short = 't', long, value_name = "SECS", value_parser = cli::positive_secs,
          default_value_t = Secs::from(5))]
    secs: Secs,
    /// Server processes (PID[,PID...]) whose CPU time to report per connection
    #[arg(long = "pid", value_name = "PIDS", value_delimiter = ',')]
    pids: Vec<u32>,
    #[command(flatten)]
    _cargo: cli::CargoBench,
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
    let options = Args::parse();
    let Some(addr) = options.addr else {
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
            let size = options.size;
            thread::spawn(move || client(addr, size, id, &stop))
        })
        .collect();
    thread::sleep(options.secs.0);
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
    let percentile = |q: f64| percentile_sorted(&latencies, q).unwrap_or(0);
    let conns = latencies.len();
    print!(
        "RESULT conns_per_s={:.0} conns={conns} p50_us={} p99_us={} errors={errors}",
        conns as f64 / elapsed,
        percentile(0.50),
        percentile(0.99),
    );
    if !options.pids.is_empty() && conns > 0 {
        print!(" server_cpu_us_per_conn={:.2}", cpu as f64 / 1000.0 / conns as f64);
    }
    println!();
    if errors > 0 {
        exit(1);
    }
}
