//! The example binaries, run as a user would: flags, signals, and descriptor exhaustion.
//! `cargo test` builds the examples before running tests; they are found next to the test
//! binary's directory.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::util::{cpu_from_stat, round_trip, ReadSome};

/// Path of a built example, e.g. `target/debug/examples/echo`.
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join("examples").join(name);
    assert!(path.exists(), "{} not built: run the tests with plain `cargo test`", path.display());
    path
}

/// A child process that is killed (by its PID) and reaped when dropped.
pub struct Running {
    pub child: Child,
    pub addr: SocketAddr,
    /// Where its stderr goes, if kept (see [`Running::start_logged`]); removed on drop.
    log: Option<PathBuf>,
}

impl Running {
    /// Starts `command` and waits (at most 20 s) for its `listening on ADDR` line. The child
    /// is owned by the guard from the start, so a failure here still kills it.
    pub fn start(command: Command) -> Running {
        Running::spawn(command, None)
    }

    /// Like [`start`](Running::start), with `RUST_LOG=info` and stderr kept in a file, to
    /// check what the server reported (see [`Running::log`]).
    pub fn start_logged(mut command: Command) -> Running {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let path = std::env::temp_dir().join(format!("evloop-test-{}-{nanos}.log", std::process::id()));
        command.env("RUST_LOG", "info");
        Running::spawn(command, Some(path))
    }

    /// What the child wrote to stderr so far (empty unless started with `start_logged`).
    pub fn log(&self) -> String {
        self.log.as_ref().and_then(|path| std::fs::read_to_string(path).ok()).unwrap_or_default()
    }

    fn spawn(mut command: Command, log: Option<PathBuf>) -> Running {
        let stderr = match &log {
            Some(path) => Stdio::from(std::fs::File::create(path).expect("create the log file")),
            None => Stdio::null(),
        };
        let child = command.stdout(Stdio::piped()).stderr(stderr).spawn().expect("spawn example");
        let mut running = Running { child, addr: "0.0.0.0:0".parse().unwrap(), log };
        let stdout = running.child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(20)).expect("no `listening on` line within 20 s");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        running.addr = addr.parse().unwrap();
        running
    }

    /// Sends `signal` (by name, e.g. "TERM") to this child and waits (bounded) for its exit.
    pub fn signal_and_wait(&mut self, signal: &str) -> ExitStatus {
        // bash's builtin `kill`, so the test needs no procps; only our own child's PID.
        let kill = format!("kill -{signal} {}", self.child.id());
        let status = Command::new("bash").arg("-c").arg(kill).status().unwrap();
        assert!(status.success());
        self.wait_timeout(Duration::from_secs(10)).unwrap_or_else(|| panic!("no exit after SIG{signal}"))
    }

    /// Waits up to `limit` for the child to exit.
    pub fn wait_timeout(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// CPU time the child has used so far.
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        cpu_from_stat(&stat)
    }

    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(path) = &self.log {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// `--help` prints usage and exits 0; a bad flag or value is a clear error with status 2.
#[test]
fn echo_command_line() {
    let help = Command::new(example("echo")).arg("--help").output().unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--idle-timeout"));
    for bad in [&["--bogus"][..], &["--max-conns", "many"], &["--addr"], &["--max-conns", "0"]] {
        let out = Command::new(example("echo")).args(bad).output().unwrap();
        assert!(!out.status.success(), "{bad:?} accepted");
        assert!(String::from_utf8_lossy(&out.stderr).contains("error"), "{bad:?}: no error message");
    }
}

/// SIGTERM stops the echo server gracefully, through the reactor's shutdown: exit status 0,
/// the open client closed by the shutdown (the final stats say so), the client sees EOF.
#[test]
fn echo_stops_on_sigterm() {
    let mut command = Command::new(example("echo"));
    command.args(["--addr", "127.0.0.1:0"]);
    let mut server = Running::start_logged(command);
    let mut client = server.connect();
    round_trip(&mut client, b"hello");
    let status = server.signal_and_wait("TERM");
    assert!(status.success(), "{status}");
    assert_eq!(client.read_some(&mut [0; 8]).unwrap(), 0);
    let log = server.log();
    assert!(
        log.contains("shutting down") && log.contains("shutdown: 1 }"),
        "not a graceful shutdown:\n{log}"
    );
}

/// Descriptor exhaustion (`EMFILE`): the echo server runs with a tiny `ulimit -n`, more
/// clients connect than it has descriptors for. It keeps serving the ones it has, does
/// not busy-loop while the rest wait, and serves the waiting ones once others leave.
#[test]
fn echo_survives_descriptor_exhaustion_without_spinning() {
    let mut command = Command::new("bash");
    command.arg("-c").arg(format!("ulimit -n 32 && exec '{}' --addr 127.0.0.1:0", example("echo").display()));
    let server = Running::start(command);
    let mut clients: Vec<TcpStream> = (0..40).map(|_| server.connect()).collect();
    for client in &mut clients {
        client.write_all(b"ping").unwrap();
    }
    // Some are served; the rest (beyond the descriptor limit) wait in the backlog.
    thread::sleep(Duration::from_millis(300));
    let mut served = Vec::new();
    let mut waiting = Vec::new();
    for mut client in clients {
        client.set_nonblocking(true).unwrap();
        let mut buf = [0; 4];
        match client.read_some(&mut buf) {
            Ok(4) => served.push(client),
            Err(e) if e.kind() == ErrorKind::WouldBlock => waiting.push(client),
            other => panic!("client failed: {other:?}"),
        }
    }
    assert!(!served.is_empty() && !waiting.is_empty(), "served {} waiting {}", served.len(), waiting.len());

    // No busy loop while saturated.
    let cpu0 = server.cpu_time();
    thread::sleep(Duration::from_millis(500));
    let spent = server.cpu_time() - cpu0;
    assert!(spent <= Duration::from_millis(100), "{spent:?} of CPU in 500 ms while saturated");

    // Free descriptors: the waiting clients are served after the backoff.
    let freed = waiting.len();
    served.drain(..freed.min(served.len()));
    for client in &mut waiting {
        client.set_nonblocking(false).unwrap();
        let mut buf = [0; 4];
        client.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");
    }
}
