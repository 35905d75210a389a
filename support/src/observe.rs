//! What a test can see of a server from outside, so that it waits for a condition instead
//! of sleeping and hoping: the server's TCP sockets as the kernel lists them
//! (`/proc/net/tcp`: state and the bytes queued each way), a process's open descriptors and
//! undelivered signals, and [`wait_until`] to poll any of these under a deadline.
//!
//! The kernel's view answers the questions a sleep used to guess at: "has the server read
//! what I sent?" (its socket's receive queue is empty), "has it accepted them?" (the
//! listener's accept queue is empty), "has it closed them?" (the sockets are gone), "is it
//! blocked on a full socket?" (bytes wait in its send queue), "is that listener closed
//! everywhere?" ([`wait_until_refused`]). Linux only, like the tests.
//!
//! ```no_run
//! use std::time::Duration;
//! use evloop_support::observe::{tcp_sockets, wait_until, TcpState};
//! # let port = 7000;
//! // Every connection to the server on `port` has been read to the end by it.
//! wait_until(Duration::from_secs(10), "the server read every request", || {
//!     let served = tcp_sockets(port).into_iter().filter(|s| s.state == TcpState::Established);
//!     served.clone().count() == 50 && served.into_iter().all(|s| s.unread == 0)
//! });
//! ```

use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

/// Polls `done` every 5 ms until it holds; panics naming `what` after `within` (generous:
/// the bound catches a hang, it does not time the code).
#[track_caller]
pub fn wait_until(within: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out after {within:?} waiting until {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until `connect` is refused: the socket that answered it is closed in every process
/// that held it. A test that closes a listening socket cannot assert the refusal at once,
/// because while the socket was open another test of the same binary may have spawned a
/// process, and the child holds a copy of every descriptor until its `exec` closes them
/// (they are close-on-exec): until then the old socket still answers. Call it without
/// turning the reactor in between, so that nothing but those copies can delay the refusal.
#[track_caller]
pub fn wait_until_refused(what: &str, mut connect: impl FnMut() -> std::io::Result<()>) {
    wait_until(
        Duration::from_secs(10),
        what,
        || matches!(connect(), Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused),
    );
}

/// The TCP states a test asks about (the kernel's numbering, `include/net/tcp_states.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpState {
    Established,
    /// The peer's FIN arrived; our side has not closed yet.
    CloseWait,
    Listen,
    /// Any other state (handshakes, FIN_WAIT, TIME_WAIT, …).
    Other(u8),
}

/// One socket whose local port is the one asked about: the server's side of a connection,
/// or its listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelSocket {
    pub state: TcpState,
    /// The peer's port.
    pub peer_port: u16,
    /// Bytes received and not yet read by the application; for a listener, the connections
    /// waiting in its accept queue.
    pub unread: u64,
    /// Bytes written by the application and not yet acknowledged by the peer.
    pub unsent: u64,
}

/// The sockets on local port `port` (IPv4 and IPv6), as `/proc/net/tcp{,6}` lists them now.
pub fn tcp_sockets(port: u16) -> Vec<KernelSocket> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|text| text.lines().skip(1).filter_map(parse_line).collect::<Vec<_>>())
        .filter(|&(local, _)| local == port)
        .map(|(_, socket)| socket)
        .collect()
}

/// The kernel's view of the other end of `stream` (on loopback: the server's socket for
/// this connection), if it still exists.
pub fn far_end(stream: &TcpStream) -> Option<KernelSocket> {
    let (near, far) = (stream.local_addr().ok()?.port(), stream.peer_addr().ok()?.port());
    tcp_sockets(far).into_iter().find(|s| s.peer_port == near && s.state != TcpState::Listen)
}

/// The kernel's view of `stream` itself: what has arrived for it unread, what it sent that
/// is not yet acknowledged.
pub fn near_end(stream: &TcpStream) -> Option<KernelSocket> {
    let (near, far) = (stream.local_addr().ok()?.port(), stream.peer_addr().ok()?.port());
    tcp_sockets(near).into_iter().find(|s| s.peer_port == far)
}

/// How many connections wait in the accept queue of the listener on `port` (0 if none).
pub fn accept_queue(port: u16) -> u64 {
    tcp_sockets(port).iter().find(|s| s.state == TcpState::Listen).map_or(0, |l| l.unread)
}

/// The server side of established connections on `port`: how many, and their unread bytes.
pub fn established(port: u16) -> (usize, u64) {
    tcp_sockets(port)
        .iter()
        .filter(|s| s.state == TcpState::Established)
        .fold((0, 0), |(count, unread), s| (count + 1, unread + s.unread))
}

/// Whether process `pid` is running: not gone, and not a zombie waiting to be reaped.
pub fn alive(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state follows the command name, which may itself hold spaces and parentheses.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .is_some_and(|state| state != "Z")
}

/// How many descriptors process `pid` has open (0 once it is gone).
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|dir| dir.count()).unwrap_or(0)
}

/// Whether signal `signo` was sent to process `pid` and not yet delivered (its bit in
/// `ShdPnd`, the signals pending for the whole process, in `/proc/PID/status`).
pub fn signal_pending(pid: u32, signo: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let mask = status.lines().find_map(|line| line.strip_prefix("ShdPnd:")).map(str::trim);
    mask.and_then(|hex| u64::from_str_radix(hex, 16).ok()).is_some_and(|bits| bits & (1 << (signo - 1)) != 0)
}

/// `sl local_address rem_address st tx_queue:rx_queue …`, addresses as `HEXIP:HEXPORT`.
fn parse_line(line: &str) -> Option<(u16, KernelSocket)> {
    let mut fields = line.split_whitespace().skip(1);
    let port_of = |address: &str| u16::from_str_radix(address.rsplit_once(':')?.1, 16).ok();
    let local = port_of(fields.next()?)?;
    let peer_port = port_of(fields.next()?)?;
    let state = match u8::from_str_radix(fields.next()?, 16).ok()? {
        0x01 => TcpState::Established,
        0x08 => TcpState::CloseWait,
        0x0A => TcpState::Listen,
        other => TcpState::Other(other),
    };
    let (unsent, unread) = fields.next()?.split_once(':')?;
    let unsent = u64::from_str_radix(unsent, 16).ok()?;
    let unread = u64::from_str_radix(unread, 16).ok()?;
    Some((local, KernelSocket { state, peer_port, unread, unsent }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    #[test]
    fn a_line_of_proc_net_tcp_parses() {
        let line = "   3: 0100007F:1B58 0100007F:D2F0 01 00000004:0000000A 00:00000000 00000000  1000 0 1 1";
        let (port, socket) = parse_line(line).unwrap();
        assert_eq!(port, 7000);
        assert_eq!(
            socket,
            KernelSocket { state: TcpState::Established, peer_port: 54000, unread: 10, unsent: 4 }
        );
    }

    #[test]
    fn the_kernel_shows_unread_bytes_and_the_accept_queue() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        wait_until(Duration::from_secs(5), "the connection waits in the accept queue", || {
            tcp_sockets(port).iter().any(|s| s.state == TcpState::Listen && s.unread == 1)
        });
        let (mut served, _) = listener.accept().unwrap();
        client.write_all(b"hello").unwrap();
        wait_until(Duration::from_secs(5), "5 bytes wait unread", || established(port) == (1, 5));
        assert_eq!(far_end(&client).map(|s| s.unread), Some(5));
        served.read_exact(&mut [0; 5]).unwrap();
        assert_eq!(established(port), (1, 0));
        served.write_all(b"hi").unwrap();
        wait_until(Duration::from_secs(5), "2 bytes arrive", || {
            near_end(&client).is_some_and(|s| s.unread == 2)
        });
        client.read_exact(&mut [0; 2]).unwrap();
        // (A socket closed with bytes unread would send a reset instead of a FIN.)
        drop(client);
        wait_until(Duration::from_secs(5), "the peer's FIN is seen", || {
            tcp_sockets(port).iter().any(|s| s.state == TcpState::CloseWait)
        });
    }
}
