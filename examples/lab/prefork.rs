//! Models 8 and 10: preforked processes (UNP's "preforked server, no locking around
//! accept"), and processes × threads. The parent creates the listening socket, forks P
//! children and then only waits; each child accepts on the shared socket and serves what it
//! gets — with one thread (prefork) or with a pool of T threads of its own (processes ×
//! threads, the Apache "worker" design). No fork per connection, crash isolation per process;
//! but P × T bounds the clients served at once, as in the thread pool.

use std::io;
use std::net::TcpListener;

use crate::protocol::Wire;
use crate::sys::{self, Fork};
use crate::{pool, serial};

pub fn run(
    listener: TcpListener,
    processes: usize,
    threads_per_process: usize,
    wire: Wire,
) -> io::Result<()> {
    let parent = std::process::id();
    for _ in 0..processes {
        // SAFETY: this process has one thread: every child is forked before any thread
        // exists (the pools are started inside the children, after their fork).
        match unsafe { sys::fork() }? {
            Fork::Child => {
                sys::die_with_parent(parent);
                let served = if threads_per_process > 1 {
                    pool::run(listener, threads_per_process, wire)
                } else {
                    serial::run(&listener, wire)
                };
                if let Err(e) = served {
                    log::warn!("worker process: {e}");
                }
                sys::exit_child(1);
            }
            Fork::Parent => {}
        }
    }
    // The parent's work is done: the children accept on their own. It waits for them, and
    // ends (with an error) if one dies, rather than run on with fewer workers unnoticed.
    match sys::wait_child()? {
        Some(pid) => Err(io::Error::other(format!("worker process {pid} exited"))),
        None => Ok(()),
    }
}
