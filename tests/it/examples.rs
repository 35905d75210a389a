//! The example binaries, run as a user would: flags, signals, and descriptor exhaustion.
//! `cargo test` builds the examples before running tests; they are found next to the test
//! binary's directory.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use evloop_support::observe::{accept_queue, near_end, signal_pending, wait_until};
use evloop_support::resp::encode_command;
use evloop_support::testing::{cpu_from_stat, round_trip, temp_dir, ReadSome};

/// Path of a built example, e.g. `target/debug/examples/echo`.
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join("examples").join(name);
    assert!(path.exists(), "{} not built: run the tests with plain `cargo test`", path.display());
    path
}

/// The command line every example has (clap's derive): `-h` and `--help` exit 0, and the
/// short help lists every flag of `flags` (`--name`, or `--name=DEFAULT` for one whose line
/// must show `[default: DEFAULT]`); `--version` exits 0 and names the example; every command
/// line in `bad` exits with status 2 and an error that names the flag given with it.
#[track_caller]
pub fn check_command_line(name: &str, flags: &str, bad: &[(&[&str], &str)]) {
    let long = Command::new(example(name)).arg("--help").output().unwrap();
    assert!(long.status.success(), "{name} --help: {}", long.status);
    let short = Command::new(example(name)).arg("-h").output().unwrap();
    assert!(short.status.success(), "{name} -h: {}", short.status);
    let short = String::from_utf8_lossy(&short.stdout);
    assert!(short.contains(&format!("Usage: {name}")), "{name} -h:\n{short}");
    for expected in flags.split_whitespace() {
        let (flag, default) = expected.split_once('=').unwrap_or((expected, ""));
        let line = short.lines().map(str::trim).find(|l| l.starts_with(&format!("{flag} <")));
        let line = line.unwrap_or_else(|| panic!("{name} -h does not list {flag}:\n{short}"));
        let shown = format!("[default: {default}]");
        assert!(default.is_empty() || line.contains(&shown), "{name} -h: {flag} without {shown}: {line}");
    }
    let version = Command::new(example(name)).arg("--version").output().unwrap();
    assert!(version.status.success(), "{name} --version: {}", version.status);
    assert!(String::from_utf8_lossy(&version.stdout).starts_with(&format!("{name} ")));
    for (args, flag) in bad {
        let out = Command::new(example(name)).args(*args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{name} {args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with("error:") && stderr.contains(flag), "{name} {args:?}: {stderr}");
    }
}

/// A child process that is killed (by its PID) and reaped when dropped.
pub struct Running {
    pub child: Child,
    pub addr: SocketAddr,
    /// What followed `listening on `: the address, `unix:PATH` for a Unix-domain socket
    /// (then `addr` is unspecified).
    pub announced: String,
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
        let mut running =
            Running { child, addr: "0.0.0.0:0".parse().unwrap(), announced: String::new(), log };
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
            .unwrap_or_else(|| panic!("unexpected first line {line:?}; its log:\n{}", running.log()));
        if !addr.starts_with("unix:") {
            // A datagram service says `udp ADDR`.
            running.addr = addr.trim_start_matches("udp ").parse().unwrap();
        }
        running.announced = addr.to_string();
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

/// `--help` lists the flags with their defaults and exits 0; a bad flag or value, or
/// `--unix` with what it cannot go with, is an error naming the flag, status 2.
#[test]
fn echo_command_line() {
    let flags = "--addr=127.0.0.1:7000 --unix --workers=1 --max-conns=1024 --idle-timeout=300 \
                 --slow-callback=0";
    let bad: [(&[&str], &str); 11] = [
        (&["--bogus"], "--bogus"),
        (&["--max-conns", "many"], "--max-conns"),
        (&["--addr"], "--addr"),
        (&["--max-conns", "0"], "--max-conns"),
        (&["--workers", "257"], "--workers"),
        (&["--idle-timeout", "-1"], "--idle-timeout"),
        (&["--unix", "/tmp/evloop-never.sock", "--workers", "2"], "--workers"),
        (&["--unix", "/tmp/evloop-never.sock", "--addr", "127.0.0.1:0"], "--addr"),
        (&["--addr", "unix:/tmp/evloop-never.sock", "--workers", "2"], "--workers"),
        (&["--addr", "unix:/tmp/evloop-never.sock", "--udp"], "--udp"),
        (&["--addr", "unix:"], "--addr"),
    ];
    check_command_line("echo", flags, &bad);
}

/// `echo --unix PATH` serves on a Unix-domain socket and announces `listening on unix:PATH`;
/// `proxy --upstream unix:PATH` forwards TCP clients to it.
#[test]
fn echo_and_proxy_over_a_unix_socket() {
    let dir = temp_dir("unix-echo-proxy");
    let path = dir.join("echo.sock");
    let mut command = Command::new(example("echo"));
    command.arg("--unix").arg(&path);
    let echo = Running::start(command);
    assert_eq!(echo.announced, format!("unix:{}", path.display()));
    let mut direct = std::os::unix::net::UnixStream::connect(&path).unwrap();
    direct.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    direct.write_all(b"over unix").unwrap();
    let mut back = [0; 9];
    direct.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"over unix");

    let mut command = Command::new(example("proxy"));
    command.args(["--listen", "127.0.0.1:0", "--upstream", &echo.announced]);
    let proxy = Running::start(command);
    round_trip(&mut proxy.connect(), b"through the proxy");
    drop((proxy, echo));
}

/// `--addr unix:PATH` on every server example: each announces `listening on unix:PATH`,
/// serves its protocol there, as a client of that protocol sees it over the Unix socket, and
/// removes the socket file when stopped.
/// With `--workers` (one SO_REUSEPORT socket per worker: TCP only) it is a usage error.
#[test]
fn every_server_serves_on_a_unix_socket_given_as_its_addr() {
    let dir = temp_dir("unix-addr");
    let set_then_get = [encode_command(&[b"SET", b"k", b"v"]), encode_command(&[b"GET", b"k"])].concat();
    let exchanges: [(&str, &[u8], &[u8]); 5] = [
        ("echo", b"over unix", b"over unix"),
        ("fib", b"20\n", b"6765\n"),
        ("kv", &set_then_get, b"+OK\r\n$1\r\nv\r\n"),
        ("chat", b"", b"* welcome, you are #"),
        ("http", b"GET /fib/20 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", b"HTTP/1.1 200 OK\r\n"),
    ];
    for (name, request, expected) in exchanges {
        let path = dir.join(format!("{name}.sock"));
        let address = format!("unix:{}", path.display());
        let mut command = Command::new(example(name));
        command.args(["--addr", &address]);
        let mut server = Running::start(command);
        assert_eq!(server.announced, address, "{name}");
        let mut client = std::os::unix::net::UnixStream::connect(&path).unwrap();
        client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        client.write_all(request).unwrap();
        let mut answer = vec![0; expected.len()];
        client.read_exact(&mut answer).unwrap();
        assert_eq!(String::from_utf8_lossy(&answer), String::from_utf8_lossy(expected), "{name}");
        // A clean exit removes the socket file, as Redis and nginx do.
        assert!(server.signal_and_wait("TERM").success(), "{name}");
        assert!(!path.exists(), "{name} left its socket file behind");
    }
    for name in ["echo", "http"] {
        let out = Command::new(example(name))
            .args(["--addr", "unix:/tmp/evloop-never.sock", "--workers", "2"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with("error: --workers needs a HOST:PORT address"), "{name}: {stderr}");
    }
}

/// One vocabulary on every command line (issue 24): host names resolve, durations and sizes
/// take units everywhere, `--addr` is every server's listening flag (the proxy's old
/// `--listen` still works), and a value out of range says the range in words.
#[test]
fn one_vocabulary_on_every_command_line() {
    let started = |name: &str, args: &[&str]| {
        let mut command = Command::new(example(name));
        command.args(args);
        Running::start(command)
    };
    let echo =
        started("echo", &["--addr", "localhost:0", "--idle-timeout", "5m", "--slow-callback", "100ms"]);
    assert!(echo.addr.ip().is_loopback(), "localhost resolved to {}", echo.addr);
    let http =
        started("http", &["--addr", "localhost:0", "--header-timeout", "5s", "--idle-timeout", "1500ms"]);
    round_trip(
        &mut echo.connect(),
        b"named
",
    );
    let upstream = format!("localhost:{}", echo.addr.port());
    let proxy =
        started("proxy", &["--listen", "127.0.0.1:0", "--upstream", &upstream, "--fin-timeout", "2s"]);
    round_trip(
        &mut proxy.connect(),
        b"through a named upstream
",
    );
    let chat = started("chat", &["--addr", "127.0.0.1:0", "--max-line", "1k", "--max-backlog", "64k"]);
    let kv = started("kv", &["--addr", "127.0.0.1:0", "--idle-timeout", "10m", "--max-bulk", "2m"]);
    let statsd = started("statsd", &["--addr", "127.0.0.1:0", "--flush", "2s"]);
    drop((http, chat, kv, statsd));
    for (name, args, says) in [
        ("echo", &["--max-conns", "0"][..], "must be at least 1"),
        ("echo", &["--workers", "300"][..], "must be between 1 and 256"),
        ("http", &["--header-timeout", "5 fortnights"][..], "unknown unit"),
        ("http", &["--max-head", "2m"][..], "must be between 64 and 1048576 bytes"),
        ("chat", &["--max-line", "1q"][..], "unknown unit"),
    ] {
        let out = Command::new(example(name)).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name} {args:?}: {stderr}");
        assert!(stderr.contains(says), "{name} {args:?}: {stderr}");
    }
}

/// `echo --udp`: each datagram comes back whole to its sender; SIGINT stops it cleanly.
#[test]
fn echo_over_udp() {
    let mut command = Command::new(example("echo"));
    command.args(["--udp", "--addr", "127.0.0.1:0"]);
    let mut echo = Running::start(command);
    assert!(echo.announced.starts_with("udp 127.0.0.1:"), "{}", echo.announced);
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    socket.connect(echo.addr).unwrap();
    let mut buffer = vec![0; 65_536];
    for size in [0, 1, 1_400, 65_507] {
        let datagram: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        socket.send(&datagram).unwrap();
        let n = socket.recv(&mut buffer).unwrap();
        assert!(buffer[..n] == datagram[..], "size {size}: {n} bytes back");
    }
    assert!(echo.signal_and_wait("INT").success());
}

/// The statsd sink, fed by a client as `nc -u` would: counters sum (scaled by their sample
/// rate), gauges keep their last level, timings summarise; bad lines are counted and the
/// sink serves on. Its summary lines are read from its stdout.
#[test]
fn statsd_aggregates_and_flushes() {
    let mut child = Command::new(example("statsd"))
        .args(["--addr", "127.0.0.1:0", "--flush-ms", "200"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next = || rx.recv_timeout(Duration::from_secs(10)).expect("a line from statsd");
    let first = next();
    let addr: SocketAddr = first.strip_prefix("listening on udp ").expect(&first).parse().unwrap();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    // One datagram, so that no flush can fall between its lines.
    socket
        .send_to(
            b"hits:1|c\nload:0.5|g\nlatency:12|ms\nlatency:30|ms\nhits:3|c|@0.5\nnot a metric\nx:1|zz",
            addr,
        )
        .unwrap();
    let mut lines = Vec::new();
    while !lines.iter().any(|l: &String| l.starts_with("(skipped")) {
        lines.push(next());
    }
    let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    for expected in [
        "hits counter 7",
        "latency timer count=2 min=12 max=30 mean=21.000 p90=30",
        "load gauge 0.5",
        "(skipped: 2 bad lines, 0 new names past the cap)",
    ] {
        assert!(lines.iter().any(|l| l == expected), "no {expected:?} in {lines:?}");
    }
}

/// A callback holds the loop (fib inline, a large N): the first SIGINT asks for a graceful
/// shutdown the stuck loop cannot start yet; the second ends the process at once, as nginx's
/// second SIGINT does, rather than when the computation finishes (issue 24).
#[test]
fn a_second_sigint_ends_a_stuck_process_at_once() {
    let mut command = Command::new(example("fib"));
    command.args(["--addr", "127.0.0.1:0", "--mode", "inline", "--max-n", "60"]);
    let mut server = Running::start_logged(command);
    let mut client = server.connect();
    client.write_all(b"60\n").unwrap();
    // The loop is computing (the request was read) before the signals come.
    wait_until(Duration::from_secs(10), "fib(60) is running", || {
        server.cpu_time() >= Duration::from_millis(200)
    });
    let kill = |signal: &str| {
        let status =
            Command::new("bash").arg("-c").arg(format!("kill -{signal} {}", server.child.id())).status();
        assert!(status.unwrap().success());
    };
    kill("INT");
    // Two SIGINTs sent while the first is still pending would merge into one.
    let pid = server.child.id();
    wait_until(Duration::from_secs(5), "the first SIGINT is delivered", || !signal_pending(pid, 2));
    kill("INT");
    let status = server.wait_timeout(Duration::from_secs(3));
    assert!(status.is_some(), "still running 3 s after the second SIGINT (fib(60) takes minutes)");
    assert_eq!(status.unwrap().code(), Some(130));
}

/// Waits (at most 10 s) until each of `clients` either has `echo_len` bytes back or is still
/// in the accept queue of the server on `port`: a server that stopped accepting at a limit
/// has served everything it will serve until something changes.
pub fn wait_echoed_or_queued(clients: &[TcpStream], port: u16, echo_len: u64) {
    let echoed = |client: &TcpStream| near_end(client).is_some_and(|s| s.unread == echo_len);
    wait_until(Duration::from_secs(10), "each client is echoed or waits to be accepted", || {
        clients.iter().filter(|c| echoed(c)).count() + accept_queue(port) as usize == clients.len()
    });
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
    assert!(log.contains("shutting down") && log.contains("shutdown 1,"), "not a graceful shutdown:\n{log}");
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
    wait_echoed_or_queued(&clients, server.addr.port(), 4);
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

    // No busy loop while saturated (the sleep is the measuring interval).
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
