//! The lab's one protocol, served by every model, in two framings.
//!
//! Two requests: fib(N) by the naive recursive function (CPU-bound on purpose) and a sleep
//! of MS milliseconds (I/O-bound: the server only waits, the way a request waits on a
//! database or another service). Small N measures what a model costs per connection and
//! request; a large N shows which models stall everyone behind it; a sleep shows which
//! models can wait for many clients at once.
//!
//! - **line** (the default): a line `N` or `sleep MS`, answered with a line: the decimal
//!   value of fib(N), `slept MS`, or `ERR <reason>`.
//! - **http**: `GET /fib/N` and `GET /sleep/MS` over HTTP/1.1, answered with the same text
//!   as body; keep-alive unless the client sends `Connection: close` (or speaks HTTP/1.0
//!   without `keep-alive`), for `lab siege`.
//!
//! Data flow, the same in every model: bytes arrive into a buffer; [`next_frame`] says
//! whether the buffer starts with a whole request (and how long it is); the model performs
//! the [`Request`] its own way (blocking, on a timer, on a worker) and writes [`reply`].
//! [`serve_blocking`] is that loop for the thread and process models.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

pub use crate::fib::fib;

/// Largest N accepted: fib(45) is a few seconds of CPU; more would let one client park a
/// worker for minutes. (`lab burst` calibrates N to ~0.4 s, which is about 41 here.)
pub const MAX_N: u32 = 45;

/// Longest sleep accepted, in milliseconds.
pub const MAX_SLEEP_MS: u64 = 60_000;

/// Longest request line, delimiter included.
pub const MAX_LINE: usize = 64;

/// Longest HTTP request head (request line and headers, with the blank line).
pub const MAX_HEAD: usize = 4096;

/// How requests are framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    Line,
    Http,
}

/// What a client asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Fib(u32),
    /// Milliseconds.
    Sleep(u64),
}

/// The result of a performed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Fib(u64),
    Slept(u64),
}

/// Why a request is refused: the HTTP status and the reason (the line protocol's `ERR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    pub reason: &'static str,
}

const NOT_A_NUMBER: Rejection = Rejection { status: 400, reason: "not a number" };
const TOO_LARGE: Rejection = Rejection { status: 400, reason: "too large" };

/// What the start of a connection's buffered input holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// Not a whole request yet: read more.
    Incomplete,
    /// A whole request of `len` bytes (consume them), valid or refused; `close`: the
    /// client wants the connection closed after the reply.
    Request { len: usize, request: Result<Request, Rejection>, close: bool },
    /// Unframeable input (a line or head too long): reply with this and close.
    Invalid(Rejection),
}

/// Performs `request` on the calling thread: computes, or blocks for the sleep. What the
/// thread and process models do; the loops handle `Sleep` with a timer instead.
pub fn perform_blocking(request: Request) -> Answer {
    match request {
        Request::Fib(n) => Answer::Fib(fib(n)),
        Request::Sleep(ms) => {
            std::thread::sleep(Duration::from_millis(ms));
            Answer::Slept(ms)
        }
    }
}

/// Looks for a whole request at the start of `buf`.
pub fn next_frame(wire: Wire, buf: &[u8]) -> Frame {
    match wire {
        Wire::Line => match buf.iter().position(|&b| b == b'\n') {
            Some(end) => Frame::Request { len: end + 1, request: parse(&buf[..end]), close: false },
            None if buf.len() >= MAX_LINE => {
                Frame::Invalid(Rejection { status: 400, reason: "line too long" })
            }
            None => Frame::Incomplete,
        },
        Wire::Http => match buf.windows(4).position(|w| w == b"\r\n\r\n") {
            Some(end) => {
                let (request, close) = parse_head(&buf[..end]);
                Frame::Request { len: end + 4, request, close }
            }
            None if buf.len() >= MAX_HEAD => {
                Frame::Invalid(Rejection { status: 431, reason: "request head too large" })
            }
            None => Frame::Incomplete,
        },
    }
}

/// A request line (without its `\n`): `N` or `sleep MS`.
pub fn parse(line: &[u8]) -> Result<Request, Rejection> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match line.strip_prefix(b"sleep ") {
        Some(ms) => number(ms, MAX_SLEEP_MS).map(Request::Sleep),
        None => number(line, u64::from(MAX_N)).map(|n| Request::Fib(n as u32)),
    }
}

/// Decimal digits up to `max`.
fn number(digits: &[u8], max: u64) -> Result<u64, Rejection> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(NOT_A_NUMBER);
    }
    match std::str::from_utf8(digits).ok().and_then(|text| text.parse::<u64>().ok()) {
        Some(value) if value <= max => Ok(value),
        _ => Err(TOO_LARGE),
    }
}

/// An HTTP request head (without the blank line): the request, and whether to close after
/// replying. Only `GET` without a body is served; a request with a body is refused and the
/// connection closed, since its body would be read as the next request.
fn parse_head(head: &[u8]) -> (Result<Request, Rejection>, bool) {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let mut parts = lines.next().unwrap_or("").split(' ');
    let (method, target, version) = (parts.next(), parts.next(), parts.next());
    let extra = parts.next().is_some();
    let http10 = version == Some("HTTP/1.0");
    let mut close = http10;
    let mut has_body = false;
    for header in lines {
        let Some((name, value)) = header.split_once(':') else { continue };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_ascii_lowercase());
        match name.as_str() {
            "connection" if value.split(',').any(|token| token.trim() == "close") => close = true,
            "connection" if http10 && value.split(',').any(|token| token.trim() == "keep-alive") => {
                close = false
            }
            "content-length" => has_body |= value != "0",
            "transfer-encoding" => has_body = true,
            _ => {}
        }
    }
    let request = match (method, target, version) {
        (Some(_), Some(_), Some(v)) if !v.starts_with("HTTP/1.") || extra => {
            Err(Rejection { status: 400, reason: "bad request line" })
        }
        (Some(_), Some(_), Some(_)) if has_body => {
            return (Err(Rejection { status: 400, reason: "a body is not accepted" }), true)
        }
        (Some("GET"), Some(target), Some(_)) => route(target),
        (Some(_), Some(_), Some(_)) => Err(Rejection { status: 405, reason: "only GET" }),
        _ => Err(Rejection { status: 400, reason: "bad request line" }),
    };
    (request, close)
}

/// `/fib/N` and `/sleep/MS`.
fn route(target: &str) -> Result<Request, Rejection> {
    if let Some(n) = target.strip_prefix("/fib/") {
        number(n.as_bytes(), u64::from(MAX_N)).map(|n| Request::Fib(n as u32))
    } else if let Some(ms) = target.strip_prefix("/sleep/") {
        number(ms.as_bytes(), MAX_SLEEP_MS).map(Request::Sleep)
    } else {
        Err(Rejection { status: 404, reason: "no such path (GET /fib/N or /sleep/MS)" })
    }
}

/// The bytes that answer one request.
pub fn reply(wire: Wire, result: Result<Answer, Rejection>, close: bool) -> Vec<u8> {
    let body = match result {
        Ok(Answer::Fib(value)) => format!("{value}\n"),
        Ok(Answer::Slept(ms)) => format!("slept {ms}\n"),
        Err(rejection) => format!("ERR {}\n", rejection.reason),
    };
    match wire {
        Wire::Line => body.into_bytes(),
        Wire::Http => {
            let (status, text) = match result {
                Ok(_) => (200, "OK"),
                Err(Rejection { status: 404, .. }) => (404, "Not Found"),
                Err(Rejection { status: 405, .. }) => (405, "Method Not Allowed"),
                Err(Rejection { status: 431, .. }) => (431, "Request Header Fields Too Large"),
                Err(Rejection { status: 500, .. }) => (500, "Internal Server Error"),
                Err(Rejection { status: 503, .. }) => (503, "Service Unavailable"),
                Err(_) => (400, "Bad Request"),
            };
            let connection = if close { "close" } else { "keep-alive" };
            format!(
                "HTTP/1.1 {status} {text}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
                 Connection: {connection}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        }
    }
}

/// Serves one connection with blocking I/O until the client closes (or asks to): the whole
/// of a connection's life in the thread and process models.
pub fn serve_blocking(mut stream: TcpStream, wire: Wire) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut input = Vec::with_capacity(MAX_LINE);
    let mut chunk = [0u8; 4096];
    loop {
        match next_frame(wire, &input) {
            Frame::Incomplete => match stream.read(&mut chunk)? {
                0 => return Ok(()),
                n => input.extend_from_slice(&chunk[..n]),
            },
            Frame::Request { len, request, close } => {
                input.drain(..len);
                stream.write_all(&reply(wire, request.map(perform_blocking), close))?;
                if close {
                    return Ok(());
                }
            }
            Frame::Invalid(rejection) => {
                stream.write_all(&reply(wire, Err(rejection), true))?;
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The full reply to one line of the line protocol, performed on this thread.
    fn answer(line: &[u8]) -> Vec<u8> {
        reply(Wire::Line, parse(line).map(perform_blocking), false)
    }

    #[test]
    fn requests_and_replies() {
        assert_eq!(answer(b"20"), b"6765\n");
        assert_eq!(answer(b"0\r"), b"0\n");
        assert_eq!(answer(b"46"), b"ERR too large\n");
        assert_eq!(answer(b"-1"), b"ERR not a number\n");
        assert_eq!(answer(b""), b"ERR not a number\n");
        assert_eq!(answer(b"99999999999"), b"ERR too large\n");
        assert_eq!(answer(b"sleep 1"), b"slept 1\n");
        assert_eq!(answer(b"sleep"), b"ERR not a number\n");
        assert_eq!(answer(b"sleep x"), b"ERR not a number\n");
        assert_eq!(answer(b"sleep 60001"), b"ERR too large\n");
    }

    #[test]
    fn line_frames() {
        assert_eq!(next_frame(Wire::Line, b"12"), Frame::Incomplete);
        assert_eq!(
            next_frame(Wire::Line, b"12\nsleep 3\n"),
            Frame::Request { len: 3, request: Ok(Request::Fib(12)), close: false }
        );
        assert_eq!(
            next_frame(Wire::Line, &[b'1'; MAX_LINE]),
            Frame::Invalid(Rejection { status: 400, reason: "line too long" })
        );
    }

    #[test]
    fn http_frames() {
        let keep = b"GET /fib/10 HTTP/1.1\r\nHost: x\r\n\r\nGET";
        assert_eq!(
            next_frame(Wire::Http, keep),
            Frame::Request { len: keep.len() - 3, request: Ok(Request::Fib(10)), close: false }
        );
        let close = b"GET /sleep/5 HTTP/1.1\r\nConnection: Close\r\n\r\n";
        assert!(matches!(
            next_frame(Wire::Http, close),
            Frame::Request { request: Ok(Request::Sleep(5)), close: true, .. }
        ));
        let old = b"GET /fib/1 HTTP/1.0\r\n\r\n";
        assert!(matches!(next_frame(Wire::Http, old), Frame::Request { close: true, .. }));
        let old_kept = b"GET /fib/1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
        assert!(matches!(next_frame(Wire::Http, old_kept), Frame::Request { close: false, .. }));
        let post = b"POST /fib/1 HTTP/1.1\r\n\r\n";
        assert!(matches!(
            next_frame(Wire::Http, post),
            Frame::Request { request: Err(Rejection { status: 405, .. }), .. }
        ));
        let body = b"GET /fib/1 HTTP/1.1\r\nContent-Length: 3\r\n\r\n";
        assert!(matches!(next_frame(Wire::Http, body), Frame::Request { request: Err(_), close: true, .. }));
        let lost = b"GET /nope HTTP/1.1\r\n\r\n";
        assert!(matches!(
            next_frame(Wire::Http, lost),
            Frame::Request { request: Err(Rejection { status: 404, .. }), .. }
        ));
        assert_eq!(next_frame(Wire::Http, b"GET /fib/1 HTTP/1.1\r\n"), Frame::Incomplete);
        assert!(matches!(next_frame(Wire::Http, &[b'a'; MAX_HEAD]), Frame::Invalid(_)));
    }

    #[test]
    fn http_replies() {
        let ok = String::from_utf8(reply(Wire::Http, Ok(Answer::Fib(55)), true)).unwrap();
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("Content-Length: 3\r\n") && ok.contains("Connection: close\r\n"), "{ok}");
        assert!(ok.ends_with("\r\n\r\n55\n"), "{ok}");
        let missing = String::from_utf8(reply(Wire::Http, Err(NOT_A_NUMBER), false)).unwrap();
        assert!(missing.starts_with("HTTP/1.1 400 Bad Request\r\n") && missing.contains("keep-alive"));
    }
}
