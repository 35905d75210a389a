//! Scale: how many concurrent connections one evloop reactor holds, and what an idle one
//! costs in server memory.
//!
//! The bench builds and starts the `echo` example (release) as a child process, opens N
//! connections to it from this process, has every connection echo a message (each byte
//! verified), and reads the server's resident memory (`VmRSS` in `/proc/PID/status`) before
//! and after: `(RSS with N idle connections - RSS before) / N` is the server's memory per idle
//! connection. Kernel socket buffers are not in RSS; this is the reactor's own cost.
//!
//! Run: `cargo bench --bench scale` (10,000 connections) or
//!      `cargo bench --bench scale -- --conns 100000` (connections are spread over source
//!      addresses 127.0.x.y, 5,000 each, so the ephemeral port range is not exhausted).
//! Descriptor limits: the bench re-executes itself under `bash -c 'ulimit -n ...'` when the
//! soft limit is too low (as root, the hard limit is raised too). Everything stays on
//! loopback; the child is killed by its PID at the end, whatever happens.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use evloop_support::cli;
use socket2::{Domain, Socket, Type};

/// scale bench: N idle connections to the echo example, and the server's memory (RSS) per
/// idle connection.
#[derive(Parser)]
#[command(
    name = "scale",
    bin_name = "cargo bench --bench scale --",
    after_help = "More in the comment at the top of benches/scale.rs and in BENCHMARKS.md."
)]
struct Args {
    /// Concurrent connections (spread over source addresses 127.0.x.y, 5,000 each)
    #[arg(long, value_name = "N", value_parser = cli::count(1, usize::MAX), default_value_t = 10_000)]
    conns: usize,
    /// Bytes each connection echoes (64k, 1m, or bytes)
    #[arg(long, value_name = "BYTES", value_parser = cli::size(1, usize::MAX), default_value_t = 64)]
    size: usize,
    #[command(flatten)]
    _cargo: cli::CargoBench,
}

/// Kills and reaps the server when the bench ends, on every path.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    let Args { conns, size, .. } = Args::parse();

    // Client and server each need one descriptor per connection, plus slack.
    let needed = conns + 1024;
    if fd_limit(Limit::Soft) < needed as u64 && std::env::var_os("EVLOOP_SCALE_REEXEC").is_none() {
        let me = std::env::current_exe().unwrap();
        let hard = fd_limit(Limit::Hard);
        let line = format!(
            "ulimit -Hn {needed} 2>/dev/null || [ {hard} -ge {needed} ] || \
             {{ echo 'need {needed} descriptors but the hard limit is {hard} and cannot be raised here' >&2; exit 2; }}; \
             ulimit -n {needed} && exec '{}' --conns {conns} --size {size}",
            me.display()
        );
        let status =
            Command::new("bash").arg("-c").arg(line).env("EVLOOP_SCALE_REEXEC", "1").status().unwrap();
        std::process::exit(status.code().unwrap_or(1));
    }
    assert!(
        fd_limit(Limit::Soft) >= needed as u64,
        "need a descriptor limit of {needed}; ulimit -n is lower"
    );

    let echo = build_echo();
    let mut child = Command::new(echo)
        .args(["--addr", "127.0.0.1:0", "--max-conns", &(conns + 16).to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the echo example");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let server = Server(child);
    let addr: SocketAddr =
        line.trim().strip_prefix("listening on ").expect("listening line").parse().unwrap();
    let pid = server.0.id();
    println!("# reproduce: cargo bench --bench scale -- --conns {conns} --size {size}");

    // Warm the server up with a few connections so one-off allocations are in the baseline.
    for _ in 0..32 {
        let mut s = TcpStream::connect(addr).unwrap();
        round_trip(&mut s, &vec![1u8; size]);
    }
    std::thread::sleep(Duration::from_millis(200));
    let rss_before = rss_kib(pid);

    let base_host = 256 + (std::process::id() % 40_000);
    let started = Instant::now();
    let mut streams = Vec::with_capacity(conns);
    for i in 0..conns {
        // 28k ephemeral ports per source address: spread connections over 127.0.x.y,
        // 5,000 per address, starting at an address that depends on the process id, so
        // large runs fit and the TIME_WAIT left by earlier runs (or tests) is not in the way.
        let host = base_host + (i / 5_000) as u32;
        let source = Ipv4Addr::new(127, 0, (host >> 8) as u8, host as u8);
        streams.push(connect_from(source, addr).unwrap_or_else(|e| panic!("connection {i}: {e}")));
    }
    let connect_s = started.elapsed().as_secs_f64();

    // Every connection echoes one message, every byte verified, while all stay open.
    let started = Instant::now();
    for (i, stream) in streams.iter_mut().enumerate() {
        let msg: Vec<u8> = (0..size).map(|b| (i * 31 + b) as u8).collect();
        round_trip(stream, &msg);
    }
    let echo_s = started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(300));
    let rss_idle = rss_kib(pid);

    // And a second pass: still all served.
    for (i, stream) in streams.iter_mut().enumerate() {
        let msg: Vec<u8> = (0..size).map(|b| (i * 17 + b) as u8).collect();
        round_trip(stream, &msg);
    }
    let per_conn = (rss_idle.saturating_sub(rss_before)) as f64 * 1024.0 / conns as f64;
    println!("connections       {conns}");
    println!("connect time      {connect_s:.2} s");
    println!(
        "echo pass         {echo_s:.2} s ({:.0} round trips/s, each byte verified)",
        conns as f64 / echo_s
    );
    println!("server RSS before {rss_before} KiB, with {conns} idle connections {rss_idle} KiB");
    println!("RESULT conns={conns} rss_per_idle_conn_bytes={per_conn:.0} target<=2048");
    drop(streams);
}

/// Builds the echo example in release mode and returns its path.
fn build_echo() -> std::path::PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = env!("CARGO_MANIFEST_DIR");
    let status = Command::new(cargo)
        .args(["build", "--release", "--example", "echo"])
        .current_dir(root)
        .status()
        .expect("run cargo");
    assert!(status.success(), "building the echo example failed");
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| format!("{root}/target"));
    std::path::PathBuf::from(target).join("release/examples/echo")
}

fn connect_from(source: Ipv4Addr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    // Earlier runs leave thousands of ports in TIME_WAIT; SO_REUSEADDR lets bind(port 0)
    // pick them again instead of failing with "address in use".
    socket.set_reuse_address(true)?;
    socket.bind(&SocketAddr::V4(SocketAddrV4::new(source, 0)).into())?;
    socket.connect(&to.into())?;
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

fn round_trip(stream: &mut TcpStream, msg: &[u8]) {
    stream.write_all(msg).unwrap();
    let mut back = vec![0u8; msg.len()];
    stream.read_exact(&mut back).unwrap();
    assert_eq!(back, msg, "echo mismatch");
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

enum Limit {
    Soft,
    Hard,
}

/// The descriptor limit, from `/proc/self/limits` (no libc needed).
fn fd_limit(which: Limit) -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap_or("");
    let field = match which {
        Limit::Soft => 3,
        Limit::Hard => 4,
    };
    line.split_whitespace().nth(field).and_then(|v| v.parse().ok()).unwrap_or(1024)
}
