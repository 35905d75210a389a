//! Model 4, a select loop (the classic teaching server, on `evloop::select`): one thread
//! asks which sockets are ready, reads what arrived, computes answers right there and
//! writes them back. Thousands of idle clients cost nothing, but the loop is a single thread:
//! while it computes one fib(N), nobody else is served.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};

use evloop::select::{Events, Selector};

use crate::protocol;

/// Replies queued for a client above which it is not read from.
const MAX_QUEUED: usize = 64 * 1024;

/// One client: its socket, the bytes of an unfinished request line, the replies not yet
/// written.
struct Client {
    stream: TcpStream,
    input: Vec<u8>,
    output: Vec<u8>,
    /// Close once `output` is written (a protocol error was answered).
    closing: bool,
}

pub fn run(listener: TcpListener) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener_fd = listener.as_raw_fd();
    let mut selector = Selector::new()?;
    selector.register(&listener, Events::READ, ())?;
    let mut clients: HashMap<RawFd, Client> = HashMap::new();
    let mut buf = [0u8; 4096];
    loop {
        for (fd, ready) in selector.select(None)? {
            if fd == listener_fd {
                accept_all(&listener, &mut selector, &mut clients)?;
                continue;
            }
            let Some(client) = clients.get_mut(&fd) else { continue };
            let open = (!ready.is_readable() || read_requests(client, &mut buf)) && write_replies(client);
            if !open || (client.closing && client.output.is_empty()) {
                let _ = selector.unregister(fd);
                clients.remove(&fd);
                continue;
            }
            // A client that sends without reading its replies is not read from until they
            // drain, so the replies waiting for it stay bounded.
            let wanted = match client.output.len() {
                0 => Events::READ,
                n if n < MAX_QUEUED => Events::READ | Events::WRITE,
                _ => Events::WRITE,
            };
            selector.modify(fd, wanted)?;
        }
    }
}

fn accept_all(
    listener: &TcpListener,
    selector: &mut Selector<()>,
    clients: &mut HashMap<RawFd, Client>,
) -> io::Result<()> {
    loop {
        match listener.accept() {
            Ok((stream, _peer)) => {
                stream.set_nonblocking(true)?;
                stream.set_nodelay(true)?;
                selector.register(&stream, Events::READ, ())?;
                let client = Client { stream, input: Vec::new(), output: Vec::new(), closing: false };
                clients.insert(client.stream.as_raw_fd(), client);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) => {
                crate::accept_failed(&e);
                return Ok(());
            }
        }
    }
}

/// Reads what is there and answers every complete line (computing inline). `false`: the
/// client is gone.
fn read_requests(client: &mut Client, buf: &mut [u8]) -> bool {
    match client.stream.read(buf) {
        Ok(0) => return false,
        Ok(n) => client.input.extend_from_slice(&buf[..n]),
        Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => return true,
        Err(_) => return false,
    }
    while let Some(end) = client.input.iter().position(|&b| b == b'\n') {
        let reply = protocol::answer(&client.input[..end]);
        client.output.extend_from_slice(&reply);
        client.input.drain(..=end);
    }
    if client.input.len() >= protocol::MAX_LINE {
        client.output.extend_from_slice(b"ERR line too long\n");
        client.input.clear();
        client.closing = true;
    }
    true
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
