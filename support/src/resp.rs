//! The RESP2 request parser: turns the bytes a client sent into one command's arguments
//! at a time, incrementally, with every length bounded.
//!
//! ```text
//!  input bytes ──Parser::parse──► Ok(Some(n))  a command is in `Argv`; consume n bytes
//!                             ├──► Ok(None)     incomplete: wait for more bytes
//!                             └──► Err(e)       protocol error: reply `-ERR Protocol error: e`, close
//! ```
//!
//! Two request forms, told apart by the first byte, as Redis does:
//!
//! - a multibulk (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`), what every client library sends: a count
//!   of arguments, then each argument as a length-prefixed bulk string, so arguments may hold
//!   any bytes;
//! - an inline command (`GET k\r\n`), what `nc` or `telnet` send: one line split on blanks,
//!   with `"double"` (backslash escapes) and `'single'` quotes for arguments with spaces.
//!
//! **Incremental.** A client may send a command in any number of pieces. The parser does not
//! start over on every piece: when a multibulk is incomplete it remembers how far it got (the
//! offset after the last whole argument, the arguments still expected, and how many bytes the
//! command needs at least), and the next call resumes there. This relies on the contract of
//! [`evloop::Input`]: bytes left unconsumed are offered again, in front of the new ones, so an
//! offset into an incomplete command stays valid until the command is complete. A client
//! trickling a large value one byte at a time therefore costs one comparison per arrival, not
//! a rescan of everything received so far.
//!
//! **Bounded.** Nothing is allocated from a length the client declared: a bulk longer than
//! `max_bulk`, a count over `max_args`, a negative length, or a length line or inline line
//! longer than `max_inline` without its newline is a protocol error; arguments are stored as
//! they arrive, so a multibulk announcing a million elements costs nothing until they are sent
//! (and the connection's input limit bounds what can be sent). Redis's own bounds are 512 MB
//! per bulk and 64 KiB per inline line; its messages are reused here.

/// Bounds on what one request may declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest bulk string (`$N`) accepted. Redis: `proto-max-bulk-len`, 512 MB.
    pub max_bulk: usize,
    /// Most arguments in one multibulk (`*N`). Redis accepts up to `INT_MAX`, bounded in
    /// practice by its query buffer limit; here an explicit cap.
    pub max_args: usize,
    /// Longest inline command, and longest `*N` / `$N` line, without its newline (Redis:
    /// 64 KiB, `PROTO_INLINE_MAX_SIZE`).
    pub max_inline: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_bulk: 1024 * 1024, max_args: 1024 * 1024, max_inline: 64 * 1024 }
    }
}

/// What is wrong with a request; the text follows `Protocol error: ` in the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl ProtocolError {
    fn new(message: &str) -> ProtocolError {
        ProtocolError(message.to_string())
    }
}

/// One command's arguments, copied out of the input into one buffer (a few bytes per
/// argument for typical commands; copying them is what lets an incomplete command's
/// arguments wait here while the input buffer moves).
#[derive(Debug, Default)]
pub struct Argv {
    data: Vec<u8>,
    ends: Vec<usize>,
}

impl Argv {
    /// How many arguments (the command name included).
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Argument `i`.
    ///
    /// # Panics
    ///
    /// If `i >= len()`: the command table checks arity before a command reads arguments.
    pub fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.data[start..self.ends[i]]
    }

    /// The arguments from `from` on.
    pub fn iter_from(&self, from: usize) -> impl Iterator<Item = &[u8]> + '_ {
        (from..self.len()).map(move |i| self.get(i))
    }

    /// Appends an argument (tests build commands this way).
    pub fn push(&mut self, arg: &[u8]) {
        self.data.extend_from_slice(arg);
        self.ends.push(self.data.len());
    }

    fn clear(&mut self) {
        self.data.clear();
        self.ends.clear();
    }

    /// Lets go of buffers a large command grew, so an idle connection holds little.
    pub fn shrink(&mut self) {
        const KEEP: usize = 4096;
        if self.data.capacity() > KEEP {
            self.data = Vec::new();
        }
        if self.ends.capacity() > KEEP / 8 {
            self.ends = Vec::new();
        }
    }
}

/// How far an incomplete multibulk got.
#[derive(Debug, Clone, Copy)]
struct Partial {
    /// Offset of the next argument's `$`.
    pos: usize,
    /// Arguments still expected.
    left: usize,
    /// Bytes the command needs at least; until the input is that long, nothing changed.
    need: usize,
}

/// The per-connection parser: its limits and where an incomplete multibulk stands.
#[derive(Debug)]
pub struct Parser {
    limits: Limits,
    partial: Option<Partial>,
}

impl Parser {
    pub fn new(limits: Limits) -> Parser {
        Parser { limits, partial: None }
    }

    /// No incomplete multibulk is waiting (its arguments would be in the `Argv`).
    pub fn is_idle(&self) -> bool {
        self.partial.is_none()
    }

    /// Parses the command at the start of `buf` into `argv`.
    ///
    /// `Ok(Some(n))`: a command of `n` bytes is in `argv` (empty for a blank line, `*0` or
    /// `*-1`, which Redis ignores). `Ok(None)`: incomplete; call again with the same bytes
    /// followed by more. `Err`: the stream is malformed and must be closed.
    pub fn parse(&mut self, buf: &[u8], argv: &mut Argv) -> Result<Option<usize>, ProtocolError> {
        if let Some(partial) = self.partial {
            if buf.len() < partial.need {
                return Ok(None);
            }
            return self.bulks(buf, partial.pos, partial.left, argv);
        }
        argv.clear();
        match buf.first() {
            None => Ok(None),
            Some(b'*') => self.multibulk(buf, argv),
            Some(_) => self.inline(buf, argv),
        }
    }

    /// `*N\r\n` then N bulks.
    fn multibulk(&mut self, buf: &[u8], argv: &mut Argv) -> Result<Option<usize>, ProtocolError> {
        let Some((line, next)) = self.line(buf, 1, "too big mbulk count string")? else { return Ok(None) };
        let count = match parse_int(line) {
            Some(0 | -1) => return Ok(Some(next)), // `*0`, `*-1` (null): nothing to run
            Some(n) if (n as u64) <= self.limits.max_args as u64 => n as usize,
            _ => return Err(ProtocolError::new("invalid multibulk length")),
        };
        // Reserve for what is likely, not for what was declared.
        argv.ends.reserve(count.min(16));
        self.bulks(buf, next, count, argv)
    }

    /// Reads bulks from `pos` until `left` are done or the input runs out.
    fn bulks(
        &mut self,
        buf: &[u8],
        mut pos: usize,
        mut left: usize,
        argv: &mut Argv,
    ) -> Result<Option<usize>, ProtocolError> {
        while left > 0 {
            let Some(&first) = buf.get(pos) else {
                return Ok(self.wait(pos, left, pos + 1));
            };
            if first != b'$' {
                return Err(ProtocolError(format!("expected '$', got '{}'", char::from(first))));
            }
            let Some((line, data)) = self.line(buf, pos + 1, "too big bulk count string")? else {
                return Ok(self.wait(pos, left, buf.len() + 1));
            };
            let len = match parse_int(line) {
                Some(n) if n >= 0 && (n as u64) <= self.limits.max_bulk as u64 => n as usize,
                _ => return Err(ProtocolError::new("invalid bulk length")),
            };
            let end = data + len;
            if buf.len() < end + 2 {
                // At least this bulk, and the shortest possible rest (`$0\r\n\r\n` each).
                return Ok(self.wait(pos, left, end + 2 + (left - 1) * 6));
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err(ProtocolError::new("bulk string not followed by CRLF"));
            }
            argv.push(&buf[data..end]);
            pos = end + 2;
            left -= 1;
        }
        self.partial = None;
        Ok(Some(pos))
    }

    /// Remembers where an incomplete multibulk stands; arguments already read stay in argv.
    fn wait(&mut self, pos: usize, left: usize, need: usize) -> Option<usize> {
        self.partial = Some(Partial { pos, left, need });
        None
    }

    /// The line starting at `from` up to its `\r\n`, and the offset after it; `None` if the
    /// newline has not arrived; an error if the line is already too long to be valid.
    fn line<'a>(
        &self,
        buf: &'a [u8],
        from: usize,
        too_long: &str,
    ) -> Result<Option<(&'a [u8], usize)>, ProtocolError> {
        let rest = &buf[from.min(buf.len())..];
        let window = &rest[..rest.len().min(self.limits.max_inline + 1)];
        match window.iter().position(|&b| b == b'\r') {
            Some(at) if at + 1 >= rest.len() => Ok(None), // the `\n` is still on its way
            Some(at) if rest[at + 1] == b'\n' => Ok(Some((&rest[..at], from + at + 2))),
            Some(_) => Err(ProtocolError::new("expected CRLF")),
            None if window.len() > self.limits.max_inline => Err(ProtocolError::new(too_long)),
            None => Ok(None),
        }
    }

    /// One line, split into arguments the way Redis's `sdssplitargs` does.
    fn inline(&mut self, buf: &[u8], argv: &mut Argv) -> Result<Option<usize>, ProtocolError> {
        let window = &buf[..buf.len().min(self.limits.max_inline + 1)];
        let Some(newline) = window.iter().position(|&b| b == b'\n') else {
            if window.len() > self.limits.max_inline {
                return Err(ProtocolError::new("too big inline request"));
            }
            return Ok(None);
        };
        let line = &buf[..newline];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        split_args(line, argv)?;
        Ok(Some(newline + 1))
    }
}

/// A command as a client sends it: a RESP2 multibulk of bulk strings, the canonical form
/// every request parses to the same arguments from (the property tests and the kv tests
/// write requests with it).
pub fn encode_command(args: &[&[u8]]) -> Vec<u8> {
    let mut wire = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        wire.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        wire.extend_from_slice(arg);
        wire.extend_from_slice(b"\r\n");
    }
    wire
}

/// A RESP integer: an optional `-`, then digits, no `+`, no spaces, no leading zeros (as
/// Redis's `string2ll`). `None` if malformed or out of `i64`.
pub fn parse_int(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 19 || (digits[0] == b'0' && (digits.len() > 1 || negative)) {
        return None;
    }
    let mut value: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let digit = i64::from(d - b'0');
        // Accumulate negatively so i64::MIN parses too.
        value = value.checked_mul(10)?.checked_sub(digit)?;
    }
    if negative {
        Some(value)
    } else {
        value.checked_neg()
    }
}

/// Splits an inline command: blanks separate arguments; `"..."` understands `\n \r \t \b \a
/// \\ \" \xHH`; `'...'` understands `\'`; a closing quote must end the argument.
fn split_args(line: &[u8], argv: &mut Argv) -> Result<(), ProtocolError> {
    let unbalanced = || ProtocolError::new("unbalanced quotes in request");
    let mut i = 0;
    let mut arg = Vec::new();
    loop {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == line.len() {
            return Ok(());
        }
        arg.clear();
        let mut quote = None;
        loop {
            let Some(&c) = line.get(i) else {
                if quote.is_some() {
                    return Err(unbalanced());
                }
                break;
            };
            match quote {
                None if c.is_ascii_whitespace() => break,
                None if c == b'"' || c == b'\'' => quote = Some(c),
                None => arg.push(c),
                Some(q) if c == q => {
                    // The closing quote must be followed by a blank or the end of the line.
                    if line.get(i + 1).is_some_and(|n| !n.is_ascii_whitespace()) {
                        return Err(unbalanced());
                    }
                    i += 1;
                    break;
                }
                Some(b'"') if c == b'\\' && i + 1 < line.len() => {
                    i += 1;
                    let hex = line.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
                    match (line[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
                        (b'x', Some(byte)) => {
                            arg.push(byte);
                            i += 2;
                        }
                        (b'n', _) => arg.push(b'\n'),
                        (b'r', _) => arg.push(b'\r'),
                        (b't', _) => arg.push(b'\t'),
                        (b'b', _) => arg.push(8),
                        (b'a', _) => arg.push(7),
                        (other, _) => arg.push(other),
                    }
                }
                Some(b'\'') if c == b'\\' && line.get(i + 1) == Some(&b'\'') => {
                    i += 1;
                    arg.push(b'\'');
                }
                Some(_) => arg.push(c),
            }
            i += 1;
        }
        argv.push(&arg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(argv: &Argv) -> Vec<String> {
        argv.iter_from(0).map(|a| String::from_utf8_lossy(a).into_owned()).collect()
    }

    fn parse_all(bytes: &[u8]) -> Result<Option<(usize, Vec<String>)>, ProtocolError> {
        let mut argv = Argv::default();
        let parsed = Parser::new(Limits::default()).parse(bytes, &mut argv)?;
        Ok(parsed.map(|n| (n, args(&argv))))
    }

    fn err(bytes: &[u8], limits: Limits) -> String {
        let mut argv = Argv::default();
        Parser::new(limits).parse(bytes, &mut argv).unwrap_err().0
    }

    #[test]
    fn multibulk_and_inline() {
        let wire = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nrest";
        assert_eq!(parse_all(wire).unwrap(), Some((wire.len() - 4, vec!["GET".into(), "k".into()])));
        assert_eq!(parse_all(b"*1\r\n$0\r\n\r\n").unwrap(), Some((10, vec![String::new()])));
        assert_eq!(
            parse_all(b"set  a\tb\r\n").unwrap(),
            Some((10, vec!["set".into(), "a".into(), "b".into()]))
        );
        assert_eq!(parse_all(b"PING\n").unwrap(), Some((5, vec!["PING".into()])));
        // Binary-safe: a bulk may contain CRLF.
        assert_eq!(parse_all(b"*1\r\n$4\r\na\r\nb\r\n").unwrap(), Some((14, vec!["a\r\nb".into()])));
    }

    #[test]
    fn empty_requests_are_consumed_without_a_command() {
        assert_eq!(parse_all(b"\r\n").unwrap(), Some((2, vec![])));
        assert_eq!(parse_all(b"   \n").unwrap(), Some((4, vec![])));
        assert_eq!(parse_all(b"*0\r\n").unwrap(), Some((4, vec![])));
        assert_eq!(parse_all(b"*-1\r\n").unwrap(), Some((5, vec![])));
    }

    #[test]
    fn quotes_in_inline_commands() {
        let parsed = parse_all(b"set \"a b\" 'it''s' \"\\x41\\n\\\"\" ''\r\n").unwrap_err();
        assert_eq!(parsed.0, "unbalanced quotes in request"); // 'it''s': quote not followed by a blank
        let parsed = parse_all(b"set \"a b\" 'it\\'s' \"\\x41\\n\\\"\" ''\r\n").unwrap().unwrap();
        assert_eq!(parsed.1, vec!["set", "a b", "it's", "A\n\"", ""]);
        assert_eq!(parse_all(b"get \"abc\r\n").unwrap_err().0, "unbalanced quotes in request");
        assert_eq!(parse_all(b"get \"a\"b\r\n").unwrap_err().0, "unbalanced quotes in request");
    }

    /// Every split point of a pipelined stream gives the same commands, and an incomplete
    /// prefix never consumes or errs.
    #[test]
    fn incremental_at_every_split() {
        let wire: &[u8] =
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$0\r\n\r\n";
        let whole = {
            let mut out = Vec::new();
            let (mut parser, mut argv, mut at) = (Parser::new(Limits::default()), Argv::default(), 0);
            while let Some(n) = parser.parse(&wire[at..], &mut argv).unwrap() {
                out.push(args(&argv));
                at += n;
            }
            out
        };
        assert_eq!(whole.len(), 3);
        for cut in 0..=wire.len() {
            let (mut parser, mut argv) = (Parser::new(Limits::default()), Argv::default());
            let mut got = Vec::new();
            // Feed the bytes as the reactor would: the unconsumed rest plus the next piece.
            let mut held: Vec<u8> = Vec::new();
            for piece in [&wire[..cut], &wire[cut..]] {
                held.extend_from_slice(piece);
                while let Some(n) = parser.parse(&held, &mut argv).unwrap() {
                    got.push(args(&argv));
                    held.drain(..n);
                }
            }
            assert_eq!(got, whole, "split at {cut}");
            assert!(held.is_empty());
        }
        // One byte at a time.
        let (mut parser, mut argv, mut held, mut got) =
            (Parser::new(Limits::default()), Argv::default(), vec![], vec![]);
        for &b in wire {
            held.push(b);
            while let Some(n) = parser.parse(&held, &mut argv).unwrap() {
                got.push(args(&argv));
                held.drain(..n);
            }
        }
        assert_eq!(got, whole);
    }

    #[test]
    fn protocol_errors() {
        let small = Limits { max_bulk: 8, max_args: 4, max_inline: 16 };
        assert_eq!(err(b"*1\r\n$9\r\n", small), "invalid bulk length");
        assert_eq!(err(b"*1\r\n$-1\r\n", small), "invalid bulk length");
        assert_eq!(err(b"*1\r\n$x\r\n", small), "invalid bulk length");
        assert_eq!(err(b"*1\r\n$99999999999999999999\r\n", Limits::default()), "invalid bulk length");
        assert_eq!(err(b"*5\r\n", small), "invalid multibulk length");
        assert_eq!(err(b"*-2\r\n", small), "invalid multibulk length");
        assert_eq!(err(b"*1x\r\n", small), "invalid multibulk length");
        assert_eq!(err(b"*1\r\n:1\r\n", small), "expected '$', got ':'");
        assert_eq!(err(b"*1\r\n$1\r\nab\r\n", small), "bulk string not followed by CRLF");
        assert_eq!(err(b"*1\rx", small), "expected CRLF");
        assert_eq!(err(&[b'a'; 17], small), "too big inline request");
        assert_eq!(err(&[b'*'; 18], small), "too big mbulk count string");
        let mut long_len = b"*1\r\n$".to_vec();
        long_len.extend_from_slice(&[b'1'; 17]);
        assert_eq!(err(&long_len, small), "too big bulk count string");
        // Up to the limits, an incomplete request is just incomplete.
        let mut argv = Argv::default();
        assert_eq!(Parser::new(small).parse(&[b'a'; 16], &mut argv), Ok(None));
        assert_eq!(Parser::new(small).parse(b"*4\r\n$8\r\n1234", &mut argv), Ok(None));
    }

    #[test]
    fn a_huge_count_allocates_nothing_up_front() {
        let mut argv = Argv::default();
        let mut parser = Parser::new(Limits::default());
        assert_eq!(parser.parse(b"*1048576\r\n$1\r\na\r\n", &mut argv), Ok(None));
        assert_eq!(argv.len(), 1);
        assert!(argv.ends.capacity() <= 16);
        assert_eq!(err(b"*1048577\r\n", Limits::default()), "invalid multibulk length");
    }

    #[test]
    fn integers() {
        assert_eq!(parse_int(b"0"), Some(0));
        assert_eq!(parse_int(b"-12"), Some(-12));
        assert_eq!(parse_int(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_int(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [&b""[..], b"-", b"+1", b" 1", b"01", b"-0", b"9223372036854775808", b"1.5", b"1e3"] {
            assert_eq!(parse_int(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
