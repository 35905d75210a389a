//! RESP2 replies, appended to an output buffer.
//!
//! ```text
//!  command ──reply::bulk(out, b"v")──► out: "$1\r\nv\r\n" ──(end of the batch)──► cx.write(out)
//! ```
//!
//! The five RESP2 reply types: simple strings (`+OK`), errors (`-ERR ...`), integers
//! (`:1`), bulk strings (`$1\r\nv`, or `$-1` for nil) and arrays (`*2` followed by the
//! elements, `*-1` for a nil array). Commands write into a plain `Vec<u8>`, so they can be
//! unit-tested without a connection; the connection hands the buffer to the reactor once
//! per batch of pipelined commands (one `write` system call for all of their replies).

/// `+text\r\n`. `text` must not contain CR or LF.
pub fn simple(out: &mut Vec<u8>, text: &str) {
    out.push(b'+');
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

pub fn ok(out: &mut Vec<u8>) {
    out.extend_from_slice(b"+OK\r\n");
}

/// `-message\r\n`; `message` starts with the error code (`ERR`, `WRONGTYPE`, `NOPROTO`).
/// CR and LF would end the line early, so they are replaced by spaces (as Redis does).
pub fn error(out: &mut Vec<u8>, message: &str) {
    out.push(b'-');
    out.extend(message.bytes().map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
    out.extend_from_slice(b"\r\n");
}

/// `:n\r\n`.
pub fn int(out: &mut Vec<u8>, n: i64) {
    line(out, b':', n);
}

/// `$len\r\nbytes\r\n`.
pub fn bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    line(out, b'$', bytes.len() as i64);
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// The nil bulk string, `$-1\r\n` (GET of a missing key).
pub fn nil(out: &mut Vec<u8>) {
    out.extend_from_slice(b"$-1\r\n");
}

/// `$len\r\n...` or nil.
pub fn bulk_or_nil(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(bytes) => bulk(out, bytes),
        None => nil(out),
    }
}

/// The header of an array of `len` elements; the caller writes the elements.
pub fn array(out: &mut Vec<u8>, len: usize) {
    line(out, b'*', len as i64);
}

/// A prefix byte, a decimal integer, CRLF.
fn line(out: &mut Vec<u8>, prefix: u8, n: i64) {
    out.push(prefix);
    decimal(out, n);
    out.extend_from_slice(b"\r\n");
}

/// `n` in decimal, formatted on the stack (no allocation, unlike `format!`): replies and
/// `INCR`'s stored values.
pub fn decimal(out: &mut Vec<u8>, n: i64) {
    let mut digits = [0u8; 24];
    let mut at = digits.len();
    let mut rest = n.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        at -= 1;
        digits[at] = b'-';
    }
    out.extend_from_slice(&digits[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        let mut out = Vec::new();
        simple(&mut out, "PONG");
        ok(&mut out);
        error(&mut out, "ERR bad\r\nthing");
        int(&mut out, 0);
        int(&mut out, -42);
        int(&mut out, i64::MIN);
        bulk(&mut out, b"a\r\nb");
        bulk(&mut out, b"");
        nil(&mut out);
        array(&mut out, 2);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "+PONG\r\n+OK\r\n-ERR bad  thing\r\n:0\r\n:-42\r\n:-9223372036854775808\r\n\
             $4\r\na\r\nb\r\n$0\r\n\r\n$-1\r\n*2\r\n"
        );
    }
}
