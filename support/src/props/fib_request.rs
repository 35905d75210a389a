//! The invariants of the fib server's request-line parser ([`crate::fib`]), checked
//! by the fuzz target `fuzz/fuzz_targets/fib_line.rs` and by
//! `props::fib_lines_keep_their_invariants`.

use crate::fib::{parse, Request, MAX_SLEEP_MS};

/// Checks every invariant of `parse(line, max_n)`; panics (with the input) on a breach.
pub fn check(line: &[u8], max_n: u32) {
    let verdict = parse(line, max_n);
    match &verdict {
        Ok(Request::Fib(n)) => {
            assert!(*n <= max_n, "fib({n}) accepted over max_n {max_n}: {line:?}");
            // Only digits (around whitespace) make a number: no sign, no junk.
            let text = String::from_utf8_lossy(line);
            assert!(text.trim().bytes().all(|b| b.is_ascii_digit()), "non-digits accepted as {n}: {line:?}");
            assert_eq!(parse(n.to_string().as_bytes(), max_n), verdict, "canonical form differs");
            // A smaller limit refuses it, a larger one keeps it.
            if *n > 0 {
                assert!(parse(line, n - 1).is_err(), "fib({n}) accepted under max_n {}", n - 1);
            }
            assert_eq!(parse(line, max_n.saturating_add(1)), verdict);
        }
        Ok(Request::Sleep(ms)) => {
            assert!(*ms <= MAX_SLEEP_MS, "sleep {ms} over the maximum: {line:?}");
            assert_eq!(parse(format!("sleep {ms}").as_bytes(), max_n), verdict, "canonical form differs");
        }
        Err(reason) => {
            // The reason goes out as `ERR {reason}\n`: it must be one short printable line.
            assert!(!reason.is_empty(), "empty reason for {line:?}");
            assert!(reason.len() <= 64, "reason longer than a request line: {reason:?}");
            assert!(
                reason.bytes().all(|b| b == b' ' || b.is_ascii_graphic()),
                "unprintable reason {reason:?}"
            );
        }
    }
    // Whitespace around a request (and the CR of a CRLF line end) changes nothing.
    let mut padded = b" \t".to_vec();
    padded.extend_from_slice(line);
    padded.extend_from_slice(b" \r");
    assert_eq!(parse(&padded, max_n), verdict, "padding changed the verdict for {line:?}");
}
