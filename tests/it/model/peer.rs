//! The model's peer: the far end of one connection, driven by the test from the same thread
//! as the reactor through a non-blocking socket with small buffers (so a peer that stops
//! reading fills them within kilobytes). It records everything it sent and received.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use evloop::Stream;
use socket2::SockRef;

/// How a peer reads, step after step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// Everything there is.
    All,
    /// At most a few hundred bytes a step.
    Slowly,
    /// Nothing: its receive buffer fills, then the connection's send buffer.
    Stopped,
}

enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// One peer and what it saw.
pub struct Peer {
    socket: Option<Socket>,
    pub reading: Reading,
    /// Bytes the kernel took from this peer, in order.
    pub sent: Vec<u8>,
    /// Bytes this peer read, in order.
    pub got: Vec<u8>,
    /// It sent FIN (`shutdown(Write)`).
    pub fin_sent: bool,
    /// It reset the connection (TCP: `SO_LINGER` 0 and close; Unix: close).
    pub reset: bool,
    /// A read returned 0: the connection's FIN arrived.
    pub eof: bool,
    /// A read or write failed (the connection reset or was aborted).
    pub error: Option<io::ErrorKind>,
    /// Its next byte's index in its own stream.
    next_byte: u32,
    id: u8,
}

/// Socket buffers this small make "the peer stopped reading" reach the reactor quickly.
const BUFFER: usize = 4 * 1024;

/// A connected pair: the reactor's end (to adopt) and the peer.
pub fn pair(unix: bool, id: u8) -> (Stream, Peer) {
    let (ours, socket): (Stream, Socket) = if unix {
        let (ours, peer) = UnixStream::pair().unwrap();
        for end in [SockRef::from(&ours), SockRef::from(&peer)] {
            end.set_send_buffer_size(BUFFER).unwrap();
        }
        peer.set_nonblocking(true).unwrap();
        (ours.into(), Socket::Unix(peer))
    } else {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        peer.set_recv_buffer_size(BUFFER).unwrap();
        peer.set_send_buffer_size(BUFFER).unwrap();
        peer.connect(&listener.local_addr().unwrap().into()).unwrap();
        let peer = TcpStream::from(peer);
        let (ours, _) = listener.accept().unwrap();
        SockRef::from(&ours).set_send_buffer_size(BUFFER).unwrap();
        SockRef::from(&ours).set_recv_buffer_size(BUFFER).unwrap();
        peer.set_nonblocking(true).unwrap();
        (ours.into(), Socket::Tcp(peer))
    };
    let peer = Peer {
        socket: Some(socket),
        reading: Reading::All,
        sent: Vec::new(),
        got: Vec::new(),
        fin_sent: false,
        reset: false,
        eof: false,
        error: None,
        next_byte: 0,
        id,
    };
    (ours, peer)
}

impl Peer {
    fn io(&mut self) -> Option<&mut dyn ReadWrite> {
        match self.socket.as_mut()? {
            Socket::Tcp(s) => Some(s),
            Socket::Unix(s) => Some(s),
        }
    }

    /// Is the connection still usable from this end for writing?
    pub fn can_send(&self) -> bool {
        self.socket.is_some() && !self.fin_sent && self.error.is_none()
    }

    /// Is it still worth reading (no EOF, error or reset yet)?
    pub fn can_read(&self) -> bool {
        self.socket.is_some() && !self.eof && self.error.is_none()
    }

    /// Writes up to `n` bytes of its own stream; records what the kernel took.
    pub fn send(&mut self, n: usize) -> usize {
        if !self.can_send() {
            return 0;
        }
        let (start, id) = (self.next_byte, u32::from(self.id));
        let bytes: Vec<u8> =
            (0..n as u32).map(|i| (start + i).wrapping_mul(7).wrapping_add(id * 101) as u8).collect();
        let result = self.io().expect("checked above").write(&bytes);
        match result {
            Ok(taken) => {
                self.sent.extend_from_slice(&bytes[..taken]);
                self.next_byte += taken as u32;
                taken
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => 0,
            Err(e) => {
                self.error = Some(e.kind());
                0
            }
        }
    }

    /// Reads as its `Reading` says (or everything, `all`); records what arrived.
    pub fn read(&mut self, all: bool) {
        let limit = match (all, self.reading) {
            (true, _) | (false, Reading::All) => usize::MAX,
            (false, Reading::Slowly) => 300,
            (false, Reading::Stopped) => return,
        };
        let mut buf = [0u8; 16 * 1024];
        let mut taken = 0;
        while taken < limit && self.can_read() {
            let want = buf.len().min(limit - taken);
            let result = self.io().expect("can_read checked it").read(&mut buf[..want]);
            match result {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    self.got.extend_from_slice(&buf[..n]);
                    taken += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.error = Some(e.kind()),
            }
        }
    }

    /// Sends FIN: the peer has finished sending; it keeps reading.
    pub fn half_close(&mut self) {
        if !self.can_send() {
            return;
        }
        let result = match self.socket.as_ref().expect("can_send checked it") {
            Socket::Tcp(s) => s.shutdown(Shutdown::Write),
            Socket::Unix(s) => s.shutdown(Shutdown::Write),
        };
        match result {
            Ok(()) => self.fin_sent = true,
            Err(e) => self.error = Some(e.kind()),
        }
    }

    /// Resets the connection (TCP: RST; Unix: a close, which the other end sees as a reset
    /// if it had unread data, else as EOF) and forgets the socket.
    pub fn reset(&mut self) {
        let Some(socket) = self.socket.take() else { return };
        if let Socket::Tcp(s) = &socket {
            SockRef::from(s).set_linger(Some(Duration::ZERO)).unwrap();
        }
        drop(socket);
        self.reset = true;
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}
