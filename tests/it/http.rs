//! The http example end to end, over raw sockets (no HTTP client library, so every byte on
//! the wire is the test's own): keep-alive, pipelining, streamed bodies both ways, the
//! error answers, the deadlines (head, body, idle, lingering), and HTTP/1.0. The RFC edge
//! cases and the attacks on slots are in `http_hardening.rs`.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::examples::{example, Running};
use evloop_support::observe::{tcp_sockets, wait_until};
use evloop_support::testing::{ReadSome, Rng};

use evloop_support::http::request;

pub fn http_server(args: &[&str]) -> Running {
    let mut command = Command::new(example("http"));
    command.args(["--addr", "127.0.0.1:0"]).args(args);
    Running::start(command)
}

/// A response as read off the wire.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (field, value) = line.split_once(':')?;
            field.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// Reads one response: the head up to the empty line, then `Content-Length` bytes of body
/// (none for a `HEAD` request). `pending` carries bytes read past the previous response.
pub fn read_response(stream: &mut TcpStream, pending: &mut Vec<u8>, head_request: bool) -> Response {
    let head_end = loop {
        if let Some(at) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let mut buf = [0; 4096];
        let n = stream.read_some(&mut buf).expect("response head");
        assert!(n > 0, "closed before a full response head: {:?}", String::from_utf8_lossy(pending));
        pending.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8(pending.drain(..head_end).collect()).unwrap();
    let status = head.split(' ').nth(1).and_then(|code| code.parse().ok()).expect("status code");
    let mut response = Response { status, head, body: Vec::new() };
    let length: usize = response.header("Content-Length").expect("Content-Length").parse().unwrap();
    if head_request {
        return response;
    }
    while pending.len() < length {
        let mut buf = vec![0; 64 * 1024];
        let n = stream.read_some(&mut buf).expect("response body");
        assert!(n > 0, "closed after {} of {length} body bytes", pending.len());
        pending.extend_from_slice(&buf[..n]);
    }
    response.body = pending.drain(..length).collect();
    response
}

pub fn get(stream: &mut TcpStream, target: &str) -> Response {
    write!(stream, "GET {target} HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
    read_response(stream, &mut Vec::new(), false)
}

/// The server closes: EOF (or a reset, if it closed over unread bytes) before long.
pub fn assert_closed(stream: &mut TcpStream) {
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut rest = Vec::new();
    match stream.read_to_end(&mut rest) {
        Ok(_) => {
            assert!(rest.is_empty(), "bytes after the last response: {:?}", String::from_utf8_lossy(&rest))
        }
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}"),
    }
}

/// Requests on one connection, some pipelined in a single write, are answered in order,
/// the offloaded one included; `Connection: close` ends the connection after its answer.
#[test]
fn keep_alive_and_pipelining_answer_in_order() {
    let server = http_server(&[]);
    let mut stream = server.connect();
    let first = get(&mut stream, "/");
    assert_eq!((first.status, first.body.as_slice()), (200, &b"hello\n"[..]));
    assert!(first.header("Date").is_some_and(|date| date.ends_with(" GMT")), "{}", first.head);
    assert_eq!(first.header("Connection"), None, "HTTP/1.1 persists without saying so");

    stream
        .write_all(
            b"GET /fib/25 HTTP/1.1\r\nHost: t\r\n\r\nGET /?x=1 HTTP/1.1\r\nHost: t\r\n\r\n\
              GET /fib/20 HTTP/1.1\r\nHost: t\r\n\r\nHEAD / HTTP/1.1\r\nHost: t\r\n\r\n\
              GET /bytes/3 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    let mut pending = Vec::new();
    let bodies: Vec<Vec<u8>> = [false, false, false, true, false]
        .into_iter()
        .map(|head_only| {
            let response = read_response(&mut stream, &mut pending, head_only);
            assert_eq!(response.status, 200, "{}", response.head);
            response.body
        })
        .collect();
    assert_eq!(bodies, [&b"75025\n"[..], b"hello\n", b"6765\n", b"", b"xxx"]);
    assert!(pending.is_empty());
    assert_closed(&mut stream);
}

/// `/echo` streams a 4 MiB body back as it arrives, after the `100 Continue` the client
/// asked for; the client writes and reads at the same time, as a large upload needs.
#[test]
fn echo_streams_a_large_body_back() {
    let server = http_server(&[]);
    let mut stream = server.connect();
    let body = Rng::new(7).bytes(4 << 20);
    write!(
        stream,
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    )
    .unwrap();
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    let mut writer = stream.try_clone().unwrap();
    let sent = body.clone();
    let upload = thread::spawn(move || writer.write_all(&sent));
    let response = read_response(&mut stream, &mut Vec::new(), false);
    upload.join().unwrap().unwrap();
    assert_eq!(response.status, 200);
    assert!(response.body == body, "the echoed body differs");
    // The connection is still good for another request.
    assert_eq!(get(&mut stream, "/").body, b"hello\n");
}

/// `/bytes/N` is streamed at the pace of a client that reads slowly at first, every byte
/// arrives; `HEAD` gets the length without the body, and the connection stays usable.
#[test]
fn bytes_are_streamed_to_a_slow_reader() {
    const N: usize = 8 << 20;
    let server = http_server(&[]);
    let mut stream = server.connect();
    write!(stream, "HEAD /bytes/{N} HTTP/1.1\r\nHost: t\r\n\r\nGET /bytes/{N} HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut pending = Vec::new();
    let head = read_response(&mut stream, &mut pending, true);
    assert_eq!(head.header("Content-Length"), Some(N.to_string().as_str()));
    // Not reading until the server has filled the socket and waits (its sends queue up).
    let (server_port, client_port) = (server.addr.port(), stream.local_addr().unwrap().port());
    wait_until(Duration::from_secs(10), "the server's sends back up", || {
        tcp_sockets(server_port).iter().any(|s| s.peer_port == client_port && s.unsent > 0)
    });
    let response = read_response(&mut stream, &mut pending, false);
    assert_eq!(response.body.len(), N);
    assert!(response.body.iter().all(|&b| b == b'x'));
    assert_eq!(get(&mut stream, "/fib/10").body, b"55\n");
}

/// Malformed or unsupported requests get the status that says why, and the connection is
/// closed after it.
#[test]
fn bad_requests_get_their_status_and_a_close() {
    let big_header = format!("GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n", "y".repeat(9000));
    let cases: [(&str, u16); 7] = [
        ("GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505),
        ("GET / HTTP/1.1\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: t\r\nContent-Length: nope\r\n\r\n", 400),
        ("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501),
        ("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("\x16\x03\x01\x02\x00\x01\x00\x01\x7c\x03\x03\r\n\r\n", 400), // binary, like a TLS hello
        (big_header.as_str(), 431),
    ];
    let server = http_server(&[]);
    for (request, status) in cases {
        let mut stream = server.connect();
        stream.write_all(request.as_bytes()).unwrap();
        let response = read_response(&mut stream, &mut Vec::new(), false);
        assert_eq!(response.status, status, "{request:?} -> {}", response.head);
        assert_eq!(response.header("Connection"), Some("close"));
        assert_closed(&mut stream);
    }
    // The server is unharmed.
    assert_eq!(get(&mut server.connect(), "/").status, 200);
}

/// Unknown paths, bad arguments and wrong methods are answered without closing the
/// connection (there is no body to skip).
#[test]
fn not_found_and_method_not_allowed_keep_the_connection() {
    let server = http_server(&[]);
    let mut stream = server.connect();
    assert_eq!(get(&mut stream, "/nowhere").status, 404);
    assert_eq!(get(&mut stream, "/fib/99").status, 400);
    stream.write_all(b"DELETE / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let refused = read_response(&mut stream, &mut Vec::new(), false);
    assert_eq!((refused.status, refused.header("Allow")), (405, Some("GET, HEAD")));
    assert_eq!(get(&mut stream, "/").status, 200);
}

/// A client that sends its request head too slowly (slowloris) gets 408 and is closed;
/// one that stays silent between requests is not hurried by that timeout.
#[test]
fn a_slow_head_gets_408() {
    let server = http_server(&["--header-timeout", "300"]);
    let mut idle = server.connect();
    // A first request, so that the silence after it is keep-alive idleness (a connection
    // that never sends a request has only the header timeout, from its accept).
    assert_eq!(get(&mut idle, "/").status, 200);
    let mut slow = server.connect();
    slow.write_all(b"GET / HT").unwrap();
    let started = Instant::now();
    let response = read_response(&mut slow, &mut Vec::new(), false);
    assert_eq!(response.status, 408);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_closed(&mut slow);
    // Idle past the header timeout once more: here the time passing is the condition.
    thread::sleep(Duration::from_millis(400));
    assert_eq!(get(&mut idle, "/").status, 200, "an idle keep-alive connection is not a slow head");
}

/// HTTP/1.0 closes after the response unless the client asks for keep-alive, which the
/// server then confirms.
#[test]
fn http_1_0_persistence() {
    let server = http_server(&[]);
    let mut stream = server.connect();
    stream.write_all(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").unwrap();
    let kept = read_response(&mut stream, &mut Vec::new(), false);
    assert_eq!((kept.status, kept.header("Connection")), (200, Some("keep-alive")));
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let last = read_response(&mut stream, &mut Vec::new(), false);
    assert_eq!((last.status, last.header("Connection")), (200, Some("close")));
    assert_closed(&mut stream);
}

/// A client that half-closes after its request still gets the whole answer, even one that
/// is computed on the pool.
#[test]
fn a_half_closed_client_still_gets_its_answer() {
    let server = http_server(&[]);
    let mut stream = server.connect();
    stream.write_all(b"GET /fib/27 HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let response = read_response(&mut stream, &mut Vec::new(), false);
    assert_eq!(response.body, b"196418\n");
    assert_closed(&mut stream);
}

/// `--help` prints usage and exits 0; a bad flag or value is a clear error with status 2.
#[test]
fn http_command_line() {
    let help = Command::new(example("http")).arg("--help").output().unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--header-timeout"));
    for bad in [&["--bogus"][..], &["--max-fib", "93"], &["--max-head", "1"], &["--header-timeout", "0"]] {
        let out = Command::new(example("http")).args(bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("error"), "{bad:?}: no error message");
    }
}

/// The parser never panics on mangled input, and a head delivered byte by byte is "not yet"
/// at every prefix and the same head once complete.
#[test]
fn the_parser_survives_mangled_heads_and_any_split() {
    let mut rng = Rng::seeded("the_parser_survives_mangled_heads_and_any_split");
    let valid: [&[u8]; 4] = [
        b"GET /fib/30?x=1 HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\nExpect: 100-continue\r\n\r\n",
        b"\r\nHEAD /bytes/5 HTTP/1.0\nConnection: Keep-Alive\n\n",
        b"PUT /echo HTTP/1.1\r\nhost:a\r\ncontent-length:  3 \r\nX-Other: \t\r\n\r\n",
    ];
    for raw in valid {
        let complete = request::parse(raw, 8192).expect("valid").expect("complete");
        assert_eq!(complete.len, raw.len());
        for cut in 0..raw.len() {
            assert_eq!(
                request::parse(&raw[..cut], 8192),
                Ok(None),
                "prefix {cut} of {:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }
    let alphabet = b"\r\n :\t,-/0123456789GETPOSHTPcontent-lengthtransfer-encodingConnection\x00\x7f\xff";
    for _ in 0..20_000 {
        let mut bytes = valid[rng.range(0, valid.len() - 1)].to_vec();
        for _ in 0..rng.range(1, 4) {
            let at = rng.range(0, bytes.len() - 1);
            let byte = alphabet[rng.range(0, alphabet.len() - 1)];
            match rng.range(0, 2) {
                0 => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ => {
                    bytes.remove(at);
                }
            }
            if bytes.is_empty() {
                bytes.push(byte);
            }
        }
        if let Ok(Some(head)) = request::parse(&bytes, 8192) {
            assert!(head.len <= bytes.len());
        }
    }
}

/// However the bytes of a pipelined stream of requests are split into writes, the answers
/// are the same, complete and in order.
#[test]
fn any_split_of_a_pipelined_stream_gets_the_same_answers() {
    let mut rng = Rng::seeded("any_split_of_a_pipelined_stream_gets_the_same_answers");
    let server = http_server(&[]);
    let mut stream_bytes = Vec::new();
    let mut expected: Vec<(bool, Vec<u8>)> = Vec::new(); // (HEAD request, body)
    for _ in 0..60 {
        match rng.range(0, 3) {
            0 => {
                stream_bytes.extend_from_slice(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
                expected.push((false, b"hello\n".to_vec()));
            }
            1 => {
                let n = rng.range(0, 20);
                write!(stream_bytes, "GET /fib/{n} HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
                let (mut a, mut b) = (0u64, 1u64);
                for _ in 0..n {
                    (a, b) = (b, a + b);
                }
                expected.push((false, format!("{a}\n").into_bytes()));
            }
            2 => {
                let len = rng.range(1, 3000);
                let body = rng.bytes(len);
                write!(
                    stream_bytes,
                    "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                )
                .unwrap();
                stream_bytes.extend_from_slice(&body);
                expected.push((false, body));
            }
            _ => {
                stream_bytes.extend_from_slice(b"HEAD /bytes/7 HTTP/1.1\r\nHost: t\r\n\r\n");
                expected.push((true, Vec::new()));
            }
        }
    }
    let mut stream = server.connect();
    stream.set_nodelay(true).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut cuts: Vec<usize> = (0..40).map(|_| rng.range(1, stream_bytes.len() - 1)).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let sender = thread::spawn(move || {
        let mut at = 0;
        for cut in cuts.into_iter().chain([stream_bytes.len()]) {
            writer.write_all(&stream_bytes[at..cut]).unwrap();
            at = cut;
            thread::sleep(Duration::from_millis(2));
        }
    });
    let mut pending = Vec::new();
    for (i, (head_only, body)) in expected.iter().enumerate() {
        let response = read_response(&mut stream, &mut pending, *head_only);
        assert_eq!(response.status, 200, "response {i}: {}", response.head);
        assert!(response.body == *body, "response {i}: body differs");
    }
    sender.join().unwrap();
}

/// Garbage from many connections at once — random bytes, heads cut short, absurd lengths —
/// gets error answers or closes, and a well-behaved client on the side is answered
/// throughout.
#[test]
fn garbage_clients_do_not_disturb_a_good_one() {
    let mut rng = Rng::seeded("garbage_clients_do_not_disturb_a_good_one");
    // Short timeouts, so the client that promises an endless body is let go after a second
    // of silence.
    let server = http_server(&["--header-timeout", "500", "--idle-timeout", "1"]);
    let addr = server.addr;
    let attackers: Vec<_> = (0..20)
        .map(|i| {
            let mut rng = Rng::new(rng.next_u64());
            thread::spawn(move || {
                let Ok(mut stream) = TcpStream::connect(addr) else { return };
                stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let len = rng.range(1, 20_000);
                let payload: Vec<u8> = match i % 4 {
                    0 => rng.bytes(len),
                    1 => {
                        b"GET / HTTP/1.1\r\nHost: t\r\nX-A: ".iter().copied().chain(rng.bytes(3000)).collect()
                    }
                    2 => b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999\r\n\r\nabc".to_vec(),
                    _ => b"GET /fib/20 HTTP/1.1\r\nHost: t\r\n\r\n".repeat(1 + len % 500),
                };
                let _ = stream.write_all(&payload);
                let mut sink = Vec::new();
                // Whatever the answer is, the server must finish with us: EOF or a reset (the
                // endless body after the idle timeout); the read timeout is only a backstop.
                let _ = stream.read_to_end(&mut sink);
            })
        })
        .collect();
    let mut good = server.connect();
    for _ in 0..50 {
        assert_eq!(get(&mut good, "/fib/15").body, b"610\n");
    }
    for attacker in attackers {
        attacker.join().unwrap();
    }
    assert_eq!(get(&mut good, "/").body, b"hello\n");
    assert_eq!(get(&mut server.connect(), "/").status, 200);
}
