// Run it:      cargo run --example echo_select [-- --addr 127.0.0.1:10000]
// Talk to it:  nc 127.0.0.1 10000      (type lines; they come back)
// Stop it:     type any line (or Ctrl-D, i.e. EOF) in the server's terminal.
//              EOF stops it too, so with stdin from /dev/null it exits at once:
//              keep stdin open (e.g. `sleep infinity | cargo run ...`) to daemonise.
// Debug logs:  RUST_LOG=debug cargo run --example echo_select
//
// The classic Python `select.select()` echo server (PyMOTW's), ported line by
// line: one loop, three lists in, three lists out, everything non-blocking.
// Differences from the Python original, on purpose:
// - stdin is watched too, and any input on it (or EOF) stops the server;
// - a client that only half-closes still gets everything queued for it;
// - a client with too much unsent output is not read from until it catches
//   up, so a client that writes but never reads cannot eat all our memory.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::process::ExitCode;

use clap::Parser;
use evloop::select::select;

/// echo_select: the classic select() echo server, on evloop::select.
#[derive(Debug, Parser)]
#[command(name = "echo_select", version, after_help = "Any line (or EOF) on stdin stops the server.")]
struct Args {
    /// Address to listen on (a name is resolved, as Python's bind does)
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:10000")]
    addr: String,
}

/// Stop reading from a client while this many bytes wait to be echoed.
const MAX_QUEUED: usize = 64 * 1024;

/// Descriptors kept free for ourselves: stdin/out/err, the listener, and the epoll that
/// every `select()` call opens.
const RESERVED_FDS: usize = 16;

/// Most clients served at once: a little under the descriptor limit, so `accept` and
/// `select` never run out of descriptors (which would stop the server). Beyond it the
/// listener is not watched and new clients wait in the kernel's backlog.
fn max_clients() -> usize {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1024);
    soft.saturating_sub(RESERVED_FDS).max(1)
}

struct Client {
    stream: TcpStream,
    queue: VecDeque<Vec<u8>>, // chunks read but not yet echoed
    queued: usize,            // total bytes in `queue`
    read_closed: bool,        // the client sent EOF (maybe only half-closed)
}

fn main() -> ExitCode {
    let args = Args::parse();
    // At info by default, as every other example (RUST_LOG=debug for every client).
    evloop_support::app::init_logging();
    match run(&args.addr) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(addr: &str) -> io::Result<()> {
    let server = TcpListener::bind(addr)?;
    // Non-blocking so a client that vanishes between select and accept
    // cannot freeze the loop.
    server.set_nonblocking(true)?;
    let mut stdout = io::stdout();
    writeln!(stdout, "listening on {}", server.local_addr()?)?;
    stdout.flush()?;

    let stdin = io::stdin();
    let (server_fd, stdin_fd) = (server.as_raw_fd(), stdin.as_raw_fd());
    let mut clients: HashMap<RawFd, Client> = HashMap::new();
    let max_clients = max_clients();

    loop {
        // Python keeps `inputs`/`outputs` lists up to date by hand; we
        // rebuild them from each client's state, which cannot drift.
        let mut inputs = vec![stdin_fd];
        if clients.len() < max_clients {
            inputs.push(server_fd);
        }
        let mut outputs = Vec::new();
        for (&fd, c) in &clients {
            if !c.read_closed && c.queued < MAX_QUEUED {
                inputs.push(fd);
            }
            if !c.queue.is_empty() {
                outputs.push(fd);
            }
        }
        let every_client: Vec<RawFd> = clients.keys().copied().collect();
        let (readable, writable, exceptional) = match select(&inputs, &outputs, &every_client, None) {
            Ok(ready) => ready,
            // Out of descriptors (another part of the process, or the system, used them
            // up): transient, so wait a moment instead of giving up on every client.
            Err(e) if matches!(e.raw_os_error(), Some(23 | 24)) => {
                log::warn!("select: {e}; retrying shortly");
                std::thread::sleep(std::time::Duration::from_millis(100));
                continue;
            }
            Err(e) => return Err(e),
        };

        // Clients are closed only at the end of the turn: until then their fd
        // numbers stay taken, so an accept() below cannot reuse a number that
        // the `writable`/`exceptional` lists still mention.
        let mut closing = HashSet::new();
        for fd in readable {
            if fd == server_fd {
                accept(&server, &mut clients);
            } else if fd == stdin_fd {
                let mut line = [0u8; 1024];
                match stdin.lock().read(&mut line) {
                    Ok(0) => log::info!("stdin closed, stopping"),
                    Ok(_) => log::info!("input on stdin, stopping"),
                    Err(e) => log::info!("stdin error ({e}), stopping"),
                }
                return Ok(());
            } else if let Some(c) = clients.get_mut(&fd) {
                if let Err(e) = read_some(c) {
                    log::debug!("client {fd}: read error: {e}");
                    closing.insert(fd);
                } else if c.read_closed && c.queue.is_empty() {
                    closing.insert(fd); // nothing left to echo: done
                }
            }
        }
        for fd in writable {
            let Some(c) = clients.get_mut(&fd).filter(|_| !closing.contains(&fd)) else {
                continue;
            };
            match write_some(c) {
                Err(e) => {
                    log::debug!("client {fd}: write error: {e}");
                    closing.insert(fd);
                }
                // A half-closed client has had its last byte: finish it.
                Ok(()) if c.read_closed && c.queue.is_empty() => {
                    closing.insert(fd);
                }
                Ok(()) => {}
            }
        }
        for fd in exceptional {
            log::debug!("client {fd}: exceptional condition (error or hang-up)");
            closing.insert(fd);
        }
        for fd in closing {
            // Dropping the stream closes the socket (and sends our FIN).
            if clients.remove(&fd).is_some() {
                log::info!("client {fd}: closed");
            }
        }
    }
}

fn accept(server: &TcpListener, clients: &mut HashMap<RawFd, Client>) {
    match server.accept() {
        Ok((stream, addr)) => {
            if let Err(e) = stream.set_nonblocking(true) {
                log::debug!("{addr}: set_nonblocking: {e}");
                return;
            }
            log::info!("client {}: connected from {addr}", stream.as_raw_fd());
            let client = Client { stream, queue: VecDeque::new(), queued: 0, read_closed: false };
            clients.insert(client.stream.as_raw_fd(), client);
        }
        Err(e) if e.kind() == ErrorKind::WouldBlock => {} // client gave up
        Err(e) => log::debug!("accept: {e}"),
    }
}

/// One 16-byte read, as in the Python original: small on purpose, so you
/// can watch select report the same socket again while data is left.
fn read_some(c: &mut Client) -> io::Result<()> {
    let mut buf = [0u8; 16];
    match c.stream.read(&mut buf) {
        Ok(0) => c.read_closed = true,
        Ok(n) => {
            c.queue.push_back(buf[..n].to_vec());
            c.queued += n;
        }
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
        Err(e) => return Err(e),
    }
    Ok(())
}

/// Sends (part of) the oldest queued chunk; select will call us again.
fn write_some(c: &mut Client) -> io::Result<()> {
    let Some(chunk) = c.queue.front_mut() else {
        return Ok(());
    };
    match c.stream.write(chunk) {
        Ok(n) => {
            c.queued -= n;
            chunk.drain(..n);
            if chunk.is_empty() {
                c.queue.pop_front();
            }
            Ok(())
        }
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => Ok(()),
        Err(e) => Err(e),
    }
}
