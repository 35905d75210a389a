//! Property tests: the invariants the fuzz targets check (`fuzz/`), run here on stable over
//! a bounded set of seeded generated inputs, so every `cargo test` covers them. The checks
//! live in `evloop_support::props` (support/src/props/), one module per target, shared with
//! `fuzz/fuzz_targets/`; this module adds the generators. Seeds are printed; replay one with `EVLOOP_SEED=N`.
//!
//! The generators build mostly well-formed input from the grammar and then damage some of
//! it (a byte flipped, a delimiter inserted, a cut): random bytes alone would almost never
//! make a complete HTTP head, and the interesting bugs live near valid input. Each test
//! also asserts that its inputs reached every outcome (accepted, refused, incomplete), so
//! a generator that drifts into testing nothing fails.

use evloop_support::fib;
use evloop_support::http::request;
use evloop_support::props::{fib_request, http_head, resp_request};
use evloop_support::resp;
use evloop_support::testing::Rng;

/// Inputs per property: enough to reach every branch of the parsers (checked below), few
/// enough that the module runs in about a second in a debug build.
const CASES: usize = 3000;

fn pick<'a>(rng: &mut Rng, choices: &[&'a str]) -> &'a str {
    choices[rng.range(0, choices.len() - 1)]
}

/// Mostly one of `good`, one time in twelve one of `bad`.
fn pick_mostly<'a>(rng: &mut Rng, good: &[&'a str], bad: &[&'a str]) -> &'a str {
    if rng.range(0, 11) == 0 {
        pick(rng, bad)
    } else {
        pick(rng, good)
    }
}

/// A request head from the grammar, then perhaps a body or the next request.
fn http_input(rng: &mut Rng) -> Vec<u8> {
    let eol = pick(rng, &["\r\n", "\r\n", "\n"]);
    let mut out = String::new();
    if rng.range(0, 9) == 0 {
        out.push_str(pick(rng, &["\r\n", "\n", "\r\n\r\n"]));
    }
    let method = pick_mostly(rng, &["GET", "HEAD", "POST", "PUT", "DELETE", "BREW"], &["G(T", "", "get"]);
    let target = pick_mostly(
        rng,
        &["/", "/fib/30", "/echo", "/a?b=c&d", "*", "http://x/y", "/%20x"],
        &["/\u{e9}", ""],
    );
    let version =
        pick_mostly(rng, &["HTTP/1.1", "HTTP/1.0", "HTTP/1.2"], &["HTTP/2.0", "HTTX/1.1", "HTTP/1"]);
    let sep = pick_mostly(rng, &[" "], &["  ", "\t"]);
    out.push_str(&format!("{method}{sep}{target} {version}{eol}"));
    let mut fields = Vec::new();
    if rng.range(0, 9) != 0 {
        fields.push(("Host", "x".to_string()));
    }
    for _ in 0..rng.range(0, 4) {
        let (name, value) = match rng.range(0, 11) {
            0 => ("Content-Length", rng.range(0, 99).to_string()),
            1 => (
                "content-length",
                pick_mostly(rng, &["5"], &["-1", "99999999999999999999", "", "1 2"]).into(),
            ),
            2 => {
                ("Connection", pick_mostly(rng, &["close", "keep-alive", "Keep-Alive, close"], &[""]).into())
            }
            3 => ("Expect", pick_mostly(rng, &["100-continue"], &["tea"]).into()),
            4 => ("Transfer-Encoding", "chunked".into()),
            5 => (pick(rng, &["Bad Name", "", "X\u{e9}"]), "v".into()),
            6 => ("X-Value", pick(rng, &[" padded ", "a\0b", "", "a:b", "\u{e9}"]).into()),
            _ => (pick(rng, &["Accept", "User-Agent", "X-Y", "host"]), "anything at all".into()),
        };
        fields.push((name, value));
    }
    if rng.range(0, 1) == 0 {
        fields.push(("X-Pad", "p".repeat(rng.range(0, 300))));
    }
    for (name, value) in fields {
        let colon = pick_mostly(rng, &[": ", ":", ":\t"], &[" : ", ""]);
        let fold = if rng.range(0, 40) == 0 { " " } else { "" };
        out.push_str(&format!("{fold}{name}{colon}{value}{eol}"));
    }
    out.push_str(eol);
    out.push_str(pick(rng, &["", "hello", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "\r\n"]));
    let mut bytes = out.into_bytes();
    damage(rng, &mut bytes);
    bytes
}

/// Sometimes flips, inserts or deletes a byte, or cuts the input short.
fn damage(rng: &mut Rng, bytes: &mut Vec<u8>) {
    const SPECIAL: &[u8] = b"\r\n\0 \t:\x7f\x80,";
    for _ in 0..rng.range(0, 1) {
        if bytes.is_empty() {
            return;
        }
        let at = rng.range(0, bytes.len() - 1);
        match rng.range(0, 5) {
            0 => bytes[at] = rng.next_u64() as u8,
            1 => bytes.insert(at, SPECIAL[rng.range(0, SPECIAL.len() - 1)]),
            2 => {
                bytes.remove(at);
            }
            3 => bytes.truncate(at),
            _ => {}
        }
    }
}

#[test]
fn http_heads_keep_their_invariants() {
    let mut rng = Rng::seeded("http_heads_keep_their_invariants");
    let (mut accepted, mut refused, mut incomplete, mut too_large) = (0, 0, 0, 0);
    for _ in 0..CASES {
        let input = http_input(&mut rng);
        // Mostly the server's limit, sometimes one the input may cross.
        let max_head = if rng.range(0, 3) == 0 { rng.range(16, 400) } else { 8192 };
        http_head::check(&input, max_head);
        match request::parse(&input, max_head) {
            Ok(Some(_)) => accepted += 1,
            Ok(None) => incomplete += 1,
            Err(request::Refusal::HeadTooLarge) => too_large += 1,
            Err(_) => refused += 1,
        }
    }
    eprintln!("{accepted} accepted, {refused} refused, {too_large} too large, {incomplete} incomplete");
    for (outcome, count) in
        [("accepted", accepted), ("refused", refused), ("too large", too_large), ("incomplete", incomplete)]
    {
        assert!(count >= CASES / 50, "only {count} of {CASES} inputs {outcome}: the generator drifted");
    }
}

/// A request line from fib's grammar, damaged sometimes.
fn fib_input(rng: &mut Rng) -> Vec<u8> {
    let mut line = String::new();
    for _ in 0..rng.range(1, 3) {
        let piece = match rng.range(0, 9) {
            0 => rng.range(0, 100).to_string(),
            1 => rng.next_u64().to_string(),
            2 => format!("sleep {}", rng.range(0, 700_000)),
            3 => "sleep".to_string(),
            4 => pick(rng, &["-", "+", "-3", "0x10", "1e3", "١٢", "\u{2003}"]).to_string(),
            5 => pick(rng, &[" ", "\t", "\r", "  "]).to_string(),
            _ => rng.range(0, 92).to_string(),
        };
        line.push_str(&piece);
    }
    let mut bytes = line.into_bytes();
    damage(rng, &mut bytes);
    bytes
}

#[test]
fn fib_lines_keep_their_invariants() {
    let mut rng = Rng::seeded("fib_lines_keep_their_invariants");
    let (mut fib, mut sleep, mut refused) = (0, 0, 0);
    for _ in 0..CASES {
        let line = fib_input(&mut rng);
        let max_n = if rng.range(0, 1) == 0 { 45 } else { rng.range(0, 92) as u32 };
        fib_request::check(&line, max_n);
        match fib::parse(&line, max_n) {
            Ok(fib::Request::Fib(_)) => fib += 1,
            Ok(fib::Request::Sleep(_)) => sleep += 1,
            Err(_) => refused += 1,
        }
    }
    eprintln!("{fib} fib, {sleep} sleep, {refused} refused");
    for (outcome, count) in [("fib", fib), ("sleep", sleep), ("refused", refused)] {
        assert!(count >= CASES / 50, "only {count} of {CASES} lines {outcome}: the generator drifted");
    }
}

/// A RESP2 request: a multibulk or an inline command from the grammar, perhaps damaged.
fn resp_input(rng: &mut Rng) -> Vec<u8> {
    let words = ["GET", "SET", "k", "value with space", "", "\r\n", "x", "12345"];
    let count = rng.range(0, 4);
    let args: Vec<Vec<u8>> = (0..count).map(|_| pick(rng, &words).as_bytes().to_vec()).collect();
    let mut buf = if rng.range(0, 3) == 0 {
        let line: Vec<&str> =
            (0..count.max(1)).map(|_| pick(rng, &["PING", "GET", "k", "\"quoted x\"", "'a b'"])).collect();
        format!("{}\r\n", line.join(" ")).into_bytes()
    } else {
        resp::encode_command(&args.iter().map(Vec::as_slice).collect::<Vec<_>>())
    };
    match rng.range(0, 9) {
        0 if !buf.is_empty() => {
            let at = rng.range(0, buf.len() - 1);
            buf[at] = pick(rng, &["*", "$", "-", "\r", "\n", "9", "x"]).as_bytes()[0];
        }
        1 => buf.truncate(rng.range(0, buf.len())),
        2 => buf = format!("*{}\r\n", pick(rng, &["-5", "99999999999", "3", "abc"])).into_bytes(),
        _ => {}
    }
    if rng.range(0, 4) == 0 {
        buf.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
    }
    buf
}

/// The RESP2 parser's invariants over generated requests (`props/resp_request.rs`).
#[test]
fn resp_requests_keep_their_invariants() {
    let mut rng = Rng::seeded("resp_requests_keep_their_invariants");
    let limits = resp::Limits { max_bulk: 64, max_args: 8, max_inline: 256 };
    let mut seen = std::collections::HashSet::new();
    for _ in 0..CASES {
        seen.insert(resp_request::check(&resp_input(&mut rng), limits));
    }
    assert_eq!(seen.len(), 3, "not every outcome reached: {seen:?}");
}
