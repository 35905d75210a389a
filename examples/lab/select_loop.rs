//! Model 4, a select loop (the classic teaching server, on `evloop::select`): one thread
//! asks which sockets are ready, reads what arrived, computes answers right there and
//! writes them back. Thousands of idle clients cost nothing, but the loop is a single thread:
//! while it computes one fib(N), nobody else is served.
//!
//! A `sleep MS` request is not a `thread::sleep` here (that would stop the loop): the client
//! gets a deadline, `select` is called with a timeout that ends at the earliest deadline,
//! and the reply is written when it has passed. Meanwhile that client is not read from, so
//! its replies stay in request order, and everyone else is served.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use evloop::select::{Events, Selector};

use crate::protocol::{self, Answer, Frame, Request, Wire};

/// Replies queued (or input buffered) for a client above which it is not read from.
const MAX_QUEUED: usize = 64 * 1024;

/// One client: its socket, the bytes of unfinished requests, the replies not yet written.
struct Client {
    stream: TcpStream,
    input: Vec<u8>,
    output: Vec<u8>,
    /// Close once `output` is written (a protocol error was answered, or HTTP asked).
    closing: bool,
    /// A `sleep` in progress: when it ends, for how long, and whether to close after it.
    sleeping: Option<(Instant, u64, bool)>,
    /// What the selector watches this socket for (empty: not registered at all, since a
    /// selector refuses an empty interest set).
    watched: Events,
}

pub fn run(listener: TcpListener, wire: Wire) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener_fd = listener.as_raw_fd();
    let mut selector = Selector::new()?;
    selector.register(&listener, Events::READ, ())?;
    let mut clients: HashMap<RawFd, Client> = HashMap::new();
    let mut buf = [0u8; 4096];
    loop {
        // Wake up for the earliest sleep that ends (a linear scan: fine for a teaching loop;
        // evloop keeps its timers in a heap).
        let now = Instant::now();
        let timeout = clients
            .values()
            .filter_map(|c| c.sleeping.map(|(end, ..)| end.saturating_duration_since(now)))
            .min();
        let mut touched: Vec<RawFd> = Vec::new();
        for (fd, ready) in selector.select(timeout)? {
            if fd == listener_fd {
                accept_all(&listener, &mut clients);
                continue;
            }
            let Some(client) = clients.get_mut(&fd) else { continue };
            if ready.is_readable() && !read_some(client, &mut buf) {
                close(&mut selector, &mut clients, fd);
                continue;
            }
            touched.push(fd);
        }
        // Newly accepted clients (never watched yet), clients with events, and clients whose
        // sleep has ended all get a turn.
        let now = Instant::now();
        for (&fd, client) in &clients {
            let woke = client.sleeping.is_some_and(|(end, ..)| end <= now);
            if woke || client.watched.is_empty() && client.sleeping.is_none() {
                touched.push(fd);
            }
        }
        touched.sort_unstable();
        touched.dedup();
        for fd in touched {
            let Some(client) = clients.get_mut(&fd) else { continue };
            serve(client, wire, now);
            if !write_replies(client) || (client.closing && client.output.is_empty()) {
                close(&mut selector, &mut clients, fd);
                continue;
            }
            watch(&mut selector, client)?;
        }
    }
}

fn accept_all(listener: &TcpListener, clients: &mut HashMap<RawFd, Client>) {
    loop {
        match listener.accept() {
            Ok((stream, _peer)) => {
                if stream.set_nonblocking(true).and_then(|()| stream.set_nodelay(true)).is_err() {
                    continue;
                }
                let client = Client {
                    stream,
                    input: Vec::new(),
                    output: Vec::new(),
                    closing: false,
                    sleeping: None,
                    watched: Events::EMPTY,
                };
                clients.insert(client.stream.as_raw_fd(), client);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) => {
                crate::accept_failed(&e);
                return;
            }
        }
    }
}

/// Reads what is there into the client's input. `false`: the client is gone.
fn read_some(client: &mut Client, buf: &mut [u8]) -> bool {
    match client.stream.read(buf) {
        Ok(0) => false,
        Ok(n) => {
            client.input.extend_from_slice(&buf[..n]);
            true
        }
        Err(e) => e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted,
    }
}

/// Finishes an ended sleep, then answers the complete requests in the input until one
/// starts a sleep (computing fib inline: this is where the loop stalls).
fn serve(client: &mut Client, wire: Wire, now: Instant) {
    if let Some((end, ms, close)) = client.sleeping {
        if end > now {
            return;
        }
        client.sleeping = None;
        client.output.extend_from_slice(&protocol::reply(wire, Ok(Answer::Slept(ms)), close));
        client.closing |= close;
    }
    while !client.closing && client.sleeping.is_none() {
        match protocol::next_frame(wire, &client.input) {
            Frame::Incomplete => return,
            Frame::Invalid(rejection) => {
                client.output.extend_from_slice(&protocol::reply(wire, Err(rejection), true));
                client.input.clear();
                client.closing = true;
            }
            Frame::Request { len, request, close } => {
                client.input.drain(..len);
                match request {
                    Ok(Request::Sleep(ms)) => {
                        client.sleeping = Some((now + Duration::from_millis(ms), ms, close));
                    }
                    other => {
                        let answer = other.map(protocol::perform_blocking);
                        client.output.extend_from_slice(&protocol::reply(wire, answer, close));
                        client.closing |= close;
                    }
                }
            }
        }
    }
}

/// Writes as much of the pending replies as the socket takes. `false`: the client is gone.
fn write_replies(client: &mut Client) -> bool {
    while !client.output.is_empty() {
        match client.stream.write(&client.output) {
            Ok(0) => return false,
            Ok(n) => {
                client.output.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

/// Watches the client for what it can use now: reading while it is neither sleeping nor
/// closing and its buffers are below the limit (a client that sends without reading its
/// replies is not read from until they drain), writing while replies are pending.
fn watch(selector: &mut Selector<()>, client: &mut Client) -> io::Result<()> {
    let mut wanted = Events::EMPTY;
    let room = client.input.len() < MAX_QUEUED && client.output.len() < MAX_QUEUED;
    if room && !client.closing && client.sleeping.is_none() {
        wanted |= Events::READ;
    }
    if !client.output.is_empty() {
        wanted |= Events::WRITE;
    }
    let fd = client.stream.as_raw_fd();
    match (client.watched.is_empty(), wanted.is_empty()) {
        (true, true) => {}
        (true, false) => selector.register(fd, wanted, ())?,
        (false, true) => {
            selector.unregister(fd)?;
        }
        (false, false) if wanted != client.watched => selector.modify(fd, wanted)?,
        (false, false) => {}
    }
    client.watched = wanted;
    Ok(())
}

fn close(selector: &mut Selector<()>, clients: &mut HashMap<RawFd, Client>, fd: RawFd) {
    if let Some(client) = clients.remove(&fd) {
        if !client.watched.is_empty() {
            let _ = selector.unregister(fd);
        }
    }
}
