//! The data commands: strings (`GET`, `SET`, `SETNX`, `SETEX`, `GETDEL`, `APPEND`, `STRLEN`,
//! `MGET`, `MSET`, `INCR` and friends), the keyspace (`DEL`/`UNLINK`, `EXISTS`, `DBSIZE`,
//! `FLUSHALL`) and time to live (`EXPIRE`, `TTL`),
//! with Redis 7's semantics and error texts.
//!
//! ```text
//!  Argv ──parse options──► Store call (lazy expiry inside) ──► reply::* into ctx.out
//! ```
//!
//! Every value is a string here, so the `WRONGTYPE` error Redis gives for a string command
//! on a list cannot arise. Numbers are stored as their decimal text, as clients see them
//! (Redis stores small integers as integers; the replies are the same).

use super::commands::{wrong_arity, Ctx};
use super::reply;
use super::resp::{parse_int, Argv};
use super::store::{deadline_in, millis_left, Ttl};

const NOT_AN_INTEGER: &str = "ERR value is not an integer or out of range";
const SYNTAX: &str = "ERR syntax error";

pub fn get(ctx: &mut Ctx<'_>, argv: &Argv) {
    let out = &mut *ctx.out;
    if ctx.store.read(argv.get(1), ctx.now, |value| reply::bulk(out, value)).is_none() {
        reply::nil(out);
    }
}

/// `SET key value [NX|XX] [GET] [EX s|PX ms|KEEPTTL]`.
pub fn set(ctx: &mut Ctx<'_>, argv: &Argv) {
    #[derive(PartialEq)]
    enum Only {
        Always,
        IfAbsent,
        IfPresent,
    }
    let (mut only, mut get_old, mut ttl) = (Only::Always, false, None);
    let mut i = 3;
    while i < argv.len() {
        let option = argv.get(i);
        let next = (i + 1 < argv.len()).then(|| argv.get(i + 1));
        let is = |name: &str| option.eq_ignore_ascii_case(name.as_bytes());
        if is("nx") && only == Only::Always {
            only = Only::IfAbsent;
        } else if is("xx") && only == Only::Always {
            only = Only::IfPresent;
        } else if is("get") && !get_old {
            get_old = true;
        } else if is("keepttl") && ttl.is_none() {
            ttl = Some(Ttl::Keep);
        } else if (is("ex") || is("px")) && ttl.is_none() && next.is_some() {
            let Some(amount) = next.and_then(parse_int) else {
                return reply::error(ctx.out, NOT_AN_INTEGER);
            };
            let scale = if is("ex") { 1000 } else { 1 };
            let Some(at) = ttl_deadline(ctx.now, amount, scale) else {
                return reply::error(ctx.out, "ERR invalid expire time in 'set' command");
            };
            ttl = Some(Ttl::At(at));
            i += 1;
        } else {
            return reply::error(ctx.out, SYNTAX);
        }
        i += 1;
    }
    let (key, value) = (argv.get(1), argv.get(2));
    let old = if get_old { ctx.store.read(key, ctx.now, <[u8]>::to_vec) } else { None };
    let exists = if get_old { old.is_some() } else { only != Only::Always && ctx.store.exists(key, ctx.now) };
    let allowed = match only {
        Only::Always => true,
        Only::IfAbsent => !exists,
        Only::IfPresent => exists,
    };
    if allowed {
        ctx.store.set(key, value, ttl.unwrap_or(Ttl::Clear));
    }
    match (get_old, allowed) {
        (true, _) => reply::bulk_or_nil(ctx.out, old.as_deref()),
        (false, true) => reply::ok(ctx.out),
        (false, false) => reply::nil(ctx.out),
    }
}

/// `SETNX key value`: 1 if set, 0 if the key existed (`SET key value NX`, as an integer).
pub fn setnx(ctx: &mut Ctx<'_>, argv: &Argv) {
    let (key, value) = (argv.get(1), argv.get(2));
    let absent = !ctx.store.exists(key, ctx.now);
    if absent {
        ctx.store.set(key, value, Ttl::Clear);
    }
    reply::int(ctx.out, i64::from(absent));
}

pub fn setex(ctx: &mut Ctx<'_>, argv: &Argv) {
    set_with_ttl(ctx, argv, 1000, "setex");
}

pub fn psetex(ctx: &mut Ctx<'_>, argv: &Argv) {
    set_with_ttl(ctx, argv, 1, "psetex");
}

/// `SETEX key seconds value` (`PSETEX`: milliseconds): `SET key value EX seconds`.
fn set_with_ttl(ctx: &mut Ctx<'_>, argv: &Argv, scale: u64, name: &str) {
    let Some(amount) = parse_int(argv.get(2)) else {
        return reply::error(ctx.out, NOT_AN_INTEGER);
    };
    let Some(at) = ttl_deadline(ctx.now, amount, scale) else {
        return reply::error(ctx.out, &format!("ERR invalid expire time in '{name}' command"));
    };
    ctx.store.set(argv.get(1), argv.get(3), Ttl::At(at));
    reply::ok(ctx.out);
}

/// The deadline `amount` units of `scale` ms from `now` (`SET … EX`/`PX`, `SETEX`), or
/// `None` if the time to live is not positive or out of range: Redis's "invalid expire time".
fn ttl_deadline(now: std::time::Instant, amount: i64, scale: u64) -> Option<std::time::Instant> {
    let ms = u64::try_from(amount).ok().filter(|&n| n > 0)?.checked_mul(scale)?;
    deadline_in(now, ms)
}

/// `GETDEL key`: the value, and the key is gone.
pub fn getdel(ctx: &mut Ctx<'_>, argv: &Argv) {
    let key = argv.get(1);
    let out = &mut *ctx.out;
    match ctx.store.read(key, ctx.now, |value| reply::bulk(out, value)) {
        Some(()) => {
            ctx.store.remove(key, ctx.now);
        }
        None => reply::nil(out),
    }
}

/// `APPEND key value`: the new length; an absent key starts empty, and a key keeps its
/// deadline. Bounded like a `SET` of the whole value: past `--max-bulk` it is refused.
pub fn append(ctx: &mut Ctx<'_>, argv: &Argv) {
    let (key, tail, limit) = (argv.get(1), argv.get(2), ctx.server.max_bulk);
    let grown = ctx.store.update(key, ctx.now, |value| {
        if value.len() + tail.len() > limit {
            return Err(format!("ERR string exceeds maximum allowed size ({limit} bytes, --max-bulk)"));
        }
        value.extend_from_slice(tail);
        Ok(value.len())
    });
    let grown = grown.unwrap_or_else(|| {
        ctx.store.set(key, tail, Ttl::Clear);
        Ok(tail.len())
    });
    match grown {
        Ok(len) => reply::int(ctx.out, len as i64),
        Err(message) => reply::error(ctx.out, &message),
    }
}

/// `STRLEN key`: 0 for an absent key.
pub fn strlen(ctx: &mut Ctx<'_>, argv: &Argv) {
    let len = ctx.store.read(argv.get(1), ctx.now, <[u8]>::len).unwrap_or(0);
    reply::int(ctx.out, len as i64);
}

pub fn mget(ctx: &mut Ctx<'_>, argv: &Argv) {
    let out = &mut *ctx.out;
    let start = out.len();
    let limit = ctx.server.max_reply;
    reply::array(out, argv.len() - 1);
    for key in argv.iter_from(1) {
        if ctx.store.read(key, ctx.now, |value| reply::bulk(out, value)).is_none() {
            reply::nil(out);
        }
        // Checked while the reply grows, not after: one MGET may name a large value
        // hundreds of thousands of times within the query limit.
        if out.len() - start > limit {
            out.truncate(start);
            log::warn!("client {}: MGET reply over {limit} bytes refused", ctx.session.id);
            reply::error(out, &format!("ERR reply over {limit} bytes (--max-reply)"));
            return;
        }
    }
}

pub fn mset(ctx: &mut Ctx<'_>, argv: &Argv) {
    if argv.len().is_multiple_of(2) {
        return wrong_arity(ctx.out, "mset");
    }
    for pair in (1..argv.len()).step_by(2) {
        ctx.store.set(argv.get(pair), argv.get(pair + 1), Ttl::Clear);
    }
    reply::ok(ctx.out);
}

pub fn incr(ctx: &mut Ctx<'_>, argv: &Argv) {
    add(ctx, argv.get(1), 1);
}

pub fn decr(ctx: &mut Ctx<'_>, argv: &Argv) {
    add(ctx, argv.get(1), -1);
}

pub fn incrby(ctx: &mut Ctx<'_>, argv: &Argv) {
    match parse_int(argv.get(2)) {
        Some(by) => add(ctx, argv.get(1), by),
        None => reply::error(ctx.out, NOT_AN_INTEGER),
    }
}

pub fn decrby(ctx: &mut Ctx<'_>, argv: &Argv) {
    match parse_int(argv.get(2)) {
        Some(i64::MIN) => reply::error(ctx.out, "ERR decrement would overflow"),
        Some(by) => add(ctx, argv.get(1), -by),
        None => reply::error(ctx.out, NOT_AN_INTEGER),
    }
}

/// Adds `by` to the integer stored at `key` (0 if absent), in place: the key keeps its
/// deadline, and the value's buffer is reused.
fn add(ctx: &mut Ctx<'_>, key: &[u8], by: i64) {
    let updated = ctx.store.update(key, ctx.now, |value| {
        let current = parse_int(value).ok_or(NOT_AN_INTEGER)?;
        let sum = current.checked_add(by).ok_or("ERR increment or decrement would overflow")?;
        value.clear();
        reply::decimal(value, sum);
        Ok(sum)
    });
    let result = updated.unwrap_or_else(|| {
        let mut text = Vec::with_capacity(20);
        reply::decimal(&mut text, by);
        ctx.store.set(key, &text, Ttl::Clear);
        Ok(by)
    });
    match result {
        Ok(n) => reply::int(ctx.out, n),
        Err(message) => reply::error(ctx.out, message),
    }
}

pub fn del(ctx: &mut Ctx<'_>, argv: &Argv) {
    let removed = argv.iter_from(1).filter(|key| ctx.store.remove(key, ctx.now)).count();
    reply::int(ctx.out, removed as i64);
}

/// Counts every argument that names a live key: `EXISTS k k` is 2 (as in Redis).
pub fn exists(ctx: &mut Ctx<'_>, argv: &Argv) {
    let found = argv.iter_from(1).filter(|key| ctx.store.exists(key, ctx.now)).count();
    reply::int(ctx.out, found as i64);
}

pub fn dbsize(ctx: &mut Ctx<'_>, _argv: &Argv) {
    reply::int(ctx.out, ctx.store.len() as i64);
}

/// `FLUSHALL [ASYNC|SYNC]`: both mean "now" here.
pub fn flushall(ctx: &mut Ctx<'_>, argv: &Argv) {
    let lazy = match argv.len() {
        1 => false,
        2 if argv.get(1).eq_ignore_ascii_case(b"async") => true,
        2 if argv.get(1).eq_ignore_ascii_case(b"sync") => false,
        _ => return reply::error(ctx.out, SYNTAX),
    };
    if lazy {
        // Redis's lazyfree: the keyspace is emptied at once, and freed on another thread,
        // so the loop is not held for the time it takes to free a large one.
        let old = ctx.store.take_all();
        if let Err(e) = std::thread::Builder::new().name("kv-lazyfree".into()).spawn(move || drop(old)) {
            log::warn!("FLUSHALL ASYNC: no thread to free on ({e}); freed on the loop");
        }
    } else {
        ctx.store.clear();
    }
    reply::ok(ctx.out);
}

pub fn expire(ctx: &mut Ctx<'_>, argv: &Argv) {
    set_expiry(ctx, argv, 1000, "expire");
}

pub fn pexpire(ctx: &mut Ctx<'_>, argv: &Argv) {
    set_expiry(ctx, argv, 1, "pexpire");
}

/// `EXPIRE key seconds [NX|XX|GT|LT]`: 1 if the deadline was set, 0 if the key does not
/// exist or the condition failed. A deadline not in the future deletes the key (and
/// counts as set), as in Redis.
fn set_expiry(ctx: &mut Ctx<'_>, argv: &Argv, scale: i64, name: &str) {
    let Some(amount) = parse_int(argv.get(2)) else {
        return reply::error(ctx.out, NOT_AN_INTEGER);
    };
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for option in argv.iter_from(3) {
        match option.to_ascii_lowercase().as_slice() {
            b"nx" => nx = true,
            b"xx" => xx = true,
            b"gt" => gt = true,
            b"lt" => lt = true,
            _ => {
                let option = String::from_utf8_lossy(option);
                return reply::error(ctx.out, &format!("ERR Unsupported option {option}"));
            }
        }
    }
    if nx && (xx || gt || lt) {
        return reply::error(ctx.out, "ERR NX and XX, GT or LT options at the same time are not compatible");
    }
    if gt && lt {
        return reply::error(ctx.out, "ERR GT and LT options at the same time are not compatible");
    }
    let Some(ms) = amount.checked_mul(scale) else {
        return reply::error(ctx.out, &format!("ERR invalid expire time in '{name}' command"));
    };
    // The range is checked before the key is looked up, as Redis does.
    let future = u64::try_from(ms).ok().filter(|&ms| ms > 0).map(|ms| deadline_in(ctx.now, ms));
    if let Some(None) = future {
        return reply::error(ctx.out, &format!("ERR invalid expire time in '{name}' command"));
    }
    let key = argv.get(1);
    let Some(current) = ctx.store.deadline(key, ctx.now) else {
        return reply::int(ctx.out, 0);
    };
    let Some(Some(at)) = future else {
        // Already in the past. (Conditions compare deadlines; a past one is below any.)
        let refused = (nx && current.is_some()) || (xx && current.is_none()) || gt;
        if !refused {
            ctx.store.remove(key, ctx.now);
        }
        return reply::int(ctx.out, i64::from(!refused));
    };
    // No deadline counts as infinitely far for GT and LT.
    let refused = match current {
        Some(current) => nx || (gt && at <= current) || (lt && at >= current),
        None => xx || gt,
    };
    if !refused {
        ctx.store.set_deadline(key, at, ctx.now);
    }
    reply::int(ctx.out, i64::from(!refused));
}

/// `-2` if the key does not exist, `-1` if it has no deadline, else the seconds left
/// (rounded to the nearest, as Redis does).
pub fn ttl(ctx: &mut Ctx<'_>, argv: &Argv) {
    let left = time_left(ctx, argv.get(1));
    reply::int(ctx.out, if left < 0 { left } else { (left + 500) / 1000 });
}

pub fn pttl(ctx: &mut Ctx<'_>, argv: &Argv) {
    let left = time_left(ctx, argv.get(1));
    reply::int(ctx.out, left);
}

fn time_left(ctx: &mut Ctx<'_>, key: &[u8]) -> i64 {
    match ctx.store.deadline(key, ctx.now) {
        None => -2,
        Some(None) => -1,
        Some(Some(at)) => millis_left(at, ctx.now),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::commands::tests::Bench;

    #[test]
    fn strings() {
        let mut b = Bench::new();
        assert_eq!(b.run("GET k"), "$-1\r\n");
        assert_eq!(b.run("SET k hello"), "+OK\r\n");
        assert_eq!(b.run("GET k"), "$5\r\nhello\r\n");
        assert_eq!(b.run("SET k v NX"), "$-1\r\n");
        assert_eq!(b.run("SET n v XX"), "$-1\r\n");
        assert_eq!(b.run("SET k v2 XX GET"), "$5\r\nhello\r\n");
        assert_eq!(b.run("SET n v NX GET"), "$-1\r\n");
        assert_eq!(b.run("GET n"), "$1\r\nv\r\n");
        assert_eq!(b.run("SET k v NX XX"), "-ERR syntax error\r\n");
        assert_eq!(b.run("SET k v EX 1 PX 5"), "-ERR syntax error\r\n");
        assert_eq!(b.run("SET k v EX"), "-ERR syntax error\r\n");
        assert_eq!(b.run("SET k v FOO"), "-ERR syntax error\r\n");
        assert_eq!(b.run("SET k v EX x"), "-ERR value is not an integer or out of range\r\n");
        assert_eq!(b.run("SET k v EX 0"), "-ERR invalid expire time in 'set' command\r\n");
        assert_eq!(b.run("SET k v PX -5"), "-ERR invalid expire time in 'set' command\r\n");
        assert_eq!(b.run("SET k v EX 9223372036854775807"), "-ERR invalid expire time in 'set' command\r\n");
        assert_eq!(b.run("MSET a 1 b 2"), "+OK\r\n");
        assert_eq!(b.run("MSET a 1 b"), "-ERR wrong number of arguments for 'mset' command\r\n");
        assert_eq!(b.run("MGET a nope b"), "*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n");
        assert_eq!(b.run("EXISTS a a nope"), ":2\r\n");
        assert_eq!(b.run("DEL a nope b"), ":2\r\n");
        assert_eq!(b.run("DBSIZE"), ":2\r\n");
        assert_eq!(b.run("FLUSHALL"), "+OK\r\n");
        assert_eq!(b.run("DBSIZE"), ":0\r\n");
        assert_eq!(b.run("FLUSHALL LATER"), "-ERR syntax error\r\n");
    }

    #[test]
    fn more_strings() {
        let mut b = Bench::new();
        assert_eq!(b.run("SETNX k one"), ":1\r\n");
        assert_eq!(b.run("SETNX k two"), ":0\r\n");
        assert_eq!(b.run("GET k"), "$3\r\none\r\n");
        assert_eq!(b.run("APPEND k ,two"), ":7\r\n");
        assert_eq!(b.run("APPEND fresh abc"), ":3\r\n");
        assert_eq!(b.run("STRLEN k"), ":7\r\n");
        assert_eq!(b.run("STRLEN nope"), ":0\r\n");
        assert_eq!(b.run("GETDEL k"), "$7\r\none,two\r\n");
        assert_eq!(b.run("GETDEL k"), "$-1\r\n");
        assert_eq!(b.run("EXISTS k"), ":0\r\n");
        assert_eq!(b.run("SETEX t 100 v"), "+OK\r\n");
        assert_eq!(b.run("TTL t"), ":100\r\n");
        assert_eq!(b.run("APPEND t w"), ":2\r\n");
        assert_eq!(b.run("TTL t"), ":100\r\n", "APPEND keeps the deadline");
        assert_eq!(b.run("PSETEX p 1500 v"), "+OK\r\n");
        assert_eq!(b.run("PTTL p"), ":1500\r\n");
        assert_eq!(b.run("SETEX t 0 v"), "-ERR invalid expire time in 'setex' command\r\n");
        assert_eq!(b.run("PSETEX t x v"), "-ERR value is not an integer or out of range\r\n");
        assert_eq!(b.run("UNLINK t p nope"), ":2\r\n");
        b.server.max_bulk = 8;
        assert_eq!(
            b.run("APPEND fresh 123456"),
            "-ERR string exceeds maximum allowed size (8 bytes, --max-bulk)\r\n"
        );
        assert_eq!(b.run("GET fresh"), "$3\r\nabc\r\n");
    }

    #[test]
    fn counters() {
        let mut b = Bench::new();
        assert_eq!(b.run("INCR c"), ":1\r\n");
        assert_eq!(b.run("INCRBY c 41"), ":42\r\n");
        assert_eq!(b.run("DECR c"), ":41\r\n");
        assert_eq!(b.run("DECRBY c 50"), ":-9\r\n");
        assert_eq!(b.run("GET c"), "$2\r\n-9\r\n");
        assert_eq!(b.run("INCRBY c x"), "-ERR value is not an integer or out of range\r\n");
        assert_eq!(b.run("SET s abc"), "+OK\r\n");
        assert_eq!(b.run("INCR s"), "-ERR value is not an integer or out of range\r\n");
        assert_eq!(b.run("SET s 01"), "+OK\r\n");
        assert_eq!(b.run("INCR s"), "-ERR value is not an integer or out of range\r\n");
        assert_eq!(b.run("SET m 9223372036854775807"), "+OK\r\n");
        assert_eq!(b.run("INCR m"), "-ERR increment or decrement would overflow\r\n");
        assert_eq!(b.run("DECRBY x -9223372036854775808"), "-ERR decrement would overflow\r\n");
        assert_eq!(b.run("DECRBY x 9223372036854775807"), ":-9223372036854775807\r\n");
        assert_eq!(b.run("DECR x"), ":-9223372036854775808\r\n");
        assert_eq!(b.run("DECR x"), "-ERR increment or decrement would overflow\r\n");
    }

    #[test]
    fn time_to_live() {
        let mut b = Bench::new();
        assert_eq!(b.run("TTL k"), ":-2\r\n");
        assert_eq!(b.run("EXPIRE k 10"), ":0\r\n");
        assert_eq!(b.run("SET k v EX 100"), "+OK\r\n");
        assert_eq!(b.run("TTL k"), ":100\r\n");
        assert_eq!(b.run("PTTL k"), ":100000\r\n");
        assert_eq!(b.run("INCR k"), "-ERR value is not an integer or out of range\r\n");
        assert_eq!(b.run("SET k v KEEPTTL"), "+OK\r\n");
        assert_eq!(b.run("TTL k"), ":100\r\n");
        assert_eq!(b.run("EXPIRE k 50 GT"), ":0\r\n");
        assert_eq!(b.run("EXPIRE k 50 LT"), ":1\r\n");
        assert_eq!(b.run("EXPIRE k 60 NX"), ":0\r\n");
        assert_eq!(b.run("EXPIRE k 60 XX"), ":1\r\n");
        assert_eq!(b.run("TTL k"), ":60\r\n");
        assert_eq!(
            b.run("EXPIRE k 60 NX XX"),
            "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n"
        );
        assert_eq!(
            b.run("EXPIRE k 60 GT LT"),
            "-ERR GT and LT options at the same time are not compatible\r\n"
        );
        assert_eq!(b.run("EXPIRE k 60 YY"), "-ERR Unsupported option YY\r\n");
        assert_eq!(b.run("EXPIRE k x"), "-ERR value is not an integer or out of range\r\n");
        assert_eq!(b.run("EXPIRE k 9223372036854775807"), "-ERR invalid expire time in 'expire' command\r\n");
        assert_eq!(b.run("SET k v"), "+OK\r\n");
        assert_eq!(b.run("TTL k"), ":-1\r\n");
        assert_eq!(b.run("EXPIRE k 5 XX"), ":0\r\n");
        assert_eq!(b.run("EXPIRE k 5 GT"), ":0\r\n");
        assert_eq!(b.run("PEXPIRE k 1500"), ":1\r\n");
        assert_eq!(b.run("TTL k"), ":2\r\n");
        // Time passes: the key is gone for every command.
        b.now += Duration::from_millis(1500);
        assert_eq!(b.run("GET k"), "$-1\r\n");
        assert_eq!(b.run("TTL k"), ":-2\r\n");
        assert_eq!(b.run("SET j v"), "+OK\r\n");
        assert_eq!(b.run("EXPIRE j 0"), ":1\r\n");
        assert_eq!(b.run("EXISTS j"), ":0\r\n");
        // A counter keeps its deadline.
        assert_eq!(b.run("SET c 1 PX 1000"), "+OK\r\n");
        assert_eq!(b.run("INCR c"), ":2\r\n");
        assert_eq!(b.run("PTTL c"), ":1000\r\n");
    }
}
