//! UDP echo: evloop's datagram endpoint against a tokio `UdpSocket` echo and a C
//! `recvfrom`/`sendto` loop, measured in the same run: datagrams per second and the server's
//! CPU per datagram, at 64 and 1,400 bytes.
//!
//! Run: `cargo bench --bench udp` (`-- --secs 3 --rounds 5` to change the defaults).
//!
//! Each server runs alone, in rounds that take the servers in turn (paired: each round's
//! ratio compares runs seconds apart, on the same noisy 2-core machine). The servers' CPU is
//! read from the kernel's schedstat for the serving thread (nanoseconds, not clock ticks),
//! so the client's own CPU is not counted. The client is one thread with four sockets, each
//! keeping 16 datagrams in flight; a datagram not back within 100 ms counts as lost.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::Parser;
use evloop::{Config, DatagramAddr, DatagramCx, Datagrams, Reactor};
use evloop_support::cli::{self, Secs};
use evloop_support::stats::median;

const SOCKETS: usize = 4;
const WINDOW: usize = 16;

/// UDP echo bench: evloop's datagram endpoint against a tokio UdpSocket echo and a C
/// recvfrom/sendto loop, at 64 and 1,400 bytes: datagrams per second and server CPU per
/// datagram, medians over rounds that take the servers in turn.
#[derive(Parser)]
#[command(
    name = "udp",
    bin_name = "cargo bench --bench udp --",
    after_help = "More in the comment at the top of benches/udp/main.rs and in BENCHMARKS.md."
)]
struct Args {
    /// Measured seconds per run
    #[arg(long, value_name = "S", value_parser = cli::positive_secs, default_value_t = Secs::from(2))]
    secs: Secs,
    /// Rounds per datagram size
    #[arg(long, value_name = "N", value_parser = cli::count(1, usize::MAX), default_value_t = 3)]
    rounds: usize,
    #[command(flatten)]
    _cargo: cli::CargoBench,
}

struct Echo;

impl Datagrams for Echo {
    fn on_datagram(&mut self, datagram: &[u8], from: &DatagramAddr, cx: &mut DatagramCx<'_, Self>) {
        let _ = cx.send_to(datagram, from);
    }
}

/// A server under test: where it listens, where its CPU time is read, how to stop it.
struct Server {
    addr: SocketAddr,
    schedstat: PathBuf,
    stop: Box<dyn FnOnce()>,
}

/// The calling thread's schedstat file, for a reader on another thread.
fn this_thread_schedstat() -> PathBuf {
    let link = std::fs::read_link("/proc/thread-self").expect("/proc/thread-self");
    PathBuf::from("/proc").join(link).join("schedstat")
}

/// CPU time in nanoseconds so far (schedstat's first field).
fn cpu_ns(schedstat: &PathBuf) -> u64 {
    let text = std::fs::read_to_string(schedstat).expect("schedstat");
    text.split_whitespace().next().and_then(|n| n.parse().ok()).expect("schedstat's first field")
}

fn evloop_server() -> Server {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reactor: Reactor = Reactor::new(Config::default()).unwrap();
        let (_id, addr) = reactor.bind_udp("127.0.0.1:0".parse().unwrap(), Echo).unwrap();
        tx.send((addr, this_thread_schedstat(), reactor.handle())).unwrap();
        reactor.run().unwrap();
    });
    let (addr, schedstat, handle) = rx.recv().unwrap();
    Server { addr, schedstat, stop: Box::new(move || handle.shutdown()) }
}

fn tokio_server() -> Server {
    let (tx, rx) = mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            tx.send((socket.local_addr().unwrap(), this_thread_schedstat())).unwrap();
            let mut buffer = vec![0; 65_536];
            let serve = async {
                loop {
                    let (n, from) = socket.recv_from(&mut buffer).await.unwrap();
                    let _ = socket.send_to(&buffer[..n], from).await;
                }
            };
            tokio::select! {
                _ = serve => {}
                _ = stop_rx => {}
            }
        });
    });
    let (addr, schedstat) = rx.recv().unwrap();
    Server {
        addr,
        schedstat,
        stop: Box::new(move || {
            let _ = stop_tx.send(());
        }),
    }
}

fn c_server(binary: &PathBuf) -> Server {
    let port = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child: Child = Command::new(binary).arg(port.to_string()).stdout(Stdio::piped()).spawn().unwrap();
    let mut ready = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut ready)
        .unwrap();
    assert_eq!(ready.trim(), "ready");
    let schedstat = PathBuf::from(format!("/proc/{}/schedstat", child.id()));
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    Server {
        addr,
        schedstat,
        stop: Box::new(move || {
            let _ = child.kill();
            let _ = child.wait();
        }),
    }
}

/// Echoes for `secs` and returns (datagrams echoed, lost, server CPU ns).
fn load(server: &Server, size: usize, secs: f64) -> (u64, u64, u64) {
    let sockets: Vec<UdpSocket> = (0..SOCKETS)
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.connect(server.addr).unwrap();
            s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
            s
        })
        .collect();
    let payload = vec![0x5a; size];
    let mut buffer = vec![0; 65_536];
    let (mut echoed, mut lost) = (0u64, 0u64);
    // A short warm-up, then the measured window.
    let mut run = |until: Instant, echoed: &mut u64, lost: &mut u64| {
        while Instant::now() < until {
            for socket in &sockets {
                for _ in 0..WINDOW {
                    socket.send(&payload).unwrap();
                }
            }
            for socket in &sockets {
                for _ in 0..WINDOW {
                    match socket.recv(&mut buffer) {
                        Ok(n) if n == size => *echoed += 1,
                        _ => *lost += 1,
                    }
                }
            }
        }
    };
    run(Instant::now() + Duration::from_millis(300), &mut 0, &mut 0);
    let cpu_before = cpu_ns(&server.schedstat);
    run(Instant::now() + Duration::from_secs_f64(secs), &mut echoed, &mut lost);
    (echoed, lost, cpu_ns(&server.schedstat) - cpu_before)
}

fn main() {
    let args = Args::parse();
    let (secs, rounds) = (args.secs.0.as_secs_f64(), args.rounds);
    let out = std::env::temp_dir().join(format!("evloop-c-udp-echo-{}", std::process::id()));
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/udp/c_udp_echo.c");
    let built = Command::new("cc").args(["-O2", "-o"]).arg(&out).arg(source).status();
    assert!(built.is_ok_and(|s| s.success()), "cc could not build {source}");
    println!("UDP echo, {SOCKETS} client sockets x {WINDOW} in flight, {secs} s per run, {rounds} rounds (medians)");
    println!(
        "{:<8} {:>6} {:>12} {:>14} {:>10} {:>8}",
        "server", "bytes", "datagrams/s", "CPU ns/dgram", "vs tokio", "lost"
    );
    for size in [64, 1_400] {
        let names = ["evloop", "tokio", "c"];
        let mut rates = vec![Vec::new(); 3];
        let mut costs = vec![Vec::new(); 3];
        let mut ratios = vec![Vec::new(); 3];
        let mut losses = [0u64; 3];
        for _ in 0..rounds {
            let mut round_cost = [0.0; 3];
            for (i, name) in names.iter().enumerate() {
                let server = match *name {
                    "evloop" => evloop_server(),
                    "tokio" => tokio_server(),
                    _ => c_server(&out),
                };
                let (echoed, lost, cpu) = load(&server, size, secs);
                (server.stop)();
                rates[i].push(echoed as f64 / secs);
                round_cost[i] = cpu as f64 / echoed.max(1) as f64;
                costs[i].push(round_cost[i]);
                losses[i] += lost;
            }
            for i in 0..3 {
                ratios[i].push(round_cost[i] / round_cost[1]);
            }
        }
        for (i, name) in names.iter().enumerate() {
            println!(
                "{name:<8} {size:>6} {:>12.0} {:>14.0} {:>9.2}x {:>8}",
                median(&rates[i]),
                median(&costs[i]),
                median(&ratios[i]),
                losses[i]
            );
        }
    }
    let _ = std::fs::remove_file(&out);
}
