//! Parsing an HTTP/1.1 request head (RFC 9112): the request line and the header fields, up
//! to the empty line. Pure functions over bytes, no I/O: the connection hands in whatever
//! it has received so far and learns "complete, here is the head and its length", "not yet",
//! or "invalid, answer with this status".
//!
//! ```text
//! bytes ─► empty lines skipped ─► httparse::Request ─────────────► our checks ─────────► Head
//!                                  method, target, version,        target form (uri.rs),
//!                                  fields: tokens, values,         method class, 414/431,
//!                                  line endings; obs-fold refused  Framing: lengths, Host,
//!                                                                  Connection, Expect
//! ```
//!
//! The head is tokenised by the `httparse` crate (hyper's parser: fuzzed, SIMD on x86-64).
//! Our own code stays around it where httparse does not say what this server must: versions
//! other than 1.0 and 1.1 (RFC 9112 §2.3 asks a server to serve `HTTP/1.2` as 1.1; httparse
//! refuses it, so such a line is parsed here and only its fields by httparse), the limits and
//! their statuses, ASCII-only targets, and the text of a `400` (httparse says only which kind
//! of token failed). Only what a server needs to frame and route requests is kept: method,
//! target, version, and the headers that decide framing and persistence (`Content-Length`,
//! `Transfer-Encoding`, `Connection`, `Expect`, `Host`). Everything that could let two parsers
//! disagree on where a request ends is refused (both `Content-Length` and
//! `Transfer-Encoding`, differing lengths, whitespace before a colon, line folding, a bare CR),
//! as RFC 9112 §6.3 and §11.2 ask, since that disagreement is how request smuggling works.

use std::mem::MaybeUninit;

use super::uri::{is_valid_authority, origin_form};
pub use super::Refusal;

/// A request method. Those this server serves are named; the other methods RFC 9110 and RFC
/// 5789 define are `Other` (answered `405`, with `Allow`); any other token is `Unknown`
/// (answered `501`, as RFC 9110 §9.1 recommends for a method the server does not recognise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Other,
    Unknown,
}

/// The parts of a request head the server acts on. Borrowed from the input buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Head<'a> {
    pub method: Method,
    /// The request target in origin form (e.g. `/fib/30?x=1`): as sent, or the path and query
    /// of an absolute-form target (`http://host/fib/30?x=1`, RFC 9112 §3.2.2).
    pub target: &'a str,
    /// HTTP/1.0 (`false`) or 1.1 and later minor versions (`true`).
    pub http11: bool,
    /// The body length; `0` when there is no `Content-Length`.
    pub content_length: u64,
    /// `Connection: close` was sent.
    pub close: bool,
    /// `Connection: keep-alive` was sent (what an HTTP/1.0 client says to keep the connection).
    pub keep_alive: bool,
    /// `Expect: 100-continue`: the client waits for an interim response before the body.
    pub expect_continue: bool,
    /// Bytes of input the head took, the empty line included.
    pub len: usize,
}

impl Head<'_> {
    /// Does the connection stay open after this request's response? HTTP/1.1 persists unless
    /// told to close; HTTP/1.0 only if asked to (RFC 9112 §9.3).
    pub fn persistent(&self) -> bool {
        if self.http11 {
            !self.close
        } else {
            self.keep_alive && !self.close
        }
    }
}

/// How many bytes of empty lines (CRLF or a bare LF) start `buf`: what a server ignores before
/// a request line (RFC 9112 §2.2), such as the extra CRLF old clients send after a body. A CR
/// not yet followed by its LF is not counted: it may be the start of one.
pub fn empty_lines(buf: &[u8]) -> usize {
    let mut at = 0;
    loop {
        match buf[at..] {
            [b'\n', ..] => at += 1,
            [b'\r', b'\n', ..] => at += 2,
            _ => return at,
        }
    }
}

/// Most header fields in a head (Apache's `LimitRequestFields` default); more is `431`.
pub const MAX_FIELDS: usize = 100;

/// Parses the request head at the start of `buf`.
///
/// `Ok(None)`: the head is not complete yet (and is within `max_head` bytes so far, and what
/// has arrived of the request line is well formed). Empty lines before the request line are
/// skipped (see [`empty_lines`]); lines may end in CRLF or a bare LF (also §2.2), but a CR
/// anywhere else, or a NUL or other control byte, is refused.
pub fn parse(buf: &[u8], max_head: usize) -> Result<Option<Head<'_>>, Refusal> {
    let start = empty_lines(buf);
    // Only the first `max_head` bytes are ever looked at: the work per call is bounded
    // whatever is buffered behind the head.
    let limit = buf.len().min(max_head);
    if start >= limit && buf.len() > max_head {
        return Err(Refusal::HeadTooLarge);
    }
    let window = &buf[start.min(limit)..limit];
    let over = buf.len() > max_head;
    // httparse tokenises the head: method and field names are tokens, field values visible
    // characters, spaces and tabs (a bare CR, a NUL or another control byte is an error), no
    // whitespace before a colon, no line folding, lines ending in CRLF or LF. The field
    // slots are left uninitialised for it to fill (writing 100 empty ones first costs more
    // than the parse).
    let mut slots = [const { MaybeUninit::uninit() }; MAX_FIELDS];
    let mut request = httparse::Request::new(&mut []);
    match request.parse_with_uninit_headers(window, &mut slots) {
        Ok(httparse::Status::Complete(end)) => {
            let (Some(method), Some(target), Some(minor)) = (request.method, request.path, request.version)
            else {
                return Err(Refusal::BadRequest("malformed request line")); // not for a complete head
            };
            let (method, target) = method_and_target(method.as_bytes(), target)?;
            head(method, target, minor == 1, request.headers, start + end).map(Some)
        }
        Ok(httparse::Status::Partial) => incomplete(window, over),
        // httparse knows HTTP/1.0 and 1.1 only; other versions get our own request line.
        Err(httparse::Error::Version) => parse_other_version(window, start, over),
        Err(httparse::Error::TooManyHeaders) => Err(Refusal::TooManyFields),
        Err(_) => Err(Refusal::BadRequest(explain(window))),
    }
}

/// The head is not complete: wait, unless it is over the limit already (`414` while the
/// request line has not ended, `431` after).
fn incomplete(window: &[u8], over: bool) -> Result<Option<Head<'_>>, Refusal> {
    if window.contains(&b'\n') {
        return if over { Err(Refusal::HeadTooLarge) } else { Ok(None) };
    }
    check_partial_request_line(window)?;
    if over {
        Err(Refusal::UriTooLong)
    } else {
        Ok(None)
    }
}

/// A head whose version httparse refused: `HTTP/1.2` and later minors are served as 1.1 (RFC
/// 9112 §2.3), `HTTP/2.0` and others are `505`, anything else `400`. Rare, so its fields
/// go through httparse's field parser with initialised slots.
fn parse_other_version(window: &[u8], start: usize, over: bool) -> Result<Option<Head<'_>>, Refusal> {
    let Some(newline) = window.iter().position(|&b| b == b'\n') else { return incomplete(window, over) };
    let (method, target, http11) = parse_request_line(strip_cr(&window[..newline]))?;
    let section = &window[newline + 1..];
    let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
    match httparse::parse_headers(section, &mut fields) {
        Ok(httparse::Status::Complete((end, fields))) => {
            head(method, target, http11, fields, start + newline + 1 + end).map(Some)
        }
        Ok(httparse::Status::Partial) => incomplete(window, over),
        Err(httparse::Error::TooManyHeaders) => Err(Refusal::TooManyFields),
        Err(_) => Err(Refusal::BadRequest(field_error(section))),
    }
}

/// A complete head from its request line and fields, `len` bytes long: evloop's framing
/// rules applied to what httparse tokenised.
fn head<'a>(
    method: Method,
    target: &'a str,
    http11: bool,
    fields: &[httparse::Header<'a>],
    len: usize,
) -> Result<Head<'a>, Refusal> {
    let mut head = Head {
        method,
        target,
        http11,
        content_length: 0,
        close: false,
        keep_alive: false,
        expect_continue: false,
        len,
    };
    let mut framing = Framing::default();
    for field in fields {
        framing.field(&mut head, field.name.as_bytes(), field.value)?;
    }
    framing.finish(&mut head)?;
    Ok(head)
}

/// What the header fields say about framing and routing, gathered field by field and checked
/// once the head is complete: evloop's own rules, whatever tokenised the fields.
#[derive(Default)]
struct Framing {
    content_length: Option<u64>,
    transfer_encoding: bool,
    hosts: usize,
}

/// What a client that sent a chunked body is told (501): what is missing and what to send
/// instead, rather than the bare header name.
const CHUNKED_REFUSED: &str =
    "Transfer-Encoding (a chunked request body) is not implemented; send Content-Length";

impl Framing {
    fn field(&mut self, head: &mut Head<'_>, name: &[u8], value: &[u8]) -> Result<(), Refusal> {
        if name.eq_ignore_ascii_case(b"content-length") {
            let length = parse_length(value)?;
            if self.content_length.is_some_and(|known| known != length) {
                return Err(Refusal::BadRequest("conflicting Content-Length"));
            }
            self.content_length = Some(length);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            self.transfer_encoding = true;
        } else if name.eq_ignore_ascii_case(b"connection") {
            for option in value.split(|&b| b == b',').map(trim) {
                head.close |= option.eq_ignore_ascii_case(b"close");
                head.keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case(b"expect") {
            if !value.eq_ignore_ascii_case(b"100-continue") {
                return Err(Refusal::BadRequest("unsupported Expect"));
            }
            head.expect_continue = true;
        } else if name.eq_ignore_ascii_case(b"host") {
            self.hosts += 1;
            if !is_valid_authority(value) {
                return Err(Refusal::BadRequest("invalid Host"));
            }
        }
        Ok(())
    }

    fn finish(self, head: &mut Head<'_>) -> Result<(), Refusal> {
        if self.transfer_encoding {
            // Chunked bodies are not implemented; with a length as well, the request could be
            // framed two ways (RFC 9112 §6.3: the smuggling pattern), which is worse.
            return Err(if self.content_length.is_some() {
                Refusal::BadRequest("both Content-Length and Transfer-Encoding")
            } else {
                Refusal::NotImplemented(CHUNKED_REFUSED)
            });
        }
        // RFC 9112 §3.2: 400 for an HTTP/1.1 request without Host, and for any request with
        // more than one.
        if head.http11 && self.hosts == 0 {
            return Err(Refusal::BadRequest("missing Host"));
        }
        if self.hosts > 1 {
            return Err(Refusal::BadRequest("more than one Host"));
        }
        head.content_length = self.content_length.unwrap_or(0);
        Ok(())
    }
}

/// Why httparse refused a head, as the `400` answer's text: the request line's fault if our
/// own parse of it agrees, else the first field line that breaks a rule. Only on the error
/// path, so it may scan again.
fn explain(window: &[u8]) -> &'static str {
    let Some(newline) = window.iter().position(|&b| b == b'\n') else {
        return match check_partial_request_line(window) {
            Err(Refusal::BadRequest(reason)) => reason,
            _ => "malformed request line",
        };
    };
    match parse_request_line(strip_cr(&window[..newline])) {
        Err(Refusal::BadRequest(reason)) => reason,
        _ => field_error(&window[newline + 1..]),
    }
}

/// Why httparse refused a header section: the first line that breaks a rule, named as the
/// `400` answer's text. Only on the error path, so it may scan again.
fn field_error(section: &[u8]) -> &'static str {
    for line in section.split(|&b| b == b'\n') {
        let line = strip_cr(line);
        if line.is_empty() {
            break;
        }
        if let Err(Refusal::BadRequest(reason)) = check_field(line) {
            return reason;
        }
    }
    // A CR that does not end a line, at the end of a field or of the section.
    "malformed line ending"
}

/// Refuses a request line that is already wrong before its end has arrived (binary junk, a
/// target with spaces or control bytes), so that it gets its `400` at once rather than a
/// `414` once the limit is reached. Never refuses a prefix of a valid line.
fn check_partial_request_line(line: &[u8]) -> Result<(), Refusal> {
    if line == b"\r" {
        return Ok(()); // perhaps an empty line's CR, its LF still to come
    }
    let mut parts = line.splitn(3, |&b| b == b' ');
    let method = parts.next().unwrap_or_default();
    if !method.iter().all(|&b| is_token_byte(b)) {
        return Err(Refusal::BadRequest("malformed method"));
    }
    if !parts.next().unwrap_or_default().iter().all(|&b| b.is_ascii_graphic()) {
        return Err(Refusal::BadRequest("malformed target"));
    }
    Ok(())
}

/// `METHOD SP target SP HTTP/x.y`.
fn parse_request_line(line: &[u8]) -> Result<(Method, &str, bool), Refusal> {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::BadRequest("malformed request line"));
    };
    if method.is_empty() || !method.iter().all(|&b| is_token_byte(b)) {
        return Err(Refusal::BadRequest("malformed method"));
    }
    if target.is_empty() || !target.iter().all(|&b| b.is_ascii_graphic()) {
        return Err(Refusal::BadRequest("malformed target"));
    }
    let http11 = match version {
        b"HTTP/1.0" => false,
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', minor] if minor.is_ascii_digit() => true,
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            return Err(Refusal::VersionNotSupported);
        }
        _ => return Err(Refusal::BadRequest("malformed version")),
    };
    let target = std::str::from_utf8(target).map_err(|_| Refusal::BadRequest("malformed target"))?;
    let (method, target) = method_and_target(method, target)?;
    Ok((method, target, http11))
}

/// What this server makes of a method token and a target (both already tokenised): the
/// method's class, and the target in origin form. The target must be ASCII (httparse also
/// lets bytes above 0x7f through).
fn method_and_target<'a>(method: &[u8], target: &'a str) -> Result<(Method, &'a str), Refusal> {
    if !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Refusal::BadRequest("malformed target"));
    }
    let method = match method {
        b"GET" => Method::Get,
        b"HEAD" => Method::Head,
        b"POST" => Method::Post,
        b"PUT" => Method::Put,
        b"DELETE" | b"OPTIONS" | b"TRACE" | b"CONNECT" | b"PATCH" => Method::Other,
        _ => Method::Unknown,
    };
    Ok((method, origin_form(target)?))
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The rules httparse applies to one field line (`name: value`), spelled out to say which
/// one a refused line broke.
fn check_field(line: &[u8]) -> Result<(), Refusal> {
    if line[0] == b' ' || line[0] == b'\t' {
        return Err(Refusal::BadRequest("obsolete line folding"));
    }
    let colon = line.iter().position(|&b| b == b':').ok_or(Refusal::BadRequest("header without colon"))?;
    let name = &line[..colon];
    if name.is_empty() || !name.iter().all(|&b| is_token_byte(b)) {
        // Includes whitespace between the name and the colon (RFC 9112 §5.1).
        return Err(Refusal::BadRequest("malformed header name"));
    }
    let value = &line[colon + 1..];
    // RFC 9110 §5.5: field values are visible characters, spaces, tabs and obs-text. A bare
    // CR kept in a value would let a front-end that splits lines on it see another field.
    if !value.iter().all(|&b| b == b'\t' || (b >= b' ' && b != 0x7f)) {
        return Err(Refusal::BadRequest("malformed header value"));
    }
    Ok(())
}

/// A `Content-Length` value: digits only, no sign, no overflow.
fn parse_length(value: &[u8]) -> Result<u64, Refusal> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(Refusal::BadRequest("malformed Content-Length"));
    }
    value
        .iter()
        .try_fold(0u64, |n, &digit| n.checked_mul(10)?.checked_add(u64::from(digit - b'0')))
        .ok_or(Refusal::BadRequest("Content-Length too large"))
}

fn trim(bytes: &[u8]) -> &[u8] {
    let is_space = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_space(b)).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !is_space(b)).map_or(start, |at| at + 1);
    &bytes[start..end]
}

/// `tchar` of RFC 9110 §5.6.2: what a method or header name may contain.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &str) -> Head<'_> {
        parse(raw.as_bytes(), 8192).expect("valid").expect("complete")
    }

    fn refusal(raw: &str) -> Refusal {
        parse(raw.as_bytes(), 8192).expect_err("refused")
    }

    #[test]
    fn a_simple_get() {
        let h = head("GET /fib/30 HTTP/1.1\r\nHost: x\r\n\r\nNEXT");
        assert_eq!((h.method, h.target, h.http11, h.content_length), (Method::Get, "/fib/30", true, 0));
        assert_eq!(h.len, "GET /fib/30 HTTP/1.1\r\nHost: x\r\n\r\n".len());
        assert!(h.persistent());
    }

    #[test]
    fn incomplete_heads_wait_for_more() {
        for partial in ["", "GET", "GET / HTTP/1.1\r\n", "GET / HTTP/1.1\r\nHost: x\r\n", "\r\n"] {
            assert_eq!(parse(partial.as_bytes(), 8192), Ok(None), "{partial:?}");
        }
    }

    #[test]
    fn bare_newlines_and_leading_empty_lines_are_accepted() {
        let h = head("\r\n\nPOST /echo HTTP/1.1\nhost: x\ncontent-length: 5\n\nhello");
        assert_eq!((h.method, h.content_length), (Method::Post, 5));
        assert_eq!(h.len, "\r\n\nPOST /echo HTTP/1.1\nhost: x\ncontent-length: 5\n\n".len());
    }

    #[test]
    fn persistence_follows_the_version_and_connection_header() {
        assert!(!head("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").persistent());
        assert!(!head("GET / HTTP/1.0\r\n\r\n").persistent());
        assert!(head("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").persistent());
        assert!(!head("GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, close\r\n\r\n").persistent());
        assert!(head("GET / HTTP/1.2\r\nHost: x\r\n\r\n").http11, "a higher minor version is served as 1.1");
    }

    #[test]
    fn expect_continue_is_noted() {
        let h = head("PUT /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\nExpect: 100-continue\r\n\r\n");
        assert!(h.expect_continue);
        assert_eq!(h.method, Method::Put);
    }

    #[test]
    fn malformed_heads_are_refused_with_a_reason() {
        let cases = [
            ("GET /\r\n\r\n", Refusal::BadRequest("malformed request line")),
            ("GET  / HTTP/1.1\r\n\r\n", Refusal::BadRequest("malformed request line")),
            ("G(T / HTTP/1.1\r\nHost: x\r\n\r\n", Refusal::BadRequest("malformed method")),
            ("GET / HTTP/1.1\r\n\r\n", Refusal::BadRequest("missing Host")),
            ("GET / HTTP/1.1\r\nHost : x\r\n\r\n", Refusal::BadRequest("malformed header name")),
            ("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", Refusal::BadRequest("obsolete line folding")),
            ("GET / HTTP/1.1\r\nHost x\r\n\r\n", Refusal::BadRequest("header without colon")),
            (
                "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
                Refusal::BadRequest("malformed Content-Length"),
            ),
            (
                "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                Refusal::BadRequest("conflicting Content-Length"),
            ),
            (
                "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
                Refusal::BadRequest("Content-Length too large"),
            ),
            ("GET / HTTP/1.1\r\nHost: x\r\nExpect: tea\r\n\r\n", Refusal::BadRequest("unsupported Expect")),
            (
                "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
                Refusal::NotImplemented(CHUNKED_REFUSED),
            ),
            (
                "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
                Refusal::BadRequest("both Content-Length and Transfer-Encoding"),
            ),
            ("GET / HTTP/2.0\r\n\r\n", Refusal::VersionNotSupported),
            ("GET / HTTX/1.1\r\n\r\n", Refusal::BadRequest("malformed version")),
        ];
        for (raw, expected) in cases {
            assert_eq!(refusal(raw), expected, "{raw:?}");
        }
    }

    #[test]
    fn identical_repeated_lengths_are_fine() {
        let h = head("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n");
        assert_eq!(h.content_length, 3);
    }

    #[test]
    fn a_head_over_the_limit_is_refused_complete_or_not() {
        let big = format!("GET / HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n", "y".repeat(200));
        assert_eq!(parse(big.as_bytes(), 100), Err(Refusal::HeadTooLarge));
        assert_eq!(parse(&big.as_bytes()[..150], 100), Err(Refusal::HeadTooLarge));
        assert!(parse(big.as_bytes(), 8192).unwrap().is_some());
    }

    #[test]
    fn non_ascii_targets_are_refused() {
        assert_eq!(
            refusal("GET /\u{e9} HTTP/1.1\r\nHost: x\r\n\r\n"),
            Refusal::BadRequest("malformed target")
        );
    }

    #[test]
    fn empty_lines_before_a_request_are_counted() {
        assert_eq!(empty_lines(b"\r\n\n\r\nGET"), 5);
        assert_eq!(empty_lines(b"\r\n\r"), 2, "a CR alone may be the start of one more");
        assert_eq!(empty_lines(b"GET / HTTP/1.1\r\n"), 0);
        assert_eq!(empty_lines(b""), 0);
    }

    #[test]
    fn host_must_be_one_valid_authority() {
        // The authority rules themselves are unit-tested in `uri.rs`.
        assert!(head("GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n").http11);
        assert!(head("GET / HTTP/1.1\r\nHost:\r\n\r\n").http11, "empty Host: a target without authority");
        assert_eq!(refusal("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), Refusal::BadRequest("invalid Host"));
        assert_eq!(
            refusal("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"),
            Refusal::BadRequest("more than one Host")
        );
        assert_eq!(refusal("GET / HTTP/1.0\r\nHost: a b\r\n\r\n"), Refusal::BadRequest("invalid Host"));
    }

    #[test]
    fn absolute_form_targets_route_by_their_path() {
        assert_eq!(head("GET http://x/fib/3?q HTTP/1.1\r\nHost: y\r\n\r\n").target, "/fib/3?q");
        assert_eq!(head("GET HTTPS://x:443 HTTP/1.1\r\nHost: y\r\n\r\n").target, "/");
        assert_eq!(head("GET http://x?a=1 HTTP/1.1\r\nHost: y\r\n\r\n").target, "/");
        assert_eq!(head("GET /go?to=ftp://x HTTP/1.1\r\nHost: y\r\n\r\n").target, "/go?to=ftp://x");
        assert_eq!(
            refusal("GET ftp://x/ HTTP/1.1\r\nHost: y\r\n\r\n"),
            Refusal::BadRequest("unsupported target scheme")
        );
        assert_eq!(
            refusal("GET http://u@x/ HTTP/1.1\r\nHost: y\r\n\r\n"),
            Refusal::BadRequest("malformed target")
        );
    }

    #[test]
    fn a_long_request_line_is_414_and_a_long_head_431() {
        let long_target = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(300));
        assert_eq!(parse(long_target.as_bytes(), 200), Err(Refusal::UriTooLong));
        assert_eq!(parse(&long_target.as_bytes()[..250], 200), Err(Refusal::UriTooLong));
        let long_field =
            format!("GET /{} HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n", "a".repeat(100), "b".repeat(100));
        assert_eq!(parse(long_field.as_bytes(), 200), Err(Refusal::HeadTooLarge));
        let junk = [b'\x16'; 300];
        assert_eq!(parse(&junk, 200), Err(Refusal::BadRequest("malformed method")), "junk is 400 at once");
    }

    #[test]
    fn control_bytes_in_a_field_value_are_refused() {
        for raw in [
            "GET / HTTP/1.1\r\nHost: x\r\nX: a\rContent-Length: 31\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nX: a\x7fb\r\n\r\n",
        ] {
            assert_eq!(refusal(raw), Refusal::BadRequest("malformed header value"), "{raw:?}");
        }
        assert_eq!(head("GET / HTTP/1.1\r\nHost: x\r\nX: a\tb \u{e9}\r\n\r\n").method, Method::Get);
    }

    #[test]
    fn methods_are_known_other_or_unknown() {
        assert_eq!(head("DELETE / HTTP/1.1\r\nHost: x\r\n\r\n").method, Method::Other);
        assert_eq!(head("BREW / HTTP/1.1\r\nHost: x\r\n\r\n").method, Method::Unknown);
        assert_eq!(
            head("get / HTTP/1.1\r\nHost: x\r\n\r\n").method,
            Method::Unknown,
            "methods are case-sensitive"
        );
    }

    #[test]
    fn at_most_max_fields_header_fields() {
        let fields = |n: usize| format!("GET / HTTP/1.1\r\nHost: x\r\n{}\r\n", "X: y\r\n".repeat(n - 1));
        assert!(parse(fields(MAX_FIELDS).as_bytes(), 8192).unwrap().is_some());
        assert_eq!(parse(fields(MAX_FIELDS + 1).as_bytes(), 8192), Err(Refusal::TooManyFields));
        let http12 = fields(MAX_FIELDS + 1).replace("HTTP/1.1", "HTTP/1.2");
        assert_eq!(parse(http12.as_bytes(), 8192), Err(Refusal::TooManyFields), "the other-version path too");
    }
}
