//! Publish/subscribe: `SUBSCRIBE`, `UNSUBSCRIBE`, `PUBLISH`, on evloop's messages between
//! connections.
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
//! Commands queue their messages in the session's outbox rather than sending them,
//! because commands are plain functions without a connection (see `commands.rs`).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use evloop::ConnId;

use super::commands::Ctx;
use super::reply;
use super::resp::Argv;

/// A message ready for subscribers' sockets: `*3\r\n$7\r\nmessage\r\n$..ch..$..msg..`.
pub type Publication = Arc<[u8]>;

/// Who is subscribed to what.
#[derive(Debug, Default)]
pub struct Channels {
    subscribers: HashMap<Vec<u8>, BTreeSet<ConnId>>,
}

impl Channels {
    /// Forgets `who`'s subscriptions (it closed).
    pub fn drop_subscriber(&mut self, who: ConnId, channels: &BTreeSet<Vec<u8>>) {
        for channel in channels {
            self.leave(who, channel);
        }
    }

    fn leave(&mut self, who: ConnId, channel: &[u8]) {
        if let Some(set) = self.subscribers.get_mut(channel) {
            set.remove(&who);
            if set.is_empty() {
                self.subscribers.remove(channel);
            }
        }
    }
}

/// The commands a subscribed connection may still run (Redis's RESP2 rule).
pub fn allowed_while_subscribed(name: &str) -> bool {
    matches!(name, "subscribe" | "unsubscribe" | "ping" | "quit")
}

/// `SUBSCRIBE ch [ch ...]`: one confirmation per channel, with the count of subscriptions.
pub fn subscribe(ctx: &mut Ctx<'_>, argv: &Argv) {
    let Some(me) = ctx.session.conn else { return reply::error(ctx.out, "ERR no connection") };
    for i in 1..argv.len() {
        let channel = argv.get(i);
        ctx.channels.subscribers.entry(channel.to_vec()).or_default().insert(me);
        ctx.session.subscribed.insert(channel.to_vec());
        confirm(ctx.out, b"subscribe", Some(channel), ctx.session.subscribed.len());
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
        return confirm(ctx.out, b"unsubscribe", None, 0);
    }
    for channel in channels {
        ctx.channels.leave(me, &channel);
        ctx.session.subscribed.remove(&channel);
        confirm(ctx.out, b"unsubscribe", Some(&channel), ctx.session.subscribed.len());
    }
}

/// `PUBLISH ch msg`: the number of subscribers it is sent to.
pub fn publish(ctx: &mut Ctx<'_>, argv: &Argv) {
    let (channel, message) = (argv.get(1), argv.get(2));
    let Some(subscribers) = ctx.channels.subscribers.get(channel) else { return reply::int(ctx.out, 0) };
    let mut encoded = Vec::with_capacity(channel.len() + message.len() + 32);
    reply::array(&mut encoded, 3);
    reply::bulk(&mut encoded, b"message");
    reply::bulk(&mut encoded, channel);
    reply::bulk(&mut encoded, message);
    let publication: Publication = encoded.into();
    for &subscriber in subscribers {
        ctx.session.outbox.push((subscriber, Arc::clone(&publication)));
    }
    reply::int(ctx.out, subscribers.len() as i64);
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
