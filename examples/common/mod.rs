//! Small helpers shared by the examples: logging, stopping on signals, where to listen,
//! and the shared command-line flags (`cli`). Each example includes this with
//! `mod common;`; it uses only evloop's public API.

// Each example uses a different subset of these helpers.
#![allow(dead_code)]

pub mod cli;

use std::io;
use std::process::exit;
use std::str::FromStr;

use evloop::workers::Workers;
use evloop::{Handler, Reactor};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

/// The examples turn the loop-stall detector on at this: a callback holding the loop
/// longer is logged as a warning (`Config::slow_callback`).
pub const SLOW_CALLBACK: std::time::Duration = std::time::Duration::from_millis(100);

/// Logs to stderr, filtered by `RUST_LOG` (default: `info`).
pub fn init_logging() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
}

/// Makes SIGINT and SIGTERM shut the reactor down gracefully: the signals arrive through a
/// self-pipe registered as one more source in the loop (signal-hook-mio), not in a handler
/// that could run at any point.
pub fn stop_on_signals<H: Handler>(reactor: &mut Reactor<H>) -> io::Result<()> {
    let signals = Signals::new([SIGINT, SIGTERM])?;
    let handles = vec![reactor.handle()];
    let mut stopping = false;
    reactor.register(signals, evloop::mio::Interest::READABLE, move |signals, _ready, _reactor| {
        for signal in signals.pending() {
            on_stop_signal(signal, &mut stopping, &handles);
        }
    })?;
    Ok(())
}

/// The same for several reactors on their own threads ([`Workers`]): a thread waits for the
/// signals and shuts every worker down.
pub fn stop_workers_on_signals(workers: &Workers) -> io::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    let handles = workers.handles().to_vec();
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        let mut stopping = false;
        for signal in signals.forever() {
            on_stop_signal(signal, &mut stopping, &handles);
        }
    })?;
    Ok(())
}

/// The first signal shuts the reactors down gracefully; a second exits at once (shutdown
/// waits for running offload jobs, and an impatient user should not wait for a fib(90)).
fn on_stop_signal(signal: i32, stopping: &mut bool, handles: &[evloop::Handle]) {
    if *stopping {
        log::warn!("signal {signal} again: exiting now");
        exit(130);
    }
    log::info!("signal {signal}: shutting down (again to exit at once)");
    *stopping = true;
    handles.iter().for_each(evloop::Handle::shutdown);
}

/// Prints the bound address on stdout, one line, so scripts and tests can find the port.
pub fn announce(addr: impl std::fmt::Display) {
    use std::io::Write;
    println!("listening on {addr}");
    let _ = io::stdout().flush();
}

/// The end of every single-reactor example's `main`: stop on SIGINT/SIGTERM, say where it
/// listens, run until shut down, log the final counters.
pub fn run_reactor<H: Handler>(mut reactor: Reactor<H>, bound: impl std::fmt::Display) -> io::Result<()> {
    stop_on_signals(&mut reactor)?;
    announce(bound);
    reactor.run()?;
    log::info!("stats: {:?}", reactor.stats());
    Ok(())
}

/// The same for share-nothing reactors on their own threads: the main thread only waits
/// for them, and logs their summed counters.
pub fn run_workers(workers: Workers) -> io::Result<()> {
    stop_workers_on_signals(&workers)?;
    log::info!("{} workers", workers.handles().len());
    announce(workers.addr());
    let stats = workers.join()?;
    log::info!("stats: {stats:?}");
    Ok(())
}

/// Where to listen or connect: `HOST:PORT` for TCP, `unix:PATH` for a Unix-domain socket.
#[derive(Debug, Clone)]
pub enum Endpoint {
    Tcp(std::net::SocketAddr),
    Unix(std::path::PathBuf),
}

impl FromStr for Endpoint {
    type Err = String;

    fn from_str(text: &str) -> Result<Endpoint, String> {
        match text.strip_prefix("unix:") {
            Some("") => Err("unix: needs a path".into()),
            Some(path) => Ok(Endpoint::Unix(path.into())),
            None => text
                .parse()
                .map(Endpoint::Tcp)
                .map_err(|_| format!("expected HOST:PORT or unix:PATH, got {text:?}")),
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Tcp(addr) => write!(f, "{addr}"),
            Endpoint::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// Listens on `endpoint` with one factory for both kinds; returns what to announce (the
/// bound address: with port 0, the port picked).
pub fn listen<H: Handler>(
    reactor: &mut Reactor<H>,
    endpoint: &Endpoint,
    mut factory: impl FnMut() -> H + 'static,
) -> io::Result<Endpoint> {
    match endpoint {
        Endpoint::Tcp(addr) => reactor.listen(*addr, move |_| factory()).map(|(_, addr)| Endpoint::Tcp(addr)),
        Endpoint::Unix(path) => reactor.listen_unix(path, move |_| factory()).map(|_| endpoint.clone()),
    }
}

/// The CPU-bound workload of the examples, recursive on purpose: fib(35) makes about 30
/// million calls. (One copy for every example that computes it.)
pub fn fib(n: u32) -> u64 {
    if n < 2 {
        u64::from(n)
    } else {
        fib(n - 1) + fib(n - 2)
    }
}

/// [`fib`] that stops early, with `None`, once `cancel` is raised: the flag is polled
/// only above n = 25 (a few thousand times for fib(40)), so the check costs nothing
/// measurable and a cancelled job stops within about one fib(25), well under a millisecond.
pub fn fib_cancellable(n: u32, cancel: &evloop::Cancel) -> Option<u64> {
    if n <= 25 {
        return Some(fib(n));
    }
    if cancel.is_cancelled() {
        return None;
    }
    Some(fib_cancellable(n - 1, cancel)? + fib_cancellable(n - 2, cancel)?)
}
