//! The measuring side of the lab: starts each model as its own process (`lab serve`), drives
//! it with the same load, and prints one table row per model.
//!
//! Two loads per model:
//! - **short**: `clients` threads each make `requests` requests for fib(`short`), every one
//!   on a new connection (so a model's cost per connection shows, as in UNP's comparison):
//!   requests per second, latency percentiles, and the server's CPU time per request (its
//!   utime + stime from `/proc/PID/stat`, all threads, before and after).
//! - **stall**: one client asks for fib(`long`) while another keeps making short requests;
//!   how long those short requests took shows whether one slow request stalls everyone.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::plot::{self, Panel, Series};
use crate::protocol::{self, Wire};
use crate::server::{Lang, Server, Sizes};
use crate::Model;
use evloop_support::stats;

/// What to measure.
#[derive(Debug, Clone)]
pub struct Options {
    pub models: Vec<Model>,
    pub clients: usize,
    pub requests: usize,
    pub short: u32,
    pub long: u32,
    pub threads: usize,
    pub processes: usize,
    pub rounds: usize,
    /// Each client makes all its requests on one connection instead of one per request.
    pub keep_alive: bool,
    /// Draw the table as an SVG chart here.
    pub plot: Option<std::path::PathBuf>,
}

/// Every wait on a socket is bounded: a model that stalls shows up as slow, never as a hang.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs every model `rounds` times, in an order rotated each round (this machine's speed
/// drifts, and rotating spreads its slow phases over the models), and prints the median of
/// each column.
pub fn run(options: &Options) -> io::Result<()> {
    crate::server::stop_all_on_interrupt();
    crate::server::warn_if_host_busy();
    let connections = if options.keep_alive { "one connection per client" } else { "a new connection each" };
    let summary = if options.rounds > 1 {
        format!("median of {} rounds", options.rounds)
    } else {
        "one round".to_string()
    };
    println!(
        "{} clients x {} requests of fib({}), {connections}; stall probe: fib({}) beside short requests; {summary}",
        options.clients, options.requests, options.short, options.long
    );
    let models = &options.models;
    let mut rows: Vec<Vec<Row>> = models.iter().map(|_| Vec::new()).collect();
    // Progress on stderr while it measures (hidden when stderr is not a terminal), as in
    // `lab burst`: a run of every model takes a while, and silence looks like a hang.
    let bar = ProgressBar::new((options.rounds * models.len()) as u64);
    bar.set_style(
        ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    for round in 0..options.rounds {
        for turn in 0..models.len() {
            let at = (turn + round) % models.len();
            bar.set_message(format!("round {}: {}", round + 1, models[at].name()));
            let sizes = Sizes { threads: options.threads, processes: options.processes };
            let mut server = Server::start(Lang::Rust, models[at], Wire::Line, sizes)?
                .ok_or_else(|| io::Error::other("no such model"))?;
            let outcome = measure(&server, options);
            server.stop();
            rows[at].push(outcome?);
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    println!(
        "{:<20} {:>9} {:>9} {:>9} {:>11} {:>13} {:>9}",
        "model", "req/s", "p50_us", "p99_us", "cpu_us/req", "stall_max_ms", "long_ms"
    );
    let mut medians = Vec::with_capacity(models.len());
    for (model, rows) in models.iter().zip(&rows) {
        let median = |column: fn(&Row) -> f64| stats::median(&rows.iter().map(column).collect::<Vec<_>>());
        println!(
            "{:<20} {:>9.0} {:>9.0} {:>9.0} {:>11.1} {:>13.1} {:>9.1}",
            model.name(),
            median(|row| row.per_second),
            median(|row| row.p50_us),
            median(|row| row.p99_us),
            median(|row| row.cpu_us),
            median(|row| row.stall_max_ms),
            median(|row| row.long_ms)
        );
        medians.push((median(|row| row.per_second), median(|row| row.stall_max_ms)));
    }
    // /proc counts CPU in 10 ms ticks (and only there are exited threads and reaped
    // children counted), so a short run's cpu_us/req is coarse: say how coarse.
    let fewest = rows.iter().flatten().map(|row| row.cpu_ticks).min().unwrap_or(0);
    if fewest < 100 {
        let error =
            100u64.checked_div(fewest).map_or("unmeasured".to_string(), |pct| format!("within ±{pct}%"));
        println!(
            "note: cpu_us/req comes from 10 ms clock ticks; the smallest run counted {fewest} ticks, so it is \
             {error}: raise --requests for a finer figure"
        );
    }
    if let Some(path) = &options.plot {
        draw(path, options, &medians)?;
        println!("chart: {}", path.display());
    }
    Ok(())
}

/// The chart: requests per second, and the slowest short request beside a long one.
fn draw(path: &std::path::Path, options: &Options, medians: &[(f64, f64)]) -> io::Result<()> {
    let categories: Vec<String> = options.models.iter().map(|model| model.name().to_string()).collect();
    let series = |values: Vec<f64>| Series {
        name: "rust".into(),
        values: values.into_iter().map(Some).collect(),
        markers: vec![None; medians.len()],
    };
    let panels = [
        Panel {
            title: format!(
                "{} clients x {} requests of fib({}): throughput",
                options.clients, options.requests, options.short
            ),
            y_label: "requests per second (higher is better)".into(),
            categories: categories.clone(),
            series: vec![series(medians.iter().map(|m| m.0).collect())],
        },
        Panel {
            title: format!("stall probe: the slowest short request while one fib({}) runs", options.long),
            y_label: "milliseconds (lower is better)".into(),
            categories,
            series: vec![series(medians.iter().map(|m| m.1).collect())],
        },
    ];
    let title = if options.rounds > 1 {
        format!("lab measure (median of {} rounds)", options.rounds)
    } else {
        "lab measure (one round)".to_string()
    };
    plot::grouped_bars(path, &title, &panels)
}

struct Row {
    per_second: f64,
    p50_us: f64,
    p99_us: f64,
    cpu_us: f64,
    /// The server CPU behind `cpu_us`, in `/proc`'s 10 ms clock ticks: its precision.
    cpu_ticks: u64,
    stall_max_ms: f64,
    long_ms: f64,
}

fn measure(server: &Server, options: &Options) -> io::Result<Row> {
    let expected = format!("{}\n", protocol::fib(options.short));
    request(source(0, 0), server.addr, options.short, &expected)?; // warm-up
    let cpu_before = server.cpu_time()?;
    let started = Instant::now();
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(options.clients * options.requests)));
    let workers: Vec<_> = (0..options.clients)
        .map(|client| {
            let (addr, expected, latencies) = (server.addr, expected.clone(), Arc::clone(&latencies));
            let (requests, n, keep_alive) = (options.requests, options.short, options.keep_alive);
            thread::spawn(move || -> io::Result<()> {
                let mut mine = Vec::with_capacity(requests);
                let mut kept =
                    if keep_alive { Some(Connection::open(source(client, 0), addr)?) } else { None };
                for round in 0..requests {
                    let sent = Instant::now();
                    match &mut kept {
                        Some(connection) => connection.ask(n, &expected)?,
                        None => request(source(client, round), addr, n, &expected)?,
                    }
                    mine.push(sent.elapsed());
                }
                latencies.lock().unwrap().extend(mine);
                Ok(())
            })
        })
        .collect();
    for worker in workers {
        worker.join().map_err(|_| io::Error::other("a client thread panicked"))??;
    }
    let elapsed = started.elapsed();
    let cpu = server.cpu_time()?.saturating_sub(cpu_before);
    let mut latencies = std::mem::take(&mut *latencies.lock().unwrap());
    latencies.sort_unstable();
    let percentile = |q: f64| stats::percentile_sorted(&latencies, q).unwrap_or_default().as_secs_f64() * 1e6;
    let total = latencies.len() as f64;
    let (stall_max, long) = stall_probe(server.addr, options.short, options.long)?;
    Ok(Row {
        per_second: total / elapsed.as_secs_f64(),
        p50_us: percentile(0.5),
        p99_us: percentile(0.99),
        cpu_us: cpu.as_secs_f64() * 1e6 / total,
        cpu_ticks: (cpu.as_millis() / 10) as u64,
        stall_max_ms: stall_max.as_secs_f64() * 1e3,
        long_ms: long.as_secs_f64() * 1e3,
    })
}

/// Asks for fib(`long`) on one connection and, until it is answered, keeps making short
/// requests on others. Returns the slowest short request and the long one's duration.
fn stall_probe(addr: SocketAddr, short: u32, long: u32) -> io::Result<(Duration, Duration)> {
    let long_expected = format!("{}\n", protocol::fib(long));
    let started = Instant::now();
    let slow =
        thread::spawn(move || request(source(0, 0), addr, long, &long_expected).map(|()| started.elapsed()));
    let expected = format!("{}\n", protocol::fib(short));
    let mut slowest = Duration::ZERO;
    // At least one short request, made while the long one is (most likely) being computed.
    thread::sleep(Duration::from_millis(5));
    for round in 0.. {
        let sent = Instant::now();
        request(source(1, round), addr, short, &expected)?;
        slowest = slowest.max(sent.elapsed());
        if slow.is_finished() {
            break;
        }
    }
    let long_took = slow.join().map_err(|_| io::Error::other("the long request panicked"))??;
    Ok((slowest, long_took))
}

/// The source address of a client's `round`-th connection: 127.0.x.y, spread over 250 x
/// (one per client) addresses. Tens of thousands of short connections leave as many ports
/// in `TIME_WAIT` for a minute; from a single address, finding a free ephemeral port came
/// to cost ~10 ms per connect here, for every model alike, and the table measured that.
fn source(client: usize, round: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 1 + (round % 250) as u8, 1 + (client % 250) as u8)
}

/// One request on a new connection from `source`; the reply must be `expected`.
fn request(source: Ipv4Addr, addr: SocketAddr, n: u32, expected: &str) -> io::Result<()> {
    Connection::open(source, addr)?.ask(n, expected)
}

/// A client connection, with its buffered reading side.
struct Connection {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Connection {
    fn open(source: Ipv4Addr, addr: SocketAddr) -> io::Result<Connection> {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        // Lets bind(port 0) pick ports still in TIME_WAIT from earlier connections.
        socket.set_reuse_address(true)?;
        socket.bind(&SocketAddr::V4(SocketAddrV4::new(source, 0)).into())?;
        socket.connect(&addr.into())?;
        let stream = TcpStream::from(socket);
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        Ok(Connection { reader: BufReader::new(stream.try_clone()?), stream })
    }

    /// Asks for fib(`n`); the reply must be `expected`.
    fn ask(&mut self, n: u32, expected: &str) -> io::Result<()> {
        self.stream.write_all(format!("{n}\n").as_bytes())?;
        let mut reply = String::new();
        self.reader.read_line(&mut reply)?;
        if reply != expected {
            return Err(io::Error::other(format!("fib({n}): expected {expected:?}, got {reply:?}")));
        }
        Ok(())
    }
}
