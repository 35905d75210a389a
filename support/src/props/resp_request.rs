//! The RESP2 request parser's invariants ([`crate::resp`]), shared by the property
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

use crate::resp::{encode_command, Argv, Limits, Parser};

/// Checks `buf` under `limits`; returns what a fresh parser said of the whole buffer.
pub fn check(buf: &[u8], limits: Limits) -> Outcome {
    let mut argv = Argv::default();
    let verdict = Parser::new(limits).parse(buf, &mut argv);
    match verdict {
        Ok(Some(len)) => {
            assert!(len > 0 && len <= buf.len(), "consumed {len} of {} bytes: {buf:?}", buf.len());
            let args: Vec<Vec<u8>> = (0..argv.len()).map(|i| argv.get(i).to_vec()).collect();
            // A multibulk's arguments are bounded by `max_bulk` and their count by
            // `max_args`; an inline command's only by its line, `max_inline` (as in Redis:
            // each argument is at least a byte and a separator). (The fuzz target's first
            // findings: the check had applied the multibulk bounds to both.)
            let (bound, most) = if buf.first() == Some(&b'*') {
                (limits.max_bulk, limits.max_args)
            } else {
                (limits.max_inline, limits.max_inline.div_ceil(2))
            };
            assert!(args.len() <= most, "{} arguments over {most}: {buf:?}", args.len());
            assert!(args.iter().all(|a| a.len() <= bound), "an argument over {bound} bytes: {buf:?}");
            // The canonical form parses to the same arguments, consuming exactly itself. It is
            // a multibulk, so an inline command's longer or more numerous arguments need
            // multibulk limits that admit them.
            if !args.is_empty() {
                let canonical = encode_command(&args.iter().map(Vec::as_slice).collect::<Vec<_>>());
                let longest = args.iter().map(Vec::len).max().unwrap_or(0);
                let multibulk = Limits {
                    max_bulk: limits.max_bulk.max(longest),
                    max_args: limits.max_args.max(args.len()),
                    ..limits
                };
                let mut again = Argv::default();
                let len2 = Parser::new(multibulk).parse(&canonical, &mut again);
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
