//! Model 7, a process per connection (UNP's "concurrent server, one child per client", the
//! classic inetd-style Unix server): the parent accepts, forks, and goes back to `accept`;
//! the child serves the connection and exits. Full isolation (a crash takes one client
//! down) and real parallelism, paid with a `fork` per connection: copying the page tables,
//! the child's exit and its reaping.

use std::io;
use std::net::TcpListener;

use crate::protocol::{self, Wire};
use crate::sys::{self, Fork};

pub fn run(listener: TcpListener, wire: Wire) -> io::Result<()> {
    let parent = std::process::id();
    loop {
        // Finished children are collected before each accept, so none stays a zombie for
        // long (and their CPU time is counted in this process's `cutime`).
        sys::reap_exited();
        let stream = match listener.accept() {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                crate::accept_failed(&e);
                continue;
            }
        };
        // SAFETY: this process has one thread: the fork model starts none (the parent only
        // accepts and forks), so the child's copy of the heap is consistent.
        match unsafe { sys::fork() } {
            Ok(Fork::Child) => {
                sys::die_with_parent(parent);
                let status = match protocol::serve_blocking(stream, wire) {
                    Ok(()) => 0,
                    Err(_) => 1,
                };
                sys::exit_child(status);
            }
            // The child has its own copy of the connection; closing ours leaves it open.
            Ok(Fork::Parent) => drop(stream),
            Err(e) => log::warn!("fork failed, dropping a client: {e}"),
        }
    }
}
