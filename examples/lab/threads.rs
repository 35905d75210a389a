//! Model 2, a thread per connection (UNP's "concurrent server, one thread per client"): the
//! accepting thread spawns a thread for each connection. Blocking code, real parallelism
//! for CPU-bound requests; the costs are a thread creation per connection, a stack per
//! client (memory grows with the number of connections) and no bound on either.

use std::io;
use std::net::TcpListener;
use std::thread;

use crate::protocol::{self, Wire};

pub fn run(listener: TcpListener, wire: Wire) -> io::Result<()> {
    loop {
        match listener.accept() {
            Ok((stream, _peer)) => {
                let spawned = thread::Builder::new().name("conn".into()).spawn(move || {
                    if let Err(e) = protocol::serve_blocking(stream, wire) {
                        log::debug!("connection failed: {e}");
                    }
                });
                if let Err(e) = spawned {
                    // Out of threads (or memory for stacks): this client is dropped.
                    log::warn!("could not spawn a thread: {e}");
                }
            }
            Err(e) => crate::accept_failed(&e),
        }
    }
}
