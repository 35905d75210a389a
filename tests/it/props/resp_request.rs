//! The RESP2 request parser's invariants (`examples/kv/resp.rs`), shared by the property
//! test (`props::resp_requests_keep_their_invariants`) and the fuzz target
//! (`fuzz/fuzz_targets/resp_request.rs`):
//!
//! - a complete command consumes no more than it was given, every argument within
//!   `max_bulk` and the count within `max_args`, and it re-parses to the same arguments from
//!   its canonical multibulk encoding;
//! - fed in growing prefixes to one parser (as evloop offers unconsumed input again, with
//!   the new bytes behind it), every prefix shorter than the command is "incomplete" and the
//!   whole gives the same command;
//! - a protocol error is final: more bytes behind it do not make it parse.

use super::resp::{Argv, Limits, Parser};

/// Checks `buf` under `limits`; returns what a fresh parser said of the whole buffer.
pub fn check(buf: &[u8], limits: Limits) -> Outcome {
    let mut argv = Argv::default();
    let verdict = Parser::new(limits).parse(buf, &mut argv);
    match verdict {
        Ok(Some(len)) => {
            assert!(len > 0 && len <= buf.len(), "consumed {len} of {} bytes: {buf:?}", buf.len());
            assert!(argv.len() <= limits.max_args, "{} arguments over {}", argv.len(), limits.max_args);
            let args: Vec<Vec<u8>> = (0..argv.len()).map(|i| argv.get(i).to_vec()).collect();
            // A multibulk's arguments are bounded by `max_bulk`; an inline command's by its
            // line, `max_inline` (as in Redis). (The fuzz target's first finding: the check
            // had applied `max_bulk` to both.)
            let bound = if buf.first() == Some(&b'*') { limits.max_bulk } else { limits.max_inline };
            assert!(args.iter().all(|a| a.len() <= bound), "an argument over {bound} bytes: {buf:?}");
            // The canonical form parses to the same arguments, consuming exactly itself.
            if !args.is_empty() {
                let canonical = encode(&args);
                let mut again = Argv::default();
                let len2 = Parser::new(limits).parse(&canonical, &mut again);
                assert_eq!(len2, Ok(Some(canonical.len())), "canonical form of {buf:?}");
                let args2: Vec<Vec<u8>> = (0..again.len()).map(|i| again.get(i).to_vec()).collect();
                assert_eq!(args2, args, "re-parse of {buf:?}");
            }
            // Growing prefixes through one parser and one `Argv` (the connection keeps both:
            // arguments are stored as they arrive): incomplete, then the same command.
            let mut parser = Parser::new(limits);
            let mut whole = Argv::default();
            for cut in 0..len {
                assert_eq!(parser.parse(&buf[..cut], &mut whole), Ok(None), "prefix {cut} of {buf:?}");
            }
            assert_eq!(parser.parse(&buf[..len], &mut whole), Ok(Some(len)), "after prefixes: {buf:?}");
            let incremental: Vec<Vec<u8>> = (0..whole.len()).map(|i| whole.get(i).to_vec()).collect();
            assert_eq!(incremental, args, "incremental parse of {buf:?}");
            Outcome::Command
        }
        Ok(None) => Outcome::Incomplete,
        Err(_) => {
            let mut more = buf.to_vec();
            more.extend_from_slice(b"\r\n*1\r\n$4\r\nPING\r\n");
            assert!(
                Parser::new(limits).parse(&more, &mut Argv::default()).is_err(),
                "an error undone by more bytes: {buf:?}"
            );
            Outcome::Error
        }
    }
}

/// What the parser said of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Command,
    Incomplete,
    Error,
}

/// `args` as a RESP2 multibulk.
pub fn encode(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}
