//! The fib example end to end: answers, ordering under load, busy, bad input, on-connect.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::thread;

use crate::examples::{check_command_line, example, Running};
use evloop_support::observe::{tcp_sockets, wait_until};
use evloop_support::testing::{ReadSome, WriteSome};

fn fib_server(args: &[&str]) -> Running {
    let mut command = Command::new(example("fib"));
    command.args(["--addr", "127.0.0.1:0"]).args(args);
    Running::start(command)
}

/// Sends `request` and reads one reply line.
fn ask(stream: &mut TcpStream, request: &str) -> String {
    stream.write_all(request.as_bytes()).unwrap();
    read_line(stream)
}

fn read_line(stream: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut byte = [0];
    while byte[0] != b'\n' {
        assert_eq!(stream.read_some(&mut byte).expect("reply"), 1, "closed before a full line: {line:?}");
        line.push(byte[0]);
    }
    String::from_utf8(line).unwrap()
}

/// Ten concurrent `35` requests in offload mode all get 9227465.
#[test]
fn ten_concurrent_fib_35_all_correct() {
    let server = fib_server(&[]);
    let clients: Vec<_> = (0..10)
        .map(|_| {
            let mut stream = server.connect();
            thread::spawn(move || ask(&mut stream, "35\n"))
        })
        .collect();
    for client in clients {
        assert_eq!(client.join().unwrap(), "9227465\n");
    }
}

/// While long jobs occupy every worker, small requests on another connection are answered
/// first: `sleep 0` and a small fib (computed on the loop, not queued behind the long
/// jobs) come back before any long job finishes.
#[test]
fn small_requests_overtake_long_jobs_in_offload_mode() {
    let server = fib_server(&["--threads", "2"]);
    let mut long: Vec<TcpStream> = (0..4).map(|_| server.connect()).collect();
    for stream in &mut long {
        // fib(44) keeps a worker busy for seconds: a wide margin over the quick requests.
        stream.write_all(b"44\n").unwrap();
    }
    let mut quick = server.connect();
    assert_eq!(ask(&mut quick, "sleep 0\n"), "slept 0\n");
    assert_eq!(ask(&mut quick, "10\n"), "55\n");
    // None of the long jobs has answered yet. (They are never awaited: dropping the server
    // kills the process.)
    for stream in &long {
        stream.set_nonblocking(true).unwrap();
        let mut buf = [0; 16];
        let peeked = stream.peek(&mut buf);
        let pending = matches!(&peeked, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
        assert!(pending, "a long job answered before the quick requests: {peeked:?} {:?}", &buf);
    }
}

/// With one worker and room for one waiting job, extra concurrent jobs are refused at once
/// with `ERR busy`; the accepted ones still complete.
#[test]
fn full_queue_answers_busy() {
    let server = fib_server(&["--threads", "1", "--queue", "1"]);
    let mut streams: Vec<TcpStream> = (0..4).map(|_| server.connect()).collect();
    // The first job starts (and leaves the queue) before the others arrive: one of them
    // then waits in the queue and the other two are refused. The worker is computing once
    // the server has used CPU beyond its idle; fib(40) keeps it busy for seconds.
    let idle = server.cpu_time();
    streams[0].write_all(b"40\n").unwrap();
    let long = std::time::Duration::from_secs(20);
    wait_until(long, "the first job runs", || {
        server.cpu_time() >= idle + std::time::Duration::from_millis(50)
    });
    for stream in &mut streams[1..] {
        stream.write_all(b"40\n").unwrap();
    }
    let replies: Vec<String> = streams.iter_mut().map(read_line).collect();
    let busy = replies.iter().filter(|r| *r == "ERR busy\n").count();
    let done = replies.iter().filter(|r| *r == "102334155\n").count();
    assert_eq!((busy, done), (2, 2), "{replies:?}");
}

/// Every kind of bad input gets its `ERR` line and the connection stays usable; an
/// over-long line is answered and then the connection closes.
#[test]
fn bad_input_gets_err_replies() {
    let server = fib_server(&[]);
    let mut stream = server.connect();
    let cases = [
        ("-1\n", "ERR negative number\n"),
        ("abc\n", "ERR not a number\n"),
        ("46\n", "ERR too large (max 45)\n"),
        ("99999999999\n", "ERR too large (max 45)\n"),
        ("\n", "ERR empty request\n"),
        ("\u{1}\u{2}\n", "ERR not a number\n"),
        ("sleep x\n", "ERR sleep needs milliseconds from 0 to 600000\n"),
        ("12\r\n", "144\n"),
    ];
    for (request, reply) in cases {
        assert_eq!(ask(&mut stream, request), reply, "request {request:?}");
    }
    stream.write_all(b"\xff\xfe\n").unwrap();
    assert_eq!(read_line(&mut stream), "ERR invalid utf-8\n");
    assert_eq!(ask(&mut stream, "20\n"), "6765\n", "still usable after errors");
    stream.write_all(&[b'7'; 100]).unwrap();
    assert_eq!(read_line(&mut stream), "ERR line too long\n");
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).expect("EOF, not a reset");
    assert!(rest.is_empty());
}

/// Pipelined requests on one connection are answered in order, even when a slow one
/// comes first.
#[test]
fn pipelined_requests_answer_in_order() {
    let server = fib_server(&[]);
    let mut stream = server.connect();
    stream.write_all(b"32\nsleep 20\n1\n2\n3\n").unwrap();
    let mut lines = BufReader::new(stream).lines();
    let replies: Vec<String> = (0..5).map(|_| lines.next().unwrap().unwrap()).collect();
    assert_eq!(replies, ["2178309", "slept 20", "1", "1", "2"]);
}

/// `--on-connect 35`: the client only connects and reads; it gets the digits, then EOF.
#[test]
fn on_connect_sends_the_answer_and_closes() {
    let server = fib_server(&["--on-connect", "35"]);
    let mut stream = server.connect();
    let mut all = String::new();
    stream.read_to_string(&mut all).unwrap();
    assert_eq!(all, "9227465");
}

/// Inline mode computes the same answers (on the loop thread).
#[test]
fn inline_mode_answers_too() {
    let server = fib_server(&["--mode", "inline"]);
    let mut stream = server.connect();
    assert_eq!(ask(&mut stream, "25\n"), "75025\n");
    assert_eq!(ask(&mut stream, "sleep 1\n"), "slept 1\n");
}

/// Flags: help with the defaults, version; a bad mode, out-of-range numbers and an
/// `--on-connect` above `--max-n` are errors naming the flag, status 2.
#[test]
fn fib_command_line() {
    let flags = "--addr=127.0.0.1:40404 --mode=offload --threads=0 --queue=1024 --max-n=45 --on-connect \
                 --idle-timeout=300";
    let bad: [(&[&str], &str); 7] = [
        (&["--mode", "fast"], "--mode"),
        (&["--max-n", "93"], "--max-n"),
        (&["--threads", "-1"], "--threads"),
        (&["--threads", "1025"], "--threads"),
        (&["--queue", "0"], "--queue"),
        (&["--on-connect", "46"], "--on-connect"),
        (&["--bogus"], "--bogus"),
    ];
    check_command_line("fib", flags, &bad);
}

/// `--on-connect` with a client that half-closes at once (it has nothing to say) still
/// gets its answer before the close.
#[test]
fn on_connect_answers_a_client_that_half_closes() {
    let server = fib_server(&["--on-connect", "30"]);
    let mut stream = server.connect();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut all = String::new();
    stream.read_to_string(&mut all).unwrap();
    assert_eq!(all, "832040");
}

/// A client that pipelines requests and never reads the replies cannot make the server
/// buffer without bound: empty lines until the server stops reading (each worth an 18-byte
/// `ERR` reply) leave its resident memory small, and another client is still served.
#[test]
fn pipelining_without_reading_keeps_memory_bounded() {
    let server = fib_server(&[]);
    let rss = || {
        let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap().to_string();
        line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap()
    };
    let before = rss();
    let mut flooder = server.connect();
    flooder.set_write_timeout(Some(std::time::Duration::from_millis(500))).unwrap();
    let newlines = vec![b'\n'; 64 * 1024];
    let mut sent = 0;
    // Until the server stops reading (writes block) or 32 MiB: each newline is worth an
    // 18-byte reply, so an unbounded server would buffer hundreds of MiB.
    while sent < 32 << 20 {
        match flooder.write_some(&newlines) {
            Ok(n) => sent += n,
            // The server stopped reading (the point of the test); anything else is a failure.
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                break
            }
            Err(e) => panic!("the flooding connection failed: {e}"),
        }
    }
    let mut other = server.connect();
    assert_eq!(ask(&mut other, "10\n"), "55\n");
    // The flood is parked in the kernel (the server stopped reading it), not in the server.
    let flooder_port = flooder.local_addr().unwrap().port();
    let server_port = server.addr.port();
    wait_until(std::time::Duration::from_secs(10), "the server stops reading the flood", || {
        tcp_sockets(server_port).iter().any(|s| s.peer_port == flooder_port && s.unread > 0)
    });
    let grown_kib = rss().saturating_sub(before);
    eprintln!("sent {sent} bytes of newlines; server RSS grew by {grown_kib} KiB");
    assert!(grown_kib < 1024, "server RSS grew by {grown_kib} KiB");
}
