//! The command table: every command's name, arity and flags, and the function that runs
//! it; dispatch with Redis's error replies for unknown commands and wrong argument counts.
//!
//! ```text
//!  Argv ["SET","k","v"] ──lookup("set")──► Command { arity: -3, run: keys::set }
//!                        ──arity check───► run(&mut Ctx, &Argv) ──► replies appended to ctx.out
//! ```
//!
//! A command sees the world through [`Ctx`]: the shared store, its own connection's
//! [`Session`], the server's settings and counters, the loop's clock, and the output
//! buffer. Commands never touch the socket or the reactor, so all of them are plain
//! functions, unit-tested below without a connection. A command that needs the connection
//! to do something afterwards says so in the session (`QUIT` sets `close_after_reply`);
//! that is also where subscribing will say "enter subscriber mode".
//!
//! The data commands are in `keys.rs`, the connection and server commands in `server.rs`;
//! `COMMAND`, which describes this table, is here.

use std::time::Instant;

use super::keys;
use super::keyspace;
use super::pubsub::{self, Channels, Publication};
use super::reply;
use super::resp::Argv;
use super::server;
use super::store::Store;

/// What a command may touch.
pub struct Ctx<'a> {
    pub store: &'a mut Store,
    /// Who is subscribed to which channel (`pubsub.rs`).
    pub channels: &'a mut Channels,
    pub session: &'a mut Session,
    pub server: &'a mut ServerInfo,
    /// The loop's clock for this turn: deadlines are computed and checked against it.
    pub now: Instant,
    pub out: &'a mut Vec<u8>,
}

/// One connection's state that commands read or change.
#[derive(Debug, Default)]
pub struct Session {
    /// `CLIENT ID`: unique for the life of the process.
    pub id: u64,
    /// `CLIENT SETNAME`.
    pub name: Option<Vec<u8>>,
    /// Set by `QUIT`: the connection closes once this reply is sent.
    pub close_after_reply: bool,
    /// Set by `SHUTDOWN`: the connection asks the reactor to shut down (`conn.rs`).
    pub shutdown_requested: bool,
    /// The connection's evloop id, for `SUBSCRIBE` (set when it opens).
    pub conn: Option<evloop::ConnId>,
    /// Channels subscribed to: while any (or any pattern), only the subscriber commands run.
    pub subscribed: std::collections::BTreeSet<Vec<u8>>,
    /// Patterns subscribed to (`PSUBSCRIBE`).
    pub patterns: std::collections::BTreeSet<Vec<u8>>,
    /// Messages `PUBLISH` queued for subscribers, sent by the connection after the command.
    pub outbox: Vec<(evloop::ConnId, Publication)>,
}

impl Session {
    /// Channels and patterns subscribed to: the count each (un)subscribe confirmation ends with.
    pub fn subscriptions(&self) -> usize {
        self.subscribed.len() + self.patterns.len()
    }

    /// In subscribed mode: only the subscriber commands run, PING answers as a push.
    pub fn is_subscribed(&self) -> bool {
        self.subscriptions() > 0
    }
}

/// The server's settings and counters, shared by every connection of the reactor.
#[derive(Debug)]
pub struct ServerInfo {
    pub port: u16,
    pub max_bulk: usize,
    pub max_query: usize,
    /// Largest reply one command may build (`--max-reply`): checked while it is built, so a
    /// command naming a large value many times (`MGET`) cannot grow memory without bound.
    pub max_reply: usize,
    pub max_clients: usize,
    pub started: Instant,
    /// Connections open now.
    pub clients: usize,
    /// Connections accepted so far: the source of `CLIENT ID`s.
    pub accepted: u64,
    /// Commands run so far.
    pub commands: u64,
}

/// A row of the table.
pub struct Command {
    /// Lower case, as `COMMAND` reports it.
    pub name: &'static str,
    /// Redis's convention: `n > 0` exactly n arguments (the name included), `-n` at least n.
    pub arity: i32,
    /// As `COMMAND` reports them; clients use `readonly`/`write` to route, `fast` for stats.
    pub flags: &'static [&'static str],
    /// Position of the first key, the last key (`-1`: the last argument), and the step
    /// between keys (`MSET k v k v`: 2), for clients that find keys without parsing.
    pub keys: (i32, i32, i32),
    pub run: fn(&mut Ctx<'_>, &Argv),
}

const RW: &[&str] = &["write", "denyoom"];
const RW_FAST: &[&str] = &["write", "denyoom", "fast"];
const RO_FAST: &[&str] = &["readonly", "fast"];
const FAST: &[&str] = &["fast"];
const ADMIN: &[&str] = &["admin", "noscript", "loading", "stale"];
const CONN: &[&str] = &["noscript", "loading", "stale", "fast"];
/// Entering and leaving subscriber mode; `publish` differs (`fast`, and scripts may call it).
const PUBSUB: &[&str] = &["pubsub", "noscript", "loading", "stale"];
const PUBSUB_FAST: &[&str] = &["pubsub", "loading", "stale", "fast"];

/// Every command, the busiest first (the lookup is a scan: with two dozen names that
/// differ in length or first letters it costs less than hashing the name would).
pub static TABLE: &[Command] = &[
    Command { name: "get", arity: 2, flags: RO_FAST, keys: (1, 1, 1), run: keys::get },
    Command { name: "set", arity: -3, flags: RW, keys: (1, 1, 1), run: keys::set },
    Command { name: "ping", arity: -1, flags: FAST, keys: (0, 0, 0), run: server::ping },
    Command { name: "incr", arity: 2, flags: RW_FAST, keys: (1, 1, 1), run: keys::incr },
    Command { name: "mset", arity: -3, flags: RW, keys: (1, -1, 2), run: keys::mset },
    Command { name: "mget", arity: -2, flags: RO_FAST, keys: (1, -1, 1), run: keys::mget },
    Command { name: "del", arity: -2, flags: &["write"], keys: (1, -1, 1), run: keys::del },
    Command { name: "exists", arity: -2, flags: RO_FAST, keys: (1, -1, 1), run: keys::exists },
    Command { name: "decr", arity: 2, flags: RW_FAST, keys: (1, 1, 1), run: keys::decr },
    Command { name: "incrby", arity: 3, flags: RW_FAST, keys: (1, 1, 1), run: keys::incrby },
    Command { name: "decrby", arity: 3, flags: RW_FAST, keys: (1, 1, 1), run: keys::decrby },
    Command { name: "expire", arity: -3, flags: &["write", "fast"], keys: (1, 1, 1), run: keys::expire },
    Command { name: "pexpire", arity: -3, flags: &["write", "fast"], keys: (1, 1, 1), run: keys::pexpire },
    Command { name: "ttl", arity: 2, flags: RO_FAST, keys: (1, 1, 1), run: keys::ttl },
    Command { name: "pttl", arity: 2, flags: RO_FAST, keys: (1, 1, 1), run: keys::pttl },
    Command { name: "dbsize", arity: 1, flags: RO_FAST, keys: (0, 0, 0), run: keys::dbsize },
    Command { name: "flushall", arity: -1, flags: &["write"], keys: (0, 0, 0), run: keys::flushall },
    Command { name: "echo", arity: 2, flags: FAST, keys: (0, 0, 0), run: server::echo },
    Command { name: "publish", arity: 3, flags: PUBSUB_FAST, keys: (0, 0, 0), run: pubsub::publish },
    Command { name: "subscribe", arity: -2, flags: PUBSUB, keys: (0, 0, 0), run: pubsub::subscribe },
    Command { name: "unsubscribe", arity: -1, flags: PUBSUB, keys: (0, 0, 0), run: pubsub::unsubscribe },
    Command { name: "psubscribe", arity: -2, flags: PUBSUB, keys: (0, 0, 0), run: pubsub::psubscribe },
    Command { name: "punsubscribe", arity: -1, flags: PUBSUB, keys: (0, 0, 0), run: pubsub::punsubscribe },
    Command { name: "reset", arity: 1, flags: CONN, keys: (0, 0, 0), run: pubsub::reset },
    Command { name: "quit", arity: -1, flags: CONN, keys: (0, 0, 0), run: server::quit },
    Command { name: "select", arity: 2, flags: CONN, keys: (0, 0, 0), run: server::select },
    Command { name: "client", arity: -2, flags: CONN, keys: (0, 0, 0), run: server::client },
    Command { name: "hello", arity: -1, flags: CONN, keys: (0, 0, 0), run: server::hello },
    Command { name: "config", arity: -2, flags: ADMIN, keys: (0, 0, 0), run: server::config },
    Command { name: "info", arity: -1, flags: &["loading", "stale"], keys: (0, 0, 0), run: server::info },
    Command { name: "command", arity: -1, flags: &["loading", "stale"], keys: (0, 0, 0), run: command },
    Command { name: "shutdown", arity: -1, flags: ADMIN, keys: (0, 0, 0), run: server::shutdown },
    Command { name: "setnx", arity: 3, flags: RW_FAST, keys: (1, 1, 1), run: keys::setnx },
    Command { name: "setex", arity: 4, flags: RW, keys: (1, 1, 1), run: keys::setex },
    Command { name: "psetex", arity: 4, flags: RW, keys: (1, 1, 1), run: keys::psetex },
    Command { name: "getdel", arity: 2, flags: &["write", "fast"], keys: (1, 1, 1), run: keys::getdel },
    Command { name: "append", arity: 3, flags: RW_FAST, keys: (1, 1, 1), run: keys::append },
    Command { name: "strlen", arity: 2, flags: RO_FAST, keys: (1, 1, 1), run: keys::strlen },
    Command { name: "unlink", arity: -2, flags: &["write", "fast"], keys: (1, -1, 1), run: keys::del },
    Command { name: "persist", arity: 2, flags: &["write", "fast"], keys: (1, 1, 1), run: keyspace::persist },
    Command { name: "type", arity: 2, flags: RO_FAST, keys: (1, 1, 1), run: keyspace::kind },
    Command { name: "keys", arity: 2, flags: &["readonly"], keys: (0, 0, 0), run: keyspace::keys },
    Command { name: "scan", arity: -2, flags: &["readonly"], keys: (0, 0, 0), run: keyspace::scan },
];

/// The row for `name`, in any letter case.
pub fn lookup(name: &[u8]) -> Option<&'static Command> {
    TABLE.iter().find(|command| command.name.as_bytes().eq_ignore_ascii_case(name))
}

/// Runs one command (`argv` is not empty), replying to errors the way Redis does.
pub fn execute(ctx: &mut Ctx<'_>, argv: &Argv) {
    ctx.server.commands += 1;
    let Some(command) = lookup(argv.get(0)) else {
        return unknown_command(ctx.out, argv);
    };
    if ctx.session.is_subscribed() && !pubsub::allowed_while_subscribed(command.name) {
        let message = format!(
            "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            command.name
        );
        return reply::error(ctx.out, &message);
    }
    let n = argv.len() as i32;
    if (command.arity > 0 && n != command.arity) || n < command.arity.abs() {
        return wrong_arity(ctx.out, command.name);
    }
    (command.run)(ctx, argv);
}

pub fn wrong_arity(out: &mut Vec<u8>, name: &str) {
    reply::error(out, &format!("ERR wrong number of arguments for '{name}' command"));
}

/// `-ERR unknown command 'x', with args beginning with: 'a' 'b' ` (the arguments quoted
/// up to 128 characters, as Redis 7 writes it).
fn unknown_command(out: &mut Vec<u8>, argv: &Argv) {
    let mut args = String::new();
    for arg in argv.iter_from(1) {
        if args.len() >= 128 {
            break;
        }
        let text = String::from_utf8_lossy(arg);
        let room = 128 - args.len();
        args.push('\'');
        args.extend(text.chars().take(room));
        args.push_str("' ");
    }
    let name: String = String::from_utf8_lossy(argv.get(0)).chars().take(128).collect();
    reply::error(out, &format!("ERR unknown command '{name}', with args beginning with: {args}"));
}

/// `-ERR unknown subcommand 'x'. Try NAME HELP.`
pub fn unknown_subcommand(out: &mut Vec<u8>, command: &str, sub: &[u8]) {
    let sub: String = String::from_utf8_lossy(sub).chars().take(128).collect();
    reply::error(out, &format!("ERR unknown subcommand '{sub}'. Try {command} HELP."));
}

/// `COMMAND`, `COMMAND COUNT`, `COMMAND INFO name...`, `COMMAND DOCS [name...]`: the table
/// itself, for clients that discover commands (`redis-cli` asks at start-up).
fn command(ctx: &mut Ctx<'_>, argv: &Argv) {
    let out = &mut *ctx.out;
    if argv.len() == 1 {
        reply::array(out, TABLE.len());
        TABLE.iter().for_each(|command| describe(out, command));
        return;
    }
    let sub = argv.get(1);
    if sub.eq_ignore_ascii_case(b"count") && argv.len() == 2 {
        reply::int(out, TABLE.len() as i64);
    } else if sub.eq_ignore_ascii_case(b"info") {
        let names: Vec<&[u8]> = argv.iter_from(2).collect();
        if names.is_empty() {
            reply::array(out, TABLE.len());
            TABLE.iter().for_each(|command| describe(out, command));
            return;
        }
        reply::array(out, names.len());
        for name in names {
            match lookup(name) {
                Some(command) => describe(out, command),
                None => reply::nil(out),
            }
        }
    } else if sub.eq_ignore_ascii_case(b"docs") {
        // A map (flattened into pairs in RESP2) of name to documentation. Clients use it
        // for help text only; an empty one says "no documentation", which they accept.
        reply::array(out, 0);
    } else {
        unknown_subcommand(out, "COMMAND", sub);
    }
}

/// One command's entry as Redis 7 reports it: name, arity, flags, first key, last key,
/// step, ACL categories, tips, key specifications, subcommands (the last four empty).
fn describe(out: &mut Vec<u8>, command: &Command) {
    reply::array(out, 10);
    reply::bulk(out, command.name.as_bytes());
    reply::int(out, i64::from(command.arity));
    reply::array(out, command.flags.len());
    command.flags.iter().for_each(|flag| reply::simple(out, flag));
    let (first, last, step) = command.keys;
    reply::int(out, i64::from(first));
    reply::int(out, i64::from(last));
    reply::int(out, i64::from(step));
    for _ in 0..4 {
        reply::array(out, 0);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A server, a store and a session, and a way to run commands against them.
    pub struct Bench {
        pub store: Store,
        pub session: Session,
        pub server: ServerInfo,
        pub now: Instant,
    }

    impl Bench {
        pub fn new() -> Bench {
            let server = ServerInfo {
                port: 6380,
                max_bulk: 1 << 20,
                max_query: 4 << 20,
                max_reply: 16 << 20,
                max_clients: 10_000,
                started: Instant::now(),
                clients: 1,
                accepted: 1,
                commands: 0,
            };
            let session = Session { id: 1, ..Session::default() };
            Bench { store: Store::new(), session, server, now: Instant::now() }
        }

        /// Runs `line` (split on spaces) and returns the reply as text.
        pub fn run(&mut self, line: &str) -> String {
            let mut argv = Argv::default();
            line.split(' ').for_each(|arg| argv.push(arg.as_bytes()));
            let mut out = Vec::new();
            let mut channels = Channels::default();
            let mut ctx = Ctx {
                store: &mut self.store,
                channels: &mut channels,
                session: &mut self.session,
                server: &mut self.server,
                now: self.now,
                out: &mut out,
            };
            execute(&mut ctx, &argv);
            String::from_utf8(out).unwrap()
        }
    }

    #[test]
    fn dispatch_errors() {
        let mut b = Bench::new();
        assert_eq!(b.run("GeT"), "-ERR wrong number of arguments for 'get' command\r\n");
        assert_eq!(b.run("get a b"), "-ERR wrong number of arguments for 'get' command\r\n");
        assert_eq!(b.run("set k"), "-ERR wrong number of arguments for 'set' command\r\n");
        assert_eq!(b.run("nope a b"), "-ERR unknown command 'nope', with args beginning with: 'a' 'b' \r\n");
        assert_eq!(b.run("nope"), "-ERR unknown command 'nope', with args beginning with: \r\n");
        let long = format!("nope {}", "x".repeat(300));
        assert_eq!(
            b.run(&long).len(),
            "-ERR unknown command 'nope', with args beginning with: ''\r\n".len() + 129
        );
    }

    #[test]
    fn command_describes_the_table() {
        let mut b = Bench::new();
        assert_eq!(b.run("COMMAND COUNT"), format!(":{}\r\n", TABLE.len()));
        assert_eq!(
            b.run("command info get nope"),
            "*2\r\n*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n*0\r\n*0\r\n*0\r\n*0\r\n$-1\r\n"
        );
        assert!(b.run("COMMAND").starts_with(&format!("*{}\r\n*10\r\n$3\r\nget\r\n", TABLE.len())));
        assert_eq!(b.run("COMMAND DOCS"), "*0\r\n");
        assert_eq!(b.run("COMMAND what"), "-ERR unknown subcommand 'what'. Try COMMAND HELP.\r\n");
        // Every name is lower case and unique, so lookup finds each one.
        for command in TABLE {
            assert_eq!(command.name, command.name.to_lowercase());
            assert!(std::ptr::eq(lookup(command.name.to_uppercase().as_bytes()).unwrap(), command));
        }
    }
}
