//! The connection and server commands: `PING`, `ECHO`, `QUIT`, `SELECT`, `CLIENT`,
//! `HELLO`, `CONFIG GET` and `INFO` — what clients send to set up a connection or to find
//! out what they are talking to, before any data command — and `SHUTDOWN`.
//!
//! ```text
//!  redis-cli / redis-benchmark start-up ──► HELLO? CONFIG GET save, appendonly; COMMAND DOCS
//!  client libraries ──────────────────────► CLIENT SETNAME / SETINFO, SELECT 0, PING
//! ```
//!
//! This server speaks RESP2 only. `HELLO 3` asks for RESP3, and the answer a RESP2-only
//! server gives is Redis's own for an unknown version, `-NOPROTO`; clients then stay on
//! RESP2. There is one database, number 0, no persistence and no memory limit, and
//! `CONFIG GET` says so in the values clients look for.

use super::commands::{unknown_subcommand, wrong_arity, Ctx};
use super::reply;
use super::resp::{parse_int, Argv};

/// The Redis version whose semantics this server follows, for clients that gate features
/// on it (`HELLO`, `INFO`).
pub const REDIS_VERSION: &str = "7.0.0";

pub fn ping(ctx: &mut Ctx<'_>, argv: &Argv) {
    if argv.len() > 2 {
        return wrong_arity(ctx.out, "ping");
    }
    let message = if argv.len() == 2 { argv.get(1) } else { b"" };
    if ctx.session.is_subscribed() {
        // A subscriber's PING is answered as a push, as Redis does in subscribed mode:
        // `*2 $4 pong $N message`, so a client reading pushes can tell it from a reply.
        reply::array(ctx.out, 2);
        reply::bulk(ctx.out, b"pong");
        reply::bulk(ctx.out, message);
    } else if argv.len() == 1 {
        reply::simple(ctx.out, "PONG");
    } else {
        reply::bulk(ctx.out, message);
    }
}

pub fn echo(ctx: &mut Ctx<'_>, argv: &Argv) {
    reply::bulk(ctx.out, argv.get(1));
}

/// `+OK`, then the connection closes (once the reply is out).
pub fn quit(ctx: &mut Ctx<'_>, _argv: &Argv) {
    reply::ok(ctx.out);
    ctx.session.close_after_reply = true;
}

/// `SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]`: stops the server as SIGTERM does. There
/// is nothing to save, so the save options change nothing. As in Redis, success sends no
/// reply: the client sees the connection close, which `redis-cli shutdown` expects.
pub fn shutdown(ctx: &mut Ctx<'_>, argv: &Argv) {
    let options = (1..argv.len()).map(|i| argv.get(i).to_ascii_lowercase());
    let mut abort = false;
    for option in options {
        match option.as_slice() {
            b"nosave" | b"save" | b"now" | b"force" => {}
            b"abort" => abort = true,
            _ => return reply::error(ctx.out, "ERR syntax error"),
        }
    }
    if abort {
        // Nothing is ever in progress to abort: a shutdown here is immediate.
        return reply::error(ctx.out, "ERR No shutdown in progress.");
    }
    log::warn!("SHUTDOWN from client {}: shutting down", ctx.session.id);
    ctx.session.shutdown_requested = true;
}

/// Only database 0 exists.
pub fn select(ctx: &mut Ctx<'_>, argv: &Argv) {
    match parse_int(argv.get(1)) {
        Some(0) => reply::ok(ctx.out),
        Some(_) => reply::error(ctx.out, "ERR DB index is out of range"),
        None => reply::error(ctx.out, "ERR value is not an integer or out of range"),
    }
}

/// `CLIENT SETNAME name`, `GETNAME`, `ID`, `SETINFO attr value`.
pub fn client(ctx: &mut Ctx<'_>, argv: &Argv) {
    let sub = argv.get(1).to_ascii_lowercase();
    match (sub.as_slice(), argv.len()) {
        (b"setname", 3) => match set_name(ctx, argv.get(2)) {
            Ok(()) => reply::ok(ctx.out),
            Err(message) => reply::error(ctx.out, message),
        },
        (b"getname", 2) => reply::bulk_or_nil(ctx.out, ctx.session.name.as_deref()),
        (b"id", 2) => reply::int(ctx.out, ctx.session.id as i64),
        // Client libraries announce themselves (`lib-name`, `lib-ver`); nothing to keep.
        (b"setinfo", 4) => reply::ok(ctx.out),
        (b"setname" | b"getname" | b"id" | b"setinfo", _) => {
            let sub = String::from_utf8_lossy(&sub);
            reply::error(ctx.out, &format!("ERR wrong number of arguments for 'client|{sub}' command"));
        }
        _ => unknown_subcommand(ctx.out, "CLIENT", argv.get(1)),
    }
}

/// A name is printable ASCII without spaces (it appears in `CLIENT LIST` lines); the empty
/// name removes it.
fn set_name(ctx: &mut Ctx<'_>, name: &[u8]) -> Result<(), &'static str> {
    if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        return Err("ERR Client names cannot contain spaces, newlines or special characters.");
    }
    ctx.session.name = (!name.is_empty()).then(|| name.to_vec());
    Ok(())
}

/// `HELLO [protover [AUTH user pass] [SETNAME name]]`: the connection's facts as a map
/// (flattened into an array of pairs in RESP2), or `-NOPROTO` for anything but 2.
pub fn hello(ctx: &mut Ctx<'_>, argv: &Argv) {
    if argv.len() >= 2 {
        match parse_int(argv.get(1)) {
            Some(2) => {}
            // Redis's answer to a version it does not speak; RESP3 is one here.
            Some(_) => return reply::error(ctx.out, "NOPROTO unsupported protocol version"),
            None => return reply::error(ctx.out, "ERR Protocol version is not an integer or out of range"),
        }
    }
    let mut i = 2;
    while i < argv.len() {
        let option = argv.get(i).to_ascii_lowercase();
        let left = argv.len() - i - 1;
        if option == b"setname" && left >= 1 {
            if let Err(message) = set_name(ctx, argv.get(i + 1)) {
                return reply::error(ctx.out, message);
            }
            i += 2;
        } else if option == b"auth" && left >= 2 {
            // No users or passwords here, so no credentials can be right.
            return reply::error(ctx.out, "WRONGPASS invalid username-password pair or user is disabled.");
        } else {
            let option = String::from_utf8_lossy(argv.get(i));
            return reply::error(ctx.out, &format!("ERR Syntax error in HELLO option '{option}'"));
        }
    }
    let out = &mut *ctx.out;
    reply::array(out, 14);
    for (field, value) in [("server", "redis"), ("version", REDIS_VERSION)] {
        reply::bulk(out, field.as_bytes());
        reply::bulk(out, value.as_bytes());
    }
    reply::bulk(out, b"proto");
    reply::int(out, 2);
    reply::bulk(out, b"id");
    reply::int(out, ctx.session.id as i64);
    for (field, value) in [("mode", "standalone"), ("role", "master")] {
        reply::bulk(out, field.as_bytes());
        reply::bulk(out, value.as_bytes());
    }
    reply::bulk(out, b"modules");
    reply::array(out, 0);
}

/// `CONFIG GET pattern [pattern ...]`: the parameters clients ask about, matched like
/// Redis (glob, case-insensitive). Other `CONFIG` subcommands are not supported.
pub fn config(ctx: &mut Ctx<'_>, argv: &Argv) {
    if !argv.get(1).eq_ignore_ascii_case(b"get") {
        return unknown_subcommand(ctx.out, "CONFIG", argv.get(1));
    }
    if argv.len() < 3 {
        return wrong_arity(ctx.out, "config|get");
    }
    let server = &*ctx.server;
    let params: [(&str, String); 9] = [
        // No snapshots, no append-only file: redis-benchmark reads these two at start-up.
        ("save", String::new()),
        ("appendonly", "no".into()),
        ("databases", "1".into()),
        ("maxmemory", "0".into()),
        ("maxclients", server.max_clients.to_string()),
        ("port", server.port.to_string()),
        ("proto-max-bulk-len", server.max_bulk.to_string()),
        ("client-query-buffer-limit", server.max_query.to_string()),
        ("timeout", "0".into()),
    ];
    let matched: Vec<&(&str, String)> =
        params.iter().filter(|(name, _)| argv.iter_from(2).any(|p| glob(p, name.as_bytes()))).collect();
    reply::array(ctx.out, matched.len() * 2);
    for (name, value) in matched {
        reply::bulk(ctx.out, name.as_bytes());
        reply::bulk(ctx.out, value.as_bytes());
    }
}

/// `INFO [section ...]`: a few lines of the `server`, `clients`, `stats` and `keyspace`
/// sections (`redis-cli --stat` and monitoring tools read these).
pub fn info(ctx: &mut Ctx<'_>, argv: &Argv) {
    let wanted = |section: &str| {
        argv.len() == 1
            || argv.iter_from(1).any(|s| {
                s.eq_ignore_ascii_case(section.as_bytes())
                    || s.eq_ignore_ascii_case(b"all")
                    || s.eq_ignore_ascii_case(b"default")
                    || s.eq_ignore_ascii_case(b"everything")
            })
    };
    let server = &*ctx.server;
    let mut text = String::new();
    if wanted("server") {
        text += &format!(
            "# Server\r\nredis_version:{REDIS_VERSION}\r\nredis_mode:standalone\r\nmultiplexing_api:epoll (evloop)\r\n\
             process_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{}\r\n\r\n",
            std::process::id(),
            server.port,
            ctx.now.saturating_duration_since(server.started).as_secs()
        );
    }
    if wanted("clients") {
        text += &format!(
            "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\n\r\n",
            server.clients, server.max_clients
        );
    }
    if wanted("stats") {
        text += &format!(
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\nexpired_keys:{}\r\n\r\n",
            server.accepted, server.commands, ctx.store.expired
        );
    }
    if wanted("keyspace") {
        text += "# Keyspace\r\n";
        if !ctx.store.is_empty() {
            text +=
                &format!("db0:keys={},expires={},avg_ttl=0\r\n", ctx.store.len(), ctx.store.volatile_len());
        }
    }
    reply::bulk(ctx.out, text.as_bytes());
}

/// Glob matching as Redis's `stringmatchlen` without character classes: `*` any run, `?`
/// any one byte, `\x` a literal x; ASCII letters match either case.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|skip| glob(rest, &text[skip..])),
        Some((b'?', rest)) => !text.is_empty() && glob(rest, &text[1..]),
        Some((b'\\', rest)) if !rest.is_empty() => {
            text.first().is_some_and(|t| t.eq_ignore_ascii_case(&rest[0])) && glob(&rest[1..], &text[1..])
        }
        Some((p, rest)) => text.first().is_some_and(|t| t.eq_ignore_ascii_case(p)) && glob(rest, &text[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::super::commands::tests::Bench;
    use super::glob;

    #[test]
    fn connection_commands() {
        let mut b = Bench::new();
        assert_eq!(b.run("PING"), "+PONG\r\n");
        assert_eq!(b.run("ping hi"), "$2\r\nhi\r\n");
        assert_eq!(b.run("PING a b"), "-ERR wrong number of arguments for 'ping' command\r\n");
        assert_eq!(b.run("ECHO hey"), "$3\r\nhey\r\n");
        assert_eq!(b.run("SELECT 0"), "+OK\r\n");
        assert_eq!(b.run("SELECT 1"), "-ERR DB index is out of range\r\n");
        assert_eq!(b.run("CLIENT GETNAME"), "$-1\r\n");
        assert_eq!(b.run("CLIENT SETNAME bench-1"), "+OK\r\n");
        assert_eq!(b.run("CLIENT GETNAME"), "$7\r\nbench-1\r\n");
        assert!(b.run("CLIENT SETNAME a\tb").starts_with("-ERR Client names cannot contain spaces"));
        assert_eq!(b.run("CLIENT ID"), ":1\r\n");
        assert_eq!(b.run("CLIENT SETINFO lib-name x"), "+OK\r\n");
        assert_eq!(
            b.run("CLIENT SETNAME"),
            "-ERR wrong number of arguments for 'client|setname' command\r\n"
        );
        assert_eq!(b.run("CLIENT KILL x"), "-ERR unknown subcommand 'KILL'. Try CLIENT HELP.\r\n");
        assert!(!b.session.close_after_reply);
        assert_eq!(b.run("QUIT"), "+OK\r\n");
        assert!(b.session.close_after_reply);
    }

    #[test]
    fn hello_speaks_resp2_only() {
        let mut b = Bench::new();
        assert_eq!(b.run("HELLO 3"), "-NOPROTO unsupported protocol version\r\n");
        assert_eq!(b.run("HELLO x"), "-ERR Protocol version is not an integer or out of range\r\n");
        let hello = b.run("HELLO 2 SETNAME me");
        assert!(hello.starts_with("*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n"), "{hello}");
        assert!(hello.contains("$5\r\nproto\r\n:2\r\n"));
        assert_eq!(b.run("CLIENT GETNAME"), "$2\r\nme\r\n");
        assert!(b.run("HELLO").starts_with("*14\r\n"));
        assert!(b.run("HELLO 2 AUTH u p").starts_with("-WRONGPASS"));
        assert_eq!(b.run("HELLO 2 FOO"), "-ERR Syntax error in HELLO option 'FOO'\r\n");
    }

    #[test]
    fn config_get_and_info() {
        let mut b = Bench::new();
        assert_eq!(b.run("CONFIG GET save"), "*2\r\n$4\r\nsave\r\n$0\r\n\r\n");
        assert_eq!(b.run("CONFIG GET APPENDONLY"), "*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n");
        assert_eq!(b.run("CONFIG GET nothing"), "*0\r\n");
        assert!(b.run("CONFIG GET *").starts_with("*18\r\n"));
        assert_eq!(
            b.run("CONFIG GET max*s save"),
            "*4\r\n$4\r\nsave\r\n$0\r\n\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n"
        );
        assert_eq!(b.run("CONFIG SET save x"), "-ERR unknown subcommand 'SET'. Try CONFIG HELP.\r\n");
        assert_eq!(b.run("CONFIG GET"), "-ERR wrong number of arguments for 'config|get' command\r\n");
        b.run("SET k v");
        let info = b.run("INFO keyspace");
        assert!(info.contains("db0:keys=1,expires=0"), "{info}");
        assert!(!info.contains("# Server"));
        assert!(b.run("INFO").contains("redis_version:"));
    }

    #[test]
    fn globs() {
        assert!(glob(b"*", b""));
        assert!(glob(b"s?ve", b"SAVE"));
        assert!(glob(b"*only", b"appendonly"));
        assert!(glob(b"a\\*", b"a*"));
        assert!(!glob(b"a\\*", b"ab"));
        assert!(!glob(b"save?", b"save"));
    }
}
