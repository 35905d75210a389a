//! `lab burst`: the experiment every write-up of server concurrency models is built on. C
//! clients (default ten) connect at the same instant and each sends one request; for each
//! model, how long until all C are answered, and the fastest and slowest of them.
//!
//! Two jobs per model, one after the other on the same server:
//! - **CPU-bound**: fib(N), N calibrated per implementation so that one job alone takes
//!   about 0.4 s (`--n` fixes it). Ideal: ⌈C / cores⌉ × one job, every core busy.
//! - **I/O-bound**: `sleep MS` (`--sleep`, default 1000). Ideal: one sleep, all at once.
//!
//! Rust's models and Python's (the files in `python/`, when `python3` is there) are measured
//! by the same client in the same run. CPython's recursive fib is 50-100× slower, so each
//! implementation calibrates its own N on its serial server: the columns then compare
//! shapes — how many "one jobs" C clients cost — and N is a column of its own.
//!
//! Data flow: calibrate (per language) → per model: start its server, time one job alone,
//! the CPU burst, the I/O burst, stop it → print the table, write `--json` and `--plot`.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::BurstArgs;
use crate::plot::{self, Panel, Series};
use crate::protocol::{Wire, MAX_N};
use crate::server::{self, Lang, Server, Sizes};
use crate::Model;
use evloop_support::stats;

/// Every wait on a socket is bounded: a model that stalls shows up as slow, never as a hang.
const IO_TIMEOUT: Duration = Duration::from_secs(300);

/// One row of the table: one model in one language.
#[derive(Debug, Clone)]
pub struct Row {
    pub model: Model,
    pub lang: Lang,
    pub n: u32,
    /// One fib(N) alone on this model's server.
    pub one_cpu_s: f64,
    pub cpu: Burst,
    /// The server's CPU time (all its threads and processes) during the CPU burst.
    pub cpu_server_s: f64,
    pub io: Burst,
    pub cpu_ideal_s: f64,
    pub io_ideal_s: f64,
}

/// C simultaneous requests: until the last answer, and the fastest and slowest request.
#[derive(Debug, Clone, Copy)]
pub struct Burst {
    pub wall_s: f64,
    pub fastest_s: f64,
    pub slowest_s: f64,
}

pub fn run(args: BurstArgs) -> io::Result<()> {
    server::stop_all_on_interrupt();
    server::warn_if_host_busy();
    let models = args.models.clone().unwrap_or_else(|| Model::ALL.to_vec());
    let mut langs = vec![Lang::Rust];
    if server::python_available(args.python) {
        langs.push(Lang::Python);
    }
    let sizes = Sizes { threads: args.pools.threads, processes: args.pools.processes };
    let cores = thread::available_parallelism().map_or(1, usize::from);
    let plan: Vec<(Lang, Model)> = langs
        .iter()
        .flat_map(|&lang| models.iter().filter(move |&&m| has_model(lang, m)).map(move |&m| (lang, m)))
        .collect();
    let calibrations = if args.n.is_none() { langs.len() } else { 0 };
    let bar = ProgressBar::new((calibrations + plan.len() * args.rounds) as u64);
    bar.set_style(
        ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    // N per language: fixed, or calibrated once.
    let mut jobs: Vec<(Lang, u32)> = Vec::new();
    for &lang in &langs {
        match args.n {
            Some(n) => jobs.push((lang, n)),
            None => {
                bar.set_message(format!("{}: calibrating N", lang.name()));
                jobs.push((lang, calibrate(lang, sizes, args.job_seconds)?));
                bar.inc(1);
            }
        }
    }
    // Every model once per round, in an order rotated each round (this machine's speed
    // drifts with the other work on it, and rotating spreads that over the models).
    let mut samples: Vec<Vec<Row>> = plan.iter().map(|_| Vec::new()).collect();
    for round in 0..args.rounds {
        for turn in 0..plan.len() {
            let at = (turn + round) % plan.len();
            let (lang, model) = plan[at];
            let &(_, n) = jobs.iter().find(|job| job.0 == lang).expect("every language has its N");
            bar.set_message(format!("round {}: {} {}", round + 1, lang.name(), model.name()));
            samples[at].push(measure(lang, model, n, &args, sizes, cores)?);
            bar.inc(1);
        }
    }
    let mut rows: Vec<Row> = samples.iter().map(|rows| median(rows)).collect();
    bar.finish_and_clear();
    // A Rust row and a Python row for each model, in the models' order.
    rows.sort_by_key(|row| (Model::ALL.iter().position(|&m| m == row.model), row.lang != Lang::Rust));
    print_table(&rows, args.clients, cores, args.sleep, args.rounds);
    if let Some(path) = &args.json {
        write_json(path, &rows, args.clients, cores, args.sleep, args.rounds)?;
    }
    if let Some(path) = &args.plot {
        let job = match args.n {
            Some(n) => format!("one fib({n}) each"),
            None => format!("one fib(N) each, N calibrated to ~{} s per implementation", args.job_seconds),
        };
        draw(path, &rows, (args.clients, cores, args.sleep, args.rounds), &job)?;
        println!("chart: {}", path.display());
    }
    Ok(())
}

/// One model in one language, on a server of its own: one job alone, then the two bursts.
/// The ideal is counted in this server's own "one job", measured just before the burst,
/// so that the machine's drift (other work on it) moves both alike.
fn measure(
    lang: Lang,
    model: Model,
    n: u32,
    args: &BurstArgs,
    sizes: Sizes,
    cores: usize,
) -> io::Result<Row> {
    let mut server = Server::start(lang, model, Wire::Line, sizes)?.expect("planned models exist");
    let one_cpu_s = time_one(server.addr, n)?;
    let cpu_before = server.cpu_time()?;
    let cpu = burst(server.addr, args.clients, &format!("{n}\n"), &format!("{}\n", fib_fast(n)))?;
    let cpu_server_s = server.cpu_time()?.saturating_sub(cpu_before).as_secs_f64();
    let sleep = format!("sleep {}\n", args.sleep);
    let io = burst(server.addr, args.clients, &sleep, &format!("slept {}\n", args.sleep))?;
    server.stop();
    Ok(Row {
        model,
        lang,
        n,
        one_cpu_s,
        cpu,
        cpu_server_s,
        io,
        cpu_ideal_s: args.clients.div_ceil(cores) as f64 * one_cpu_s,
        io_ideal_s: args.sleep as f64 / 1000.0,
    })
}

/// Each column's median over the rounds (columns separately: a row is not one round).
fn median(rows: &[Row]) -> Row {
    let of = |column: &dyn Fn(&Row) -> f64| stats::median(&rows.iter().map(column).collect::<Vec<_>>());
    let burst = |pick: &dyn Fn(&Row) -> Burst| Burst {
        wall_s: of(&|r| pick(r).wall_s),
        fastest_s: of(&|r| pick(r).fastest_s),
        slowest_s: of(&|r| pick(r).slowest_s),
    };
    Row {
        one_cpu_s: of(&|r| r.one_cpu_s),
        cpu: burst(&|r| r.cpu),
        cpu_server_s: of(&|r| r.cpu_server_s),
        io: burst(&|r| r.io),
        cpu_ideal_s: of(&|r| r.cpu_ideal_s),
        ..rows[0].clone()
    }
}

fn has_model(lang: Lang, model: Model) -> bool {
    lang == Lang::Rust || server::python_script(model).is_some()
}

/// Finds the N whose fib(N) alone takes about `target` seconds on `lang`'s serial server. Each step of N multiplies the time by the golden ratio, so from one
/// measurement the next guess is log_φ(target / t) steps away; the jump is capped because
/// very short times are mostly round trip.
fn calibrate(lang: Lang, sizes: Sizes, target: f64) -> io::Result<u32> {
    const PHI: f64 = 1.618_034;
    let server = Server::start(lang, Model::Serial, Wire::Line, sizes)?.expect("every language has serial");
    let mut n = 20;
    let mut seconds = time_one(server.addr, n)?;
    for _ in 0..12 {
        let steps = ((target / seconds.max(1e-6)).ln() / PHI.ln()).round() as i64;
        let next = (i64::from(n) + steps.clamp(-3, 8)).clamp(1, i64::from(MAX_N)) as u32;
        if next == n {
            break;
        }
        n = next;
        seconds = time_one(server.addr, n)?;
    }
    Ok(n)
}

/// One fib(`n`) alone: the better of two runs (the first may pay for warming up).
fn time_one(addr: SocketAddr, n: u32) -> io::Result<f64> {
    let expected = format!("{}\n", fib_fast(n));
    let mut best = f64::INFINITY;
    for _ in 0..2 {
        let started = Instant::now();
        ask(addr, &format!("{n}\n"), &expected)?;
        best = best.min(started.elapsed().as_secs_f64());
    }
    Ok(best)
}

/// `clients` threads connect and send `request` at the same instant (released together by
/// a barrier); each reply must be `expected`.
fn burst(addr: SocketAddr, clients: usize, request: &str, expected: &str) -> io::Result<Burst> {
    let start = Arc::new(Barrier::new(clients + 1));
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (start, request, expected) = (Arc::clone(&start), request.to_string(), expected.to_string());
            thread::spawn(move || -> io::Result<Duration> {
                start.wait();
                let sent = Instant::now();
                ask(addr, &request, &expected)?;
                Ok(sent.elapsed())
            })
        })
        .collect();
    // The clock starts before the release, not after: a loaded host may run the clients
    // (and their requests) before this thread is scheduled again, and a wall time taken
    // after would then come out shorter than the work (under the ideal: seen under load).
    let started = Instant::now();
    start.wait();
    let mut took = Vec::with_capacity(clients);
    for worker in workers {
        took.push(worker.join().map_err(|_| io::Error::other("a client thread panicked"))??);
    }
    let wall_s = started.elapsed().as_secs_f64();
    let seconds = |d: Option<&Duration>| d.map_or(0.0, Duration::as_secs_f64);
    Ok(Burst { wall_s, fastest_s: seconds(took.iter().min()), slowest_s: seconds(took.iter().max()) })
}

/// One request on a new connection; the reply line must be `expected`.
fn ask(addr: SocketAddr, request: &str, expected: &str) -> io::Result<()> {
    let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.write_all(request.as_bytes())?;
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply)?;
    if reply != expected {
        let asked = request.trim_end();
        return Err(io::Error::other(format!("{asked:?}: expected {expected:?}, got {reply:?}")));
    }
    Ok(())
}

/// fib(n) by iteration: the expected replies, without spending the client's CPU on them.
fn fib_fast(n: u32) -> u64 {
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..n {
        (a, b) = (b, a + b);
    }
    a
}

fn print_table(rows: &[Row], clients: usize, cores: usize, sleep_ms: u64, rounds: usize) {
    println!(
        "burst: {clients} clients at once, one request each; {cores} cores. CPU-bound: fib(N), N calibrated \
         per implementation; ideal = ceil({clients}/{cores}) x one job alone. I/O-bound: sleep {sleep_ms} ms; ideal = one sleep."
    );
    println!(
        "seconds; first/last: the fastest and slowest client; x_one: wall / one job; cpu_used: server CPU \
         during the CPU burst; median of {rounds} round(s)"
    );
    println!(
        "{:<20} {:<6} {:>3} {:>9} | {:>8} {:>9} {:>9} {:>8} {:>6} {:>9} | {:>8} {:>9} {:>9} {:>8}",
        "model",
        "impl",
        "N",
        "one_job_s",
        "cpu_wall",
        "cpu_first",
        "cpu_last",
        "ideal",
        "x_one",
        "cpu_used",
        "io_wall",
        "io_first",
        "io_last",
        "ideal"
    );
    for row in rows {
        println!(
            "{:<20} {:<6} {:>3} {:>9.3} | {:>8.2} {:>9.2} {:>9.2} {:>8.2} {:>6.1} {:>9.2} | {:>8.2} {:>9.2} {:>9.2} {:>8.2}",
            row.model.name(),
            row.lang.name(),
            row.n,
            row.one_cpu_s,
            row.cpu.wall_s,
            row.cpu.fastest_s,
            row.cpu.slowest_s,
            row.cpu_ideal_s,
            row.cpu.wall_s / row.one_cpu_s,
            row.cpu_server_s,
            row.io.wall_s,
            row.io.fastest_s,
            row.io.slowest_s,
            row.io_ideal_s
        );
    }
}

/// One JSON object per line (JSON Lines), one per row.
fn write_json(
    path: &std::path::Path,
    rows: &[Row],
    clients: usize,
    cores: usize,
    sleep_ms: u64,
    rounds: usize,
) -> io::Result<()> {
    let mut out = io::BufWriter::new(File::create(path)?);
    for row in rows {
        let line = serde_json::json!({
            "model": row.model.name(),
            "impl": row.lang.name(),
            "clients": clients,
            "cores": cores,
            "rounds": rounds,
            "n": row.n,
            "one_cpu_s": row.one_cpu_s,
            "cpu_wall_s": row.cpu.wall_s,
            "cpu_fastest_s": row.cpu.fastest_s,
            "cpu_slowest_s": row.cpu.slowest_s,
            "cpu_ideal_s": row.cpu_ideal_s,
            "cpu_server_s": row.cpu_server_s,
            "sleep_ms": sleep_ms,
            "io_wall_s": row.io.wall_s,
            "io_fastest_s": row.io.fastest_s,
            "io_slowest_s": row.io.slowest_s,
            "io_ideal_s": row.io_ideal_s,
        });
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// The chart: per model, Rust's and Python's wall time beside each other, with each one's
/// ideal marked across its bar; CPU-bound above, I/O-bound below.
/// `shape`: clients, cores, the I/O job's sleep in ms, rounds.
fn draw(
    path: &std::path::Path,
    rows: &[Row],
    shape: (usize, usize, u64, usize),
    job: &str,
) -> io::Result<()> {
    let (clients, cores, sleep_ms, rounds) = shape;
    let mut models: Vec<Model> = rows.iter().map(|row| row.model).collect();
    models.dedup();
    let series = |lang: Lang, value: fn(&Row) -> f64, ideal: fn(&Row) -> f64| {
        let find = |m: &Model| rows.iter().find(|row| row.model == *m && row.lang == lang);
        Series {
            name: lang.name().to_string(),
            values: models.iter().map(|m| find(m).map(value)).collect(),
            markers: models.iter().map(|m| find(m).map(ideal)).collect(),
        }
    };
    let langs: Vec<Lang> =
        [Lang::Rust, Lang::Python].into_iter().filter(|&l| rows.iter().any(|r| r.lang == l)).collect();
    let categories: Vec<String> = models.iter().map(|m| m.name().to_string()).collect();
    let panels = [
        Panel {
            title: format!("CPU-bound: {clients} clients at once, {job} ({cores} cores)"),
            y_label: "seconds until all answered (lower is better)".into(),
            categories: categories.clone(),
            series: langs.iter().map(|&l| series(l, |r| r.cpu.wall_s, |r| r.cpu_ideal_s)).collect(),
        },
        Panel {
            title: format!(
                "I/O-bound: {clients} clients at once, one {sleep_ms} ms sleep each (ideal {sleep_ms} ms)"
            ),
            y_label: "seconds until all answered (lower is better)".into(),
            categories,
            series: langs.iter().map(|&l| series(l, |r| r.io.wall_s, |r| r.io_ideal_s)).collect(),
        },
    ];
    let summary = if rounds > 1 { format!("median of {rounds} rounds") } else { "one round".to_string() };
    let title = format!("lab burst: time until every client is answered ({summary}; black tick: the ideal)");
    plot::grouped_bars(path, &title, &panels)
}
