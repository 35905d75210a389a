//! The lab's command line, declared with `clap`'s derive: one subcommand per experiment,
//! every flag with its range checked while parsing, so a bad value is an error naming the
//! flag (exit status 2) before anything starts. `--help` on the lab and on each subcommand,
//! `--version`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::builder::TypedValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::protocol::{Wire, MAX_N, MAX_SLEEP_MS};
use crate::Model;

const MODELS: &str = "\
Models: serial, thread-per-conn, thread-pool, select, event-loop, event-loop+offload,
        fork-per-conn, prefork, fd-passing, procs-x-threads, event-loops (K reactors),
        fd-passing-loops (the parent passes connections to P children, a reactor each)

The protocol: a line `N` asks for fib(N), a line `sleep MS` for a sleep; with --protocol http,
GET /fib/N and GET /sleep/MS. LAB.md explains the experiments and their results.";

/// lab: classic server concurrency models side by side, serving fib(N) (CPU-bound) and
/// sleep MS (I/O-bound) requests.
#[derive(Debug, Parser)]
#[command(name = "lab", version, after_help = MODELS, subcommand_required = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one model (default address 127.0.0.1:7070); prints `listening on ADDR`.
    Serve(ServeArgs),
    /// Every model as its own process under the same load (C clients x R requests of
    /// fib(short), then the stall probe: one fib(long) beside short requests); medians of
    /// --rounds runs.
    Measure(MeasureArgs),
    /// Ten clients at once: for each model (Rust's and Python's), the time until all are
    /// answered for a CPU-bound job (fib(N), ~0.4 s) and an I/O-bound one (sleep).
    Burst(BurstArgs),
    /// `siege -b -c 100 -t 10s` (or the lab's own client) against each model over HTTP.
    Siege(SiegeArgs),
}

/// Pool sizes shared by the subcommands.
#[derive(Debug, Clone, Copy, Args)]
pub struct Pools {
    /// K pool threads, offload workers, threads per process, or event loops.
    #[arg(long, value_name = "K", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=1024).map(usize::from))]
    pub threads: usize,
    /// P worker processes of the prefork, fd-passing, fd-passing-loops and procs-x-threads
    /// models (procs-x-threads uses P x K threads).
    #[arg(long, value_name = "P", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256).map(usize::from))]
    pub processes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum YesNo {
    Yes,
    No,
}

/// The framing on the wire (see `protocol.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// `N` or `sleep MS`, one per line.
    Line,
    /// GET /fib/N and GET /sleep/MS over HTTP/1.1.
    Http,
}

impl From<Protocol> for Wire {
    fn from(protocol: Protocol) -> Wire {
        match protocol {
            Protocol::Line => Wire::Line,
            Protocol::Http => Wire::Http,
        }
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The model to run.
    #[arg(long)]
    pub model: Model,
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:7070")]
    pub addr: SocketAddr,
    #[arg(long, value_enum, default_value_t = Protocol::Line)]
    pub protocol: Protocol,
    #[command(flatten)]
    pub pools: Pools,
}

#[derive(Debug, Args)]
pub struct MeasureArgs {
    /// Comma-separated models (default: all).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub models: Option<Vec<Model>>,
    /// Client threads.
    #[arg(long, value_name = "C", default_value_t = 8, value_parser = at_least_one)]
    pub clients: usize,
    /// Requests per client, a new connection each (unless --keep-alive yes).
    #[arg(long, value_name = "R", default_value_t = 2000, value_parser = at_least_one)]
    pub requests: usize,
    /// N of the short requests.
    #[arg(long, value_name = "N", default_value_t = 15, value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_N)))]
    pub short: u32,
    /// N of the stall probe's long request (38: about 0.1 s).
    #[arg(long, value_name = "N", default_value_t = 38, value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_N)))]
    pub long: u32,
    /// Runs of each model (order rotated); medians printed.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = at_least_one)]
    pub rounds: usize,
    /// Each client makes its requests on one connection.
    #[arg(long, value_enum, default_value_t = YesNo::No)]
    pub keep_alive: YesNo,
    /// Draw the table (requests per second, stall) as an SVG chart into FILE.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    #[command(flatten)]
    pub pools: Pools,
}

#[derive(Debug, Args)]
pub struct BurstArgs {
    /// Clients that connect at the same instant, one request each.
    #[arg(long, value_name = "C", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=1000).map(usize::from))]
    pub clients: usize,
    /// N of the CPU-bound job (default: calibrated per implementation so one job alone
    /// takes about --job-seconds).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_N)))]
    pub n: Option<u32>,
    /// What one CPU-bound job alone should take when N is calibrated.
    #[arg(long, value_name = "SECONDS", default_value_t = 0.4, value_parser = job_seconds)]
    pub job_seconds: f64,
    /// The I/O-bound job: milliseconds each client's request sleeps.
    #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=MAX_SLEEP_MS))]
    pub sleep: u64,
    /// Comma-separated models (default: all; Python rows for those Python has).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub models: Option<Vec<Model>>,
    /// Measure Python's servers too (default: yes when python3 is found).
    #[arg(long, value_enum)]
    pub python: Option<YesNo>,
    /// Runs of each model (order rotated); each column's median printed.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = at_least_one)]
    pub rounds: usize,
    /// Draw the table as an SVG chart into FILE.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Write one JSON object per row into FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    #[command(flatten)]
    pub pools: Pools,
}

#[derive(Debug, Args)]
pub struct SiegeArgs {
    /// Comma-separated models (default: thread-per-conn, fork-per-conn, procs-x-threads,
    /// event-loop+offload, event-loops).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub models: Option<Vec<Model>>,
    /// Concurrent clients (siege -c).
    #[arg(long, value_name = "C", default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=1000).map(usize::from))]
    pub concurrency: usize,
    /// Seconds per model (siege -t).
    #[arg(long, value_name = "S", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub seconds: u64,
    /// The path every request asks for.
    #[arg(long, default_value = "/fib/15")]
    pub path: String,
    /// Measure Python's ThreadingMixIn and ForkingMixIn HTTPServers too (default: yes when
    /// python3 is found).
    #[arg(long, value_enum)]
    pub python: Option<YesNo>,
    /// Use the lab's own client even when siege is installed.
    #[arg(long)]
    pub own_client: bool,
    #[command(flatten)]
    pub pools: Pools,
}

fn at_least_one(raw: &str) -> Result<usize, String> {
    match raw.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

fn job_seconds(raw: &str) -> Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(s) if (0.001..=10.0).contains(&s) => Ok(s),
        Ok(_) => Err("must be from 0.001 to 10".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Parses `std::env::args`; on `--help`/`--version` prints and exits 0, on an error prints
/// it (naming the flag) with a usage line and exits 2.
pub fn parse() -> Cli {
    match Cli::try_parse() {
        Ok(cli) => cli,
        // No command at all: clap prints the help (status 2); say what was wrong first.
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            eprintln!("error: a command is needed: serve, measure, burst or siege\n");
            e.exit()
        }
        Err(e) => e.exit(),
    }
}
