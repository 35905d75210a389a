//! The http example under attack and at the edges of RFC 9110/9112, over raw sockets: slots
//! held by silent and slow clients come back within the header timeout (plus lingering),
//! slow bodies are cut off, and the request heads a strict server must refuse or accept.
//! The helpers are `http.rs`'s.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::examples::example;
use crate::http::{assert_closed, get, http_server, read_response};
use evloop_support::observe::{near_end, wait_until};
use evloop_support::testing::ReadSome;

/// Nothing arrives on `stream` for `quiet` (the server is not answering).
fn assert_silent(stream: &mut TcpStream, quiet: Duration) {
    stream.set_read_timeout(Some(quiet)).unwrap();
    let mut byte = [0u8; 1];
    match stream.read_some(&mut byte) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("expected silence, got {other:?} ({byte:?})"),
    }
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
}

/// Sends `request` on a new connection and returns the status it gets; the connection must
/// then be closed if `closes`.
fn status_of(server: &crate::examples::Running, request: &[u8], closes: bool) -> u16 {
    let mut stream = server.connect();
    stream.write_all(request).unwrap();
    let response = read_response(&mut stream, &mut Vec::new(), false);
    if closes {
        assert_eq!(response.header("Connection"), Some("close"), "{}", response.head);
        assert_closed(&mut stream);
    }
    response.status
}

/// Twice as many idle clients as there are slots: half connect and send nothing (closed
/// without an answer at the header timeout, which runs from the accept), half send part of a
/// head and then neither send nor read (408, then lingering for `--linger-timeout`). A new
/// client waiting behind them all is served after about one header timeout per wave, not
/// after the idle timeout.
#[test]
fn idle_and_slow_clients_give_their_slots_back() {
    let server = http_server(&[
        "--max-conns",
        "8",
        "--header-timeout",
        "500",
        "--linger-timeout",
        "300",
        "--idle-timeout",
        "60",
    ]);
    let silent: Vec<TcpStream> = (0..8).map(|_| server.connect()).collect();
    let slow: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut stream = server.connect();
            stream.write_all(b"GET / HTTP/1.1\r\nHo").unwrap();
            stream
        })
        .collect();
    let started = Instant::now();
    let mut client = server.connect();
    let response = get(&mut client, "/");
    let waited = started.elapsed();
    assert_eq!(response.status, 200);
    // Two waves of 500 ms header timeouts and one 300 ms linger: about 1.3 s; the idle
    // timeout (60 s) must play no part. Generous for a loaded machine.
    assert!(waited < Duration::from_secs(5), "served after {waited:?}");
    for mut stream in silent {
        assert_closed(&mut stream); // EOF without a byte: no answer to a request never sent
    }
    for mut stream in slow {
        let response = read_response(&mut stream, &mut Vec::new(), false);
        assert_eq!((response.status, response.header("Connection")), (408, Some("close")));
        assert_closed(&mut stream);
    }
}

/// Empty lines after a body and between pipelined requests are ignored (RFC 9112 §2.2) and
/// start no header timer: the connection then idles until the idle timeout and is closed
/// quietly, with no unsolicited 408.
#[test]
fn empty_lines_between_requests_are_ignored() {
    let server = http_server(&["--header-timeout", "300", "--idle-timeout", "2"]);
    let mut stream = server.connect();
    stream.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc\r\n").unwrap();
    let mut pending = Vec::new();
    assert_eq!(read_response(&mut stream, &mut pending, false).body, b"abc");
    assert_silent(&mut stream, Duration::from_millis(700)); // over twice the header timeout
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n\r\n\n\r\nGET /fib/10 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut stream, &mut pending, false).body, b"hello\n");
    assert_eq!(read_response(&mut stream, &mut pending, false).body, b"55\n");
    stream.write_all(b"\r\n").unwrap();
    let idle_from = Instant::now();
    assert_closed(&mut stream); // no 408: EOF with nothing before it
    assert!(idle_from.elapsed() > Duration::from_millis(1000), "closed after {:?}", idle_from.elapsed());
}

/// `100 Continue` goes to HTTP/1.1 clients only (RFC 9110 §15.2): an HTTP/1.0 client that
/// sends `Expect` gets no interim answer, and its body is read all the same. (HTTP/1.1 gets
/// one: `http::echo_streams_a_large_body_back`.)
#[test]
fn no_100_continue_for_http_1_0() {
    let server = http_server(&[]);
    let mut stream = server.connect();
    stream.write_all(b"POST /echo HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n").unwrap();
    // The echo's own head goes out once the request head is read, and a `100 Continue`
    // would have gone before it: the first answer read must be the 200.
    wait_until(Duration::from_secs(10), "the server answers the head", || {
        near_end(&stream).is_some_and(|s| s.unread > 0)
    });
    stream.write_all(b"hello").unwrap();
    let response = read_response(&mut stream, &mut Vec::new(), false);
    assert_eq!((response.status, response.body.as_slice()), (200, &b"hello"[..]));
    assert!(response.head.starts_with("HTTP/1.1 200"), "{}", response.head);
    assert_closed(&mut stream);
}

/// RFC 9112 §3.2: 400 for a missing (HTTP/1.1), repeated or invalid `Host`; valid forms,
/// an empty value and HTTP/1.0 without `Host` are served.
#[test]
fn host_fields_are_checked() {
    let server = http_server(&[]);
    for bad in [
        &b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: user@a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a:port\r\n\r\n",
        b"GET / HTTP/1.0\r\nHost: a b\r\n\r\n",
    ] {
        assert_eq!(status_of(&server, bad, true), 400, "{:?}", String::from_utf8_lossy(bad));
    }
    let mut stream = server.connect();
    for good in ["a", "example.com:8080", "127.0.0.1:80", "[::1]:8080", ""] {
        write!(stream, "GET / HTTP/1.1\r\nHost: {good}\r\n\r\n").unwrap();
        assert_eq!(read_response(&mut stream, &mut Vec::new(), false).status, 200, "{good:?}");
    }
    assert_eq!(status_of(&server, b"GET / HTTP/1.0\r\n\r\n", true), 200);
}

/// An absolute-form target is routed by its path (RFC 9112 §3.2.2), on a kept connection.
#[test]
fn absolute_form_targets_are_accepted() {
    let server = http_server(&[]);
    let mut stream = server.connect();
    assert_eq!(get(&mut stream, "http://x/").body, b"hello\n");
    assert_eq!(get(&mut stream, "HTTP://x:8080/fib/10?q=1").body, b"55\n");
    assert_eq!(get(&mut stream, "https://x").body, b"hello\n");
    assert_eq!(get(&mut stream, "http://x/nowhere").status, 404);
    assert_eq!(status_of(&server, b"GET ftp://x/ HTTP/1.1\r\nHost: t\r\n\r\n", true), 400);
}

/// A request target longer than `--max-head` is 414 (URI Too Long), whether or not the
/// line has ended; a head made long by its fields stays 431.
#[test]
fn a_long_target_gets_414() {
    let server = http_server(&[]);
    let target = format!("/{}", "a".repeat(9000));
    let complete = format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(status_of(&server, complete.as_bytes(), true), 414);
    let unfinished = format!("GET {target}");
    assert_eq!(status_of(&server, unfinished.as_bytes(), true), 414);
    let long_field = format!("GET / HTTP/1.1\r\nHost: t\r\nX: {}\r\n\r\n", "b".repeat(9000));
    assert_eq!(status_of(&server, long_field.as_bytes(), true), 431);
}

/// A bare CR, a NUL or another control byte inside a field value or the request line is
/// refused (RFC 9112 §2.2 lets a server reject or replace; rejecting leaves no other parser a
/// different view of the fields).
#[test]
fn control_bytes_in_a_head_get_400() {
    let server = http_server(&[]);
    for bad in [
        &b"POST /echo HTTP/1.1\r\nHost: t\r\nX: a\rContent-Length: 31\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: t\r\nX: a\0b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nX: a\x01b\r\n\r\n",
        b"GET /a\0b HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /\r HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\rX: y\r\n\r\n",
    ] {
        assert_eq!(status_of(&server, bad, true), 400, "{:?}", String::from_utf8_lossy(bad));
    }
}

/// A method the server does not recognise is 501 (RFC 9110 §9.1), a known one it does not
/// serve 405; neither closes a connection with no body to skip.
#[test]
fn unknown_methods_get_501() {
    let server = http_server(&[]);
    let mut stream = server.connect();
    for (method, status) in [("BREW", 501), ("get", 501), ("DELETE", 405), ("PATCH", 405)] {
        write!(stream, "{method} /fib/3 HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let response = read_response(&mut stream, &mut Vec::new(), false);
        assert_eq!(response.status, status, "{method}: {}", response.head);
    }
    assert_eq!(get(&mut stream, "/").status, 200);
}

/// Writes `body` a chunk every `every` from a thread, stopping at the first error (the
/// server has closed).
fn trickle(stream: &TcpStream, body: Vec<u8>, chunk: usize, every: Duration) -> thread::JoinHandle<usize> {
    let mut writer = stream.try_clone().unwrap();
    thread::spawn(move || {
        let mut sent = 0;
        for piece in body.chunks(chunk) {
            if writer.write_all(piece).is_err() {
                break;
            }
            sent += piece.len();
            thread::sleep(every);
        }
        sent
    })
}

/// A body trickled below `--body-min-rate` is cut off at `--body-timeout` (plus what it
/// earned) with 408; on `/echo`, whose answer has begun, by closing short of its length.
/// A slow body above the minimum rate is read to its end however long it takes.
#[test]
fn slow_bodies_are_cut_off_and_steady_ones_are_not() {
    let server = http_server(&["--body-timeout", "500", "--body-min-rate", "100"]);

    // 1 byte per 50 ms (20 B/s): cut off at about 0.5 s.
    let mut stream = server.connect();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n").unwrap();
    let started = Instant::now();
    let writer = trickle(&stream, vec![b'a'; 100], 1, Duration::from_millis(50));
    let response = read_response(&mut stream, &mut Vec::new(), false);
    assert_eq!((response.status, response.header("Connection")), (408, Some("close")));
    assert!(started.elapsed() < Duration::from_secs(4), "408 after {:?}", started.elapsed());
    assert!(writer.join().unwrap() < 100, "the whole body got through");

    let mut stream = server.connect();
    stream.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n").unwrap();
    let writer = trickle(&stream, vec![b'e'; 100], 1, Duration::from_millis(50));
    let mut received = Vec::new();
    match stream.read_to_end(&mut received) {
        Ok(_) => {}
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}"),
    }
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    let body = &received[text.find("\r\n\r\n").unwrap() + 4..];
    assert!(body.len() < 100 && body.iter().all(|&b| b == b'e'), "{} echoed bytes", body.len());
    writer.join().unwrap();

    // 40 bytes per 100 ms (400 B/s, four times the minimum): 1 s of body, then the answer.
    let mut stream = server.connect();
    stream.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 400\r\n\r\n").unwrap();
    let writer = trickle(&stream, vec![b's'; 400], 40, Duration::from_millis(100));
    let response = read_response(&mut stream, &mut Vec::new(), false);
    assert_eq!((response.status, response.body.len()), (200, 400));
    assert_eq!(writer.join().unwrap(), 400);
    assert_eq!(get(&mut stream, "/").status, 200);
}

/// The command line comes from clap: defaults in `--help`, `--version`, and errors that name
/// the flag, with exit status 2.
#[test]
fn http_command_line_from_one_definition() {
    let help = Command::new(example("http")).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(help.status.success());
    for line in ["--header-timeout <MS>", "[default: 10000]", "--body-min-rate", "--linger-timeout", "/fib/N"]
    {
        assert!(text.contains(line), "{line:?} not in --help:\n{text}");
    }
    let version = Command::new(example("http")).arg("--version").output().unwrap();
    assert!(version.status.success());
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("http "));
    for (bad, flag) in [
        (&["--max-fib", "93"][..], "--max-fib"),
        (&["--workers", "0"], "--workers"),
        (&["--addr", "nowhere"], "--addr"),
        (&["--body-min-rate", "0"], "--body-min-rate"),
        (&["--idle-timeout"], "--idle-timeout"),
    ] {
        let out = Command::new(example("http")).args(bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("error") && stderr.contains(flag), "{bad:?}: {stderr}");
    }
}

/// The parser's invariants over generated heads (valid ones, then mutated: bytes replaced,
/// inserted, removed; fields added, repeated, reordered): an accepted head is at most
/// `max_head` bytes, re-parses the same from exactly its own bytes, and every prefix of it is
/// "not yet", never an error (a client that sends a valid head slowly is never refused).
#[test]
fn accepted_heads_reparse_the_same_and_their_prefixes_wait() {
    use evloop_support::http::request;
    let mut rng =
        evloop_support::testing::Rng::seeded("accepted_heads_reparse_the_same_and_their_prefixes_wait");
    let lines =
        ["GET /fib/3 HTTP/1.1", "POST /echo HTTP/1.0", "HEAD http://h:1/?q HTTP/1.2", "BREW * HTTP/1.1"];
    let fields = [
        "Host: a",
        "Host: [::1]:80",
        "Content-Length: 5",
        "content-length:5",
        "Connection: keep-alive, close",
        "Expect: 100-continue",
        "X-Any: \t v a l u e \t",
        "Transfer-Encoding: chunked",
        "X-Utf8: \u{e9}",
    ];
    let alphabet = b"\r\n :\t,/0123456789GETHTP.\x00\x7f\x80";
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..5_000 {
        let mut raw = String::new();
        if rng.range(0, 3) == 0 {
            raw.push_str("\r\n");
        }
        raw.push_str(lines[rng.range(0, lines.len() - 1)]);
        for _ in 0..rng.range(0, 4) {
            raw.push_str(["\r\n", "\n"][rng.range(0, 1)]);
            raw.push_str(fields[rng.range(0, fields.len() - 1)]);
        }
        raw.push_str("\r\n\r\n");
        let mut bytes = raw.into_bytes();
        for _ in 0..rng.range(0, 2) {
            let at = rng.range(0, bytes.len() - 1);
            let byte = alphabet[rng.range(0, alphabet.len() - 1)];
            match rng.range(0, 2) {
                0 => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ => drop(bytes.remove(at)),
            }
        }
        let max_head = [64, 8192][rng.range(0, 1)];
        match request::parse(&bytes, max_head) {
            Ok(Some(head)) => {
                accepted += 1;
                assert!(head.len <= bytes.len() && head.len <= max_head, "{head:?}");
                let own = &bytes[..head.len];
                assert_eq!(
                    request::parse(own, max_head),
                    Ok(Some(head)),
                    "{:?}",
                    String::from_utf8_lossy(own)
                );
                for cut in 0..own.len() {
                    assert_eq!(
                        request::parse(&own[..cut], max_head),
                        Ok(None),
                        "prefix {cut} of {:?}",
                        String::from_utf8_lossy(own)
                    );
                }
            }
            Ok(None) => {}
            Err(_) => refused += 1,
        }
    }
    // The generator reaches both sides (a silent bias would make the test vacuous).
    assert!(accepted > 500 && refused > 500, "accepted {accepted}, refused {refused}");
}
