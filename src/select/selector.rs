//! `Selector`: Python's `selectors` on epoll — a set of registered descriptors, each with a
//! [`Key`] carrying the caller's data, and `select` reporting which are ready, re-armed
//! so unread data is reported again (level-triggered), or only on new edges with
//! [`Trigger::Edge`].
//!
//! ```text
//!   register(fd, events, data) ──► Key + epoll registration (or "always ready" for files)
//!   select(timeout) ──► ready (fd, events) ──► re-armed for the next call (Level)
//! ```
//!
//! Split from `select.rs`, which keeps the one-shot `select()` function, `Events`, and the
//! helpers both use; this file does not poll anything but its own epoll instance.

use std::collections::HashMap;
use std::io::{self, ErrorKind};
use std::os::fd::RawFd;
use std::time::Duration;

use mio::unix::SourceFd;
use mio::Poll;

use super::{add, check_fd, fd_of, not_registered, token_of, wait_for, Events, Ready, Selectable};
/// One registration in a [`Selector`]: Python's `SelectorKey`.
#[derive(Debug)]
pub struct Key<T> {
    fd: RawFd,
    events: Events,
    data: T,
    // false for files epoll refuses (EPERM): reported ready on every call.
    pollable: bool,
}

impl<T> Key<T> {
    /// The registered file descriptor.
    pub fn fd(&self) -> RawFd {
        self.fd
    }
    /// What this key waits for.
    pub fn events(&self) -> Events {
        self.events
    }
    /// Your state for this fd (Python's `key.data`).
    pub fn data(&self) -> &T {
        &self.data
    }
    /// Your state for this fd, mutably.
    pub fn data_mut(&mut self) -> &mut T {
        &mut self.data
    }
    /// Consumes the key, returning your state (e.g. after `unregister`).
    pub fn into_data(self) -> T {
        self.data
    }
}

/// How a [`Selector`] reports readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Trigger {
    /// Like `select(2)`: an fd is reported on every call while it is ready.
    #[default]
    Level,
    /// Raw epoll edge-triggering: an fd is reported once per state change,
    /// so data you leave unread is never reported again. For teaching the
    /// "missed event" bug; real edge-triggered code must read until
    /// `WouldBlock`.
    Edge,
}

/// A long-lived set of watched fds with per-fd data, like Python's
/// `selectors.DefaultSelector`. The [module docs](crate::select) map Python's calls to these.
///
/// # Examples
///
/// Data left unread is reported on every call (level-triggered, the default), or once
/// ([`Trigger::Edge`], the "missed event" lesson):
///
/// ```
/// use std::io::Write;
/// use std::os::unix::net::UnixStream;
/// use std::time::Duration;
/// use evloop::select::{Events, Selector, Trigger};
///
/// for (trigger, reports) in [(Trigger::Level, 2), (Trigger::Edge, 1)] {
///     let (ours, mut theirs) = UnixStream::pair()?;
///     let mut selector = Selector::with_trigger(trigger)?;
///     selector.register(&ours, Events::READ, "our end")?;
///     theirs.write_all(b"never read")?;
///     let mut seen = 0;
///     for _ in 0..2 {
///         for (fd, events) in selector.select(Some(Duration::from_millis(50)))? {
///             assert!(events.is_readable());
///             assert_eq!(selector.get(fd).map(|key| *key.data()), Some("our end"));
///             seen += 1;
///         }
///     }
///     assert_eq!(seen, reports, "{trigger:?}");
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Selector<T> {
    poll: Poll,
    events: mio::Events,
    keys: HashMap<RawFd, Key<T>>,
    // fds reported by the last `select`, re-armed at the start of the next.
    rearm: Vec<RawFd>,
    unpollable: usize,
    trigger: Trigger,
}

impl<T> Selector<T> {
    /// A level-triggered selector, like `select(2)`.
    ///
    /// # Errors
    ///
    /// If the epoll instance cannot be created (e.g. `EMFILE`).
    pub fn new() -> io::Result<Self> {
        Self::with_trigger(Trigger::Level)
    }

    /// A selector with the given [`Trigger`] mode.
    ///
    /// # Errors
    ///
    /// If the epoll instance cannot be created (e.g. `EMFILE`).
    pub fn with_trigger(trigger: Trigger) -> io::Result<Self> {
        Ok(Selector {
            poll: Poll::new()?,
            events: mio::Events::with_capacity(64),
            keys: HashMap::new(),
            rearm: Vec::new(),
            unpollable: 0,
            trigger,
        })
    }

    /// The trigger mode this selector was built with.
    pub fn trigger(&self) -> Trigger {
        self.trigger
    }

    /// Starts watching `fd` for `events`, attaching `data`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for empty `events` or a negative fd, `AlreadyExists` if
    /// the fd is registered already, the OS error `EBADF` for a closed fd.
    pub fn register(&mut self, fd: impl Selectable, events: Events, data: T) -> io::Result<()> {
        let fd = fd.selectable_fd();
        check_fd(fd)?;
        let interest = events.to_interest()?;
        if self.keys.contains_key(&fd) {
            return Err(io::Error::new(
                ErrorKind::AlreadyExists,
                format!("fd {fd} is already registered (use modify to change its events)"),
            ));
        }
        let pollable = add(&self.poll, fd, interest)?;
        if !pollable {
            self.unpollable += 1;
        }
        let key = Key { fd, events, data, pollable };
        self.keys.insert(fd, key);
        Ok(())
    }

    /// Changes what `fd` is watched for; its data is kept (replace it with
    /// [`get_mut`](Self::get_mut) if needed).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for empty `events`, `NotFound` if `fd` is not registered.
    pub fn modify(&mut self, fd: impl Selectable, events: Events) -> io::Result<()> {
        let fd = fd.selectable_fd();
        let interest = events.to_interest()?;
        let key = self.keys.get_mut(&fd).ok_or_else(|| not_registered(fd))?;
        if key.pollable {
            // EPOLL_CTL_MOD: also reports current readiness for the new set.
            self.poll.registry().reregister(&mut SourceFd(&fd), token_of(fd), interest)?;
        }
        key.events = events;
        Ok(())
    }

    /// Stops watching `fd` and hands back its key (and so your data).
    /// Call it *before* closing the fd.
    ///
    /// # Errors
    ///
    /// `NotFound` if `fd` is not registered. An OS error while removing it
    /// from epoll is ignored (as Python does): it means the fd was already
    /// closed, which removed it from epoll anyway.
    pub fn unregister(&mut self, fd: impl Selectable) -> io::Result<Key<T>> {
        let fd = fd.selectable_fd();
        let key = self.keys.remove(&fd).ok_or_else(|| not_registered(fd))?;
        if key.pollable {
            if let Err(e) = self.poll.registry().deregister(&mut SourceFd(&fd)) {
                log::debug!("select: deregister fd {fd}: {e} (already closed?)");
            }
        } else {
            self.unpollable -= 1;
        }
        Ok(key)
    }

    /// Waits until some registered fds are ready and returns them with what
    /// they are ready for (always within their registered [`Events`]).
    ///
    /// `timeout` behaves as in [`select()`](super::select()): `None` blocks, `Some(ZERO)`
    /// polls, otherwise an empty list after the timeout. Look up your state
    /// with [`get`](Self::get) / [`get_mut`](Self::get_mut).
    ///
    /// # Errors
    ///
    /// OS errors from epoll. If an fd that was reported ready by the previous
    /// call has since been closed while still registered, the re-arm fails and
    /// this call returns that error once (the other fds are re-armed
    /// regardless); `unregister` the fd to clean up. An fd closed while quiet
    /// cannot be detected (see the module docs): unregister before closing.
    pub fn select(&mut self, timeout: Option<Duration>) -> io::Result<Vec<(RawFd, Events)>> {
        let rearm_error = self.rearm();
        if let Some(e) = rearm_error {
            return Err(e);
        }
        let timeout = if self.unpollable == 0 { timeout } else { Some(Duration::ZERO) };
        // Room for every key means one call reports everything that is ready.
        if self.events.capacity() < self.keys.len() {
            self.events = mio::Events::with_capacity(self.keys.len());
        }
        let (keys, rearm, level) = (&self.keys, &mut self.rearm, self.trigger == Trigger::Level);
        let unpollable = self.unpollable;
        wait_for(&mut self.poll, &mut self.events, timeout, |events| {
            let mut out = Vec::new();
            for event in events.iter() {
                let fd = fd_of(event.token());
                let Some(key) = keys.get(&fd) else { continue };
                let ready = Ready::from_event(event).as_events() & key.events;
                if !ready.is_empty() {
                    out.push((fd, ready));
                    if level {
                        rearm.push(fd);
                    }
                }
            }
            if unpollable > 0 {
                let always = keys.values().filter(|k| !k.pollable);
                out.extend(always.map(|k| (k.fd, k.events)));
            }
            (!out.is_empty()).then_some(out)
        })
    }

    /// Re-registers (EPOLL_CTL_MOD) every fd reported last time, so the kernel
    /// queues it again if it is still ready: this is the level-triggering.
    fn rearm(&mut self) -> Option<io::Error> {
        let mut first_error = None;
        for fd in self.rearm.drain(..) {
            // Skip fds unregistered since; `modify` already re-armed others.
            let Some(key) = self.keys.get(&fd) else {
                continue;
            };
            let Ok(interest) = key.events.to_interest() else {
                continue;
            };
            let result = self.poll.registry().reregister(&mut SourceFd(&fd), token_of(fd), interest);
            if let Err(e) = result {
                let msg =
                    format!("fd {fd} was closed while still registered (unregister it before closing): {e}");
                first_error.get_or_insert(io::Error::new(e.kind(), msg));
            }
        }
        first_error
    }

    /// The key for `fd`, if registered (Python's `get_key`, without `KeyError`).
    pub fn get(&self, fd: impl Selectable) -> Option<&Key<T>> {
        self.keys.get(&fd.selectable_fd())
    }

    /// The key for `fd`, mutably: reach your state with [`Key::data_mut`].
    pub fn get_mut(&mut self, fd: impl Selectable) -> Option<&mut Key<T>> {
        self.keys.get_mut(&fd.selectable_fd())
    }

    /// All keys, in no particular order (Python's `get_map().values()`).
    pub fn keys(&self) -> impl Iterator<Item = &Key<T>> + '_ {
        self.keys.values()
    }

    /// How many fds are registered.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True if no fd is registered.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}
