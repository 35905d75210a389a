//! Model 3, a pool of threads that each accept (UNP's "prethreaded server, each thread calls
//! accept"): K threads are started up front and block in `accept` on the same listening
//! socket; the kernel hands each new connection to one of them. No creation cost per
//! connection and bounded resources, but at most K clients are served at once: client K+1
//! waits in the backlog until a thread is free, however idle the K others are.

use std::io;
use std::net::TcpListener;
use std::thread;

use crate::protocol::Wire;
use crate::serial;

pub fn run(listener: TcpListener, threads: usize, wire: Wire) -> io::Result<()> {
    let mut workers = Vec::with_capacity(threads);
    for _ in 0..threads {
        let listener = listener.try_clone()?;
        workers.push(thread::Builder::new().name("pool".into()).spawn(move || serial::run(&listener, wire))?);
    }
    for worker in workers {
        let _ = worker.join();
    }
    Ok(())
}
