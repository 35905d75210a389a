//! Model 9, descriptor passing (UNP's "preforked server, descriptor passing"): only the
//! parent accepts; it hands each connection to one of P preforked children by sending the
//! descriptor over a UNIX socket (`SCM_RIGHTS`), then closes its own copy. The children never
//! touch the listening socket. Here connections go round-robin, so a child busy with a long
//! request holds up the connections queued behind it — one in P of them; UNP's version has
//! children report when they are idle, at the cost of a second channel of messages.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

use crate::protocol;
use crate::sys::{self, Fork};

pub fn run(listener: TcpListener, processes: usize) -> io::Result<()> {
    let parent = std::process::id();
    let mut channels = Vec::with_capacity(processes);
    for _ in 0..processes {
        let (ours, theirs) = UnixStream::pair()?;
        // SAFETY: this process has one thread: the parent accepts and passes descriptors on
        // its only thread, and the children start none.
        match unsafe { sys::fork() }? {
            Fork::Child => {
                sys::die_with_parent(parent);
                // The channels to the other children, and the listener, are not ours.
                drop(channels);
                drop(ours);
                drop(listener);
                sys::exit_child(worker(&theirs));
            }
            Fork::Parent => channels.push(ours),
        }
    }
    let mut next = 0;
    loop {
        let stream = match listener.accept() {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                crate::accept_failed(&e);
                continue;
            }
        };
        sys::send_fd(&channels[next], stream.as_fd())?;
        // The child now holds the connection; ours is closed as `stream` drops.
        next = (next + 1) % channels.len();
    }
}

/// A child: receives connections from the parent and serves them one at a time; returns
/// its exit status when the parent closes the channel.
fn worker(channel: &UnixStream) -> i32 {
    loop {
        match sys::recv_fd(channel) {
            Ok(Some(fd)) => {
                if let Err(e) = protocol::serve_blocking(TcpStream::from(fd)) {
                    log::debug!("connection failed: {e}");
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
