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
//!
//! # Layout
//!
//! This file holds the run: flags, the order of the measurements, the table. `servers.rs`
//! builds and starts evloop's `fib` example and runs the tokio peer; `client.rs` holds the
//! client connections, the ping probe and what they measure.

mod client;
mod servers;

use std::thread;
use std::time::Duration;

use clap::Parser;
use evloop_support::cli::{self, Millis};
use evloop_support::stats::percentile;

use client::{calibrate, measure, CLIENTS};
use servers::{build_example, Server, TokioServer};

/// fib bench: the event-loop stall table (inline vs offload) against examples/fib.rs, with
/// a tokio server of the standard design (spawn_blocking on C threads) as a peer.
#[derive(Parser)]
#[command(
    name = "fib",
    bin_name = "cargo bench --bench fib --",
    after_help = "More in the comment at the top of benches/fib/main.rs and in BENCHMARKS.md."
)]
struct Args {
    /// Use fib(N), 21 to 45, instead of calibrating N to ~0.4 s per request
    #[arg(long, value_name = "N", value_parser = cli::number(MIN_N, MAX_N))]
    n: Option<u32>,
    /// Offload worker threads, and tokio's max_blocking_threads [default: available parallelism]
    #[arg(long, value_name = "K", value_parser = cli::count(1, 1024))]
    threads: Option<usize>,
    /// Calibrate N to ~0.05 s per request (smoke test)
    #[arg(long)]
    quick: bool,
    /// Pause after each ping's reply; 0 = strictly back to back, which on a small machine
    /// takes a core from the offload workers
    #[arg(long = "ping-gap-ms", value_name = "MS", value_parser = cli::duration_ms,
          default_value_t = Millis::from(1))]
    ping_gap: Millis,
    #[command(flatten)]
    _cargo: cli::CargoBench,
}

/// Offload target: the ideal ceil(10 / C) × one request, plus this much slack.
const SLACK: f64 = 1.15;
/// The server computes N ≤ 20 on the loop even in offload mode, so calibration starts above.
const MIN_N: u32 = 21;
/// The server's default --max-n.
const MAX_N: u32 = 45;

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
    let args = Args::parse();
    let cpus = || thread::available_parallelism().map_or(1, |n| n.get());
    Opts {
        n: args.n,
        threads: args.threads.unwrap_or_else(cpus),
        ping_gap: args.ping_gap.0,
        target_s: if args.quick { 0.05 } else { 0.38 },
    }
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
        results.push(measure(server.addr, mode, n, opts.ping_gap)?);
    }
    eprintln!("# measuring the tokio peer ...");
    let mut server = TokioServer::start(c)?;
    results.push(measure(server.addr, "tokio", n, opts.ping_gap)?);
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
