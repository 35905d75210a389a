//! `select()`-style readiness, the way Python teaches it, built on
//! [`mio::Poll`] (epoll on Linux) instead of `select(2)`.
//!
//! ```text
//!  select(read, write, except, timeout)        Selector::register(fd, Events, data)
//!        │ new epoll for this call                   │ one epoll, kept across calls
//!        ▼                                           ▼
//!  epoll_ctl(ADD) every fd                     epoll_ctl(MOD) every fd reported
//!  (ADD reports current readiness)             by the previous call ("re-arm")
//!        │                                           │
//!        └───────────────▶ epoll_wait ◀──────────────┘   (EINTR: retried)
//!                              │
//!        ┌─────────────────────┴─────────────────────┐
//!        ▼                                           ▼
//!  (ready_read, ready_write, ready_except)     Vec<(RawFd, Events)>; get(fd)?.data()
//! ```
//!
//! It tells you which file descriptors can be read or written without
//! blocking, with the *level-triggered* semantics of `select(2)` and with no
//! `FD_SETSIZE` (1024) ceiling. It does no I/O, buffering, timers or fairness
//! for you: you read and write the fds yourself, exactly as in Python.
//!
//! # Level-triggered on top of edge-triggered
//!
//! mio registers every fd edge-triggered (`EPOLLET`): an fd is reported once
//! when it *becomes* ready, and never again until its state changes. A
//! program written for `select(2)` expects the opposite: an fd with unread
//! data, or with room to write, is reported on *every* call. We rebuild that
//! guarantee from one kernel rule: `epoll_ctl(EPOLL_CTL_ADD)` and
//! `epoll_ctl(EPOLL_CTL_MOD)` both check the fd's current readiness and, if it
//! is ready, queue an event straight away.
//!
//! * [`select()`] uses a fresh epoll instance per call, so every fd is added
//!   anew and reports whatever it is ready for right now.
//! * [`Selector::select`] remembers which fds it reported and, at the start of
//!   the next call (after your code has read or written), re-registers each of
//!   them (mio `reregister`, i.e. `EPOLL_CTL_MOD`). Whatever you left unread is
//!   therefore reported again; an fd you drained stays quiet until new data
//!   arrives (the normal edge wakes it).
//!
//! Cost: `select()` pays `epoll_create` + one `epoll_ctl` per fd + `close` on
//! every call (much like `select(2)` scanning its bit sets); a `Selector` pays
//! one `epoll_ctl` per *ready* fd per call, and nothing for idle fds.
//! [`Selector::with_trigger`]`(`[`Trigger::Edge`]`)` skips the re-arm, so you
//! can watch the classic "missed event" bug happen: data you did not read is
//! never reported again.
//!
//! # What is reported where
//!
//! | reported in | when epoll says | meaning: this call will not block |
//! |---|---|---|
//! | read / [`Events::READ`] | `EPOLLIN`, `EPOLLRDHUP`, `EPOLLHUP`, `EPOLLERR` | `read` returns data, 0 (EOF) or the error |
//! | write / [`Events::WRITE`] | `EPOLLOUT`, `EPOLLHUP`, `EPOLLERR` | `write` makes progress or returns the error |
//! | except (only [`select()`]) | `EPOLLPRI` (TCP urgent data), `EPOLLERR` (pending socket error), `EPOLLHUP` (both directions closed) | something exceptional: most servers just close the fd |
//!
//! Linux's own `select(2)` puts only `EPOLLPRI` in the except set; we add
//! errors and full hang-ups because that is what teaching code expects to see
//! there. mio folds `EPOLLPRI` into "readable", so an fd in both the read and
//! except lists is also reported readable when urgent data arrives. Files that
//! epoll cannot watch (regular files, `/dev/null`: `epoll_ctl` fails with
//! `EPERM`) are reported always readable and writable, as `select(2)` does.
//!
//! # On kqueue (macOS, the BSDs)
//!
//! mio drives kqueue there, and the module compiles for it (`.ci/run` checks the library
//! for macOS and FreeBSD), but these machines run only Linux, so what follows is what the
//! kernels document, not what was tested:
//!
//! * The level-triggered emulation rests on re-registration re-checking readiness. kqueue's
//!   `EV_ADD` on a filter that is already there (what mio's `reregister` does) re-evaluates
//!   it and queues an event if the condition holds, as `EPOLL_CTL_MOD` does.
//! * The except list: kqueue has no urgent-data filter in mio, so it reports errors and
//!   hang-ups only (watched through the read filter), never TCP urgent data.
//! * Regular files: kqueue watches them (readable until the offset reaches the end), so they
//!   are not the "always ready" case that epoll's `EPERM` makes them on Linux.
//!
//! # Errors
//!
//! Never panics. A negative fd or empty [`Events`] is `InvalidInput`;
//! registering an fd twice is `AlreadyExists`; `modify`/`unregister` of an
//! unknown fd is `NotFound`. A closed fd is the OS error `EBADF`
//! (`raw_os_error() == Some(9)`, "Bad file descriptor"), passed through
//! unchanged so you can match on the errno, as with Python's `OSError.errno`.
//! Closing an fd while it is still in a `Selector` (instead of unregistering
//! it first) is a bug in the caller that the selector can only partly detect:
//! if the fd had been reported ready, the next [`Selector::select`] fails once
//! with an error naming it; if it was quiet, epoll silently forgets it and it is
//! never reported again. Always `unregister` before closing, as in Python.
//!
//! # From Python
//!
//! | Python | evloop |
//! |---|---|
//! | `r, w, x = select.select(rl, wl, xl)` | `let (r, w, x) = select(&rl, &wl, &xl, None)?;` |
//! | timeout `None` / `0` / `0.5` | `None` / `Some(Duration::ZERO)` / `Some(Duration::from_millis(500))` |
//! | `sel = selectors.DefaultSelector()` | `let mut sel = Selector::new()?;` |
//! | `selectors.EVENT_READ \| selectors.EVENT_WRITE` | `Events::READ \| Events::WRITE` |
//! | `sel.register(sock, EVENT_READ, data)` | `sel.register(&sock, Events::READ, data)?` |
//! | `sel.modify(sock, EVENT_WRITE)` | `sel.modify(&sock, Events::WRITE)?` (data kept) |
//! | `key = sel.unregister(sock)` | `let key = sel.unregister(&sock)?;` |
//! | `for key, mask in sel.select(timeout):` | `for (fd, mask) in sel.select(timeout)? {` |
//! | `key.data` | `sel.get(fd).map(Key::data)`, `sel.get_mut(fd)` + [`Key::data_mut`] |
//! | `sel.get_key(sock)` (`KeyError`) | `sel.get(&sock)` (`None`) |
//! | `len(sel.get_map())` / `sel.close()` | `sel.len()` / `drop(sel)` |
//!
//! # When to graduate
//!
//! This layer answers "what is ready?" once per fd per call and leaves the
//! rest to you, which is ideal for learning and for a few dozen connections.
//! The evloop reactor instead keeps fds edge-triggered (no re-arm syscalls),
//! reads each ready fd until `WouldBlock` under a per-turn budget so one busy
//! client cannot starve the others, and owns the buffers and timers. Move to
//! it when connections are many, busy, or need timeouts.
//!
//! # Example
//!
//! ```
//! use std::io::{Read, Write};
//! use std::net::{TcpListener, TcpStream};
//! use std::os::fd::AsRawFd;
//! use std::time::Duration;
//! use evloop::select::{select, Events, Selector};
//!
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let mut client = TcpStream::connect(listener.local_addr()?)?;
//! let (mut server, _) = listener.accept()?;
//! client.write_all(b"ping")?;
//!
//! // Python's select.select([server], [], [], 5.0)
//! let (r, _, _) = select(&[server.as_raw_fd()], &[], &[], Some(Duration::from_secs(5)))?;
//! assert_eq!(r, [server.as_raw_fd()]);
//!
//! // Python's selectors: a key carries your per-fd state.
//! let mut sel = Selector::new()?;
//! sel.register(&server, Events::READ, "greeting")?;
//! let ready = sel.select(Some(Duration::from_secs(5)))?;
//! assert_eq!(ready.len(), 1);
//! for (fd, mask) in ready {
//!     assert!(mask.is_readable());
//!     assert_eq!(sel.get(fd).map(|k| *k.data()), Some("greeting"));
//! }
//! let mut buf = [0; 4];
//! server.read_exact(&mut buf)?;
//! // Drained: nothing is ready any more.
//! assert!(sel.select(Some(Duration::ZERO))?.is_empty());
//! # Ok::<(), std::io::Error>(())
//! ```

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::{self, ErrorKind};
use std::ops::{BitAnd, BitOr, BitOrAssign};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Poll, Token};

/// Waits until some of the given fds are ready, like Python's
/// `select.select(read, write, except, timeout)`.
///
/// Returns the ready subsets `(readable, writable, exceptional)`, each in the
/// order of its input list; an fd listed twice is reported once. See the
/// [module docs](self) for what lands in which list.
///
/// `timeout`: `None` blocks until something is ready (with three empty lists
/// it blocks forever, like `select(2)`); `Some(Duration::ZERO)` polls and
/// returns at once; otherwise it returns three empty lists once the timeout
/// has passed. A sub-millisecond timeout is rounded *up* to 1 ms by mio, so a
/// loop around it sleeps rather than spins. A signal (`EINTR`) restarts the
/// wait with the remaining time and is never returned.
///
/// Every call builds a fresh epoll instance and registers each fd anew
/// (`O(n)` syscalls): fine for a handful of fds, use [`Selector`] for more.
///
/// # Errors
///
/// `InvalidInput` for a negative fd; the OS error `EBADF` for a closed one.
pub fn select(
    read: &[RawFd],
    write: &[RawFd],
    except: &[RawFd],
    timeout: Option<Duration>,
) -> io::Result<(Vec<RawFd>, Vec<RawFd>, Vec<RawFd>)> {
    // epoll accepts each fd once, so merge the three lists into one interest
    // per fd; the first-seen order keeps the syscalls deterministic.
    let mut order = Vec::new();
    let mut wanted: HashMap<RawFd, Interest> = HashMap::new();
    for (list, interest) in [(read, Interest::READABLE), (write, Interest::WRITABLE), (except, EXCEPT)] {
        for &fd in list {
            check_fd(fd)?;
            wanted.entry(fd).and_modify(|have| *have = have.add(interest)).or_insert_with(|| {
                order.push(fd);
                interest
            });
        }
    }

    let mut poll = Poll::new()?;
    // The new epoll takes the lowest free descriptor number: if it equals one of
    // the caller's fds, that fd was closed (and epoll would answer a confusing
    // EINVAL for adding itself). Report the EBADF the caller's fd deserves.
    if order.contains(&poll.as_raw_fd()) {
        const EBADF: i32 = 9;
        return Err(io::Error::from_raw_os_error(EBADF));
    }
    let mut unpollable = HashSet::new();
    for &fd in &order {
        // cannot fail: every fd in `order` was inserted into `wanted`.
        let interest = wanted[&fd];
        if !add(&poll, fd, interest)? {
            unpollable.insert(fd);
        }
    }
    // select(2) reports files epoll cannot watch as always ready, so the call
    // must not sleep when there are any.
    let timeout = if unpollable.is_empty() { timeout } else { Some(Duration::ZERO) };

    let mut events = mio::Events::with_capacity(order.len().max(1));
    wait_for(&mut poll, &mut events, timeout, |events| {
        let mut ready: HashMap<RawFd, Ready> = unpollable.iter().map(|&fd| (fd, Ready::ALWAYS)).collect();
        for event in events.iter() {
            ready.insert(fd_of(event.token()), Ready::from_event(event));
        }
        let pick = |list: &[RawFd], is: fn(&Ready) -> bool| {
            let mut seen = HashSet::new();
            list.iter()
                .copied()
                .filter(|fd| ready.get(fd).is_some_and(is) && seen.insert(*fd))
                .collect::<Vec<_>>()
        };
        let out = (pick(read, |r| r.read), pick(write, |r| r.write), pick(except, |r| r.except));
        let any = !(out.0.is_empty() && out.1.is_empty() && out.2.is_empty());
        any.then_some(out)
    })
    // `poll` is dropped here: closing the epoll fd drops every registration.
}

/// A set of readiness flags: what a [`Selector`] key waits for, and what
/// [`Selector::select`] reports. Python's `EVENT_READ` / `EVENT_WRITE`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Events(u8);

impl Events {
    /// No flags. Not accepted by `register`/`modify` (`InvalidInput`).
    pub const EMPTY: Events = Events(0);
    /// Readable: `read`/`accept` will not block (data, EOF or an error).
    pub const READ: Events = Events(1);
    /// Writable: `write` will not block (room in the send buffer, or an error).
    pub const WRITE: Events = Events(2);

    /// True if no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// True if every flag of `other` is set in `self`.
    pub const fn contains(self, other: Events) -> bool {
        self.0 & other.0 == other.0
    }
    /// True if [`Events::READ`] is set.
    pub const fn is_readable(self) -> bool {
        self.contains(Events::READ)
    }
    /// True if [`Events::WRITE`] is set.
    pub const fn is_writable(self) -> bool {
        self.contains(Events::WRITE)
    }

    fn to_interest(self) -> io::Result<Interest> {
        match (self.is_readable(), self.is_writable()) {
            (true, true) => Ok(Interest::READABLE | Interest::WRITABLE),
            (true, false) => Ok(Interest::READABLE),
            (false, true) => Ok(Interest::WRITABLE),
            (false, false) => Err(io::Error::new(
                ErrorKind::InvalidInput,
                "empty interest: register for Events::READ, Events::WRITE or both",
            )),
        }
    }
}

impl BitOr for Events {
    type Output = Events;
    fn bitor(self, rhs: Events) -> Events {
        Events(self.0 | rhs.0)
    }
}

impl BitOrAssign for Events {
    fn bitor_assign(&mut self, rhs: Events) {
        self.0 |= rhs.0;
    }
}

impl BitAnd for Events {
    type Output = Events;
    fn bitand(self, rhs: Events) -> Events {
        Events(self.0 & rhs.0)
    }
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match (self.is_readable(), self.is_writable()) {
            (true, true) => "READ | WRITE",
            (true, false) => "READ",
            (false, true) => "WRITE",
            (false, false) => "EMPTY",
        };
        write!(f, "Events({text})")
    }
}

/// Something a [`Selector`] can watch: a raw fd, or a reference to anything
/// with a raw fd (`&TcpStream`, `&TcpListener`, `&std::io::Stdin`, ...).
/// Python's "fileobj or fd".
pub trait Selectable {
    /// The file descriptor to watch.
    fn selectable_fd(&self) -> RawFd;
}

impl Selectable for RawFd {
    fn selectable_fd(&self) -> RawFd {
        *self
    }
}

impl<S: AsRawFd + ?Sized> Selectable for &S {
    fn selectable_fd(&self) -> RawFd {
        (**self).as_raw_fd()
    }
}

/// What the except list asks the kernel for. epoll has urgent data (`EPOLLPRI`, mio's
/// `PRIORITY`, which exists only there); on kqueue the read filter carries errors and
/// hang-ups, so elsewhere the except list watches through it, and reports only those.
#[cfg(any(target_os = "linux", target_os = "android"))]
const EXCEPT: Interest = Interest::PRIORITY;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const EXCEPT: Interest = Interest::READABLE;

/// Readiness of one fd as the three `select` lists see it.
#[derive(Debug, Clone, Copy)]
struct Ready {
    read: bool,
    write: bool,
    except: bool,
}

impl Ready {
    /// What `select(2)` says about files epoll cannot watch.
    const ALWAYS: Ready = Ready { read: true, write: true, except: false };

    /// The mapping documented in the module table. Errors and hang-ups count
    /// as readable/writable because the call would return at once (with the
    /// error or EOF), which is all "ready" promises.
    fn from_event(event: &mio::event::Event) -> Ready {
        let hangup = event.is_read_closed() && event.is_write_closed();
        Ready {
            read: event.is_readable() || event.is_read_closed() || event.is_error(),
            write: event.is_writable() || event.is_write_closed() || event.is_error(),
            except: event.is_priority() || event.is_error() || hangup,
        }
    }

    fn as_events(self) -> Events {
        let mut events = Events::EMPTY;
        if self.read {
            events |= Events::READ;
        }
        if self.write {
            events |= Events::WRITE;
        }
        events
    }
}

/// Polls until `collect` finds something, the timeout passes, or an error.
/// `EINTR` and empty wake-ups before the deadline just wait again for the
/// remaining time, so callers see `select(2)`'s contract: empty means timeout.
fn wait_for<R: Default>(
    poll: &mut Poll,
    events: &mut mio::Events,
    timeout: Option<Duration>,
    mut collect: impl FnMut(&mio::Events) -> Option<R>,
) -> io::Result<R> {
    // A deadline too far away to represent is the same as no deadline.
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    loop {
        let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        match poll.poll(events, remaining) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        if let Some(found) = collect(events) {
            return Ok(found);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(R::default());
        }
    }
}

/// Adds `fd` to `poll`. `Ok(false)` means epoll cannot watch this kind of
/// file (`EPERM`: regular files, `/dev/null`), which select(2) treats as
/// always ready; any other error is returned as is (e.g. `EBADF`).
fn add(poll: &Poll, fd: RawFd, interest: Interest) -> io::Result<bool> {
    match poll.registry().register(&mut SourceFd(&fd), token_of(fd), interest) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::PermissionDenied => Ok(false),
        Err(e) => Err(e),
    }
}

fn check_fd(fd: RawFd) -> io::Result<()> {
    if fd < 0 {
        return Err(io::Error::new(
            ErrorKind::InvalidInput,
            format!("invalid file descriptor {fd}: must not be negative"),
        ));
    }
    Ok(())
}

fn not_registered(fd: RawFd) -> io::Error {
    io::Error::new(ErrorKind::NotFound, format!("fd {fd} is not registered"))
}

// The fd itself is the token: it is unique while registered, and makes the
// event -> key lookup a single map access. Only non-negative fds get here.
fn token_of(fd: RawFd) -> Token {
    Token(fd as usize)
}

fn fd_of(token: Token) -> RawFd {
    token.0 as RawFd
}

mod selector;
pub use selector::{Key, Selector, Trigger};

#[cfg(test)]
mod tests;
