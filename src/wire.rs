//! The byte path: the one place a connection's socket is read ([`Core::recv`]), the one place
//! it is written ([`Core::send`]), and the one place its FIN is sent ([`Core::send_fin`]).
//!
//! ```text
//!   read_input (conn_io.rs) ──┐                        ┌── send_or_keep (shared.rs: a callback's output, a forwarder's)
//!   forward_once (forward.rs) ┴─► Core::recv ◄ socket ►  Core::send ◄─┴── Core::write_out (`out`, on a writable event)
//!                                  │
//!                                  └─ EOF ─► Life::peer_finished      Shared::settle ─► Core::send_fin
//! ```
//!
//! Everything the kernel tells a read or a write is turned into the connection's state here,
//! once: `READ_READY` cleared when a read shows the socket drained (or, where the kernel
//! promises a new edge, on a short read), the peer's EOF recorded in its [`Life`](crate::life::Life), and
//! `WRITE_BLOCKED` set when a write comes up short. `Interrupted` is retried here and never
//! seen by callers. Reading and writing have one implementation each, so a fix to how a
//! read or a write ends is made once for the handler path, lingering and forwarding alike.
//!
//! Above the system calls, the output path: `send_or_keep` writes what the kernel takes and
//! keeps the rest in `Core::out` (`keep_unsent`, `keep`), and `watch_writable` asks for
//! writable events after the first short write — the one way output leaves a callback
//! (`Shared::write_staged`, `settle_later`) or a forwarder (`forward.rs`).

use std::io::{self, Read, Write};

use mio::{Interest, Registry};

use crate::conn::{Core, KEEP_BUFFER_BYTES};
use crate::flags::Flags;
use crate::platform::{SHORT_READ_DRAINS, SHORT_WRITE_FILLS};
use crate::stats::Stats;

/// What a flush achieved.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Flushed {
    /// Everything pending was written.
    All,
    /// The kernel's send buffer is full; wait for a writable event.
    Blocked,
}

/// How one read ended.
pub(crate) enum Recv {
    /// This many bytes arrived (more may wait if `READ_READY` is still set).
    Data(usize),
    /// The peer has finished sending; the connection's life says so now.
    Eof,
    /// Nothing to read until the next readiness event.
    Drained,
    /// The read failed: the connection is to close with this error.
    Failed(io::Error),
}

impl Core {
    /// Reads into `buf` (never empty: a zero-length read would look like EOF).
    ///
    /// A short read drains the socket where the kernel reports the next arrival as a new
    /// edge (`platform::SHORT_READ_DRAINS`), so `READ_READY` is cleared without the read that
    /// would only say `WouldBlock` — unless a hang-up was signalled (`READ_HANGUP`): then
    /// reading goes on until the EOF or error is seen. It is cleared before the handler runs,
    /// so a close it asks for knows whether the socket may still hold input.
    #[inline(always)]
    pub(crate) fn recv(&mut self, buf: &mut [u8]) -> Recv {
        debug_assert!(!buf.is_empty());
        loop {
            match (&self.stream).read(buf) {
                Ok(0) => {
                    self.flags.remove(Flags::READ_READY);
                    self.life.peer_finished();
                    log::trace!("conn {} peer={} sent EOF", self.id, self.peer);
                    return Recv::Eof;
                }
                Ok(n) => {
                    if SHORT_READ_DRAINS && n < buf.len() && !self.flags.has(Flags::READ_HANGUP) {
                        self.flags.remove(Flags::READ_READY);
                    }
                    return Recv::Data(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.flags.remove(Flags::READ_READY);
                    return Recv::Drained;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Recv::Failed(e),
            }
        }
    }

    /// Writes `data` (never empty) as far as the kernel takes it; returns the bytes written.
    /// The common case, one `write` that takes everything, is inlined; a short write goes
    /// on in [`Core::send_rest`]. When not everything was written, `WRITE_BLOCKED` is set:
    /// wait for a writable event. Any error but `WouldBlock` and `Interrupted` is returned.
    #[inline(always)]
    pub(crate) fn send(&mut self, data: &[u8]) -> io::Result<usize> {
        match (&self.stream).write(data) {
            Ok(n) if n == data.len() => Ok(n),
            Ok(n) => self.send_rest(data, n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.flags.insert(Flags::WRITE_BLOCKED);
                Ok(0)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => self.send_rest(data, 0),
            Err(e) => Err(e),
        }
    }

    /// The rest of [`Core::send`], after a first `write` took `written` bytes (perhaps 0,
    /// when it was interrupted).
    #[cold]
    #[inline(never)]
    fn send_rest(&mut self, data: &[u8], mut written: usize) -> io::Result<usize> {
        // A short write means the send buffer is full: the kernel noted it (SOCK_NOSPACE)
        // and will report the next writable edge, so the `write` that would only say
        // `WouldBlock` is skipped where the kernel promises that
        // (`platform::SHORT_WRITE_FILLS`); elsewhere writing goes on.
        let mut go_on = written == 0 || !SHORT_WRITE_FILLS;
        while go_on && written < data.len() {
            match (&self.stream).write(&data[written..]) {
                // A stream socket accepts at least one byte or reports an error; treat a
                // zero-length write like a full buffer rather than looping on it.
                Ok(0) => break,
                Ok(n) => {
                    written += n;
                    go_on = !SHORT_WRITE_FILLS;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if written < data.len() {
            self.flags.insert(Flags::WRITE_BLOCKED);
        }
        Ok(written)
    }

    /// Writes `out` as far as the kernel allows (on a writable event); returns what happened
    /// and the bytes written.
    pub(crate) fn write_out(&mut self) -> io::Result<(Flushed, usize)> {
        self.flags.remove(Flags::WRITE_BLOCKED);
        if self.pending_out() == 0 {
            return Ok((Flushed::All, 0));
        }
        let mut out = std::mem::take(&mut self.out);
        let result = self.send(&out[self.out_sent..]);
        let written = match result {
            Ok(n) => n,
            Err(e) => {
                self.out = out;
                return Err(e);
            }
        };
        self.out_sent += written;
        let flushed = if self.out_sent == out.len() {
            out.clear();
            if out.capacity() > KEEP_BUFFER_BYTES {
                out = Vec::new();
            }
            self.out_sent = 0;
            Flushed::All
        } else {
            // Reclaim the sent prefix once it is the larger part, so `out` does not creep.
            if self.out_sent > out.len() / 2 {
                out.drain(..self.out_sent);
                self.out_sent = 0;
            }
            Flushed::Blocked
        };
        self.out = out;
        Ok((flushed, written))
    }

    /// Sends FIN (`shutdown(Write)`) and records it in the connection's life. Called once
    /// its output is flushed, by `settle` (a write shutdown or a lingering close).
    pub(crate) fn send_fin(&mut self) {
        if let Err(e) = self.stream.shutdown(std::net::Shutdown::Write) {
            log::debug!("conn {} peer={} shutdown(Write) failed: {e}", self.id, self.peer);
        }
        self.life.fin_sent();
    }
}

/// Writes `data` for the connection now: as much as the kernel takes, and what it refuses
/// into the connection's output buffer, to go out on a writable event. The one way output
/// leaves a callback or a forwarder (the caller has checked that it may go straight out).
/// The common case, the kernel takes it all, is inlined into the hot path.
#[inline(always)]
pub(crate) fn send_or_keep(
    core: &mut Core,
    data: &[u8],
    stats: &mut Stats,
    registry: &Registry,
) -> io::Result<()> {
    match core.send(data) {
        Ok(n) if n == data.len() => {
            // No `last_active` stamp here: a callback's output counts as activity through
            // its input (the read stamps it) or through the reactor's `callback`.
            stats.bytes_out += n as u64;
            Ok(())
        }
        sent => keep_unsent(core, data, sent, stats, registry),
    }
}

/// The rest of [`send_or_keep`]: keeps what the kernel refused, and asks for writable
/// events if the socket does not report them yet.
#[cold]
#[inline(never)]
pub(crate) fn keep_unsent(
    core: &mut Core,
    data: &[u8],
    sent: io::Result<usize>,
    stats: &mut Stats,
    registry: &Registry,
) -> io::Result<()> {
    let written = sent?;
    stats.bytes_out += written as u64;
    if written < data.len() {
        keep(core, &data[written..], stats);
        // Tell the handler when this has gone out (`on_drained`).
        core.flags.insert(Flags::DRAINED_PENDING);
    }
    watch_writable(core, registry)
}

/// Appends `data` to the connection's pending output, counted.
pub(crate) fn keep(core: &mut Core, data: &[u8], stats: &mut Stats) {
    core.out.extend_from_slice(data);
    stats.out_buffered += data.len() as u64;
    let pending = core.pending_out() as u64;
    if pending > stats.out_buffered_peak {
        stats.out_buffered_peak = pending;
    }
}

/// After a write: if it came up short and the socket does not report writability yet, asks
/// it to. Sockets are registered for reading only (see `reactor/mod.rs`), so a connection
/// that never fills its send buffer is never woken for the space each ACK frees; one that
/// does asks once and keeps it. No writable edge is missed: the kernel checks readiness
/// when the interest changes and reports a socket writable already.
#[inline]
pub(crate) fn watch_writable(core: &mut Core, registry: &Registry) -> io::Result<()> {
    if core.flags.exactly(Flags::WRITE_BLOCKED | Flags::WRITE_INTEREST, Flags::WRITE_BLOCKED) {
        register_writable(core, registry)?;
    }
    Ok(())
}

#[cold]
#[inline(never)]
fn register_writable(core: &mut Core, registry: &Registry) -> io::Result<()> {
    core.flags.insert(Flags::WRITE_INTEREST);
    registry.reregister(&mut core.stream, core.id.token(), Interest::READABLE | Interest::WRITABLE)
}
