//! The commands that look at the keyspace as a whole or at one key's kind: `KEYS`, `SCAN`,
//! `TYPE` and `PERSIST`, with Redis 7's replies.
//!
//! ```text
//!  KEYS pattern ─────────────────► every live key matching (glob.rs) ─► one array
//!  SCAN 0 [MATCH p] [COUNT n] ───► the same, as cursor "0" + array: the whole walk at once
//! ```
//!
//! **SCAN answers in one step.** Redis walks its hash table with a cursor that survives
//! resizing (reverse binary iteration over its own buckets); std's `HashMap` offers no
//! position that stays valid across inserts, so a cursor here could miss or repeat keys.
//! Returning every key with the next cursor `0` is what SCAN's contract allows (COUNT is a
//! hint; a full iteration returns every key present throughout), and `redis-cli --scan`
//! and client libraries' scan iterators take it as a finished walk. Like `KEYS`, it holds
//! the loop for a walk of the whole keyspace, and its reply is bounded by `--max-reply`.

use std::time::Instant;

use super::commands::Ctx;
use super::glob;
use super::reply;
use super::resp::{parse_int, Argv};
use super::store::Store;

/// `KEYS pattern`.
pub fn keys(ctx: &mut Ctx<'_>, argv: &Argv) {
    match matching(ctx.store, ctx.now, argv.get(1), ctx.server.max_reply) {
        Some(found) => reply_keys(ctx.out, &found),
        None => too_large(ctx, "KEYS"),
    }
}

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`.
pub fn scan(ctx: &mut Ctx<'_>, argv: &Argv) {
    let Some(cursor) = std::str::from_utf8(argv.get(1)).ok().and_then(|c| c.parse::<u64>().ok()) else {
        return reply::error(ctx.out, "ERR invalid cursor");
    };
    let (mut pattern, mut only_strings) = (&b"*"[..], true);
    let mut i = 2;
    while i < argv.len() {
        let option = argv.get(i).to_ascii_lowercase();
        let value = (i + 1 < argv.len()).then(|| argv.get(i + 1));
        match (option.as_slice(), value) {
            (b"match", Some(value)) => pattern = value,
            (b"count", Some(value)) => match parse_int(value) {
                Some(n) if n >= 1 => {}
                Some(_) => return reply::error(ctx.out, "ERR syntax error"),
                None => return reply::error(ctx.out, "ERR value is not an integer or out of range"),
            },
            (b"type", Some(value)) => only_strings = value.eq_ignore_ascii_case(b"string"),
            _ => return reply::error(ctx.out, "ERR syntax error"),
        }
        i += 2;
    }
    // A cursor this server never handed out (every walk ends at 0 in one step), or a type
    // no key here has: the walk is over and found nothing.
    let found = if cursor == 0 && only_strings {
        matching(ctx.store, ctx.now, pattern, ctx.server.max_reply)
    } else {
        Some(Vec::new())
    };
    let Some(found) = found else {
        return too_large(ctx, "SCAN");
    };
    reply::array(ctx.out, 2);
    reply::bulk(ctx.out, b"0");
    reply_keys(ctx.out, &found);
}

/// Every live key matching `pattern`, or `None` if listing them would pass `limit`
/// (`--max-reply`; counted while they are gathered, as MGET checks while it builds).
fn matching<'s>(store: &'s Store, now: Instant, pattern: &[u8], limit: usize) -> Option<Vec<&'s [u8]>> {
    let mut size = 0usize;
    let mut found = Vec::new();
    for key in store.live_keys(now).filter(|key| glob::matches(pattern, key)) {
        size += key.len() + 16; // `$<len>\r\n<key>\r\n`, generously
        if size > limit {
            return None;
        }
        found.push(key);
    }
    Some(found)
}

fn reply_keys(out: &mut Vec<u8>, keys: &[&[u8]]) {
    reply::array(out, keys.len());
    keys.iter().for_each(|key| reply::bulk(out, key));
}

fn too_large(ctx: &mut Ctx<'_>, command: &str) {
    let limit = ctx.server.max_reply;
    log::warn!("client {}: {command} reply over {limit} bytes refused", ctx.session.id);
    reply::error(ctx.out, &format!("ERR reply over {limit} bytes (--max-reply)"));
}

/// `TYPE key`: every value here is a string.
pub fn kind(ctx: &mut Ctx<'_>, argv: &Argv) {
    let exists = ctx.store.exists(argv.get(1), ctx.now);
    reply::simple(ctx.out, if exists { "string" } else { "none" });
}

/// `PERSIST key`: 1 if the key had a deadline and now has none.
pub fn persist(ctx: &mut Ctx<'_>, argv: &Argv) {
    let dropped = ctx.store.persist(argv.get(1), ctx.now);
    reply::int(ctx.out, i64::from(dropped));
}

#[cfg(test)]
mod tests {
    use super::super::commands::tests::Bench;

    #[test]
    fn keys_scan_type_persist() {
        let mut b = Bench::new();
        assert_eq!(b.run("MSET user:1 a user:2 b other c"), "+OK\r\n");
        let sorted = |reply: String| {
            let mut keys: Vec<String> = reply
                .split("\r\n")
                .filter(|l| l.starts_with("user") || l.starts_with("other"))
                .map(String::from)
                .collect();
            keys.sort();
            keys
        };
        assert!(b.run("KEYS user:*").starts_with("*2\r\n"));
        assert_eq!(sorted(b.run("KEYS user:*")), ["user:1", "user:2"]);
        assert_eq!(sorted(b.run("KEYS *")), ["other", "user:1", "user:2"]);
        assert_eq!(b.run("KEYS nothing*"), "*0\r\n");
        assert!(b.run("SCAN 0 MATCH user:? COUNT 10").starts_with("*2\r\n$1\r\n0\r\n*2\r\n"));
        assert_eq!(b.run("SCAN 17"), "*2\r\n$1\r\n0\r\n*0\r\n");
        assert_eq!(b.run("SCAN 0 TYPE list"), "*2\r\n$1\r\n0\r\n*0\r\n");
        assert!(b.run("SCAN 0 TYPE string").starts_with("*2\r\n$1\r\n0\r\n*3\r\n"));
        assert_eq!(b.run("SCAN x"), "-ERR invalid cursor\r\n");
        assert_eq!(b.run("SCAN 0 COUNT 0"), "-ERR syntax error\r\n");
        assert_eq!(b.run("SCAN 0 COUNT x"), "-ERR value is not an integer or out of range\r\n");
        assert_eq!(b.run("SCAN 0 MATCH"), "-ERR syntax error\r\n");
        assert_eq!(b.run("TYPE other"), "+string\r\n");
        assert_eq!(b.run("TYPE nope"), "+none\r\n");
        assert_eq!(b.run("PERSIST other"), ":0\r\n");
        assert_eq!(b.run("EXPIRE other 100"), ":1\r\n");
        assert_eq!(b.run("PERSIST other"), ":1\r\n");
        assert_eq!(b.run("TTL other"), ":-1\r\n");
        assert_eq!(b.run("PERSIST nope"), ":0\r\n");
    }

    #[test]
    fn expired_keys_are_not_listed() {
        let mut b = Bench::new();
        assert_eq!(b.run("SET gone v PX 10"), "+OK\r\n");
        assert_eq!(b.run("SET kept v"), "+OK\r\n");
        b.now += std::time::Duration::from_millis(20);
        assert_eq!(b.run("KEYS *"), "*1\r\n$4\r\nkept\r\n");
        assert_eq!(b.run("TYPE gone"), "+none\r\n");
    }

    #[test]
    fn a_listing_over_max_reply_is_refused() {
        let mut b = Bench::new();
        b.server.max_reply = 100;
        for i in 0..20 {
            assert_eq!(b.run(&format!("SET key:{i} v")), "+OK\r\n");
        }
        assert_eq!(b.run("KEYS *"), "-ERR reply over 100 bytes (--max-reply)\r\n");
        assert_eq!(b.run("SCAN 0"), "-ERR reply over 100 bytes (--max-reply)\r\n");
        assert_eq!(b.run("KEYS key:1"), "*1\r\n$5\r\nkey:1\r\n");
    }
}
