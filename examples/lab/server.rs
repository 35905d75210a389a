//! The server processes the experiments start: a model as `lab serve` (Rust) or as one of
//! the Python files in `python/`, run as a child process, found by its `listening on ADDR`
//! line, and ended by PID.
//!
//! Every process a server started ends with it:
//! - stopping a server kills it *and its descendants* (forked workers, Python's forked
//!   children), each by PID, found by walking `/proc`'s parent links before any is killed;
//! - every server is started with the parent-death signal set (`sys::kill_with_parent`), so
//!   it dies if the lab itself is killed; Rust's forked workers and Python's set it too;
//! - SIGINT or SIGTERM to the lab ([`stop_all_on_interrupt`]) stops every live server (and
//!   a running siege, [`track`]ed too) before the lab exits.

use std::io::{self, BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex, Once};
use std::time::Duration;

use crate::protocol::Wire;
use crate::{sys, Model};

/// The PIDs of the servers running now, for the interrupt handler.
static LIVE: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Which language serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Rust,
    Python,
}

impl Lang {
    pub fn name(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
        }
    }
}

/// Pool sizes passed to every server.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub threads: usize,
    pub processes: usize,
}

/// The Python file that plays `model`, if Python has one: each is the standard library's
/// way of writing that design (LAB.md has the table).
pub fn python_script(model: Model) -> Option<&'static str> {
    match model {
        Model::Serial => Some("serial.py"),
        Model::ThreadPerConn => Some("thread_per_conn.py"),
        Model::ThreadPool => Some("thread_pool.py"),
        Model::Select => Some("selectors_loop.py"),
        Model::EventLoop => Some("asyncio_inline.py"),
        Model::EventLoopOffload => Some("asyncio_executor.py"),
        Model::ForkPerConn => Some("fork_per_conn.py"),
        Model::Prefork => Some("prefork.py"),
        Model::ProcsThreads => Some("procs_x_threads.py"),
        Model::FdPassing | Model::EventLoops | Model::FdPassingLoops => None,
    }
}

/// Where the Python servers are: beside this file in the source tree.
fn python_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/lab/python")
}

/// Warns (on stderr) when the host is already busy before a measurement: a loaded machine
/// makes every model slower than the lesson's ideal and blurs their differences (a loaded run
/// once put thread-per-connection at 2.46 s against an ideal of 0.37 s). Reads the one-minute
/// load average; says nothing where there is no `/proc/loadavg`.
pub fn warn_if_host_busy() {
    let Ok(text) = std::fs::read_to_string("/proc/loadavg") else { return };
    let Some(load) = text.split_whitespace().next().and_then(|l| l.parse::<f64>().ok()) else { return };
    let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
    if load > cores * 0.5 {
        eprintln!(
            "warning: this host is busy (load average {load:.2} on {cores} cores) before the lab starts: \
             the figures will be slower than the lesson's ideal; stop the other work or measure later"
        );
    }
}

/// Whether `python3` runs here; when it does not, says so once (on stderr).
pub fn python_available(wanted: Option<crate::cli::YesNo>) -> bool {
    use crate::cli::YesNo;
    if wanted == Some(YesNo::No) {
        return false;
    }
    let found = Command::new("python3")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        eprintln!("python3 not found: Python's servers are skipped");
    } else if !python_dir().join("labproto.py").exists() {
        eprintln!("{} is missing: Python's servers are skipped", python_dir().display());
        return false;
    }
    found
}

/// A running server process, killed (with its descendants) when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
}

impl Server {
    /// Starts `model` in `lang`; `None` when that language has no such model.
    pub fn start(lang: Lang, model: Model, wire: Wire, sizes: Sizes) -> io::Result<Option<Server>> {
        let protocol = match wire {
            Wire::Line => "line",
            Wire::Http => "http",
        };
        let (threads, processes) = (sizes.threads.to_string(), sizes.processes.to_string());
        let mut command = match lang {
            Lang::Rust => {
                let mut command = Command::new(std::env::current_exe()?);
                command.args(["serve", "--model", model.name()]);
                command
            }
            Lang::Python => {
                let Some(script) = python_script(model) else { return Ok(None) };
                let mut command = Command::new("python3");
                command.arg(python_dir().join(script));
                command
            }
        };
        command
            .args(["--addr", "127.0.0.1:0", "--protocol", protocol])
            .args(["--threads", &threads, "--processes", &processes])
            // Warnings only, unless asked: the table goes to the same terminal.
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()));
        Server::spawn(&format!("{} {}", lang.name(), model.name()), command).map(Some)
    }

    /// Starts `command` and waits (at most 30 s) for its `listening on ADDR` line.
    fn spawn(name: &str, mut command: Command) -> io::Result<Server> {
        sys::kill_with_parent(&mut command);
        // A process group of its own: Ctrl-C in the terminal reaches the lab alone, which
        // then stops every server itself (and Python prints no KeyboardInterrupt noise).
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        // The models' own warnings (the loop-stall detector's "held the loop for 273 ms",
        // which the inline model is there to show) would print through the progress bar:
        // errors only, unless the user asked for more with RUST_LOG.
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "error");
        }
        let mut child = command.spawn()?;
        track(child.id());
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            // Keep draining, so a server that prints more never blocks on a full pipe.
            let _ = io::copy(&mut reader.by_ref(), &mut io::sink());
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let addr = line.trim().strip_prefix("listening on ").and_then(|addr| addr.parse().ok());
        let mut server = Server { child, addr: "0.0.0.0:0".parse().unwrap() };
        match addr {
            Some(addr) => {
                server.addr = addr;
                Ok(server)
            }
            // `server` drops here: stopped like any other.
            None => Err(io::Error::other(format!("{name}: no 'listening on' line (got {line:?})"))),
        }
    }

    /// CPU time of the server and its worker processes: the server's utime + stime (every
    /// thread, live or exited) and cutime + cstime (children it has reaped), plus utime +
    /// stime of each live child.
    pub fn cpu_time(&self) -> io::Result<Duration> {
        let pid = self.child.id();
        let own = Stat::read(pid).ok_or_else(|| io::Error::other("the server has exited"))?;
        let mut ticks = own.utime + own.stime + own.cutime + own.cstime;
        for (child, stat) in processes() {
            if stat.ppid == pid && child != pid {
                ticks += stat.utime + stat.stime;
            }
        }
        let per_second = 100; // USER_HZ on Linux
        Ok(Duration::from_millis(ticks * 1000 / per_second))
    }

    /// Kills the server and every process under it, by PID, and reaps the server.
    pub fn stop(&mut self) {
        let pid = self.child.id();
        kill_tree(pid);
        let _ = self.child.wait();
        untrack(pid);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Adds `pid` (a process the lab started: a server, or siege) to those the interrupt
/// handler stops.
pub fn track(pid: u32) {
    LIVE.lock().unwrap_or_else(|e| e.into_inner()).push(pid);
}

/// Removes `pid` from them, once it has been stopped and reaped.
pub fn untrack(pid: u32) {
    LIVE.lock().unwrap_or_else(|e| e.into_inner()).retain(|&live| live != pid);
}

/// Kills `root` and its descendants (collected first, so none is missed by being
/// re-parented once its parent is gone).
pub fn kill_tree(root: u32) {
    let table: Vec<(u32, u32)> = processes().into_iter().map(|(pid, stat)| (pid, stat.ppid)).collect();
    let mut doomed = vec![root];
    let mut at = 0;
    while at < doomed.len() {
        let parent = doomed[at];
        doomed.extend(table.iter().filter(|&&(_, ppid)| ppid == parent).map(|&(pid, _)| pid));
        at += 1;
    }
    for pid in doomed {
        sys::kill(pid);
    }
}

/// On SIGINT or SIGTERM: stops every live server (and its descendants), then exits 130.
/// Installed once, by the experiments that start servers.
pub fn stop_all_on_interrupt() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
            log::warn!("could not watch for SIGINT: servers may outlive an interrupted run");
            return;
        };
        std::thread::spawn(move || {
            if let Some(signal) = signals.forever().next() {
                let live = std::mem::take(&mut *LIVE.lock().unwrap_or_else(|e| e.into_inner()));
                for pid in &live {
                    kill_tree(*pid);
                }
                eprintln!("\ninterrupted (signal {signal}): stopped {} server(s)", live.len());
                std::process::exit(130);
            }
        });
    });
}

/// Every process: its PID and `/proc/PID/stat`.
fn processes() -> Vec<(u32, Stat)> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, Stat::read(pid)?)))
        .collect()
}

/// The fields of `/proc/PID/stat` the accounting needs, in clock ticks.
struct Stat {
    ppid: u32,
    utime: u64,
    stime: u64,
    cutime: u64,
    cstime: u64,
}

impl Stat {
    fn read(pid: u32) -> Option<Stat> {
        let mut text = String::new();
        std::fs::File::open(format!("/proc/{pid}/stat")).ok()?.read_to_string(&mut text).ok()?;
        // Fields after the command name (which may contain spaces) start after the last ')';
        // counting from the state (field 3 of the file) as 0: ppid is 1, utime 11, stime 12,
        // cutime 13, cstime 14.
        let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
        let number = |at: usize| fields.get(at).and_then(|v| v.parse::<u64>().ok());
        Some(Stat {
            ppid: number(1)? as u32,
            utime: number(11)?,
            stime: number(12)?,
            cutime: number(13)?,
            cstime: number(14)?,
        })
    }
}
