//! The proxy and chat examples end to end, as binaries, with clients that stop reading,
//! half-close and reset.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::examples::{check_command_line, example, Running};
use evloop_support::observe::open_fds;
use evloop_support::testing::{round_trip, set_linger_zero, ReadSome, Rng, WriteSome};

fn echo_server() -> Running {
    let mut command = Command::new(example("echo"));
    command.args(["--addr", "127.0.0.1:0"]);
    Running::start(command)
}

fn proxy_to(upstream: &str) -> Running {
    let mut command = Command::new(example("proxy"));
    command.args(["--listen", "127.0.0.1:0", "--upstream", upstream, "--connect-timeout", "2"]);
    Running::start_logged(command)
}

/// Resident memory of a child process, from /proc.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Bytes both ways through the proxy, exactly; half-close carried across; a reset client
/// costs only itself.
#[test]
fn proxy_carries_bytes_and_half_close_both_ways() {
    let echo = echo_server();
    let proxy = proxy_to(&echo.addr.to_string());
    // Several clients at once, each streaming random chunks and reading the echo.
    let mut rng = Rng::seeded("proxy_carries_bytes_and_half_close_both_ways");
    let clients: Vec<_> = (0..8)
        .map(|i| {
            let payload = rng.bytes(256 * 1024);
            let mut stream = proxy.connect();
            thread::spawn(move || {
                let mut reader = stream.try_clone().unwrap();
                let expected = payload.clone();
                let read = thread::spawn(move || {
                    let mut back = Vec::new();
                    reader.read_to_end(&mut back).unwrap();
                    back
                });
                for chunk in payload.chunks(7919) {
                    stream.write_all(chunk).unwrap();
                }
                // Half-close: the echo server sees EOF through the proxy, finishes, closes.
                stream.shutdown(Shutdown::Write).unwrap();
                assert!(read.join().unwrap() == expected, "client {i}: bytes lost or reordered");
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    // A client that resets mid-stream does not disturb the next one.
    let reset = proxy.connect();
    (&reset).write_all(&[1; 10_000]).unwrap();
    set_linger_zero(&reset);
    drop(reset);
    let mut next = proxy.connect();
    round_trip(&mut next, b"still here");
}

/// A client that resets at once, before its upstream connection is up, still takes that
/// upstream connection with it (found by the soak, benches/soak.sh: the client's side did
/// not know its upstream until `Linked` arrived, so it could not tell it `Gone`, and the
/// upstream stayed open for good, in the proxy and in the echo server).
#[test]
fn proxy_client_reset_before_upstream_is_up_leaves_nothing_open() {
    let echo = echo_server();
    let proxy = proxy_to(&echo.addr.to_string());
    let (proxy_pid, echo_pid) = (proxy.child.id(), echo.child.id());
    let before = (open_fds(proxy_pid), open_fds(echo_pid));
    for _ in 0..20 {
        let client = proxy.connect();
        (&client).write_all(&[7; 1000]).unwrap();
        set_linger_zero(&client);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut after = (open_fds(proxy_pid), open_fds(echo_pid));
    while after != before && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
        after = (open_fds(proxy_pid), open_fds(echo_pid));
    }
    assert_eq!(after, before, "descriptors (proxy, echo) left open by reset clients");
}

/// A client that sends and never reads stalls the other direction: its data backs up
/// through the echo server into the proxy, which stops reading it. Memory stays bounded
/// and everyone else is served.
#[test]
fn proxy_stops_reading_a_client_that_does_not_read() {
    let echo = echo_server();
    let proxy = proxy_to(&echo.addr.to_string());
    let flooder = proxy.connect();
    flooder.set_write_timeout(Some(Duration::from_millis(200))).unwrap();
    let block = vec![b'x'; 64 * 1024];
    let mut sent = 0usize;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && sent < 64 << 20 {
        match (&flooder).write_some(&block) {
            Ok(n) => sent += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(sent < 64 << 20, "64 MiB went in without being read: no backpressure");
    let rss = rss_kib(proxy.child.id());
    assert!(rss < 32 * 1024, "proxy RSS {rss} KiB with {sent} bytes stalled");
    let mut polite = proxy.connect();
    round_trip(&mut polite, b"served meanwhile");
}

/// An upstream that refuses: the client is closed, and the proxy says why.
#[test]
fn proxy_closes_the_client_when_the_upstream_refuses() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let proxy = proxy_to(&format!("127.0.0.1:{port}"));
    let mut client = proxy.connect();
    let mut buf = [0; 8];
    let n = client.read_some(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the client is closed");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !proxy.log().contains("refused") {
        assert!(Instant::now() < deadline, "no logged reason: {}", proxy.log());
        thread::sleep(Duration::from_millis(20));
    }
}

fn chat() -> Running {
    let mut command = Command::new(example("chat"));
    command.args(["--addr", "127.0.0.1:0", "--max-backlog", "65536"]);
    Running::start_logged(command)
}

/// The next line; end of stream is a failure (a loop waiting for lines must not spin on it).
#[track_caller]
fn line(reader: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    let n = reader.read_line(&mut line).unwrap();
    assert!(n > 0, "the chat server closed this connection");
    line
}

/// Two members, each welcomed, the first told of the second's joining.
fn two_members(server: &Running) -> (BufReader<TcpStream>, BufReader<TcpStream>) {
    let mut a = BufReader::new(server.connect());
    assert!(line(&mut a).starts_with("* welcome"));
    let mut b = BufReader::new(server.connect());
    assert!(line(&mut b).starts_with("* welcome"));
    assert!(line(&mut a).contains("joined"));
    (a, b)
}

/// Lines go to everyone else; joins and leaves are announced.
#[test]
fn chat_delivers_each_line_to_every_other_client() {
    let server = chat();
    let (mut a, mut b) = two_members(&server);
    a.get_mut().write_all(b"hello from a\n").unwrap();
    assert!(line(&mut b).ends_with(": hello from a\n"));
    drop(b);
    assert!(line(&mut a).contains("left"));
}

/// A member that never reads is dropped once its backlog passes the cap; the sender and a
/// reading member are never held up.
#[test]
fn chat_drops_a_member_that_never_reads() {
    let server = chat();
    let mut talker = BufReader::new(server.connect());
    line(&mut talker);
    // A small receive window, so the kernel cannot soak up what the server must hold.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    socket.connect(&server.addr.into()).unwrap();
    let silent = TcpStream::from(socket);
    let mut listener = BufReader::new(server.connect());
    line(&mut listener);
    line(&mut talker);
    line(&mut talker);
    // More than the kernel's send buffer can take for the silent member (~4 MiB here).
    // The talker sends in batches the listener confirms, so the listener's backlog stays far
    // below the cap however slowly this machine runs the test: the only member that may
    // fall behind is the silent one.
    const LINES: usize = 10_000;
    const BATCH: usize = 10;
    let text = "y".repeat(1000);
    let batch = format!("{text}\n").repeat(BATCH);
    for _ in 0..LINES / BATCH {
        talker.get_mut().write_all(batch.as_bytes()).unwrap();
        let mut got = 0;
        while got < BATCH {
            if line(&mut listener).contains("yyyy") {
                got += 1;
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log().contains("disconnected: more than 65536 bytes unread") {
        assert!(Instant::now() < deadline, "the silent member was not dropped: {}", server.log());
        thread::sleep(Duration::from_millis(20));
    }
    drop(silent);
}

/// proxy's flags: help with the defaults, version; `--upstream` is required, and a bad
/// endpoint or a zero limit is an error naming the flag, status 2.
#[test]
fn proxy_command_line() {
    let flags =
        "--addr=127.0.0.1:7100 --upstream --max-conns=2048 --connect-timeout=10 --fin-timeout=5 --idle-timeout=300";
    let bad: [(&[&str], &str); 7] = [
        (&[], "--upstream"),
        (&["--upstream", "nowhere"], "--upstream"),
        (&["--upstream", "127.0.0.1:7000", "--addr", "unix:"], "--addr"),
        (&["--upstream", "127.0.0.1:7000", "--max-conns", "0"], "--max-conns"),
        (&["--upstream", "127.0.0.1:7000", "--connect-timeout", "0"], "--connect-timeout"),
        (&["--upstream", "127.0.0.1:7000", "--fin-timeout", "0"], "--fin-timeout"),
        (&["--upstream", "127.0.0.1:7000", "--bogus"], "--bogus"),
    ];
    check_command_line("proxy", flags, &bad);
}

/// chat's flags: help with the defaults (a longer idle timeout than the other examples'),
/// version; a zero or non-numeric limit is an error naming the flag, status 2.
#[test]
fn chat_command_line() {
    let flags = "--addr=127.0.0.1:7001 --max-backlog=1m --max-line=4k --idle-timeout=600";
    let bad: [(&[&str], &str); 4] = [
        (&["--max-backlog", "0"], "--max-backlog"),
        (&["--max-line", "long"], "--max-line"),
        (&["--idle-timeout", "-5"], "--idle-timeout"),
        (&["--bogus"], "--bogus"),
    ];
    check_command_line("chat", flags, &bad);
}

/// What one member sends cannot drive another's terminal: escape sequences and a bare
/// carriage return are stripped (a member could forge a notice with them), and the line cap
/// counts what is sent, after invalid UTF-8 has become U+FFFD (three bytes a byte).
#[test]
fn chat_strips_control_characters_and_caps_what_it_sends() {
    let server = chat();
    let (mut a, mut b) = two_members(&server);
    a.get_mut().write_all(b"\x1b[2Jhi\r* #9.9 left (forged)\x07\r\n").unwrap();
    let got = line(&mut b);
    assert!(got.ends_with(": [2Jhi* #9.9 left (forged)\n"), "{got:?}");
    assert!(!got.bytes().any(|c| c < 0x20 && c != b'\n'), "{got:?}");
    // 2,000 invalid bytes: under the 4,096-byte cap as received, 6,000 bytes as sent.
    let mut long = vec![0xff; 2000];
    long.push(b'\n');
    a.get_mut().write_all(&long).unwrap();
    assert_eq!(line(&mut a), "* line too long\n");
}

/// An abandoned pair is closed on both sides at once: the upstream never reads, so the
/// proxy holds output for it; the client resets. The upstream connection goes with the
/// client (aborted: what it owed is wanted by nobody), instead of holding its descriptor
/// and output until the idle timeout (300 s) as it did.
#[test]
fn proxy_closes_both_sides_of_an_abandoned_pair() {
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = proxy_to(&upstream.local_addr().unwrap().to_string());
    let proxy_pid = proxy.child.id();
    let before = open_fds(proxy_pid);
    let client = proxy.connect();
    let (_held, _) = upstream.accept().unwrap(); // accepted, never read
                                                 // Enough that the proxy holds output for the upstream (its socket buffers full).
    client.set_nonblocking(true).unwrap();
    let chunk = vec![7u8; 64 * 1024];
    // Until the buffers are full: 20 refusals in a row (100 ms without progress).
    let mut refused = 0;
    while refused < 20 {
        match (&client).write(&chunk) {
            Ok(_) => refused = 0,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                refused += 1;
                thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(open_fds(proxy_pid) > before, "the pair is open");
    set_linger_zero(&client);
    drop(client);
    let deadline = Instant::now() + Duration::from_secs(5);
    while open_fds(proxy_pid) != before {
        assert!(
            Instant::now() < deadline,
            "the proxy still holds the upstream side: {} descriptors",
            open_fds(proxy_pid)
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Idle fill on the proxy: silent clients take every slot (each with its upstream); a new
/// client is still served within seconds, the silent ones being displaced after about a
/// second each (before: locked out until the idle timeout, 300 s).
#[test]
fn proxy_serves_a_new_client_despite_an_idle_fill() {
    let echo = echo_server();
    let mut command = Command::new(example("proxy"));
    command.args(["--listen", "127.0.0.1:0", "--upstream", &echo.addr.to_string(), "--max-conns", "10"]);
    let proxy = Running::start_logged(command);
    let _silent: Vec<TcpStream> = (0..12).map(|_| proxy.connect()).collect();
    let mut client = proxy.connect();
    client.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    round_trip(&mut client, b"let me through");
}
