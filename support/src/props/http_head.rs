//! The invariants of the HTTP request-head parser ([`crate::http::request`]), checked on
//! any input: by the fuzz target `fuzz/fuzz_targets/http_head.rs` on what libFuzzer makes,
//! and by `props::http_heads_keep_their_invariants` on seeded generated heads.
//!
//! Only `parse`, `Head::len`, `Head::target` and `Refusal::HeadTooLarge` are named, so the
//! checks follow whatever implementation of that interface lands.

use crate::http::request::{parse, Refusal};

/// Checks every invariant of `parse(buf, max_head)`; panics (with the input) on a breach.
pub fn check(buf: &[u8], max_head: usize) {
    let verdict = parse(buf, max_head);
    match &verdict {
        // "Not yet" is only said within the limit: a peer cannot make us buffer more.
        Ok(None) => assert!(buf.len() <= max_head, "incomplete past max_head {max_head}: {buf:?}"),
        Ok(Some(head)) => {
            assert!(
                head.len > 0 && head.len <= buf.len(),
                "head.len {} outside the input: {buf:?}",
                head.len
            );
            assert!(head.len <= max_head, "accepted a head of {} bytes over max_head {max_head}", head.len);
            let exact = &buf[..head.len];
            // The head is exactly its bytes: what follows it (a body, the next request)
            // changes nothing, and without it the same head comes out.
            assert_eq!(parse(exact, max_head), verdict, "re-parse of exactly the head differs: {buf:?}");
            // Before its last byte a head is incomplete, never refused or accepted early.
            for cut in cuts(exact) {
                assert_eq!(parse(&exact[..cut], max_head), Ok(None), "prefix of {cut} bytes of {exact:?}");
            }
            let target = head.target.as_bytes();
            assert!(!target.is_empty(), "empty target accepted: {buf:?}");
            assert!(target.iter().all(u8::is_ascii_graphic), "target with space or control bytes: {buf:?}");
            assert!(exact.windows(target.len()).any(|w| w == target), "target not from the head: {buf:?}");
        }
        Err(refusal) => {
            if *refusal == Refusal::HeadTooLarge {
                assert!(buf.len() > max_head, "HeadTooLarge for {} bytes within {max_head}", buf.len());
            }
            // A refusal is final: bytes arriving later cannot turn it into another kind of
            // refusal (another status). Its text may grow more precise once the line is
            // whole ("malformed method" where a partial line could only say "malformed
            // request line"), so the kind is compared, not the message.
            let mut more = buf.to_vec();
            more.extend_from_slice(b"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
            let later = parse(&more, max_head);
            let kind = |v: &Result<Option<_>, Refusal>| v.as_ref().err().map(std::mem::discriminant);
            assert!(
                later.is_err() && kind(&later) == kind(&verdict),
                "refusal changed by later bytes: {buf:?}: {verdict:?} then {later:?}"
            );
        }
    }
}

/// The prefix lengths to try: all of them for a head of up to 1 KiB, else every byte
/// around a line end plus an even sample (the checks stay linear enough for fuzzing).
fn cuts(head: &[u8]) -> Vec<usize> {
    if head.len() <= 1024 {
        return (0..head.len()).collect();
    }
    let mut cuts: Vec<usize> = (0..head.len()).step_by(head.len() / 128 + 1).collect();
    for (at, &b) in head.iter().enumerate() {
        if b == b'\n' {
            cuts.extend(at.saturating_sub(2)..(at + 2).min(head.len()));
        }
    }
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}
