//! The embedder's own mio sources: registered with the reactor's poll, called back on the
//! loop thread with the reactor itself, isolated from each other's panics.
//!
//! ```text
//!   Reactor::register(source, interest, on_ready) ──► sources[index] ── token::source(index) ──► poll
//!   event for index ──► take the entry out ──► on_ready(&mut source, ready, &mut reactor) ──► put it back
//!                                              (panic: log, count, deregister, drop; the turn goes on)
//! ```
//!
//! The entry is taken out of its slot for the length of the callback, so the callback can
//! have the whole reactor — register more sources, deregister any (itself included), use
//! connections and timers — without aliasing the table it lives in. The slot stays
//! reserved meanwhile, so its index (and token) cannot be handed to another source; a
//! deregistration during the callback is recorded and carried out when it returns.

use std::io;
use std::panic::{self, AssertUnwindSafe};

use mio::event::Source;
use mio::{Interest, Registry};

use super::{Reactor, Ready};
use crate::handler::Handler;
use crate::token;

/// Names a source registered with [`Reactor::register`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceId(usize);

/// An entry of the source table, type-erased: an embedder's source and its callback, or a
/// datagram endpoint (`endpoints.rs`), which also answers the methods with defaults here.
pub(super) trait UserSource<H: Handler> {
    fn ready(&mut self, ready: Ready<'_>, reactor: &mut Reactor<H>);
    fn deregister(&mut self, registry: &Registry) -> io::Result<()>;
    fn reregister(&mut self, registry: &Registry, token: mio::Token, interest: Interest) -> io::Result<()>;
    /// Carry on with work cut off by a budget (an endpoint's receive loop).
    fn resume(&mut self, _reactor: &mut Reactor<H>) {}
    /// Close at the reactor's or the embedder's request.
    fn close(&mut self, _reactor: &mut Reactor<H>) {}
    /// An endpoint's serial number (`EndpointId`); `None` for an embedder's source.
    fn endpoint_serial(&self) -> Option<u64> {
        None
    }
    /// For a downcast to the concrete entry (`Reactor::with_endpoint`).
    fn as_any(&mut self) -> &mut dyn std::any::Any;
}

struct SourceEntry<S, F> {
    source: S,
    on_ready: F,
}

impl<H, S, F> UserSource<H> for SourceEntry<S, F>
where
    H: Handler,
    S: Source + 'static,
    F: FnMut(&mut S, Ready<'_>, &mut Reactor<H>) + 'static,
{
    fn ready(&mut self, ready: Ready<'_>, reactor: &mut Reactor<H>) {
        (self.on_ready)(&mut self.source, ready, reactor);
    }
    fn as_any(&mut self) -> &mut dyn std::any::Any {
        self
    }
    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        registry.deregister(&mut self.source)
    }
    fn reregister(&mut self, registry: &Registry, token: mio::Token, interest: Interest) -> io::Result<()> {
        registry.reregister(&mut self.source, token, interest)
    }
}

/// One slot of the source table.
pub(super) enum SourceSlot<H: Handler> {
    /// Registered and waiting for events.
    Idle(Box<dyn UserSource<H>>),
    /// Lent to its own callback, which is running now; a new interest asked for meanwhile
    /// is applied when it returns.
    Running { interest: Option<Interest> },
    /// Deregistered by its own callback: dropped when the callback returns.
    Removed,
}

impl<H: Handler> Reactor<H> {
    pub(super) fn add_source<S, F>(
        &mut self,
        mut source: S,
        interest: Interest,
        on_ready: F,
    ) -> io::Result<SourceId>
    where
        S: Source + 'static,
        F: FnMut(&mut S, Ready<'_>, &mut Reactor<H>) + 'static,
    {
        let entry = self.sources.vacant_entry();
        let index = entry.key();
        self.poll.registry().register(&mut source, token::source(index), interest)?;
        entry.insert(SourceSlot::Idle(Box::new(SourceEntry { source, on_ready })));
        Ok(SourceId(index))
    }

    pub(super) fn remove_source(&mut self, id: SourceId) -> io::Result<()> {
        let not_found = || io::Error::new(io::ErrorKind::NotFound, format!("no source registered as {id:?}"));
        match self.sources.get_mut(id.0) {
            None | Some(SourceSlot::Removed) => Err(not_found()),
            Some(slot @ SourceSlot::Running { .. }) => {
                // Its callback is running: it cannot be reached to deregister now.
                *slot = SourceSlot::Removed;
                Ok(())
            }
            Some(SourceSlot::Idle(_)) => {
                let Some(SourceSlot::Idle(mut entry)) = self.sources.try_remove(id.0) else {
                    unreachable!("matched Idle just above")
                };
                entry.deregister(self.poll.registry())
            }
        }
    }

    /// An event for source `index`: runs its callback with the reactor.
    pub(super) fn source_ready(&mut self, index: usize, ready: Ready<'_>) {
        self.lend_source(index, None, |entry, reactor| entry.ready(ready, reactor));
    }

    /// Takes entry `index` out of its slot, runs `f` with it and the whole reactor, and puts
    /// it back — or, if it panicked or was removed meanwhile, deregisters and drops it.
    /// With `serial`, only an endpoint of that serial number is lent. Returns whether `f` ran.
    pub(super) fn lend_source(
        &mut self,
        index: usize,
        serial: Option<u64>,
        f: impl FnOnce(&mut dyn UserSource<H>, &mut Reactor<H>),
    ) -> bool {
        let Some(slot) = self.sources.get_mut(index) else { return false };
        if let (Some(serial), SourceSlot::Idle(entry)) = (serial, &*slot) {
            if entry.endpoint_serial() != Some(serial) {
                return false; // the slot holds a later entry
            }
        }
        let SourceSlot::Idle(mut entry) = std::mem::replace(slot, SourceSlot::Running { interest: None })
        else {
            // Removed, or running (a callback reaching its own entry): nothing to call.
            return false;
        };
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| f(&mut *entry, self)));
        let removed = matches!(self.sources.get(index), Some(SourceSlot::Removed));
        if outcome.is_err() || removed {
            if outcome.is_err() {
                self.shared.stats.source_panics += 1;
                log::error!("source {index}: callback panicked; deregistering it");
                if entry.endpoint_serial().is_some() {
                    self.shared.stats.datagrams.endpoints -= 1;
                }
            }
            if let Err(e) = entry.deregister(self.poll.registry()) {
                log::debug!("source {index}: deregister failed: {e}");
            }
            self.sources.remove(index);
            return true;
        }
        if let Some(SourceSlot::Running { interest: Some(interest) }) = self.sources.get(index) {
            let interest = *interest;
            if let Err(e) = entry.reregister(self.poll.registry(), token::source(index), interest) {
                log::warn!("source {index}: changing its interest to {interest:?} failed: {e}");
            }
        }
        self.sources[index] = SourceSlot::Idle(entry);
        true
    }

    pub(super) fn change_source_interest(&mut self, id: SourceId, interest: Interest) -> io::Result<()> {
        match self.sources.get_mut(id.0) {
            None | Some(SourceSlot::Removed) => {
                Err(io::Error::new(io::ErrorKind::NotFound, format!("no source registered as {id:?}")))
            }
            Some(SourceSlot::Running { interest: pending }) => {
                // From its own callback: applied when the callback returns.
                *pending = Some(interest);
                Ok(())
            }
            Some(SourceSlot::Idle(entry)) => {
                entry.reregister(self.poll.registry(), token::source(id.0), interest)
            }
        }
    }
}
