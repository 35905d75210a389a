//! The lab's one protocol, served by every model: a line `N` asks for fib(N), computed by
//! the naive recursive function (CPU-bound on purpose), and is answered with the decimal
//! value on a line; anything else gets `ERR <reason>`. Small N measures what a model costs
//! per connection and request; a large N shows which models stall everyone behind it.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;

/// Largest N accepted: fib(40) is about a second of CPU; more would let one client park a
/// worker for minutes.
pub const MAX_N: u32 = 40;

/// Longest request line, delimiter included.
pub const MAX_LINE: usize = 64;

/// The CPU-bound workload: fib(30) makes about 1.6 million calls.
pub fn fib(n: u32) -> u64 {
    if n < 2 {
        u64::from(n)
    } else {
        fib(n - 1) + fib(n - 2)
    }
}

/// A request line (without its `\n`) as the N it asks for, or the error reply.
pub fn parse(line: &[u8]) -> Result<u32, &'static [u8]> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() || !line.iter().all(u8::is_ascii_digit) {
        return Err(b"ERR not a number\n");
    }
    match std::str::from_utf8(line).ok().and_then(|text| text.parse::<u32>().ok()) {
        Some(n) if n <= MAX_N => Ok(n),
        _ => Err(b"ERR too large\n"),
    }
}

/// The full reply to one request line.
pub fn answer(line: &[u8]) -> Vec<u8> {
    match parse(line) {
        Ok(n) => format!("{}\n", fib(n)).into_bytes(),
        Err(reply) => reply.to_vec(),
    }
}

/// Serves one connection with blocking I/O until the client closes: the whole of a
/// connection's life in the thread and process models.
pub fn serve_blocking(stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut line = Vec::with_capacity(MAX_LINE);
    loop {
        line.clear();
        let n = reader.by_ref().take(MAX_LINE as u64).read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(());
        }
        if line.last() != Some(&b'\n') {
            writer.write_all(b"ERR line too long\n")?;
            return Ok(());
        }
        line.pop();
        writer.write_all(&answer(&line))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_replies() {
        assert_eq!(answer(b"20"), b"6765\n");
        assert_eq!(answer(b"0\r"), b"0\n");
        assert_eq!(answer(b"41"), b"ERR too large\n");
        assert_eq!(answer(b"-1"), b"ERR not a number\n");
        assert_eq!(answer(b""), b"ERR not a number\n");
        assert_eq!(answer(b"99999999999"), b"ERR too large\n");
    }
}
