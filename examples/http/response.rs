//! Writing an HTTP/1.1 response head: the status line and the headers every response of this
//! server carries (`Date`, `Server`, `Content-Type`, `Content-Length`, and `Connection` when
//! the connection will not persist as the client's version would assume).
//!
//! The head is formatted into a fixed buffer on the stack, so answering a request allocates
//! nothing; the `Date` value is formatted once per second per thread, as nginx does.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

/// A status code and its reason phrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status(pub u16, pub &'static str);

pub const OK: Status = Status(200, "OK");
pub const BAD_REQUEST: Status = Status(400, "Bad Request");
pub const NOT_FOUND: Status = Status(404, "Not Found");
pub const METHOD_NOT_ALLOWED: Status = Status(405, "Method Not Allowed");
pub const REQUEST_TIMEOUT: Status = Status(408, "Request Timeout");
pub const URI_TOO_LONG: Status = Status(414, "URI Too Long");
pub const HEADERS_TOO_LARGE: Status = Status(431, "Request Header Fields Too Large");
pub const INTERNAL_ERROR: Status = Status(500, "Internal Server Error");
pub const NOT_IMPLEMENTED: Status = Status(501, "Not Implemented");
pub const UNAVAILABLE: Status = Status(503, "Service Unavailable");
pub const VERSION_NOT_SUPPORTED: Status = Status(505, "HTTP Version Not Supported");

/// The interim response a client that sent `Expect: 100-continue` waits for.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// What the head says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// HTTP/1.1 client, connection stays open: nothing to say.
    KeepOpen11,
    /// HTTP/1.0 client that asked for keep-alive: confirm it.
    KeepOpen10,
    /// The connection closes after this response.
    Close,
}

/// A response head, formatted on the stack.
pub struct ResponseHead {
    buf: [u8; 512],
    len: usize,
}

impl ResponseHead {
    /// Formats a head for a body of `content_length` bytes (also for `HEAD` requests, which
    /// get the head alone). `extra` headers are written as given.
    pub fn new(
        status: Status,
        content_type: &str,
        content_length: u64,
        persistence: Persistence,
        extra: &[(&str, &str)],
    ) -> ResponseHead {
        let mut head = ResponseHead { buf: [0u8; 512], len: 0 };
        let Status(code, reason) = status;
        // Plain copies rather than `write!`: the formatting machinery cost about half of
        // the instructions of a whole keep-alive request (BENCHMARKS.md).
        head.put(b"HTTP/1.1 ");
        head.put(&[b'0' + (code / 100 % 10) as u8, b'0' + (code / 10 % 10) as u8, b'0' + (code % 10) as u8]);
        head.put(b" ");
        head.put(reason.as_bytes());
        head.put(b"\r\nServer: evloop\r\nDate: ");
        with_date(|date| head.put(date));
        head.put(b"\r\nContent-Type: ");
        head.put(content_type.as_bytes());
        head.put(b"\r\nContent-Length: ");
        head.put(decimal(content_length, &mut [0; 20]));
        head.put(b"\r\n");
        match persistence {
            Persistence::KeepOpen11 => {}
            Persistence::KeepOpen10 => head.put(b"Connection: keep-alive\r\n"),
            Persistence::Close => head.put(b"Connection: close\r\n"),
        }
        for (name, value) in extra {
            head.put(name.as_bytes());
            head.put(b": ");
            head.put(value.as_bytes());
            head.put(b"\r\n");
        }
        head.put(b"\r\n");
        head
    }

    /// Appends `bytes`. 512 bytes hold every head this server writes (the longest extra
    /// header is an `Allow` list); more would be truncated, and is caught in debug builds.
    fn put(&mut self, bytes: &[u8]) {
        let end = (self.len + bytes.len()).min(self.buf.len());
        debug_assert_eq!(end - self.len, bytes.len(), "response head over 512 bytes");
        self.buf[self.len..end].copy_from_slice(&bytes[..end - self.len]);
        self.len = end;
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

thread_local! {
    /// The `Date` header value and the second it was formatted for.
    static DATE: RefCell<(u64, [u8; 29])> = const { RefCell::new((u64::MAX, [0; 29])) };
}

/// `n` in decimal, written at the end of `out` (20 digits hold any `u64`).
fn decimal(mut n: u64, out: &mut [u8; 20]) -> &[u8] {
    let mut at = out.len();
    loop {
        at -= 1;
        out[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &out[at..];
        }
    }
}

/// Calls `f` with the current time as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn with_date<R>(f: impl FnOnce(&[u8]) -> R) -> R {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != now {
            *cached = (now, imf_fixdate(now));
        }
        f(&cached.1)
    })
}

/// Formats seconds since the Unix epoch as an IMF-fixdate (RFC 9110 §5.6.7).
pub fn imf_fixdate(unix_secs: u64) -> [u8; 29] {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = unix_secs / 86_400;
    let secs = unix_secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let text = format!(
        "{}, {day:02} {} {year:04} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[month as usize - 1],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    let mut out = [0u8; 29];
    out.copy_from_slice(&text.as_bytes()[..29]);
    out
}

/// The proleptic Gregorian date of a day count since 1970-01-01: shift the epoch to
/// 0000-03-01 so leap days fall at the end of a year, then count 400-year eras, years within
/// the era, and days within the year (months of 153 days per 5, starting in March).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let shifted = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_imf_fixdate() {
        let cases = [
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"), // RFC 9110's example
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
            (1_795_312_810, "Sun, 22 Nov 2026 02:00:10 GMT"),
            (4_107_542_399, "Sun, 28 Feb 2100 23:59:59 GMT"),
            (4_107_542_400, "Mon, 01 Mar 2100 00:00:00 GMT"), // 2100 is not a leap year
        ];
        for (secs, text) in cases {
            assert_eq!(std::str::from_utf8(&imf_fixdate(secs)).unwrap(), text, "{secs}");
        }
    }

    #[test]
    fn decimals() {
        for n in [0, 7, 10, 1_000_000_007, u64::MAX] {
            assert_eq!(decimal(n, &mut [0; 20]), n.to_string().as_bytes());
        }
    }

    #[test]
    fn a_head_has_the_framing_headers() {
        let head = ResponseHead::new(OK, "text/plain", 6, Persistence::KeepOpen11, &[]);
        let text = std::str::from_utf8(head.as_bytes()).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\nServer: evloop\r\nDate: "), "{text}");
        assert!(text.ends_with("\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\n"), "{text}");
        assert!(!text.contains("Connection"));
    }

    #[test]
    fn persistence_and_extra_headers_are_written() {
        let head = ResponseHead::new(
            METHOD_NOT_ALLOWED,
            "text/plain",
            0,
            Persistence::Close,
            &[("Allow", "GET, HEAD")],
        );
        let text = std::str::from_utf8(head.as_bytes()).unwrap();
        assert!(text.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
        assert!(text.contains("\r\nConnection: close\r\nAllow: GET, HEAD\r\n\r\n"), "{text}");
        let head = ResponseHead::new(OK, "text/plain", 0, Persistence::KeepOpen10, &[]);
        assert!(std::str::from_utf8(head.as_bytes()).unwrap().contains("\r\nConnection: keep-alive\r\n"));
    }
}
