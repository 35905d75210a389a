//! `lab siege`: the PooledProcessMixIn write-up's benchmark, `siege -b -c 100 -t 10s`, against
//! each model serving HTTP (`lab serve --protocol http`) and against Python's own servers:
//! `ThreadingMixIn` and `ForkingMixIn` `HTTPServer`s, and processes × threads (that
//! write-up's design). Each request is `GET /fib/15` (the path is a flag) on a new connection
//! (siege's default `connection = close`).
//!
//! When siege is not installed (or `--own-client`), the lab's own client does the same:
//! C threads, each making requests one after another with `Connection: close` until the time
//! is up. It is said once which client measured.
//!
//! Per model: transactions, elapsed time, transactions per second, failures, and the server's
//! CPU time per transaction (from `/proc`, all its threads and processes).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::cli::SiegeArgs;
use crate::protocol::Wire;
use crate::server::{self, Lang, Server, Sizes};
use crate::{sys, Model};

const DEFAULT_MODELS: [Model; 5] = [
    Model::ThreadPerConn,
    Model::ForkPerConn,
    Model::ProcsThreads,
    Model::EventLoopOffload,
    Model::EventLoops,
];

/// Python's HTTP servers: socketserver's two mix-ins over `http.server.HTTPServer`, and
/// processes × threads (the pooled-process mix-in's design) with `http.server`'s handler.
const PYTHON_MODELS: [Model; 3] = [Model::ThreadPerConn, Model::ForkPerConn, Model::ProcsThreads];

/// What one load run counted.
#[derive(Debug, Clone, Copy)]
struct Load {
    transactions: u64,
    elapsed_s: f64,
    failed: u64,
}

pub fn run(args: SiegeArgs) -> io::Result<()> {
    server::stop_all_on_interrupt();
    server::warn_if_host_busy();
    let models = args.models.clone().unwrap_or_else(|| DEFAULT_MODELS.to_vec());
    let mut plan: Vec<(Lang, Model)> = models.iter().map(|&m| (Lang::Rust, m)).collect();
    if server::python_available(args.python) {
        // Python rows for the models asked for only (all of its three by default).
        plan.extend(PYTHON_MODELS.iter().filter(|m| models.contains(m)).map(|&m| (Lang::Python, m)));
    }
    let siege = !args.own_client && siege_found();
    if !siege && !args.own_client {
        eprintln!("siege not found (apt-get install siege): the lab's own client measures instead");
    }
    println!(
        "siege -b -c {} -t {}s http://ADDR{} per model (client: siege, or the lab's own; a new connection per request)",
        args.concurrency, args.seconds, args.path
    );
    println!(
        "{:<20} {:<6} {:<22} {:>12} {:>9} {:>9} {:>7} {:>11} {:>7}",
        "model", "impl", "server", "transactions", "elapsed_s", "req/s", "failed", "cpu_us/req", "client"
    );
    let sizes = Sizes { threads: args.pools.threads, processes: args.pools.processes };
    for (lang, model) in plan {
        if lang == Lang::Python && server::python_script(model).is_none() {
            continue;
        }
        // siege's end-of-run deadlock strikes at random (see `run_siege`): a second try, on
        // a fresh server, usually completes, so that the rows compare the same client.
        let mut measured = None;
        for attempt in 1..=if siege { 2 } else { 0 } {
            let server = Server::start(lang, model, Wire::Http, sizes)?.expect("a model of this language");
            let cpu_before = server.cpu_time()?;
            let url = format!("http://{}{}", server.addr, args.path);
            if let Some(load) = run_siege(&url, args.concurrency, args.seconds)? {
                measured = Some((load, server.cpu_time()?.saturating_sub(cpu_before), "siege"));
                break;
            }
            eprintln!(
                "{} {}: siege did not exit 30 s after its time was up (try {attempt} of 2)",
                lang.name(),
                model.name()
            );
        }
        let (load, cpu, client) = match measured {
            Some(measured) => measured,
            None => {
                if siege {
                    eprintln!("{} {}: the lab's own client measures this model", lang.name(), model.name());
                }
                let server =
                    Server::start(lang, model, Wire::Http, sizes)?.expect("a model of this language");
                let cpu_before = server.cpu_time()?;
                let load =
                    own_client(server.addr, &args.path, args.concurrency, Duration::from_secs(args.seconds));
                (load, server.cpu_time()?.saturating_sub(cpu_before), "lab")
            }
        };
        let per_request = cpu.as_secs_f64() * 1e6 / load.transactions.max(1) as f64;
        println!(
            "{:<20} {:<6} {:<22} {:>12} {:>9.2} {:>9.0} {:>7} {:>11.0} {:>7}",
            model.name(),
            lang.name(),
            describe(lang, model, sizes),
            load.transactions,
            load.elapsed_s,
            load.transactions as f64 / load.elapsed_s.max(1e-9),
            load.failed,
            per_request,
            client
        );
    }
    Ok(())
}

/// What serves, in the write-ups' terms.
fn describe(lang: Lang, model: Model, sizes: Sizes) -> String {
    match (lang, model) {
        (Lang::Python, Model::ThreadPerConn) => "ThreadingMixIn".into(),
        (Lang::Python, Model::ForkPerConn) => "ForkingMixIn".into(),
        (Lang::Python, Model::ProcsThreads) => {
            format!("{} procs x {} threads", sizes.processes, sizes.threads)
        }
        (_, Model::ProcsThreads) => format!("{} procs x {} threads", sizes.processes, sizes.threads),
        (_, Model::EventLoops) => format!("{} loops", sizes.threads),
        (_, Model::EventLoopOffload) => format!("1 loop + {} workers", sizes.threads),
        (_, Model::ThreadPool) => format!("{} threads", sizes.threads),
        (_, Model::Prefork | Model::FdPassing) => format!("{} processes", sizes.processes),
        (_, Model::FdPassingLoops) => format!("1 acceptor + {} loops", sizes.processes),
        _ => model.name().into(),
    }
}

fn siege_found() -> bool {
    Command::new("siege")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Runs siege in benchmark mode and reads its summary (siege 4 prints it as JSON on stdout;
/// older versions as text on stderr: both are searched). `None` when siege does not exit
/// within 30 s of its time being up: siege 4.0.7 was seen to deadlock at the end of a timed
/// run against a pool of 16 blocking workers (all its threads waiting on a futex, its
/// sockets in CLOSE-WAIT; siege's own tracker has "hangs forever on 'Lifting the server
/// siege...'", JoeDog/siege#66); it is then killed, by PID.
fn run_siege(url: &str, concurrency: usize, seconds: u64) -> io::Result<Option<Load>> {
    let mut command = Command::new("siege");
    command.args(["-b", "-c", &concurrency.to_string(), "-t", &format!("{seconds}S"), url]);
    sys::kill_with_parent(&mut command);
    let mut child = command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    server::track(child.id());
    let read_all = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = read_all(Box::new(child.stdout.take().expect("piped")));
    let stderr = read_all(Box::new(child.stderr.take().expect("piped")));
    let deadline = Instant::now() + Duration::from_secs(seconds + 30);
    let finished = loop {
        if child.try_wait()?.is_some() {
            break true;
        }
        if Instant::now() > deadline {
            server::kill_tree(child.id());
            let _ = child.wait();
            break false;
        }
        thread::sleep(Duration::from_millis(50));
    };
    server::untrack(child.id());
    let text = format!("{}\n{}", stdout.join().unwrap_or_default(), stderr.join().unwrap_or_default());
    if !finished {
        return Ok(None);
    }
    let field = |names: &[&str]| names.iter().find_map(|name| summary_number(&text, name));
    match (
        field(&["\"transactions\"", "Transactions:"]),
        field(&["\"elapsed_time\"", "Elapsed time:"]),
        field(&["\"failed_transactions\"", "Failed transactions:"]),
    ) {
        (Some(transactions), Some(elapsed_s), Some(failed)) => {
            Ok(Some(Load { transactions: transactions as u64, elapsed_s, failed: failed as u64 }))
        }
        _ => Err(io::Error::other(format!("no summary in siege's output:\n{text}"))),
    }
}

/// The number after `name` (and a colon, spaces or a quote) in siege's summary.
fn summary_number(text: &str, name: &str) -> Option<f64> {
    let at = text.find(name)? + name.len();
    let rest = text[at..].trim_start_matches([':', ' ', '\t', '"']);
    let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// The fallback: `concurrency` threads, each asking for `path` on a new connection, one
/// request after another, until `duration` is up. A request fails unless it gets a 200.
fn own_client(addr: SocketAddr, path: &str, concurrency: usize, duration: Duration) -> Load {
    let (done, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let started = Instant::now();
    let deadline = started + duration;
    let request = format!("GET {path} HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n");
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (done, failed, request) = (Arc::clone(&done), Arc::clone(&failed), request.clone());
            thread::spawn(move || {
                while Instant::now() < deadline {
                    let counter = if get(addr, &request) { &done } else { &failed };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.join();
    }
    Load {
        transactions: done.load(Ordering::Relaxed),
        elapsed_s: started.elapsed().as_secs_f64(),
        failed: failed.load(Ordering::Relaxed),
    }
}

/// One request on a new connection; `true` for a `200` read to the end.
fn get(addr: SocketAddr, request: &str) -> bool {
    let exchange = || -> io::Result<bool> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(30))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.write_all(request.as_bytes())?;
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply)?;
        Ok(reply.starts_with(b"HTTP/1.1 200 ") || reply.starts_with(b"HTTP/1.0 200 "))
    };
    exchange().unwrap_or(false)
}
