//! Model 1, serial (UNP's "iterative server"): one thread accepts a connection and serves it
//! to the end before accepting the next. The simplest server there is; every client waits
//! for every client before it, so one slow request or one idle connection stops everyone.

use std::io;
use std::net::TcpListener;

use crate::protocol::{self, Wire};

/// Accepts and serves one connection at a time, forever. Also the body of each thread of
/// the pool and of each preforked process: they are serial servers sharing one socket.
pub fn run(listener: &TcpListener, wire: Wire) -> io::Result<()> {
    loop {
        match listener.accept() {
            Ok((stream, _peer)) => {
                if let Err(e) = protocol::serve_blocking(stream, wire) {
                    log::debug!("connection failed: {e}");
                }
            }
            Err(e) => crate::accept_failed(&e),
        }
    }
}
