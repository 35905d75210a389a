//! Parsing an HTTP/1.1 request head (RFC 9112): the request line and the header fields, up
//! to the empty line. Pure functions over bytes, no I/O: the connection hands in whatever
//! it has received so far and learns "complete, here is the head and its length", "not yet",
//! or "invalid, answer with this status".
//!
//! Only what a server needs to frame and route requests is kept: method, target, version,
//! and the headers that decide framing and persistence (`Content-Length`,
//! `Transfer-Encoding`, `Connection`, `Expect`, `Host`). Everything that could let two parsers
//! disagree on where a request ends is refused (both `Content-Length` and
//! `Transfer-Encoding`, differing lengths, whitespace before a colon, line folding), as RFC
//! 9112 §6.3 and §11.2 ask, since that disagreement is how request smuggling works.

/// A request method this server knows. Others are parsed (so the answer can be `405` or
/// `501`) as `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Other,
}

/// The parts of a request head the server acts on. Borrowed from the input buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Head<'a> {
    pub method: Method,
    /// The request target as sent (origin form, e.g. `/fib/30?x=1`).
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

/// Why a head was refused: each maps to the status the server answers with, and then the
/// server closes (after a malformed request the rest of the stream cannot be trusted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 400: malformed; the text says what.
    BadRequest(&'static str),
    /// 431: the head is larger than the server accepts.
    HeadTooLarge,
    /// 501: a `Transfer-Encoding` (chunked bodies are not implemented here).
    NotImplemented(&'static str),
    /// 505: not HTTP/1.x.
    VersionNotSupported,
}

/// Parses the request head at the start of `buf`.
///
/// `Ok(None)`: the head is not complete yet (and is within `max_head` bytes so far).
/// Empty lines before the request line are skipped, as RFC 9112 §2.2 recommends; lines
/// may end in CRLF or a bare LF (also §2.2).
pub fn parse(buf: &[u8], max_head: usize) -> Result<Option<Head<'_>>, Refusal> {
    let start = buf.iter().position(|&b| b != b'\r' && b != b'\n').unwrap_or(buf.len());
    let Some(end) = find_head_end(&buf[start..]) else {
        return if buf.len() > max_head { Err(Refusal::HeadTooLarge) } else { Ok(None) };
    };
    let len = start + end;
    if len > max_head {
        return Err(Refusal::HeadTooLarge);
    }
    let mut lines =
        buf[start..len].split(|&b| b == b'\n').map(|line| line.strip_suffix(b"\r").unwrap_or(line));
    let request_line = lines.next().unwrap_or_default();
    let (method, target, http11) = parse_request_line(request_line)?;
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
    let mut content_length: Option<u64> = None;
    let mut host = false;
    for line in lines.filter(|line| !line.is_empty()) {
        let (name, value) = parse_field(line)?;
        if name.eq_ignore_ascii_case(b"content-length") {
            let length = parse_length(value)?;
            if content_length.is_some_and(|known| known != length) {
                return Err(Refusal::BadRequest("conflicting Content-Length"));
            }
            content_length = Some(length);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Err(if content_length.is_some() || has_content_length(buf, len) {
                Refusal::BadRequest("both Content-Length and Transfer-Encoding")
            } else {
                Refusal::NotImplemented("Transfer-Encoding")
            });
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
            host = true;
        }
    }
    if http11 && !host {
        // RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without Host.
        return Err(Refusal::BadRequest("missing Host"));
    }
    head.content_length = content_length.unwrap_or(0);
    Ok(Some(head))
}

/// The offset just past the empty line that ends a head, if it has arrived.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let mut at = 0;
    while let Some(newline) = buf[at..].iter().position(|&b| b == b'\n') {
        let line_end = at + newline;
        let line = &buf[at..line_end];
        if line.is_empty() || line == b"\r" {
            return Some(line_end + 1);
        }
        at = line_end + 1;
    }
    None
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
    let target = std::str::from_utf8(target).map_err(|_| Refusal::BadRequest("malformed target"))?;
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
    let method = match method {
        b"GET" => Method::Get,
        b"HEAD" => Method::Head,
        b"POST" => Method::Post,
        b"PUT" => Method::Put,
        _ => Method::Other,
    };
    Ok((method, target, http11))
}

/// `name: value`, the value without surrounding whitespace.
fn parse_field(line: &[u8]) -> Result<(&[u8], &[u8]), Refusal> {
    if line[0] == b' ' || line[0] == b'\t' {
        return Err(Refusal::BadRequest("obsolete line folding"));
    }
    let colon = line.iter().position(|&b| b == b':').ok_or(Refusal::BadRequest("header without colon"))?;
    let name = &line[..colon];
    if name.is_empty() || !name.iter().all(|&b| is_token_byte(b)) {
        // Includes whitespace between the name and the colon (RFC 9112 §5.1).
        return Err(Refusal::BadRequest("malformed header name"));
    }
    Ok((name, trim(&line[colon + 1..])))
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

/// Is there a `Content-Length` field anywhere in the head (also after a
/// `Transfer-Encoding`)? Only asked when refusing, to pick the more precise status.
fn has_content_length(buf: &[u8], len: usize) -> bool {
    buf[..len]
        .split(|&b| b == b'\n')
        .any(|line| line.len() >= 15 && line[..15].eq_ignore_ascii_case(b"content-length:"))
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
                Refusal::NotImplemented("Transfer-Encoding"),
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
}
