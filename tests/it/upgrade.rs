//! The examples' zero-downtime upgrade (`support/src/app/upgrade.rs`), as an operator runs it:
//! `--pid-file`, `kill -USR2 $(cat pidfile)`, under load. Nothing refused, nothing reset,
//! nothing unanswered; the pid file ends naming the new process; the old one exits; ten in a
//! row leak no descriptor; a new process that fails to start leaves the old one serving;
//! with `--workers`, over a Unix socket, for HTTP keep-alive clients; and listeners handed
//! over by a supervisor (`LISTEN_FDS`).
//!
//! Processes started here (and their successors, which the test's processes start) are
//! signalled only by the PIDs the pid file names, and stopped at the end of each test, also
//! when it fails (`StopsSuccessor`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::examples::{example, Running};
use evloop_support::observe::{alive, open_fds};
use evloop_support::testing::temp_dir;

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("bash").arg("-c").arg(format!("kill -{name} {pid}")).status().unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}

/// Stops, when dropped, the process the pid file names if it still runs: a test that fails
/// midway leaves a successor behind otherwise (it is not the test's child, so no `Running`
/// guard owns it). Only a process whose command line names this very pid file, that is one
/// of this test's servers, is signalled, so a reused PID is never someone else's.
struct StopsSuccessor<'a>(&'a Path);

impl Drop for StopsSuccessor<'_> {
    fn drop(&mut self) {
        let Some(pid) = read_pid(self.0) else { return };
        let command_line = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let ours = command_line.split(|&b| b == 0).any(|arg| arg == self.0.as_os_str().as_encoded_bytes());
        if ours && alive(pid) {
            let _ = Command::new("bash").arg("-c").arg(format!("kill -KILL {pid}")).status();
        }
    }
}

/// Waits until the pid file names a process other than `old`, and returns it.
fn wait_for_new_pid(pid_file: &Path, old: u32) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(pid) = read_pid(pid_file).filter(|&pid| pid != old) {
            return pid;
        }
        assert!(Instant::now() < deadline, "the pid file still names {old}");
        thread::sleep(Duration::from_millis(20));
    }
}

fn wait_until_gone(pid: u32, limit: Duration) {
    let deadline = Instant::now() + limit;
    while alive(pid) {
        assert!(Instant::now() < deadline, "the old process {pid} did not exit");
        thread::sleep(Duration::from_millis(20));
    }
}

/// Clients doing round trip after round trip against `connect()`: five on each connection,
/// then a new connection, so both kept-open and new connections cross every upgrade. Any
/// refused connect, reset, short or wrong answer fails the client.
struct Load {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
    clients: Vec<thread::JoinHandle<Result<(), String>>>,
}

impl Load {
    fn start(
        clients: usize,
        connect: impl Fn() -> std::io::Result<Box<dyn ReadWrite>> + Send + Sync + 'static,
    ) -> Load {
        let (stop, answered) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
        let connect = Arc::new(connect);
        let clients = (0..clients)
            .map(|c| {
                let (stop, answered, connect) =
                    (Arc::clone(&stop), Arc::clone(&answered), Arc::clone(&connect));
                thread::spawn(move || {
                    let mut round = 0u64;
                    while !stop.load(Ordering::SeqCst) {
                        let mut stream = connect().map_err(|e| format!("client {c}: connect: {e}"))?;
                        for _ in 0..5 {
                            round += 1;
                            let line = format!("client {c} round {round}\n");
                            stream
                                .write_all(line.as_bytes())
                                .map_err(|e| format!("client {c}: write: {e}"))?;
                            let mut back = vec![0; line.len()];
                            stream
                                .read_exact(&mut back)
                                .map_err(|e| format!("client {c} round {round}: {e}"))?;
                            if back != line.as_bytes() {
                                return Err(format!("client {c}: a wrong answer"));
                            }
                            answered.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        Load { stop, answered, clients }
    }

    /// Waits until `more` further round trips were answered (the load is flowing).
    fn wait_for(&self, more: u64) {
        let target = self.answered.load(Ordering::SeqCst) + more;
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.answered.load(Ordering::SeqCst) < target {
            assert!(Instant::now() < deadline, "the load stalled");
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        for client in self.clients {
            client.join().unwrap().unwrap();
        }
        self.answered.load(Ordering::SeqCst)
    }
}

trait ReadWrite: Read + Write + Send {}
impl<T: Read + Write + Send> ReadWrite for T {}

fn tcp(addr: SocketAddr) -> impl Fn() -> std::io::Result<Box<dyn ReadWrite>> {
    move || {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Box::new(stream) as Box<dyn ReadWrite>)
    }
}

/// Upgrades `times` times in a row under `load`; returns the pid serving at the end. Each
/// time: SIGUSR2 to the pid in the file, the file names a new process, the old one exits.
fn upgrade_in_a_row(pid_file: &Path, first: &mut Running, times: usize, load: &Load) -> u32 {
    let mut current = read_pid(pid_file).expect("the pid file");
    assert_eq!(current, first.child.id());
    for round in 0..times {
        load.wait_for(20);
        signal(current, "USR2");
        let new = wait_for_new_pid(pid_file, current);
        if round == 0 {
            // The first process is this test's child: reap it.
            assert!(
                first.wait_timeout(Duration::from_secs(20)).is_some_and(|s| s.success()),
                "the old process failed"
            );
        } else {
            wait_until_gone(current, Duration::from_secs(20));
        }
        current = new;
    }
    load.wait_for(20);
    current
}

#[test]
fn echo_upgrades_ten_times_under_load_losing_nothing() {
    let dir = temp_dir("upgrade-echo");
    let pid_file = dir.join("echo.pid");
    let _stops = StopsSuccessor(&pid_file);
    let mut command = Command::new(example("echo"));
    command.args(["--addr", "127.0.0.1:0", "--drain-timeout", "20", "--pid-file"]).arg(&pid_file);
    let mut first = Running::start(command);
    // The first process's descriptors with no client, against the tenth successor's once
    // its clients are gone: an upgrade that leaked one would leave ten more.
    let fds_at_start = open_fds(first.child.id());
    let load = Load::start(6, tcp(first.addr));
    load.wait_for(50);
    let mut current = upgrade_in_a_row(&pid_file, &mut first, 1, &load);
    let last = upgrade_in_a_row_from(&pid_file, &mut current, 9, &load);
    let answered = load.finish();
    let deadline = Instant::now() + Duration::from_secs(10);
    while open_fds(last) != fds_at_start && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(open_fds(last), fds_at_start, "descriptors leaked across ten upgrades");
    assert!(answered > 100, "{answered} round trips");
    signal(last, "TERM");
    wait_until_gone(last, Duration::from_secs(10));
    assert!(!pid_file.exists(), "the pid file outlived the last process");
}

/// [`upgrade_in_a_row`] from a process that is not this test's child.
fn upgrade_in_a_row_from(pid_file: &Path, current: &mut u32, times: usize, load: &Load) -> u32 {
    for _ in 0..times {
        load.wait_for(20);
        signal(*current, "USR2");
        let new = wait_for_new_pid(pid_file, *current);
        wait_until_gone(*current, Duration::from_secs(20));
        *current = new;
    }
    load.wait_for(20);
    *current
}

#[test]
fn echo_upgrades_with_workers_and_over_a_unix_socket() {
    let dir = temp_dir("upgrade-variants");
    // Two workers: two SO_REUSEPORT sockets handed over.
    let pid_file = dir.join("workers.pid");
    let _stops = StopsSuccessor(&pid_file);
    let mut command = Command::new(example("echo"));
    command.args(["--addr", "127.0.0.1:0", "--workers", "2", "--pid-file"]).arg(&pid_file);
    let mut first = Running::start(command);
    let load = Load::start(4, tcp(first.addr));
    let last = upgrade_in_a_row(&pid_file, &mut first, 2, &load);
    assert!(load.finish() > 40);
    signal(last, "TERM");
    wait_until_gone(last, Duration::from_secs(10));

    // A Unix-domain socket.
    let (pid_file, path) = (dir.join("unix.pid"), dir.join("echo.sock"));
    let _stops = StopsSuccessor(&pid_file);
    let mut command = Command::new(example("echo"));
    command.arg("--unix").arg(&path).arg("--pid-file").arg(&pid_file);
    let mut first = Running::start(command);
    let for_clients = path.clone();
    let load = Load::start(4, move || {
        let stream = std::os::unix::net::UnixStream::connect(&for_clients)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Box::new(stream) as Box<dyn ReadWrite>)
    });
    // Each old process left the socket file to its successor (the load's clients connect by
    // the path throughout); the last removes it at exit, as it has no successor.
    let last = upgrade_in_a_row(&pid_file, &mut first, 2, &load);
    assert!(load.finish() > 40);
    assert!(path.exists(), "an old process removed the socket file its successor serves");
    signal(last, "TERM");
    wait_until_gone(last, Duration::from_secs(10));
    assert!(!path.exists(), "the last process left its socket file behind");
}

/// A new process that cannot start (here the binary was replaced by one that exits at once)
/// leaves the old one serving, says so in its log, and keeps the pid file; a later upgrade,
/// once the binary is good again, goes through.
#[test]
fn a_failed_upgrade_leaves_the_old_process_serving() {
    let dir = temp_dir("upgrade-failed");
    let (pid_file, binary) = (dir.join("echo.pid"), dir.join("echo"));
    let _stops = StopsSuccessor(&pid_file);
    std::fs::copy(example("echo"), &binary).unwrap();
    let mut command = Command::new(&binary);
    command.args(["--addr", "127.0.0.1:0", "--pid-file"]).arg(&pid_file);
    let mut first = Running::start_logged(command);
    let old = first.child.id();
    let load = Load::start(2, tcp(first.addr));
    load.wait_for(20);
    // A broken new binary, as a bad deploy would leave.
    std::fs::remove_file(&binary).unwrap();
    std::fs::write(&binary, "#!/bin/sh\nexit 3\n").unwrap();
    std::fs::set_permissions(&binary, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    signal(old, "USR2");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !first.log().contains("upgrade failed") {
        assert!(Instant::now() < deadline, "no failure logged:\n{}", first.log());
        thread::sleep(Duration::from_millis(20));
    }
    assert!(first.log().contains("exited (exit status: 3); still serving"), "{}", first.log());
    load.wait_for(20);
    assert_eq!(read_pid(&pid_file), Some(old));
    // The binary is good again: the next upgrade goes through.
    std::fs::remove_file(&binary).unwrap();
    std::fs::copy(example("echo"), &binary).unwrap();
    let last = upgrade_in_a_row(&pid_file, &mut first, 1, &load);
    assert!(load.finish() > 40);
    signal(last, "TERM");
    wait_until_gone(last, Duration::from_secs(10));
}

/// HTTP clients as real ones behave: keep-alive connections, request after request; a
/// request on a kept-alive connection that the server closed before any byte of an answer
/// is retried on a new connection (RFC 9112 §9.3.1: the server may close an idle
/// connection at any time). Across three upgrades, every request is answered 200.
#[test]
fn http_upgrades_under_keep_alive_load() {
    let dir = temp_dir("upgrade-http");
    let pid_file = dir.join("http.pid");
    let _stops = StopsSuccessor(&pid_file);
    let mut command = Command::new(example("http"));
    command.args(["--addr", "127.0.0.1:0", "--pid-file"]).arg(&pid_file);
    let mut first = Running::start(command);
    let addr = first.addr;
    let (stop, answered, retried) =
        (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (stop, answered, retried) = (Arc::clone(&stop), Arc::clone(&answered), Arc::clone(&retried));
            thread::spawn(move || {
                let mut connection: Option<(BufReader<TcpStream>, u32)> = None;
                while !stop.load(Ordering::SeqCst) {
                    let (reader, used) = connection.get_or_insert_with(|| {
                        let stream = TcpStream::connect(addr).expect("refused");
                        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                        (BufReader::new(stream), 0)
                    });
                    reader.get_mut().write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").expect("reset on write");
                    let mut status = String::new();
                    match reader.read_line(&mut status) {
                        Ok(0) | Err(_) if *used > 0 => {
                            // Closed between requests before answering: retry on a new one.
                            retried.fetch_add(1, Ordering::SeqCst);
                            connection = None;
                            continue;
                        }
                        Ok(_) => assert!(status.starts_with("HTTP/1.1 200"), "{status:?}"),
                        Err(e) => panic!("a first request unanswered: {e}"),
                    }
                    let mut close = false;
                    let mut line = String::new();
                    while reader.read_line(&mut line).unwrap() > 2 {
                        close |= line.eq_ignore_ascii_case("connection: close\r\n");
                        line.clear();
                    }
                    let mut body = [0; 6];
                    reader.read_exact(&mut body).unwrap();
                    assert_eq!(&body, b"hello\n");
                    answered.fetch_add(1, Ordering::SeqCst);
                    *used += 1;
                    if close || *used == 20 {
                        connection = None;
                    }
                }
            })
        })
        .collect();
    let wait_for = |more: u64| {
        let target = answered.load(Ordering::SeqCst) + more;
        let deadline = Instant::now() + Duration::from_secs(20);
        while answered.load(Ordering::SeqCst) < target {
            assert!(Instant::now() < deadline, "the load stalled");
            thread::sleep(Duration::from_millis(5));
        }
    };
    wait_for(100);
    let mut current = first.child.id();
    for round in 0..3 {
        signal(current, "USR2");
        let new = wait_for_new_pid(&pid_file, current);
        if round == 0 {
            assert!(first.wait_timeout(Duration::from_secs(20)).is_some_and(|s| s.success()));
        } else {
            wait_until_gone(current, Duration::from_secs(20));
        }
        current = new;
        wait_for(100);
    }
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.join().unwrap();
    }
    signal(current, "TERM");
    wait_until_gone(current, Duration::from_secs(10));
}

/// A supervisor's socket activation (systemd's convention): the listening socket is
/// descriptor 3, `LISTEN_FDS=1`, `LISTEN_PID` the server's own pid (set by the shell that
/// then becomes the server with `exec`). The server binds nothing and serves it.
#[test]
fn echo_serves_a_socket_handed_over_by_a_supervisor() {
    use std::os::fd::AsRawFd;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let fd = listener.as_raw_fd();
    // Inheritable for this one spawn; bash moves it to descriptor 3.
    socket2::SockRef::from(&listener).set_cloexec(false).unwrap();
    let to_three = if fd == 3 { String::new() } else { format!("exec 3<&{fd} {fd}<&-; ") };
    let script = format!("{to_three}export LISTEN_PID=$$ LISTEN_FDS=1; exec \"$0\" --addr 127.0.0.1:1");
    let mut command = Command::new("bash");
    command.arg("-c").arg(script).arg(example("echo"));
    let server = Running::start_logged(command);
    socket2::SockRef::from(&listener).set_cloexec(true).unwrap();
    drop(listener);
    assert_eq!(server.addr, addr, "it announced {}", server.announced);
    let mut stream = server.connect();
    evloop_support::testing::round_trip(&mut stream, b"activated\n");
}
