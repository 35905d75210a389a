//! Publish/subscribe: `SUBSCRIBE`, `UNSUBSCRIBE`, `PSUBSCRIBE`, `PUNSUBSCRIBE`, `PUBLISH`,
//! `RESET`, on evloop's messages between connections.
//!
//! ```text
//!   PUBLISH ch msg ──► encode "*3 message ch msg" once (an Arc) ──► for each subscriber of ch:
//!        session.outbox ──(after the command, conn.rs)──► cx.send(subscriber, Arc) ──►
//!   subscriber's on_message: backlog + message > --pubsub-limit ? disconnect : write
//! ```
//!
//! The channel table is shared by the reactor's connections like the store (one thread, no
//! lock). A publication is encoded once and shared by every subscriber (an `Arc`), so a
//! fan-out to N clients copies a pointer N times and the bytes once per socket. A
//! subscriber that stops reading is disconnected once its unread backlog passes the limit
//! (Redis's `client-output-buffer-limit pubsub`), so it never slows the publisher or the
//! others: the publisher only queues messages, which each subscriber writes on its own.
//!
//! Patterns (`PSUBSCRIBE n*`, matched by `glob.rs`) are kept apart from channels: a
//! publication reaches its channel's subscribers by one lookup, then is matched against
//! each pattern in use, as a `*4 pmessage pattern channel msg` encoded once per pattern.
//! With no pattern subscribed, `PUBLISH` costs what it did before patterns existed.
//!
//! Commands queue their messages in the session's outbox rather than sending them,
//! because commands are plain functions without a connection (see `commands.rs`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use evloop::ConnId;

use super::commands::{Ctx, Session};
use super::glob;
use super::reply;
use super::resp::Argv;

/// A message ready for subscribers' sockets: `*3\r\n$7\r\nmessage\r\n$..ch..$..msg..`.
pub type Publication = Arc<[u8]>;

/// Who is subscribed to what.
#[derive(Debug, Default)]
pub struct Channels {
    subscribers: HashMap<Vec<u8>, BTreeSet<ConnId>>,
    /// Pattern → its subscribers; ordered, so deliveries go out in a stable order.
    patterns: BTreeMap<Vec<u8>, BTreeSet<ConnId>>,
}

impl Channels {
    /// Forgets `who`'s subscriptions (it closed).
    pub fn drop_subscriber(&mut self, who: ConnId, session: &Session) {
        for channel in &session.subscribed {
            leave(&mut self.subscribers, who, channel);
        }
        for pattern in &session.patterns {
            leave(&mut self.patterns, who, pattern);
        }
    }
}

/// Removes `who` from `key`'s set in either table, and the set once empty.
fn leave<M: SetTable>(table: &mut M, who: ConnId, key: &[u8]) {
    if let Some(set) = table.set_of(key) {
        set.remove(&who);
        if set.is_empty() {
            table.forget(key);
        }
    }
}

/// The two subscription tables (channels hashed, patterns ordered), to one `leave`.
trait SetTable {
    fn set_of(&mut self, key: &[u8]) -> Option<&mut BTreeSet<ConnId>>;
    fn forget(&mut self, key: &[u8]);
}

impl SetTable for HashMap<Vec<u8>, BTreeSet<ConnId>> {
    fn set_of(&mut self, key: &[u8]) -> Option<&mut BTreeSet<ConnId>> {
        self.get_mut(key)
    }
    fn forget(&mut self, key: &[u8]) {
        self.remove(key);
    }
}

impl SetTable for BTreeMap<Vec<u8>, BTreeSet<ConnId>> {
    fn set_of(&mut self, key: &[u8]) -> Option<&mut BTreeSet<ConnId>> {
        self.get_mut(key)
    }
    fn forget(&mut self, key: &[u8]) {
        self.remove(key);
    }
}

/// The commands a subscribed connection may still run (Redis's RESP2 rule).
pub fn allowed_while_subscribed(name: &str) -> bool {
    matches!(name, "subscribe" | "unsubscribe" | "psubscribe" | "punsubscribe" | "ping" | "quit" | "reset")
}

/// `SUBSCRIBE ch [ch ...]`: one confirmation per channel, with the count of subscriptions.
pub fn subscribe(ctx: &mut Ctx<'_>, argv: &Argv) {
    let Some(me) = ctx.session.conn else { return reply::error(ctx.out, "ERR no connection") };
    for i in 1..argv.len() {
        let channel = argv.get(i);
        ctx.channels.subscribers.entry(channel.to_vec()).or_default().insert(me);
        ctx.session.subscribed.insert(channel.to_vec());
        confirm(ctx.out, b"subscribe", Some(channel), ctx.session.subscriptions());
    }
}

/// `PSUBSCRIBE pattern [pattern ...]`: as `SUBSCRIBE`, for every channel the pattern matches.
pub fn psubscribe(ctx: &mut Ctx<'_>, argv: &Argv) {
    let Some(me) = ctx.session.conn else { return reply::error(ctx.out, "ERR no connection") };
    for i in 1..argv.len() {
        let pattern = argv.get(i);
        ctx.channels.patterns.entry(pattern.to_vec()).or_default().insert(me);
        ctx.session.patterns.insert(pattern.to_vec());
        confirm(ctx.out, b"psubscribe", Some(pattern), ctx.session.subscriptions());
    }
}

/// `UNSUBSCRIBE [ch ...]`: the channels named, or all of them.
pub fn unsubscribe(ctx: &mut Ctx<'_>, argv: &Argv) {
    let Some(me) = ctx.session.conn else { return reply::error(ctx.out, "ERR no connection") };
    let channels: Vec<Vec<u8>> = if argv.len() > 1 {
        (1..argv.len()).map(|i| argv.get(i).to_vec()).collect()
    } else {
        ctx.session.subscribed.iter().cloned().collect()
    };
    if channels.is_empty() {
        return confirm(ctx.out, b"unsubscribe", None, ctx.session.subscriptions());
    }
    for channel in channels {
        leave(&mut ctx.channels.subscribers, me, &channel);
        ctx.session.subscribed.remove(&channel);
        confirm(ctx.out, b"unsubscribe", Some(&channel), ctx.session.subscriptions());
    }
}

/// `PUNSUBSCRIBE [pattern ...]`: the patterns named, or all of them.
pub fn punsubscribe(ctx: &mut Ctx<'_>, argv: &Argv) {
    let Some(me) = ctx.session.conn else { return reply::error(ctx.out, "ERR no connection") };
    let patterns: Vec<Vec<u8>> = if argv.len() > 1 {
        (1..argv.len()).map(|i| argv.get(i).to_vec()).collect()
    } else {
        ctx.session.patterns.iter().cloned().collect()
    };
    if patterns.is_empty() {
        return confirm(ctx.out, b"punsubscribe", None, ctx.session.subscriptions());
    }
    for pattern in patterns {
        leave(&mut ctx.channels.patterns, me, &pattern);
        ctx.session.patterns.remove(&pattern);
        confirm(ctx.out, b"punsubscribe", Some(&pattern), ctx.session.subscriptions());
    }
}

/// `RESET`: the connection as new: out of subscribed mode, unnamed. `+RESET`.
pub fn reset(ctx: &mut Ctx<'_>, _argv: &Argv) {
    if let Some(me) = ctx.session.conn {
        ctx.channels.drop_subscriber(me, ctx.session);
    }
    ctx.session.subscribed.clear();
    ctx.session.patterns.clear();
    ctx.session.name = None;
    reply::simple(ctx.out, "RESET");
}

/// `PUBLISH ch msg`: the number of deliveries, the channel's subscribers first, then each
/// matching pattern's (a client subscribed both ways gets, and counts, both).
pub fn publish(ctx: &mut Ctx<'_>, argv: &Argv) {
    let (channel, message) = (argv.get(1), argv.get(2));
    let mut deliveries = 0;
    if let Some(subscribers) = ctx.channels.subscribers.get(channel) {
        let publication = encode(&[b"message", channel, message]);
        for &subscriber in subscribers {
            ctx.session.outbox.push((subscriber, Arc::clone(&publication)));
        }
        deliveries += subscribers.len();
    }
    for (pattern, subscribers) in &ctx.channels.patterns {
        if glob::matches(pattern, channel) {
            let publication = encode(&[b"pmessage", pattern, channel, message]);
            for &subscriber in subscribers {
                ctx.session.outbox.push((subscriber, Arc::clone(&publication)));
            }
            deliveries += subscribers.len();
        }
    }
    reply::int(ctx.out, deliveries as i64);
}

/// A push as one shared buffer: `*N` and the parts as bulk strings.
fn encode(parts: &[&[u8]]) -> Publication {
    let mut encoded = Vec::with_capacity(parts.iter().map(|p| p.len() + 16).sum::<usize>() + 8);
    reply::array(&mut encoded, parts.len());
    for part in parts {
        reply::bulk(&mut encoded, part);
    }
    encoded.into()
}

/// `*3 kind channel count`, the reply to (un)subscribing (a null channel when there was none).
fn confirm(out: &mut Vec<u8>, kind: &[u8], channel: Option<&[u8]>, count: usize) {
    reply::array(out, 3);
    reply::bulk(out, kind);
    match channel {
        Some(channel) => reply::bulk(out, channel),
        None => reply::nil(out),
    }
    reply::int(out, count as i64);
}
