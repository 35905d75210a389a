//! Models 9 and 12, descriptor passing (UNP's "preforked server, descriptor passing"): only
//! the parent accepts; it hands each connection to one of P preforked children by sending
//! the descriptor over a UNIX socket (`SCM_RIGHTS`), then closes its own copy. The parent
//! is a pure acceptor and dispatcher: it never reads a request.
//!
//! ```text
//!   client ──► listener ──accept──► parent ──send_fd (channel i)──► child i ──► serves it
//!                                     ▲                                 │
//!                                     └──── one byte per finished ──────┘
//!                                           connection (load[i] -= 1)
//! ```
//!
//! The children come in two kinds, and the parent is the same for both:
//! - **blocking** (model 9, `fd-passing`, UNP's design): a child serves one connection at a
//!   time with blocking I/O (`protocol::serve_blocking`). It can hold one connection.
//! - **event loops** (model 12, `fd-passing-loops`): a child runs one evloop [`Reactor`]
//!   whose own source (`Reactor::register`) is its channel; when the channel is readable it
//!   receives every waiting descriptor and hands each to the reactor (`Reactor::adopt`),
//!   served by the event-loop model's handler ([`LabConn`], with one offload thread per
//!   child, as in `event-loops`: the cores are shared out among the children). It can hold
//!   [`LOOP_CAPACITY`] connections at once, and waits on all of them together.
//!
//! **What a child reports back: one byte per finished connection.** The parent keeps each
//! child's load (connections passed minus bytes received), passes a new connection to the
//! least-loaded child (ties in turn, so an idle server spreads its clients over every
//! process), and stops accepting while every child is at capacity: new clients then wait in
//! the kernel's backlog. For a blocking child that is UNP's "I am idle again" byte,
//! unchanged (capacity 1: load 0 is idle); for a loop child the same byte makes the load a
//! count. Round-robin would need no report at all, but it sends a new client to a child
//! that may be holding many long requests while another holds none; the byte costs one
//! small write per connection, in the child, after the client has its answer. Counting
//! finished connections rather than reporting the current load keeps every message the
//! same size and the protocol free of races: the parent's count is never below the truth
//! (it adds before the child knows, subtracts after the child is done), so it never passes
//! a child more than its capacity.
//!
//! A loop child writes its bytes on its non-blocking channel from `on_close`; should the
//! channel be full (the parent behind in reading), it counts what it could not write and
//! writes it when the channel is writable again — a loop must never block on its parent.
//!
//! The parent is a dispatcher as in `systemd`'s socket activation with `Accept=yes` (the
//! manager accepts, the service gets the connection's descriptor), or a front process
//! handing connections to workers. nginx's master does *not* do this: it forks event-loop
//! workers that accept on the inherited listener themselves (the `event-loops` and
//! `prefork` models); a dispatcher costs a `sendmsg` per connection and a hop through one
//! process, and in return chooses which worker gets each client.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;

use evloop::mio::Interest;
use evloop::select::{Events, Selector};
use evloop::{Config, Reactor};

use crate::event_loop::LabConn;
use crate::protocol::{self, Wire};
use crate::sys::{self, Fork};

/// How the children serve the connections passed to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Children {
    /// One at a time, blocking I/O (model 9).
    Blocking,
    /// Many at a time, on an evloop reactor each (model 12).
    Loops,
}

/// Connections a loop child holds at most (its reactor's `max_conns`).
pub const LOOP_CAPACITY: usize = 4096;

/// What the parent knows of a child.
struct Child {
    channel: UnixStream,
    /// Connections passed to it and not yet reported finished.
    load: usize,
}

pub fn run(listener: TcpListener, processes: usize, kind: Children, wire: Wire) -> io::Result<()> {
    let capacity = match kind {
        Children::Blocking => 1,
        Children::Loops => LOOP_CAPACITY,
    };
    let parent = std::process::id();
    let mut children: Vec<Child> = Vec::with_capacity(processes);
    for _ in 0..processes {
        let (ours, theirs) = UnixStream::pair()?;
        // SAFETY: this process has one thread: the parent accepts and passes descriptors on
        // its only thread; a loop child starts its reactor's threads after its fork.
        match unsafe { sys::fork() }? {
            Fork::Child => {
                sys::die_with_parent(parent);
                // The listener and the channels to the other children are not ours.
                drop(children);
                drop(ours);
                drop(listener);
                let status = match kind {
                    Children::Blocking => blocking_child(theirs, wire),
                    Children::Loops => loop_child(theirs, wire),
                };
                sys::exit_child(status);
            }
            Fork::Parent => children.push(Child { channel: ours, load: 0 }),
        }
    }

    // `None` marks the listener; `Some(i)` child i's channel.
    let mut selector: Selector<Option<usize>> = Selector::new()?;
    selector.register(&listener, Events::READ, None)?;
    for (index, child) in children.iter().enumerate() {
        selector.register(&child.channel, Events::READ, Some(index))?;
    }
    let listener_fd = listener.as_raw_fd();
    let mut accepting = true;
    // Where the search for the least-loaded child starts: after the one chosen last.
    let mut next = 0;
    loop {
        for (fd, _ready) in selector.select(None)? {
            if fd == listener_fd {
                let Some(chosen) = least_loaded(&children, capacity, next) else { continue };
                match listener.accept() {
                    Ok((stream, _peer)) => {
                        sys::send_fd(&children[chosen].channel, stream.as_fd()).map_err(|e| {
                            io::Error::other(format!("passing a connection to worker process {chosen}: {e}"))
                        })?;
                        // The child now holds the connection; ours closes as `stream` drops.
                        children[chosen].load += 1;
                        next = (chosen + 1) % children.len();
                    }
                    Err(e) => crate::accept_failed(&e),
                }
            } else if let Some(index) = child_of(&selector, fd) {
                let mut finished = [0u8; 256];
                match (&children[index].channel).read(&mut finished) {
                    Ok(0) => return Err(io::Error::other(format!("worker process {index} exited"))),
                    // One byte per finished connection.
                    Ok(count) => children[index].load = children[index].load.saturating_sub(count),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        // Accept only while some child has room; with every child full, the listener is not
        // watched (it would be reported ready on every call) and clients wait in the backlog.
        let room = children.iter().any(|child| child.load < capacity);
        if room != accepting {
            if room {
                selector.register(&listener, Events::READ, None)?;
            } else {
                selector.unregister(&listener)?;
            }
            accepting = room;
        }
    }
}

/// The child with the fewest connections, below `capacity`; among equals, the first from
/// `start` on (so equal children take turns).
fn least_loaded(children: &[Child], capacity: usize, start: usize) -> Option<usize> {
    (0..children.len())
        .map(|offset| (start + offset) % children.len())
        .filter(|&index| children[index].load < capacity)
        .min_by_key(|&index| children[index].load)
}

/// The child index registered for `fd`, if it is a child's channel.
fn child_of(selector: &Selector<Option<usize>>, fd: RawFd) -> Option<usize> {
    selector.get(fd).and_then(|key| *key.data())
}

/// A blocking child: receives connections from the parent, serves each to the end, and
/// says when it is done; returns its exit status when the parent closes the channel.
fn blocking_child(mut channel: UnixStream, wire: Wire) -> i32 {
    loop {
        match sys::recv_fd(&channel) {
            Ok(Some(fd)) => {
                if let Err(e) = protocol::serve_blocking(TcpStream::from(fd), wire) {
                    log::debug!("connection failed: {e}");
                }
                if channel.write_all(b"i").is_err() {
                    return 1;
                }
            }
            Ok(None) => return 0,
            Err(e) => {
                log::warn!("receiving a descriptor: {e}");
                return 1;
            }
        }
    }
}

/// A loop child: one reactor serving every connection the parent passes it; returns its exit
/// status when the reactor stops (the parent closed the channel) or fails.
fn loop_child(channel: UnixStream, wire: Wire) -> i32 {
    match serve_passed(channel, wire) {
        Ok(()) => 0,
        Err(e) => {
            log::warn!("worker process: {e}");
            1
        }
    }
}

fn serve_passed(channel: UnixStream, wire: Wire) -> io::Result<()> {
    // Non-blocking for the reactor; the reports share the setting (a `try_clone` is the same
    // open socket), so a report never blocks the loop either.
    channel.set_nonblocking(true)?;
    let report = Rc::new(Report { channel: channel.try_clone()?, unsent: Cell::new(0) });
    let config = Config {
        max_conns: LOOP_CAPACITY,
        offload_threads: 1,
        slow_callback: Some(crate::app::SLOW_CALLBACK),
        ..Config::default()
    };
    let mut reactor = Reactor::new(config)?;
    let channel = evloop::mio::net::UnixStream::from_std(channel);
    // Readable: descriptors are waiting (or the parent has gone). Writable: there is room
    // again for reports that did not fit. Events are edge-triggered, so each callback
    // receives until the channel is empty; flushing when there is nothing unsent costs
    // nothing, so both are done on every event.
    reactor.register(channel, Interest::READABLE | Interest::WRITABLE, move |channel, _ready, reactor| {
        report.flush();
        receive(channel, reactor, &report, wire);
    })?;
    reactor.run()
}

/// Adopts every descriptor waiting on `channel` into `reactor`.
fn receive(
    channel: &mut evloop::mio::net::UnixStream,
    reactor: &mut Reactor<LabConn>,
    report: &Rc<Report>,
    wire: Wire,
) {
    loop {
        match sys::recv_fd(channel) {
            Ok(Some(fd)) => {
                let finished = Rc::clone(report);
                let conn = LabConn::new(wire, true).on_close(move || finished.finished());
                // `adopt` makes the stream non-blocking and registers it; `on_open` runs next.
                if let Err(e) = reactor.adopt(TcpStream::from(fd), conn) {
                    // Not connected any more (the client gave up while it was in flight),
                    // or no room in the poll set: the parent still counts it, so report it.
                    log::debug!("adopting a passed connection: {e}");
                    report.finished();
                }
            }
            Ok(None) => {
                // The parent closed the channel: finish what is being served, then exit.
                reactor.handle().shutdown();
                return;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                // Its descriptor was lost on the way (this process had none left); the
                // parent counted a connection, so it is reported finished.
                log::warn!("receiving a descriptor: {e}");
                report.finished();
            }
            Err(e) => {
                log::warn!("receiving a descriptor: {e}; stopping");
                reactor.handle().shutdown();
                return;
            }
        }
    }
}

/// Bytes a report is written from: one per finished connection.
const FINISHED: [u8; 64] = [b'f'; 64];

/// A loop child's side of the protocol: one byte per finished connection, written on the
/// non-blocking channel. What the channel cannot take now is counted and written when it
/// is writable again (the channel source's callback flushes).
struct Report {
    channel: UnixStream,
    unsent: Cell<usize>,
}

impl Report {
    fn finished(&self) {
        self.unsent.set(self.unsent.get() + 1);
        self.flush();
    }

    fn flush(&self) {
        while self.unsent.get() > 0 {
            let count = self.unsent.get().min(FINISHED.len());
            match (&self.channel).write(&FINISHED[..count]) {
                Ok(0) => return,
                Ok(written) => self.unsent.set(self.unsent.get() - written),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    // The parent is gone; the parent-death signal is on its way.
                    log::debug!("reporting finished connections: {e}");
                    return;
                }
            }
        }
    }
}
