//! Forwarding: a connection whose input is written straight to another connection on the
//! same reactor, with no handler in between and no copy (`Cx::forward_to`). The data path
//! of a proxy, as nginx's stream proxy and HAProxy run theirs: read into a buffer, write
//! from that same buffer.
//!
//! ```text
//!   read_input: FORWARDING set ─► ReadEnd::Forward ─► forward_input:
//!     partner gone or no longer taking output ─► forwarding ends; input goes to on_data
//!     held input first, then read into the scratch buffer ─► write to the partner's socket
//!       from it; what the kernel refuses joins the partner's `out`
//!     partner's pending output ≥ high watermark ─► this one pauses (PAUSED_BY_PARTNER),
//!       noted in Shared::forward_waits
//!   partner drains to the low watermark (on_writable), or closes ─► release_forwarders
//!     ─► a deferred read of each forwarder it held
//! ```
//!
//! Memory per direction stays within the partner's high watermark plus one read: the read
//! is sized to the partner's headroom, as `read_input` sizes an echo's read to its own.
//! Events, budgets and EOF are as for any read: the peer's EOF goes to `on_eof`, the read
//! budget is shared with everyone else, and a paused forwarder keeps its `READ_READY`
//! until it is released.

use std::io;

use super::conn_io::ReadEnd;
use super::Reactor;
use crate::conn::Core;
use crate::flags::Flags;
use crate::handler::Handler;
use crate::shared::Shared;
use crate::stats::Reason;
use crate::wire::send_or_keep;
use crate::wire::Recv;

/// What one pass of the forwarding loop found.
enum Step {
    /// Keep going.
    More,
    /// Nothing to do until an event, a release or the next turn.
    Wait,
    /// The partner's write failed: close it, then look again.
    PartnerFailed(usize, io::ErrorKind),
    /// Act as a read loop would (EOF, an error).
    End(ReadEnd),
}

impl<H: Handler> Reactor<H> {
    /// Forwards the input of the connection in `slot` to its partner until the socket is
    /// drained, the partner is full, or the read budget is spent.
    pub(super) fn forward_input(&mut self, slot: usize) {
        let mut budget = self.shared.config.read_budget;
        loop {
            let step = match self.partner_of(slot) {
                Some(to) => self.forward_once(slot, to, &mut budget),
                None => {
                    self.end_forwarding(slot);
                    return;
                }
            };
            match step {
                Step::More => {}
                Step::Wait => return,
                Step::PartnerFailed(to, kind) => self.close_now(to, Reason::Error(kind)),
                Step::End(end) => {
                    self.on_read_end(slot, end);
                    return;
                }
            }
        }
    }

    /// The slot of the connection `slot` forwards to, if it still takes output; installs
    /// connections callbacks opened first (a client forwarding to the upstream it has just
    /// begun to connect).
    fn partner_of(&mut self, slot: usize) -> Option<usize> {
        let id = self.conns.get(slot)?.core.forward?;
        if !self.shared.slots.is_live(id) {
            return None;
        }
        let to = id.slot();
        if !self.conns.contains(to) {
            self.open_queued();
        }
        let partner = &self.conns.get(to)?.core;
        (partner.id == id && partner.life.takes_output()).then_some(to)
    }

    /// One read (or the held input) passed from `slot` to `to`.
    fn forward_once(&mut self, slot: usize, to: usize, budget: &mut usize) -> Step {
        let Reactor { conns, shared, scratch, .. } = self;
        let Some((from, into)) = conns.pair_mut(slot, to) else { return Step::Wait };
        if !from.core.wants_forward(!from.input.is_empty()) {
            return Step::Wait;
        }
        let high = shared.config.out_high_watermark;
        if into.core.pending_out() >= high {
            hold(&mut from.core, slot, &mut into.core, to, shared);
            return Step::Wait;
        }
        // Input held from before forwarding began goes first, in order.
        if !from.input.is_empty() {
            let held = std::mem::take(&mut from.input);
            from.core.flags.remove(Flags::INPUT_HELD);
            if let Err(e) = pass(&mut into.core, shared, &held) {
                return Step::PartnerFailed(to, e.kind());
            }
            return Step::More;
        }
        // Never more than the partner has room for: a forwarder fills it to the watermark
        // and no further, however fast its peer sends.
        let room = scratch.len().min(high - into.core.pending_out());
        match from.core.recv(&mut scratch[..room]) {
            Recv::Eof => Step::End(ReadEnd::Eof),
            Recv::Data(n) => {
                shared.stats.bytes_in += n as u64;
                from.core.last_active = shared.now;
                from.core.flags.insert(Flags::TALKED);
                if let Err(e) = pass(&mut into.core, shared, &scratch[..n]) {
                    return Step::PartnerFailed(to, e.kind());
                }
                *budget = budget.saturating_sub(n);
                if !from.core.flags.has(Flags::READ_READY) {
                    Step::Wait
                } else if *budget == 0 {
                    shared.stats.read_budget_yields += 1;
                    shared.defer_read(&mut from.core);
                    Step::Wait
                } else {
                    Step::More
                }
            }
            Recv::Drained => Step::Wait,
            Recv::Failed(e) => {
                log::debug!("conn slot={slot} peer={} read failed: {e}", from.core.peer);
                Step::End(ReadEnd::Close(Reason::Error(e.kind())))
            }
        }
    }

    /// Forwarding from `slot` found its partner gone or no longer taking output: it ends,
    /// and the connection's input goes to its handler again.
    fn end_forwarding(&mut self, slot: usize) {
        let Some(conn) = self.conns.get_mut(slot) else { return };
        conn.core.forward = None;
        conn.core.flags.remove(Flags::FORWARDING | Flags::PAUSED_BY_PARTNER);
        log::debug!("conn slot={slot} peer={}: forwarding ended, the partner takes no more", conn.core.peer);
        self.resume_read(slot);
    }

    /// The connection in `slot` drained to its low watermark or is closing: the forwarders
    /// it paused may read again.
    pub(super) fn release_forwarders(&mut self, slot: usize) {
        let Reactor { conns, shared, .. } = self;
        let Some(conn) = conns.get_mut(slot) else { return };
        conn.core.flags.remove(Flags::HOLDS_FORWARDERS);
        let full = conn.core.id;
        // Taken out for the walk, which needs `shared` too (to queue the reads).
        let mut waits = std::mem::take(&mut shared.forward_waits);
        waits.retain(|&(partner, forwarder)| {
            if partner != full {
                return true;
            }
            match conns.get_mut(forwarder.slot()) {
                Some(conn) if conn.core.id == forwarder => {
                    conn.core.flags.remove(Flags::PAUSED_BY_PARTNER);
                    // Its readiness was left unread while paused: no event will say so.
                    shared.defer_read(&mut conn.core);
                }
                _ => {}
            }
            false
        });
        shared.forward_waits = waits;
    }
}

/// Pauses the forwarder `from` on its partner `into`'s full output, and notes it for
/// `release_forwarders`.
fn hold<H, M: Send + 'static>(
    from: &mut Core,
    slot: usize,
    into: &mut Core,
    to: usize,
    shared: &mut Shared<H, M>,
) {
    from.flags.insert(Flags::PAUSED_BY_PARTNER);
    into.flags.insert(Flags::HOLDS_FORWARDERS);
    shared.stats.backpressure_pauses += 1;
    let entry = (into.id, from.id);
    if !shared.forward_waits.contains(&entry) {
        shared.forward_waits.push(entry);
    }
    log::trace!("conn slot={slot} paused: its partner slot={to} has {} bytes pending", into.pending_out());
}

/// Writes `data` to the connection `into` as its handler's `Cx::write` would, but at once:
/// straight to the socket when nothing is queued ahead (`send_or_keep`, the path a
/// callback's output takes), else behind its queued output or a connect in progress.
fn pass<H, M: Send + 'static>(into: &mut Core, shared: &mut Shared<H, M>, data: &[u8]) -> io::Result<()> {
    if !into.can_write_through() {
        shared.queue_output(into, data);
        return Ok(());
    }
    let sent_before = shared.stats.bytes_out;
    send_or_keep(into, data, &mut shared.stats, &shared.registry)?;
    // Output the kernel took is activity on the partner (a tunnel is not idle).
    if shared.stats.bytes_out != sent_before {
        into.last_active = shared.now;
    }
    Ok(())
}
