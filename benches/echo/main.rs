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
//!
//! # Layout
//!
//! This file holds the run: flags, rounds, pinning and the tables. `servers.rs` starts the two
//! servers, `client.rs` drives the load and checks the echoes, `cpu.rs` pins threads and reads
//! their CPU time.

mod client;
mod cpu;
mod servers;

use std::thread;
use std::time::Duration;

use clap::Parser;
use evloop_support::cli::{self, Secs};
use evloop_support::stats::median;

use client::{run_load, Load, Sample};
use cpu::{current_tid, pin};
use servers::{start_evloop, start_evloop_workers, start_tokio, Server};

// Many short interleaved rounds: this VM's speed drifts by up to 2x over seconds, so the
// median of per-round paired ratios is steadier than fewer, longer runs.
const SECS: f64 = 2.0;
const ROUNDS: usize = 7;
const CONFIGS: &str = "1x64x1,50x64x1,1000x64x1,50x16384x1,50x64x16";

const AFTER_HELP: &str = "\
Each config runs evloop and tokio in interleaved rounds (who goes first alternates); tables
show medians over rounds, RATIO lines the median of the per-round ratios evloop/tokio.
Servers are pinned to CPU 0 and the client to CPU 1 unless --no-pin; in workers mode the
servers float over all CPUs. More in the comment at the top of benches/echo/main.rs.

Examples:
  cargo bench --bench echo -- --quick
  cargo bench --bench echo -- --secs 2 --rounds 5 --conns 100 --configs 50x64x1,10x4096x4
  cargo bench --bench echo -- --workers 2 --configs 50x64x1,1000x64x1";

/// echo bench: evloop vs tokio current_thread echo servers, same process, same load
/// (with --workers N: N evloop workers vs a tokio multi_thread runtime with N workers).
#[derive(Parser)]
#[command(name = "echo", bin_name = "cargo bench --bench echo --", after_help = AFTER_HELP)]
struct Args {
    /// Measured seconds per run [default: 2, or 1 with --quick]
    #[arg(long, value_name = "S", value_parser = cli::positive_secs)]
    secs: Option<Secs>,
    /// Unmeasured seconds before each run's window
    #[arg(long, value_name = "S", value_parser = cli::duration_secs,
          default_value_t = Secs(Duration::from_millis(500)))]
    warmup: Secs,
    /// Interleaved rounds per config [default: 7, or 1 with --quick]
    #[arg(long, value_name = "R", value_parser = cli::count(1, usize::MAX))]
    rounds: Option<usize>,
    /// Comma-separated CONNSxSIZExDEPTH (connections x message bytes x messages in flight)
    #[arg(long, value_name = "LIST", value_parser = parse_configs, default_value = CONFIGS)]
    configs: Configs,
    /// Override the connection count of every config
    #[arg(long, value_name = "N", value_parser = cli::count(1, usize::MAX))]
    conns: Option<usize>,
    /// 1 round x 1 s (smoke test); --secs and --rounds still apply
    #[arg(long)]
    quick: bool,
    /// Multi-core mode, N >= 2: evloop::workers::Workers vs tokio multi_thread
    #[arg(long, value_name = "N", value_parser = parse_workers)]
    workers: Option<usize>,
    /// Do not pin servers to CPU 0 and the client to CPU 1 (uses taskset); with --workers,
    /// servers are never pinned and this unpins the client
    #[arg(long)]
    no_pin: bool,
    #[command(flatten)]
    _cargo: cli::CargoBench,
}

/// `--workers N`: N >= 2.
fn parse_workers(text: &str) -> Result<usize, String> {
    cli::count(2, usize::MAX)(text)
        .map_err(|e| format!("{e} (leave --workers out for one server thread each)"))
}

/// The loads of `--configs`.
#[derive(Clone)]
struct Configs(Vec<Load>);

/// `--configs`: comma-separated CONNSxSIZExDEPTH, every number positive.
fn parse_configs(text: &str) -> Result<Configs, String> {
    let load = |config: &str| {
        let numbers: Option<Vec<usize>> =
            config.split('x').map(|n| n.trim().parse().ok().filter(|&n| n > 0)).collect();
        match numbers.as_deref() {
            Some(&[conns, size, depth]) => Ok(Load { conns, size, depth }),
            _ => Err(format!("bad config {config:?}: want CONNSxSIZExDEPTH, all positive")),
        }
    };
    text.split(',').map(load).collect::<Result<_, _>>().map(Configs)
}

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
    let args = Args::parse();
    let (secs, rounds) = if args.quick { (1.0, 1) } else { (SECS, ROUNDS) };
    let mut loads = args.configs.0;
    if let Some(conns) = args.conns {
        loads.iter_mut().for_each(|load| load.conns = conns);
    }
    Opts {
        secs: args.secs.map_or(Duration::from_secs_f64(secs), |s| s.0),
        warmup: args.warmup.0,
        rounds: args.rounds.unwrap_or(rounds),
        loads,
        pin: !args.no_pin,
        workers: args.workers,
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
                let s = run_load(&servers[i], *load, opts.warmup, opts.secs).unwrap_or_else(|e| {
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
            let med = |f: fn(&Sample) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
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
            median(&samples[0].iter().zip(&samples[1]).map(|(e, t)| f(e) / f(t)).collect::<Vec<_>>())
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
