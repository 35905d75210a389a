//! Integration tests for `evloop::select`, on real 127.0.0.1 sockets, plus
//! end-to-end tests of the `echo_select` example binary. Every wait is bounded.

use std::collections::HashSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use evloop::select::{select, Events, Selector, Trigger};

use crate::examples::{check_command_line, example, Running};
use evloop_support::testing::{stream_and_verify, ReadSome, Rng};

const WAIT: Option<Duration> = Some(Duration::from_secs(5));
const NOW: Option<Duration> = Some(Duration::ZERO);
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// A connected loopback pair `(client, server)` with I/O timeouts, so a test
/// can never hang on a blocking read.
fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    for s in [&client, &server] {
        s.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        s.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
    }
    (client, server)
}

/// Client sends 100 bytes; `read` more than once, as select(2) would, until drained.
fn level_scenario(mut is_readable: impl FnMut(Option<Duration>, RawFd) -> bool) {
    let (mut client, mut server) = pair();
    let fd = server.as_raw_fd();
    client.write_all(&[7; 100]).expect("write");
    assert!(is_readable(WAIT, fd), "data sent: must be readable");
    let mut buf = [0u8; 100];
    assert_eq!(server.read_some(&mut buf[..16]).expect("read"), 16);
    assert!(is_readable(NOW, fd), "84 bytes unread: must still be readable");
    assert!(is_readable(NOW, fd), "and again, while nothing changed");
    server.read_exact(&mut buf[16..]).expect("drain");
    assert!(!is_readable(NOW, fd), "drained: must not be readable");
}

/// Level-triggered like select(2): the free function keeps reporting a
/// socket with unread data, and stops once it is drained.
#[test]
fn free_function_is_level_triggered() {
    level_scenario(|timeout, fd| {
        let (r, w, x) = select(&[fd], &[], &[], timeout).expect("select");
        assert!(w.is_empty() && x.is_empty());
        r == [fd]
    });
}

/// Same contract for `Selector`, where it only holds because each reported
/// fd is re-armed (EPOLL_CTL_MOD) before the next edge-triggered wait.
#[test]
fn selector_is_level_triggered() {
    let mut sel = Selector::new().expect("selector");
    level_scenario(|timeout, fd| {
        if sel.get(fd).is_none() {
            sel.register(fd, Events::READ, "server").expect("register");
        }
        let ready = sel.select(timeout).expect("select");
        assert!(ready.iter().all(|&r| r == (fd, Events::READ)), "{ready:?}");
        !ready.is_empty()
    });
}

/// A socket with room in its send buffer is reported writable on every call
/// (edge-triggered epoll would report it only once).
#[test]
fn writable_stays_writable() {
    let (client, _server) = pair();
    let fd = client.as_raw_fd();
    for _ in 0..3 {
        assert_eq!(select(&[], &[fd], &[], WAIT).expect("select").1, [fd]);
    }
    let mut sel = Selector::new().expect("selector");
    sel.register(&client, Events::READ | Events::WRITE, ()).expect("register");
    for _ in 0..3 {
        assert_eq!(sel.select(WAIT).expect("select"), [(fd, Events::WRITE)]);
    }
}

/// Timeouts: ZERO returns at once, 50 ms waits at least 50 ms (upper bound
/// generous for a loaded machine), and a sub-millisecond timeout still waits
/// (mio rounds it up to 1 ms) instead of returning early or spinning.
#[test]
fn timeouts_with_nothing_ready() {
    let (_client, server) = pair();
    let fd = server.as_raw_fd();
    let mut sel = Selector::new().expect("selector");
    sel.register(&server, Events::READ, ()).expect("register");
    let mut both = |timeout: Duration| {
        let start = Instant::now();
        let (r, w, x) = select(&[fd], &[], &[fd], Some(timeout)).expect("select");
        assert!(r.is_empty() && w.is_empty() && x.is_empty());
        let free = start.elapsed();
        let start = Instant::now();
        assert!(sel.select(Some(timeout)).expect("select").is_empty());
        [free, start.elapsed()]
    };
    for took in both(Duration::ZERO) {
        // Generous: a select that blocked would wait forever (nothing becomes ready).
        assert!(took < Duration::from_secs(5), "ZERO took {took:?}");
    }
    for took in both(Duration::from_millis(50)) {
        assert!(took >= Duration::from_millis(50), "50 ms took {took:?}");
        assert!(took < Duration::from_secs(2), "50 ms took {took:?}");
    }
    let tiny = Duration::from_micros(200);
    for took in both(tiny) {
        assert!(took >= tiny && took < Duration::from_secs(2), "200 µs took {took:?}");
    }
}

/// Every misuse maps to the documented `io::ErrorKind` (or OS error), with
/// a message naming the fd; nothing panics.
#[test]
fn errors_have_documented_kinds() {
    let (client, _server) = pair();
    let fd = client.as_raw_fd();
    let mut sel = Selector::new().expect("selector");
    sel.register(&client, Events::READ, 1).expect("register");

    let err = sel.register(fd, Events::WRITE, 2).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert!(err.to_string().contains(&format!("fd {fd}")), "{err}");
    assert_eq!(sel.get(fd).map(|k| *k.data()), Some(1), "first key kept");

    let err = sel.register(fd + 1000, Events::EMPTY, 3).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = sel.modify(&client, Events::EMPTY).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);

    sel.unregister(&client).expect("unregister");
    let err = sel.unregister(&client).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = sel.modify(&client, Events::READ).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);

    // No process has this many fds open, so it is certainly not open: EBADF.
    const EBADF: i32 = 9;
    let closed = RawFd::MAX;
    let err = sel.register(closed, Events::READ, 4).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(EBADF), "{err}");
    let err = select(&[fd, closed], &[], &[], NOW).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(EBADF), "{err}");
    assert!(sel.is_empty(), "failed registrations must not leave keys");
}

/// The teaching counter-example: in edge mode (no re-arm) data left unread is
/// never reported again, and a writable socket is reported only once; only a
/// *new* arrival produces a new event.
#[test]
fn edge_mode_misses_unread_data() {
    let (mut client, mut server) = pair();
    let fd = server.as_raw_fd();
    let mut sel = Selector::with_trigger(Trigger::Edge).expect("selector");
    assert_eq!(sel.trigger(), Trigger::Edge);
    sel.register(&server, Events::READ, ()).expect("register");
    client.write_all(&[1; 100]).expect("write");
    assert_eq!(sel.select(WAIT).expect("select"), [(fd, Events::READ)]);
    let mut buf = [0u8; 100];
    assert_eq!(server.read_some(&mut buf[..16]).expect("read"), 16);
    assert!(
        sel.select(NOW).expect("select").is_empty(),
        "edge mode: the 84 unread bytes are not reported (the bug)"
    );
    server.set_nonblocking(true).expect("nonblocking");
    assert_eq!(server.read_some(&mut buf).expect("read"), 84, "yet they are there");
    client.write_all(b"x").expect("write");
    assert_eq!(sel.select(WAIT).expect("select"), [(fd, Events::READ)]);

    let mut sel = Selector::with_trigger(Trigger::Edge).expect("selector");
    sel.register(&client, Events::WRITE, ()).expect("register");
    assert_eq!(sel.select(WAIT).expect("select").len(), 1);
    assert!(sel.select(NOW).expect("select").is_empty(), "writable once");
}

/// The soft RLIMIT_NOFILE, from /proc/self/limits (no libc needed).
fn soft_fd_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// No FD_SETSIZE ceiling: 600 loopback pairs (1200+ fds, many numbered above
/// 1024, where select(2) would overflow its bit set) all get reported.
/// Needs `ulimit -n` of at least 1600 (this project's machines have 20,000).
#[test]
fn more_than_1024_fds() {
    const PAIRS: usize = 600;
    let limit = soft_fd_limit().unwrap_or(0);
    assert!(limit >= 1600, "this test needs `ulimit -n` >= 1600; it is {limit}");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut pairs = Vec::new();
    for _ in 0..PAIRS {
        let made = TcpStream::connect(addr).and_then(|c| Ok((c, listener.accept()?.0)));
        match made {
            Ok(pair) => pairs.push(pair),
            Err(e) => panic!("connect/accept after {} pairs: {e}", pairs.len()),
        }
    }
    let mut sel = Selector::new().expect("selector");
    for (client, server) in &mut pairs {
        client.write_all(b"!").expect("write");
        sel.register(&*client, Events::WRITE, ()).expect("register");
        sel.register(&*server, Events::READ, ()).expect("register");
    }
    let max_fd = sel.keys().map(|k| k.fd()).max().expect("keys");
    assert!(max_fd > 1024, "max fd {max_fd} should exceed FD_SETSIZE");

    let mut seen = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.len() < 2 * PAIRS && Instant::now() < deadline {
        seen.extend(sel.select(WAIT).expect("select").into_iter().map(|r| r.0));
    }
    assert_eq!(seen.len(), 2 * PAIRS);
    assert!(seen.contains(&max_fd));

    let readers: Vec<RawFd> = pairs.iter().map(|p| p.1.as_raw_fd()).collect();
    let writers: Vec<RawFd> = pairs.iter().map(|p| p.0.as_raw_fd()).collect();
    let (r, w, x) = select(&readers, &writers, &[], WAIT).expect("select");
    assert_eq!((r, w, x.len()), (readers, writers, 0));
}

// ---- the echo_select example binary -------------------------------------

/// Starts the example on an ephemeral port with a pipe as its stdin.
fn spawn_echo() -> Running {
    let mut command = Command::new(example("echo_select"));
    command.args(["--addr", "127.0.0.1:0"]).stdin(Stdio::piped());
    Running::start(command)
}

/// 100 concurrent clients through the example binary: every byte of every
/// random stream comes back exactly, in order, then EOF (the server finishes
/// echoing after each half-close). Then stdin stops it cleanly.
#[test]
fn example_echoes_100_clients() {
    let mut child = spawn_echo();
    let addr = child.addr;
    let mut rng = Rng::seeded("example_echoes_100_clients");
    thread::scope(|s| {
        for _ in 0..100 {
            let payload = rng.bytes(64 * 1024);
            let client_rng = Rng::new(rng.next_u64());
            s.spawn(move || stream_and_verify(addr, payload, client_rng));
        }
    });
    let stdin = child.child.stdin.as_mut().expect("stdin");
    stdin.write_all(b"stop\n").expect("write stdin");
    let status = child.wait_timeout(Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}

/// Any line on stdin stops the server with exit status 0, promptly.
#[test]
fn example_stops_on_stdin_line() {
    let mut child = spawn_echo();
    let _idle_client = TcpStream::connect(child.addr).expect("connect"); // must not block the stop
    let stdin = child.child.stdin.as_mut().expect("stdin");
    stdin.write_all(b"quit\n").expect("write stdin");
    let status = child.wait_timeout(Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}

/// EOF on stdin (its writer closed) also stops the server with status 0.
#[test]
fn example_stops_on_stdin_eof() {
    let mut child = spawn_echo();
    drop(child.child.stdin.take());
    let status = child.wait_timeout(Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}

/// `--help` prints usage and exits 0; an unknown flag prints an error naming it plus
/// usage on stderr and exits 2.
#[test]
fn example_command_line() {
    let bad: [(&[&str], &str); 2] = [(&["--bogus"], "--bogus"), (&["--addr"], "--addr")];
    check_command_line("echo_select", "--addr=127.0.0.1:10000", &bad);
    let unknown = Command::new(example("echo_select")).arg("--bogus").output().expect("run");
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("Usage: echo_select"));
}

/// Descriptor exhaustion: under `ulimit -n 32`, more clients than descriptors connect. The
/// server caps its clients below the limit (the rest wait in the backlog) instead of
/// exiting when `accept` or `select` run out of descriptors, and serves the waiting ones
/// once others leave.
#[test]
fn example_survives_descriptor_exhaustion() {
    let mut command = Command::new("bash");
    let line = format!("ulimit -n 32 && exec '{}' --addr 127.0.0.1:0", example("echo_select").display());
    command.arg("-c").arg(line).stdin(Stdio::piped());
    let mut child = Running::start(command);
    let mut clients: Vec<TcpStream> = (0..40).map(|_| child.connect()).collect();
    for client in &mut clients {
        client.write_all(b"hi").unwrap();
    }
    crate::examples::wait_echoed_or_queued(&clients, child.addr.port(), 2);
    let mut waiting = Vec::new();
    let mut served = 0;
    for client in clients.iter_mut() {
        client.set_nonblocking(true).unwrap();
        let mut buf = [0; 2];
        match client.read_some(&mut buf) {
            Ok(2) => served += 1,
            Err(e) if e.kind() == ErrorKind::WouldBlock => waiting.push(client.try_clone().unwrap()),
            other => panic!("client failed: {other:?}"),
        }
    }
    assert!(served > 0 && !waiting.is_empty(), "served {served}, waiting {}", waiting.len());
    assert!(child.child.try_wait().unwrap().is_none(), "the server exited under descriptor pressure");
    // Free some slots: the first waiting client is served.
    clients.drain(..10);
    let first = &mut waiting[0];
    first.set_nonblocking(false).unwrap();
    first.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0; 2];
    first.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hi");
    child.child.stdin.as_mut().unwrap().write_all(b"stop\n").unwrap();
    let status = child.wait_timeout(Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}
