//! Model 9, descriptor passing (UNP's "preforked server, descriptor passing"): only the
//! parent accepts; it hands each connection to an idle one of P preforked children by
//! sending the descriptor over a UNIX socket (`SCM_RIGHTS`), then closes its own copy. A
//! child writes one byte back on the same socket when it has finished a connection, which
//! makes it idle again. The parent waits on the listener and the P sockets at once with a
//! select loop (`evloop::select`), and stops accepting while every child is busy: new clients
//! then wait in the kernel's backlog, as with a pool of P threads.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::net::UnixStream;

use evloop::select::{Events, Selector};

use crate::protocol::{self, Wire};
use crate::sys::{self, Fork};

/// What the parent knows of a child.
struct Child {
    channel: UnixStream,
    busy: bool,
}

pub fn run(listener: TcpListener, processes: usize, wire: Wire) -> io::Result<()> {
    let parent = std::process::id();
    let mut children: Vec<Child> = Vec::with_capacity(processes);
    for _ in 0..processes {
        let (ours, theirs) = UnixStream::pair()?;
        // SAFETY: this process has one thread: the parent accepts and passes descriptors on
        // its only thread, and the children start none.
        match unsafe { sys::fork() }? {
            Fork::Child => {
                sys::die_with_parent(parent);
                // The listener and the channels to the other children are not ours.
                drop(children);
                drop(ours);
                drop(listener);
                sys::exit_child(worker(theirs, wire));
            }
            Fork::Parent => children.push(Child { channel: ours, busy: false }),
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
    loop {
        for (fd, _ready) in selector.select(None)? {
            if fd == listener_fd {
                let Some(idle) = children.iter().position(|child| !child.busy) else { continue };
                match listener.accept() {
                    Ok((stream, _peer)) => {
                        sys::send_fd(&children[idle].channel, stream.as_fd())?;
                        // The child now holds the connection; ours closes as `stream` drops.
                        children[idle].busy = true;
                    }
                    Err(e) => crate::accept_failed(&e),
                }
            } else if let Some(index) = child_of(&selector, fd) {
                let mut done = [0u8; 64];
                match (&children[index].channel).read(&mut done) {
                    Ok(0) => return Err(io::Error::other(format!("worker process {index} exited"))),
                    Ok(_) => children[index].busy = false,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        // Accept only while some child is idle; with every child busy, the listener is not
        // watched (it would be reported ready on every call) and clients wait in the backlog.
        let any_idle = children.iter().any(|child| !child.busy);
        if any_idle != accepting {
            if any_idle {
                selector.register(&listener, Events::READ, None)?;
            } else {
                selector.unregister(&listener)?;
            }
            accepting = any_idle;
        }
    }
}

/// The child index registered for `fd`, if it is a child's channel.
fn child_of(selector: &Selector<Option<usize>>, fd: RawFd) -> Option<usize> {
    selector.get(fd).and_then(|key| *key.data())
}

/// A child: receives connections from the parent, serves each to the end, and says when it
/// is done; returns its exit status when the parent closes the channel.
fn worker(mut channel: UnixStream, wire: Wire) -> i32 {
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
