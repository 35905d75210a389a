//! The kv example end to end over loopback sockets, speaking raw RESP (no Redis client or
//! server needed): every command, pipelining split at every byte, expiry with short time
//! to live (lazy and by the sweep), each kind of bad input answered with a protocol error
//! and a close while a polite client goes on being served, a client that pipelines without
//! end taking turns with the others, and one that never reads its replies being paused.

use std::io::{ErrorKind, Write};
use std::net::TcpStream;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::examples::{example, Running};
use evloop_support::observe::{far_end, wait_until};
use evloop_support::resp::encode_command;
use evloop_support::testing::{ReadSome, WriteSome};

fn kv_server(args: &[&str]) -> Running {
    let mut command = Command::new(example("kv"));
    command.args(["--addr", "127.0.0.1:0"]).args(args);
    Running::start(command)
}

/// `"SET k v"` as a multibulk (arguments without spaces).
fn cmd(line: &str) -> Vec<u8> {
    let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
    encode_command(&args)
}

/// Length of the first complete reply in `buf`, if it is all there.
fn reply_len(buf: &[u8]) -> Option<usize> {
    let line_end = buf.windows(2).position(|w| w == b"\r\n")? + 2;
    let number = || std::str::from_utf8(&buf[1..line_end - 2]).unwrap().parse::<i64>().unwrap();
    match buf[0] {
        b'+' | b'-' | b':' => Some(line_end),
        b'$' if number() < 0 => Some(line_end),
        b'$' => {
            let end = line_end + number() as usize + 2;
            (buf.len() >= end).then_some(end)
        }
        b'*' => {
            let mut at = line_end;
            for _ in 0..number().max(0) {
                at += reply_len(&buf[at..])?;
            }
            Some(at)
        }
        other => panic!("not a reply: {:?} in {:?}", char::from(other), String::from_utf8_lossy(buf)),
    }
}

/// A client reading whole replies.
struct Client {
    stream: TcpStream,
    pending: Vec<u8>,
}

impl Client {
    fn connect(server: &Running) -> Client {
        let stream = server.connect();
        stream.set_nodelay(true).unwrap();
        Client { stream, pending: Vec::new() }
    }

    fn send(&mut self, wire: &[u8]) {
        self.stream.write_all(wire).unwrap();
    }

    /// The next reply, as text.
    fn reply(&mut self) -> String {
        loop {
            if let Some(len) = (!self.pending.is_empty()).then(|| reply_len(&self.pending)).flatten() {
                let reply: Vec<u8> = self.pending.drain(..len).collect();
                return String::from_utf8_lossy(&reply).into_owned();
            }
            let mut buf = [0; 16384];
            let n = self.stream.read_some(&mut buf).expect("reply");
            assert!(n > 0, "closed before a whole reply: {:?}", String::from_utf8_lossy(&self.pending));
            self.pending.extend_from_slice(&buf[..n]);
        }
    }

    /// Sends `line` as a multibulk and returns the reply.
    fn call(&mut self, line: &str) -> String {
        self.send(&cmd(line));
        self.reply()
    }

    /// Reads until the server closes; nothing may arrive before the close.
    fn expect_closed(&mut self) {
        let mut buf = [0; 4096];
        match self.stream.read_some(&mut buf) {
            Ok(0) => {}
            Ok(n) => panic!("more after the last reply: {:?}", String::from_utf8_lossy(&buf[..n])),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            Err(e) => panic!("no close: {e}"),
        }
        assert!(self.pending.is_empty(), "unread: {:?}", String::from_utf8_lossy(&self.pending));
    }
}

#[test]
fn command_line() {
    let help = Command::new(example("kv")).arg("--help").output().unwrap();
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).unwrap();
    for flag in ["--addr", "--max-bulk", "--max-query", "--max-clients", "--version"] {
        assert!(help.contains(flag), "{flag} missing from --help:\n{help}");
    }
    let version = Command::new(example("kv")).arg("--version").output().unwrap();
    assert!(version.status.success() && String::from_utf8_lossy(&version.stdout).starts_with("kv "));
    for (args, names) in [
        (&["--max-bulk", "0"][..], "--max-bulk"),
        (&["--max-bulk", "1x"], "--max-bulk"),
        (&["--addr", "nowhere"], "--addr"),
        (&["--max-bulk", "1m", "--max-query", "1m"], "--max-query"),
        (&["--max-clients", "0"], "--max-clients"),
        (&["--bogus"], "--bogus"),
    ] {
        let run = Command::new(example("kv")).args(args).output().unwrap();
        assert_eq!(run.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(stderr.contains(names), "{args:?}: {stderr}");
    }
}

/// Every command once over a real socket, with the replies Redis gives.
#[test]
fn each_command() {
    let server = kv_server(&[]);
    let mut c = Client::connect(&server);
    let cases: &[(&str, &str)] = &[
        ("PING", "+PONG\r\n"),
        ("PING hi", "$2\r\nhi\r\n"),
        ("ECHO hello", "$5\r\nhello\r\n"),
        ("GET k", "$-1\r\n"),
        ("SET k v", "+OK\r\n"),
        ("GET k", "$1\r\nv\r\n"),
        ("SET k w NX", "$-1\r\n"),
        ("SET k w XX", "+OK\r\n"),
        ("SET other w XX", "$-1\r\n"),
        ("SET k v EX 100", "+OK\r\n"),
        ("TTL k", ":100\r\n"),
        ("SET k v PX 100000", "+OK\r\n"),
        ("TTL k", ":100\r\n"),
        ("SET k v EX 0", "-ERR invalid expire time in 'set' command\r\n"),
        ("EXPIRE k 50", ":1\r\n"),
        ("TTL k", ":50\r\n"),
        ("EXPIRE nope 50", ":0\r\n"),
        ("TTL nope", ":-2\r\n"),
        ("INCR n", ":1\r\n"),
        ("INCRBY n 10", ":11\r\n"),
        ("DECR n", ":10\r\n"),
        ("INCR k", "-ERR value is not an integer or out of range\r\n"),
        ("MSET a 1 b 2", "+OK\r\n"),
        ("MGET a b c", "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n"),
        ("EXISTS a b c", ":2\r\n"),
        ("DEL a c", ":1\r\n"),
        ("DBSIZE", ":3\r\n"),
        ("KEYS b", "*1\r\n$1\r\nb\r\n"),
        ("SCAN 0 MATCH [b]", "*2\r\n$1\r\n0\r\n*1\r\n$1\r\nb\r\n"),
        ("TYPE b", "+string\r\n"),
        ("SETNX b 3", ":0\r\n"),
        ("APPEND b 3", ":2\r\n"),
        ("GETDEL b", "$2\r\n23\r\n"),
        ("SETEX b 10 x", "+OK\r\n"),
        ("PERSIST b", ":1\r\n"),
        ("UNLINK b", ":1\r\n"),
        ("FLUSHALL", "+OK\r\n"),
        ("DBSIZE", ":0\r\n"),
        ("GET", "-ERR wrong number of arguments for 'get' command\r\n"),
        ("NOSUCH x", "-ERR unknown command 'NOSUCH', with args beginning with: 'x' \r\n"),
        ("COMMAND DOCS", "*0\r\n"),
        ("CLIENT SETNAME tester", "+OK\r\n"),
        ("CLIENT GETNAME", "$6\r\ntester\r\n"),
        ("CONFIG GET save", "*2\r\n$4\r\nsave\r\n$0\r\n\r\n"),
        ("CONFIG GET appendonly", "*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n"),
        ("HELLO 3", "-NOPROTO unsupported protocol version\r\n"),
        ("SELECT 0", "+OK\r\n"),
    ];
    for (line, expected) in cases {
        assert_eq!(c.call(line), *expected, "{line}");
    }
    let count = c.call("COMMAND COUNT");
    assert!(count.starts_with(':') && count.trim_end()[1..].parse::<u32>().unwrap() >= 25, "{count}");
    assert!(c.call("COMMAND").starts_with("*"));
    assert!(c.call("HELLO 2").contains("$5\r\nproto\r\n:2\r\n"));
    assert!(c.call("INFO").contains("connected_clients:1\r\n"));
    // Inline commands, as nc or telnet send them, quotes included.
    c.send(b"SET greeting \"hello world\"\r\nGET greeting\nPING\r\n\r\n");
    assert_eq!(c.reply(), "+OK\r\n");
    assert_eq!(c.reply(), "$11\r\nhello world\r\n");
    assert_eq!(c.reply(), "+PONG\r\n");
    // Binary-safe values.
    c.send(&encode_command(&[b"SET", b"bin", b"\0\r\n\xff"]));
    assert_eq!(c.reply(), "+OK\r\n");
    c.send(&encode_command(&[b"GET", b"bin"]));
    assert_eq!(c.reply(), String::from_utf8_lossy(b"$4\r\n\0\r\n\xff\r\n"));
    assert_eq!(c.call("QUIT"), "+OK\r\n");
    c.expect_closed();
}

/// A pipeline of commands, sent in two pieces cut at every byte (and then one byte at a
/// time), is answered in order, exactly as when sent whole.
#[test]
fn pipelining_split_at_every_byte() {
    let server = kv_server(&[]);
    let mut c = Client::connect(&server);
    let script = |p: usize| {
        let mut wire = Vec::new();
        for line in
            ["SET {p}:a 1", "INCR {p}:a", "GET {p}:a", "MSET {p}:b x {p}:c y", "MGET {p}:a {p}:b {p}:c"]
        {
            wire.extend(cmd(&line.replace("{p}", &format!("{p:04}"))));
        }
        wire.extend(format!("EXISTS {p:04}:a\r\nPING\r\n").as_bytes());
        wire
    };
    let expected = "+OK\r\n:2\r\n$1\r\n2\r\n+OK\r\n*3\r\n$1\r\n2\r\n$1\r\nx\r\n$1\r\ny\r\n:1\r\n+PONG\r\n";
    let replies = 7;
    let len = script(0).len();
    for cut in 0..=len {
        let wire = script(cut);
        c.send(&wire[..cut]);
        // The first piece is read (and parsed as far as it goes) on its own.
        wait_until(Duration::from_secs(5), "the server reads the first piece", || {
            far_end(&c.stream).is_some_and(|s| s.unread == 0)
        });
        c.send(&wire[cut..]);
        let got: String = (0..replies).map(|_| c.reply()).collect();
        assert_eq!(got, expected, "cut at {cut} of {len}");
    }
    let wire = script(len + 1);
    for byte in &wire {
        c.send(std::slice::from_ref(byte));
    }
    let got: String = (0..replies).map(|_| c.reply()).collect();
    assert_eq!(got, expected);
}

/// Keys with a short time to live disappear: on access (lazily), and unasked-for ones by
/// the sweep.
#[test]
fn expiry_with_a_short_ttl() {
    let server = kv_server(&[]);
    let mut c = Client::connect(&server);
    assert_eq!(c.call("SET k v PX 300"), "+OK\r\n");
    assert_eq!(c.call("GET k"), "$1\r\nv\r\n");
    let pttl: i64 = c.call("PTTL k").trim_end()[1..].parse().unwrap();
    assert!((1..=300).contains(&pttl), "{pttl}");
    assert_eq!(c.call("SET persistent v"), "+OK\r\n");
    for i in 0..50 {
        assert_eq!(c.call(&format!("SET short{i} v PX 300")), "+OK\r\n");
    }
    assert_eq!(c.call("DBSIZE"), ":52\r\n");
    // The time to live passing is the condition here.
    thread::sleep(Duration::from_millis(500));
    // Lazily: the key is gone for every command that looks.
    assert_eq!(c.call("GET k"), "$-1\r\n");
    assert_eq!(c.call("TTL k"), ":-2\r\n");
    assert_eq!(c.call("EXISTS k"), ":0\r\n");
    // Actively: nobody asked for short0..short49, but the sweep that ran after those
    // commands (its period had passed) collected them all (every sample was expired, so it
    // kept going within its budget).
    assert_eq!(c.call("DBSIZE"), ":1\r\n");
    assert!(c.call("INFO stats").contains("expired_keys:51\r\n"));
    assert_eq!(c.call("GET persistent"), "$1\r\nv\r\n");
}

/// Each kind of malformed input gets `-ERR Protocol error: ...` and a close, and never
/// disturbs a polite client served before and after it.
#[test]
fn bad_input_is_refused_and_closed_while_others_are_served() {
    let server = kv_server(&[]);
    let mut polite = Client::connect(&server);
    assert_eq!(polite.call("SET polite yes"), "+OK\r\n");
    let flood = |byte: u8, n: usize| -> Vec<u8> { vec![byte; n] };
    let mut many_args = b"*1000000\r\n".to_vec();
    while many_args.len() < 4_200_000 {
        many_args.extend_from_slice(b"$1\r\na\r\n");
    }
    let mut long_count = b"*1\r\n$".to_vec();
    long_count.extend(flood(b'1', 70_000));
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"*2\r\n$3\r\nGET\r\n$1048577\r\n".to_vec(), "invalid bulk length"),
        (b"*1\r\n$-5\r\n".to_vec(), "invalid bulk length"),
        (b"*-5\r\n".to_vec(), "invalid multibulk length"),
        (b"*100000000\r\n".to_vec(), "invalid multibulk length"),
        (b"*1\r\n:1\r\n".to_vec(), "expected '$', got ':'"),
        (b"*1\r\n$1\r\nabc\r\n".to_vec(), "bulk string not followed by CRLF"),
        (b"GET \"unbalanced\r\n".to_vec(), "unbalanced quotes in request"),
        // A million elements announced, then sent until the request outgrows the limit.
        (many_args, "query buffer over 4194304 bytes"),
        // A line that never ends.
        (flood(b'a', 70_000), "too big inline request"),
        (flood(b'*', 70_000), "too big mbulk count string"),
        (long_count, "too big bulk count string"),
    ];
    for (bad_bytes, message) in cases {
        let mut bad = Client::connect(&server);
        // Write from another thread: the server may stop reading once it has seen enough.
        let mut writer = bad.stream.try_clone().unwrap();
        let sender = thread::spawn(move || {
            let _ = writer.write_all(&bad_bytes);
        });
        assert_eq!(bad.reply(), format!("-ERR Protocol error: {message}\r\n"));
        bad.expect_closed();
        sender.join().unwrap();
        assert_eq!(polite.call("GET polite"), "$3\r\nyes\r\n", "after {message:?}");
    }
    // A bulk up to the limit is fine.
    let value = vec![b'v'; 1024 * 1024];
    polite.send(&encode_command(&[b"SET", b"big", &value]));
    assert_eq!(polite.reply(), "+OK\r\n");
    assert_eq!(polite.call("GET big").len(), value.len() + 12);
}

/// A client that pipelines without end does not hold the loop: another client's command is
/// answered promptly meanwhile.
#[test]
fn a_pipelining_flood_takes_turns() {
    let server = kv_server(&[]);
    let mut flooder = Client::connect(&server);
    let mut writer = flooder.stream.try_clone().unwrap();
    let pings: Vec<u8> = cmd("INCR flood").repeat(200_000);
    let total = 200_000;
    let sender = thread::spawn(move || writer.write_all(&pings).unwrap());
    // Read the flood's replies on another thread, as fast as they come, counting them.
    let flood_answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let progress = std::sync::Arc::clone(&flood_answered);
    let reader = thread::spawn(move || {
        let mut last = String::new();
        for _ in 0..total {
            last = flooder.reply();
            progress.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        last
    });
    // The flood is under way before the polite client asks anything.
    while flood_answered.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        thread::yield_now();
    }
    let mut polite = Client::connect(&server);
    assert_eq!(polite.call("PING"), "+PONG\r\n");
    // Told apart by order, not by the clock: the PING was answered while the flood was still
    // being answered. Without yielding, it would have waited for the whole flood.
    let during = flood_answered.load(std::sync::atomic::Ordering::SeqCst);
    assert!(during < total, "the PING waited for the whole flood ({during} of {total} answered first)");
    for _ in 0..49 {
        assert_eq!(polite.call("PING"), "+PONG\r\n");
    }
    sender.join().unwrap();
    assert_eq!(reader.join().unwrap(), format!(":{total}\r\n"));
}

/// A client that sends GETs of a large value and never reads the replies is paused:
/// the server's memory stays bounded and everyone else is still served.
#[test]
fn a_client_that_never_reads_is_paused() {
    let server = kv_server(&[]);
    let mut polite = Client::connect(&server);
    let value = vec![b'x'; 512 * 1024];
    polite.send(&encode_command(&[b"SET", b"big", &value]));
    assert_eq!(polite.reply(), "+OK\r\n");
    let rss_before = rss_kib(&server);
    let mut greedy = Client::connect(&server);
    greedy.stream.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    // A million GETs (27 MB, more than the kernel's buffers hold) ask for 512 GB of
    // replies; the writes stall once the server stops reading.
    let gets = cmd("GET big").repeat(1_000_000);
    let mut sent = 0;
    while sent < gets.len() {
        match greedy.stream.write_some(&gets[sent..]) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => break,
            Err(e) => panic!("write: {e}"),
        }
    }
    assert!(sent < gets.len(), "the server read everything: it should have paused");
    assert_eq!(polite.call("GET missing"), "$-1\r\n");
    let grown = rss_kib(&server).saturating_sub(rss_before);
    assert!(grown < 64 * 1024, "server grew by {grown} KiB for a client that never reads");
    // Once it reads, it gets every reply for the GETs the server took, in order.
    let replies = 8;
    for _ in 0..replies {
        assert_eq!(greedy.reply().len(), value.len() + 11); // "$524288\r\n" ... "\r\n"
    }
}

fn rss_kib(server: &Running) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A server whose log is kept, and a client it has answered.
fn logged_server_with_a_client() -> (Running, Client) {
    let mut command = Command::new(example("kv"));
    command.args(["--addr", "127.0.0.1:0"]);
    let server = Running::start_logged(command);
    let mut client = Client::connect(&server);
    assert_eq!(client.call("PING"), "+PONG\r\n");
    (server, client)
}

/// SIGTERM stops the server gracefully (through the reactor's shutdown): exit status 0, and
/// a connected client sees the end of the stream.
#[test]
fn stops_on_sigterm() {
    let (mut server, mut c) = logged_server_with_a_client();
    let status = server.signal_and_wait("TERM");
    assert!(status.success(), "{status}");
    c.expect_closed();
    assert!(server.log().contains("shutting down"), "{}", server.log());
}

/// `SHUTDOWN` stops the server as SIGTERM does (`redis-cli shutdown`): no reply, nothing
/// pipelined after it runs, every client closed, exit status 0. `ABORT` and an unknown
/// option are errors that stop nothing.
#[test]
fn shutdown_stops_the_server_like_sigterm() {
    let (mut server, mut other) = logged_server_with_a_client();
    let mut c = Client::connect(&server);
    assert_eq!(c.call("SHUTDOWN ABORT"), "-ERR No shutdown in progress.\r\n");
    assert_eq!(c.call("SHUTDOWN NOW BOGUS"), "-ERR syntax error\r\n");
    // Pipelined: the SET after it must not run (it would answer +OK before the close).
    c.send(&[cmd("shutdown nosave now force"), cmd("SET after shutdown")].concat());
    c.expect_closed();
    let status = server.wait_timeout(Duration::from_secs(10)).expect("no exit after SHUTDOWN");
    assert!(status.success(), "{status}");
    other.expect_closed();
    let log = server.log();
    assert!(log.contains("SHUTDOWN from client") && log.contains("shut down"), "{log}");
}

/// Publish/subscribe: every subscriber of a channel gets each message, `PUBLISH` counts
/// them, a subscribed connection may only (un)subscribe, ping or quit, and unsubscribing
/// stops the flow.
#[test]
fn publish_fans_out_to_subscribers() {
    let server = kv_server(&[]);
    let mut a = Client::connect(&server);
    let mut b = Client::connect(&server);
    let mut publisher = Client::connect(&server);
    assert_eq!(a.call("SUBSCRIBE news"), "*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n");
    b.send(&cmd("SUBSCRIBE news sport"));
    assert_eq!(b.reply(), "*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n");
    assert_eq!(b.reply(), "*3\r\n$9\r\nsubscribe\r\n$5\r\nsport\r\n:2\r\n");
    assert_eq!(publisher.call("PUBLISH news hello"), ":2\r\n");
    assert_eq!(publisher.call("PUBLISH sport goal"), ":1\r\n");
    assert_eq!(publisher.call("PUBLISH weather rain"), ":0\r\n");
    let message = |channel: &str, text: &str| {
        format!("*3\r\n$7\r\nmessage\r\n${}\r\n{channel}\r\n${}\r\n{text}\r\n", channel.len(), text.len())
    };
    assert_eq!(a.reply(), message("news", "hello"));
    assert_eq!(b.reply(), message("news", "hello"));
    assert_eq!(b.reply(), message("sport", "goal"));
    assert!(a.call("GET k").starts_with("-ERR Can't execute 'get'"));
    // In subscribed mode PING is answered as a push, as Redis does.
    assert_eq!(a.call("PING"), "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    assert_eq!(a.call("PING hi"), "*2\r\n$4\r\npong\r\n$2\r\nhi\r\n");
    assert_eq!(a.call("UNSUBSCRIBE"), "*3\r\n$11\r\nunsubscribe\r\n$4\r\nnews\r\n:0\r\n");
    assert_eq!(a.call("GET k"), "$-1\r\n", "out of subscriber mode");
    assert_eq!(publisher.call("PUBLISH news again"), ":1\r\n");
    assert_eq!(b.reply(), message("news", "again"));
    // A subscriber that leaves is forgotten.
    drop(b);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while publisher.call("PUBLISH news anyone") != ":0\r\n" {
        assert!(std::time::Instant::now() < deadline, "a closed subscriber is still counted");
        thread::sleep(Duration::from_millis(10));
    }
}

/// Pattern subscriptions and RESET, byte for byte as redis-server 7.0 answers them: a
/// publication reaches the channel's subscribers first, then each matching pattern's as a
/// `pmessage`, counted once per delivery; `RESET` leaves subscribed mode (issue 21, item 10).
#[test]
fn pattern_subscriptions_and_reset_answer_like_redis() {
    let server = kv_server(&[]);
    let mut a = Client::connect(&server);
    let mut publisher = Client::connect(&server);
    a.send(&cmd("PSUBSCRIBE n* [a-c]x\\*"));
    assert_eq!(a.reply(), "*3\r\n$10\r\npsubscribe\r\n$2\r\nn*\r\n:1\r\n");
    assert_eq!(a.reply(), "*3\r\n$10\r\npsubscribe\r\n$8\r\n[a-c]x\\*\r\n:2\r\n");
    assert_eq!(a.call("SUBSCRIBE news"), "*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:3\r\n");
    assert_eq!(publisher.call("PUBLISH news hi"), ":2\r\n");
    assert_eq!(publisher.call("PUBLISH bx* yo"), ":1\r\n");
    assert_eq!(publisher.call("PUBLISH bxy no"), ":0\r\n");
    assert_eq!(a.reply(), "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n");
    assert_eq!(a.reply(), "*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nhi\r\n");
    assert_eq!(a.reply(), "*4\r\n$8\r\npmessage\r\n$8\r\n[a-c]x\\*\r\n$3\r\nbx*\r\n$2\r\nyo\r\n");
    assert_eq!(a.call("PUNSUBSCRIBE x"), "*3\r\n$12\r\npunsubscribe\r\n$1\r\nx\r\n:3\r\n");
    assert_eq!(a.call("RESET"), "+RESET\r\n");
    assert_eq!(a.call("GET x"), "$-1\r\n", "out of subscribed mode");
    assert_eq!(publisher.call("PUBLISH news gone"), ":0\r\n");
    assert_eq!(a.call("PUNSUBSCRIBE"), "*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:0\r\n");
    // A time to live past what Unix milliseconds in an i64 can hold is refused, as Redis does.
    for (line, command) in [
        ("SET k v PX 9223372036854775807", "set"),
        ("SET k v EX 9223372036854775", "set"),
        ("EXPIRE k 9223372036854775807", "expire"),
        ("PEXPIRE k 9223372036854775807", "pexpire"),
    ] {
        assert_eq!(a.call(line), format!("-ERR invalid expire time in '{command}' command\r\n"), "{line}");
    }
}

/// A subscriber that never reads is disconnected once its backlog passes the limit; the
/// publisher and a reading subscriber are served throughout.
#[test]
fn a_subscriber_that_never_reads_is_disconnected() {
    let server = kv_server(&["--pubsub-limit", "65536"]);
    let mut reader = Client::connect(&server);
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    socket.connect(&server.addr.into()).unwrap();
    let mut silent = TcpStream::from(socket);
    silent.write_all(&cmd("SUBSCRIBE feed")).unwrap();
    reader.call("SUBSCRIBE feed");
    let mut publisher = Client::connect(&server);
    let payload = "x".repeat(1000);
    let mut counts = Vec::new();
    for _ in 0..10_000 {
        publisher.send(&cmd(&format!("PUBLISH feed {payload}")));
        counts.push(publisher.reply());
        reader.reply();
    }
    assert_eq!(counts.first().unwrap(), ":2\r\n");
    assert_eq!(counts.last().unwrap(), ":1\r\n", "the silent subscriber was dropped");
    assert!(counts.iter().all(|c| c == ":1\r\n" || c == ":2\r\n"));
    let _ = silent.set_read_timeout(Some(Duration::from_millis(10)));
}

/// At `--max-clients`, kv answers a new client as redis does — `-ERR max number of clients
/// reached`, then closes it — and a client that has talked keeps its connection; a slot
/// freed by a client leaving is taken by the next. (Before: the active client was evicted to
/// make room, the silent ones kept theirs.)
#[test]
fn max_clients_refuses_new_clients_and_keeps_the_active_ones() {
    let server = kv_server(&["--max-clients", "2"]);
    let mut a = Client::connect(&server);
    assert_eq!(a.call("PING"), "+PONG\r\n");
    let b = Client::connect(&server);
    let mut c = Client::connect(&server);
    assert_eq!(c.reply(), "-ERR max number of clients reached\r\n");
    c.expect_closed();
    assert_eq!(a.call("PING"), "+PONG\r\n", "the active client keeps its connection");
    drop(b);
    // B's slot frees; a new client gets it (once B's close has been seen by the server).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // A refused client hears so at once, unasked; an admitted one hears nothing.
        let mut d = Client::connect(&server);
        d.stream.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        let mut first = [0; 64];
        match d.stream.read_some(&mut first) {
            Ok(n) if n > 0 => {
                assert_eq!(&first[..n], b"-ERR max number of clients reached\r\n");
                assert!(Instant::now() < deadline, "B's slot was never freed");
                continue;
            }
            Ok(_) => panic!("closed without a word"),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("{e}"),
        }
        d.stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        assert_eq!(d.call("PING"), "+PONG\r\n");
        break;
    }
    assert_eq!(a.call("PING"), "+PONG\r\n");
}

/// A client that pipelines and then half-closes (`nc -N`, a script) gets every reply before
/// the close: 2,000 `GET`s of an 8 KiB value, far more than one batch and more than the
/// replies kv lets pile up before it pauses. (Before: the default `on_eof` closed with
/// commands still held; the run got 1,216 of 2,000.)
#[test]
fn pipelined_commands_are_answered_before_a_half_close_closes() {
    let server = kv_server(&[]);
    let mut setup = Client::connect(&server);
    let value = "v".repeat(8192);
    assert_eq!(setup.call(&format!("SET big {value}")), "+OK\r\n");
    let mut client = Client::connect(&server);
    let request: Vec<u8> = (0..2000).flat_map(|_| cmd("GET big")).collect();
    client.send(&request);
    client.stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut received = Vec::new();
    let mut buf = [0; 65536];
    loop {
        match client.stream.read_some(&mut buf) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) => panic!("after {} bytes: {e}", received.len()),
        }
    }
    let one = format!("$8192\r\n{value}\r\n");
    assert_eq!(received.len(), 2000 * one.len(), "{} whole replies", received.len() / one.len());
    assert!(received.chunks(one.len()).all(|reply| reply == one.as_bytes()));
}

/// A subscriber waits for publications and is quiet by design: `--idle-timeout` closes an
/// idle plain client but never a subscriber (as Redis never times out its pub/sub clients).
/// Before: the subscriber was dropped at the idle timeout like anyone else.
#[test]
fn subscribers_are_exempt_from_the_idle_timeout() {
    let server = kv_server(&["--idle-timeout", "1"]);
    let mut subscriber = Client::connect(&server);
    assert_eq!(subscriber.call("SUBSCRIBE news"), "*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n");
    let mut idle = Client::connect(&server);
    assert_eq!(idle.call("PING"), "+PONG\r\n");
    // The plain client is closed for idling (its read ends, within the read timeout)…
    idle.expect_closed();
    // …and the subscriber, as quiet as it for longer, is still there and served.
    let mut publisher = Client::connect(&server);
    assert_eq!(publisher.call("PUBLISH news still"), ":1\r\n");
    assert_eq!(subscriber.reply(), "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nstill\r\n");
}

/// One command's reply is bounded while it is built: an `MGET` naming a large value many
/// times gets an error instead of a reply past `--max-reply`, and the connection goes on.
/// (Before: the whole reply was built, 100 MiB for 100 names of a 1 MiB value, per client.)
#[test]
fn an_mget_reply_past_the_limit_is_refused_while_built() {
    let server = kv_server(&["--max-reply", "256k"]);
    let mut client = Client::connect(&server);
    let value = "v".repeat(64 * 1024);
    assert_eq!(client.call(&format!("SET big {value}")), "+OK\r\n");
    let names = vec!["big"; 100].join(" ");
    assert_eq!(client.call(&format!("MGET {names}")), "-ERR reply over 262144 bytes (--max-reply)\r\n");
    // Under the limit it is served whole, and the connection is as before.
    let reply = client.call("MGET big big");
    assert_eq!(reply.len(), "*2\r\n".len() + 2 * ("$65536\r\n\r\n".len() + 65536));
    assert_eq!(client.call("PING"), "+PONG\r\n");
}

/// Keys written with short lives are reclaimed as fast as they expire: 100,000 keys with a
/// 1 ms TTL are gone (DBSIZE near 0) within seconds, with nobody reading them. (Before: a
/// sweep of 200 keys every 100 ms, 2,000 a second, left most of them for a minute.)
#[test]
fn short_lived_keys_are_reclaimed_as_fast_as_they_expire() {
    let server = kv_server(&[]);
    let mut client = Client::connect(&server);
    let keys = 100_000;
    let request: Vec<u8> = (0..keys).flat_map(|i| cmd(&format!("SET k{i} v PX 1"))).collect();
    let writer = client.stream.try_clone().unwrap();
    let sender = thread::spawn(move || (&writer).write_all(&request));
    for _ in 0..keys {
        assert_eq!(client.reply(), "+OK\r\n");
    }
    sender.join().unwrap().unwrap();
    let started = Instant::now();
    loop {
        let reply = client.call("DBSIZE");
        let size: usize = reply.trim_start_matches(':').trim_end().parse().unwrap();
        if size <= 100 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{size} keys left after {:?}",
            started.elapsed()
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// `FLUSHALL ASYNC` empties the keyspace at once (the old keys are freed on another thread,
/// off the loop), and the server goes on serving; `FLUSHALL SYNC` and plain `FLUSHALL` too.
#[test]
fn flushall_async_empties_at_once() {
    let server = kv_server(&[]);
    let mut client = Client::connect(&server);
    let request: Vec<u8> = (0..20_000).flat_map(|i| cmd(&format!("SET k{i} v"))).collect();
    client.send(&request);
    for _ in 0..20_000 {
        assert_eq!(client.reply(), "+OK\r\n");
    }
    assert_eq!(client.call("DBSIZE"), ":20000\r\n");
    assert_eq!(client.call("FLUSHALL ASYNC"), "+OK\r\n");
    assert_eq!(client.call("DBSIZE"), ":0\r\n");
    assert_eq!(client.call("SET after v"), "+OK\r\n");
    assert_eq!(client.call("FLUSHALL SYNC"), "+OK\r\n");
    assert_eq!(client.call("DBSIZE"), ":0\r\n");
    assert!(client.call("FLUSHALL LATER").starts_with("-ERR syntax error"));
}
