//! What every example binary does around its reactor: logging, stopping on signals (nginx's
//! vocabulary), where to listen (a TCP address, a Unix path, or sockets inherited from an
//! older process), and the live upgrade ([`upgrade`]). It uses only evloop's public API.

mod fds;
pub mod socket_files;
pub mod upgrade;

use std::cell::RefCell;
use std::io;
use std::os::fd::AsFd;
use std::process::exit;
use std::rc::Rc;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use evloop::workers::Workers;
use evloop::{Handler, Reactor};
use signal_hook::consts::{SIGINT, SIGQUIT, SIGTERM, SIGUSR2};
use signal_hook_mio::v1_0::Signals;
use upgrade::{Inherited, UpgradeFlags};

/// How long SIGQUIT lets connections finish in an example that has no `--drain-timeout`.
const DEFAULT_DRAIN: Duration = Duration::from_secs(30);

/// The examples turn the loop-stall detector on at this: a callback holding the loop
/// longer is logged as a warning (`Config::slow_callback`).
pub const SLOW_CALLBACK: std::time::Duration = std::time::Duration::from_millis(100);

/// Logs to stderr, filtered by `RUST_LOG` (default: `info`).
pub fn init_logging() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
}

/// Signals, as nginx reads them: SIGINT and SIGTERM shut the reactor down (a second one
/// exits at once); SIGQUIT drains it (stop accepting, let open connections finish); SIGUSR2
/// upgrades, when `upgrade` is given (`upgrade.rs`). The signals arrive through a self-pipe
/// registered as one more source in the loop (signal-hook-mio), not in a handler that could
/// run at any point. Returns the upgrade's state, read at exit: `Some` while a new process
/// is starting or once it has taken over.
fn handle_signals<H: Handler>(
    reactor: &mut Reactor<H>,
    upgrade: Option<&UpgradeFlags>,
) -> io::Result<Rc<RefCell<Option<Successor>>>> {
    exit_on_second_signal()?;
    let signals = Signals::new([SIGINT, SIGTERM, SIGQUIT, SIGUSR2])?;
    let handles = vec![reactor.handle()];
    let drain = upgrade.map_or(DEFAULT_DRAIN, UpgradeFlags::drain_timeout);
    let upgradable = upgrade.is_some();
    let mut stopping = false;
    let successor: Rc<RefCell<Option<Successor>>> = Rc::default();
    let upgrade_state = Rc::clone(&successor);
    reactor.register(signals, evloop::mio::Interest::READABLE, move |signals, _ready, reactor| {
        for signal in signals.pending() {
            match signal {
                SIGQUIT => {
                    if let Some(successor) = successor.borrow_mut().as_mut() {
                        successor.quit_received = true;
                    }
                    log::info!("SIGQUIT: draining (at most {drain:?}), then exiting");
                    reactor.drain(drain);
                }
                SIGUSR2 if !upgradable => log::warn!("SIGUSR2: this server cannot be upgraded; ignored"),
                SIGUSR2 if successor.borrow().is_some() => {
                    log::warn!("SIGUSR2: an upgrade is already under way")
                }
                SIGUSR2 => {
                    let ids = reactor.listeners();
                    let fds: Vec<_> = ids.iter().filter_map(|&id| reactor.listener_fd(id)).collect();
                    match upgrade::spawn_successor(&fds) {
                        Ok(child) => {
                            *successor.borrow_mut() =
                                Some(Successor { child, started: Instant::now(), quit_received: false });
                            watch_successor(reactor, Rc::clone(&successor));
                        }
                        Err(e) => log::error!("upgrade failed: {e}; still serving"),
                    }
                }
                _ => on_stop_signal(signal, &mut stopping, &handles),
            }
        }
    })?;
    Ok(upgrade_state)
}

/// An upgrade's new process, watched until it takes over or fails.
struct Successor {
    child: std::process::Child,
    started: Instant,
    quit_received: bool,
}

/// Checks on the new process every 100 ms (a reactor timer) until it asks this one to drain
/// or fails; then forgets it.
fn watch_successor<H: Handler>(reactor: &mut Reactor<H>, state: Rc<RefCell<Option<Successor>>>) {
    let watching = match state.borrow_mut().as_mut() {
        Some(s) => upgrade::check_successor(&mut s.child, s.started, s.quit_received),
        None => false,
    };
    if watching {
        reactor.set_timer(Duration::from_millis(100), move |reactor| watch_successor(reactor, state));
    } else if !state.borrow().as_ref().is_some_and(|s| s.quit_received) {
        // Failed: a later SIGUSR2 may try again (and the socket files are this process's
        // again).
        *state.borrow_mut() = None;
    }
}

/// The same for several reactors on their own threads ([`Workers`]): a thread waits for the
/// signals; SIGQUIT drains every worker, SIGUSR2 hands the workers' listening sockets to a
/// new process.
pub fn handle_workers_signals(workers: &Workers, upgrade: Option<&UpgradeFlags>) -> io::Result<()> {
    exit_on_second_signal()?;
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGQUIT, SIGUSR2])?;
    let handles = workers.handles().to_vec();
    let listeners: Vec<std::net::TcpListener> =
        workers.listeners().iter().map(std::net::TcpListener::try_clone).collect::<io::Result<_>>()?;
    let drain = upgrade.map_or(DEFAULT_DRAIN, UpgradeFlags::drain_timeout);
    let upgradable = upgrade.is_some();
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        let mut stopping = false;
        let quit_received = Arc::new(AtomicBool::new(false));
        let mut upgrading: Option<std::thread::JoinHandle<()>> = None;
        for signal in signals.forever() {
            match signal {
                SIGQUIT => {
                    quit_received.store(true, Ordering::SeqCst);
                    log::info!("SIGQUIT: draining (at most {drain:?}), then exiting");
                    handles.iter().for_each(|handle| handle.drain(drain));
                }
                SIGUSR2 if !upgradable => log::warn!("SIGUSR2: this server cannot be upgraded; ignored"),
                SIGUSR2 if upgrading.as_ref().is_some_and(|t| !t.is_finished()) => {
                    log::warn!("SIGUSR2: an upgrade is already under way");
                }
                SIGUSR2 => {
                    let fds: Vec<_> = listeners.iter().map(AsFd::as_fd).collect();
                    match upgrade::spawn_successor(&fds) {
                        Ok(mut child) => {
                            let quit = Arc::clone(&quit_received);
                            let started = Instant::now();
                            upgrading = Some(std::thread::spawn(move || {
                                while upgrade::check_successor(
                                    &mut child,
                                    started,
                                    quit.load(Ordering::SeqCst),
                                ) {
                                    std::thread::sleep(Duration::from_millis(100));
                                }
                            }));
                        }
                        Err(e) => log::error!("upgrade failed: {e}; still serving"),
                    }
                }
                _ => on_stop_signal(signal, &mut stopping, &handles),
            }
        }
    })?;
    Ok(())
}

/// The first signal shuts the reactors down gracefully; a second exits at once (shutdown
/// waits for running offload jobs, and an impatient user should not wait for a fib(90)).
fn on_stop_signal(signal: i32, stopping: &mut bool, handles: &[evloop::Handle]) {
    let name = signal_name(signal);
    if *stopping {
        log::warn!("{name} again: exiting now");
        exit(128 + signal);
    }
    log::info!("{name}: shutting down (again to exit at once)");
    *stopping = true;
    handles.iter().for_each(evloop::Handle::shutdown);
}

/// A second SIGINT or SIGTERM ends the process at once, from inside the signal handler, so
/// it works even while a callback holds the loop (which then never reads the first one):
/// the first signal raises a flag, and a signal that finds it raised exits with 128 + its
/// number, nginx's and the shell's convention. The loop's own handling (`on_stop_signal`)
/// still runs the graceful shutdown after the first.
fn exit_on_second_signal() -> io::Result<()> {
    let stopping = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        // Registered first, so it sees the flag as the previous signal left it.
        signal_hook::flag::register_conditional_shutdown(signal, 128 + signal, Arc::clone(&stopping))?;
        signal_hook::flag::register(signal, Arc::clone(&stopping))?;
    }
    Ok(())
}

/// "SIGINT" rather than "signal 2" in the logs.
fn signal_name(signal: i32) -> String {
    match signal {
        SIGINT => "SIGINT".into(),
        SIGTERM => "SIGTERM".into(),
        SIGQUIT => "SIGQUIT".into(),
        SIGUSR2 => "SIGUSR2".into(),
        other => format!("signal {other}"),
    }
}

/// The final counters: a short block at info level, every counter at debug level
/// (`RUST_LOG=debug`).
pub fn log_stats(stats: &evloop::Stats) {
    let closed = stats.closed;
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    log::info!(
        "served {} connections ({} accepted, {} connected out, {} adopted); {:.1} MiB in, {:.1} MiB out",
        stats.accepted + stats.connected + stats.adopted,
        stats.accepted,
        stats.connected,
        stats.adopted,
        mib(stats.bytes_in),
        mib(stats.bytes_out),
    );
    log::info!(
        "closed: peer {}, local {}, idle {}, error {}, over a limit {}, shutdown {}, reclaimed {}",
        closed.peer,
        closed.local,
        closed.idle_timeout,
        closed.error,
        closed.input_limit,
        closed.shutdown,
        closed.reclaimed,
    );
    if stats.datagrams.received + stats.datagrams.sent > 0 {
        let d = stats.datagrams;
        log::info!(
            "datagrams: {} in, {} out, {} dropped, {} too long",
            d.received,
            d.sent,
            d.dropped,
            d.truncated
        );
    }
    log::debug!("every counter: {stats:#?}");
}

/// Prints the bound address on stdout, one line, so scripts and tests can find the port.
pub fn announce(addr: impl std::fmt::Display) {
    use std::io::Write;
    // Not `println!`: an upgrade's new process inherits a stdout whose reader may be gone
    // (a script that read the first process's line and left); that must not be fatal.
    let mut stdout = io::stdout();
    let _ = writeln!(stdout, "listening on {addr}").and_then(|()| stdout.flush());
    log::info!("serving; Ctrl-C (SIGINT) or SIGTERM stops, SIGQUIT drains, a second SIGINT exits at once");
}

/// The end of every single-reactor example's `main`: stop on SIGINT/SIGTERM, say where it
/// listens, run until shut down, log the final counters.
pub fn run_reactor<H: Handler>(reactor: Reactor<H>, bound: impl std::fmt::Display) -> io::Result<()> {
    serve_reactor(reactor, bound, None)
}

/// [`run_reactor`] for a server that can be upgraded in place (`upgrade.rs`): the pid file
/// written once it serves (and the old process of an upgrade asked to drain), SIGUSR2
/// handled, the pid file removed at exit if it is still this process's.
pub fn serve_reactor<H: Handler>(
    mut reactor: Reactor<H>,
    bound: impl std::fmt::Display,
    upgrade: Option<&UpgradeFlags>,
) -> io::Result<()> {
    let successor = handle_signals(&mut reactor, upgrade)?;
    // The pid file first: a script that waits for `listening on` may read it at once.
    if let Some(flags) = upgrade {
        upgrade::serving(flags);
    }
    announce(bound);
    let ran = reactor.run();
    if let Some(flags) = upgrade {
        upgrade::exiting(flags);
    }
    // An upgrade's new process (starting, or serving) holds the sockets and their files.
    socket_files::remove_claimed(successor.borrow().is_some());
    ran?;
    log_stats(&reactor.stats());
    Ok(())
}

/// The same for share-nothing reactors on their own threads: the main thread only waits
/// for them, and logs their summed counters.
pub fn run_workers(workers: Workers) -> io::Result<()> {
    serve_workers(workers, None)
}

/// [`run_workers`] for a server that can be upgraded in place, as [`serve_reactor`].
pub fn serve_workers(workers: Workers, upgrade: Option<&UpgradeFlags>) -> io::Result<()> {
    handle_workers_signals(&workers, upgrade)?;
    log::info!("{} workers", workers.handles().len());
    if let Some(flags) = upgrade {
        upgrade::serving(flags);
    }
    announce(workers.addr());
    let joined = workers.join();
    if let Some(flags) = upgrade {
        upgrade::exiting(flags);
    }
    log_stats(&joined?);
    Ok(())
}

/// `count` workers listening on `addr`, or, when this process was handed listening sockets
/// (an upgrade, socket activation), one worker per inherited socket: what
/// [`listen_or_inherit`] is for one reactor. Every connection gets `factory()`.
///
/// # Errors
///
/// As `Workers::start`; `InvalidInput` for an inherited Unix-domain listener (workers serve
/// TCP only).
pub fn start_workers_or_inherit<H: Handler>(
    count: usize,
    addr: std::net::SocketAddr,
    config: evloop::Config,
    factory: impl Fn() -> H + Send + Sync + Clone + 'static,
    inherited: Vec<Inherited>,
) -> io::Result<Workers> {
    let for_worker = move || {
        let factory = factory.clone();
        move |_peer| factory()
    };
    if inherited.is_empty() {
        Workers::start(count, addr, config, move |_worker| for_worker())
    } else {
        Workers::from_listeners(tcp_only(inherited)?, config, move |_worker, _reactor: &mut Reactor<H>| {
            for_worker()
        })
    }
}

/// The inherited listeners as TCP listeners (for `Workers`, which serve TCP only).
fn tcp_only(inherited: Vec<Inherited>) -> io::Result<Vec<std::net::TcpListener>> {
    inherited
        .into_iter()
        .map(|socket| match socket {
            Inherited::Tcp(listener) => Ok(listener),
            Inherited::Unix(_) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an inherited Unix-domain listener; workers serve TCP",
            )),
        })
        .collect()
}

/// Listens on `endpoint`, or, when this process was handed listening sockets (an upgrade,
/// socket activation), serves those instead; returns what to announce.
pub fn listen_or_inherit<H: Handler>(
    reactor: &mut Reactor<H>,
    endpoint: &Endpoint,
    factory: impl Fn() -> H + Clone + 'static,
    inherited: Vec<Inherited>,
) -> io::Result<String> {
    if inherited.is_empty() {
        return listen(reactor, endpoint, factory).map(|bound| bound.to_string());
    }
    let mut described = Vec::new();
    for socket in inherited {
        described.push(upgrade::describe(&socket));
        let factory = factory.clone();
        match socket {
            Inherited::Tcp(listener) => drop(reactor.add_listener(listener, move |_| factory())?),
            Inherited::Unix(listener) => {
                // Handed over by an older process of this server (an upgrade), the file is
                // now this one's to remove; a supervisor's stays the supervisor's.
                let address = listener.local_addr().ok();
                match address.as_ref().and_then(|a| a.as_pathname()) {
                    Some(path) if upgrade::from_older_process() => socket_files::claim(path),
                    _ => {}
                }
                reactor.add_unix_listener(listener, move |_| factory())?;
            }
        }
    }
    log::info!("serving inherited listeners: {}", described.join(", "));
    Ok(described.join(", "))
}

/// Where to listen or connect: `HOST:PORT` for TCP, `unix:PATH` for a Unix-domain socket.
#[derive(Debug, Clone)]
pub enum Endpoint {
    Tcp(std::net::SocketAddr),
    Unix(std::path::PathBuf),
}

impl Endpoint {
    /// The TCP address, if this is one: what `--workers` (one SO_REUSEPORT socket per
    /// worker) and echo's `--udp` need.
    pub fn tcp(&self) -> Option<std::net::SocketAddr> {
        match self {
            Endpoint::Tcp(addr) => Some(*addr),
            Endpoint::Unix(_) => None,
        }
    }
}

impl FromStr for Endpoint {
    type Err = String;

    fn from_str(text: &str) -> Result<Endpoint, String> {
        match text.strip_prefix("unix:") {
            Some("") => Err("unix: needs a path".into()),
            Some(path) => Ok(Endpoint::Unix(path.into())),
            None => crate::cli::addr(text)
                .map(Endpoint::Tcp)
                .map_err(|e| format!("{e} (expected HOST:PORT or unix:PATH)")),
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
        Endpoint::Unix(path) => {
            reactor.listen_unix(path, move |_| factory())?;
            socket_files::claim(path);
            Ok(endpoint.clone())
        }
    }
}
