//! Listening sockets, set up with `socket2`: the only file that tunes sockets by hand.
//!
//! ```text
//! SocketAddr ─► socket2::Socket (SO_REUSEADDR, [SO_REUSEPORT], non-blocking, listen(backlog)) ─► mio::net::TcpListener
//! Path       ─► lock its directory ─► stale socket file? remove it ─► bind, listen(backlog) ─► mio::net::UnixListener
//! SocketAddr ─► socket2::Socket (UDP, non-blocking) ─► bind ─► mio::net::UdpSocket (datagram endpoints)
//! Path       ─► as for a listener, without listen ─► mio::net::UnixDatagram
//! Path       ─► lock its directory ─► still the caller's socket file? remove it (at exit)
//! ```
//!
//! `std::net::TcpListener::bind` offers no backlog or `SO_REUSEPORT`, so listeners are built
//! here from a raw socket. Accepted connections stay plain `mio::net::TcpStream`s: every
//! write goes through them, and they send with `MSG_NOSIGNAL`, so a reset peer yields `EPIPE`
//! rather than a `SIGPIPE` that would kill a host process which never ignored it.

use std::io;
use std::net::SocketAddr;
use std::os::fd::BorrowedFd;
use std::path::Path;

use socket2::{Domain, Protocol, Socket, Type};

use crate::platform::ACCEPT_INHERITS_NODELAY;

/// How to open a listening socket.
#[derive(Debug, Clone, Copy)]
pub struct ListenOptions {
    /// `listen(2)` backlog.
    pub backlog: i32,
    /// Set `SO_REUSEPORT`, so several sockets (one per worker thread or process) can bind
    /// the same address and the kernel spreads new connections across them.
    pub reuse_port: bool,
}

impl Default for ListenOptions {
    fn default() -> Self {
        ListenOptions { backlog: 1024, reuse_port: false }
    }
}

/// Opens a non-blocking listening socket on `addr`.
///
/// `SO_REUSEADDR` is always set so a restarted server can bind while old connections sit in
/// `TIME_WAIT`.
///
/// # Errors
///
/// Whatever `socket`, `setsockopt`, `bind` or `listen` return, with the address added to
/// the message (for example "address in use: 127.0.0.1:7000").
pub fn listen(addr: SocketAddr, options: ListenOptions) -> io::Result<mio::net::TcpListener> {
    let with_addr = |e: io::Error| io::Error::new(e.kind(), format!("{e}: {addr}"));
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if options.reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into()).map_err(with_addr)?;
    socket.listen(options.backlog).map_err(with_addr)?;
    Ok(mio::net::TcpListener::from_std(socket.into()))
}

/// Opens a non-blocking Unix-domain listening socket at `path`.
///
/// A socket file left behind by a server that is gone (nothing accepts on it: connecting
/// is refused) is removed and the path reused, under an exclusive lock on the directory so
/// that of servers started at once on one stale path exactly one takes it over; a path where a server still listens, a
/// path that exists and is not a socket, a path too long for `sockaddr_un` (108 bytes on
/// Linux, 104 on macOS) and permission errors are refused with the path in the message.
///
/// # Errors
///
/// As above, or whatever `socket`, `bind` or `listen` return.
pub fn listen_unix(path: &Path, options: ListenOptions) -> io::Result<mio::net::UnixListener> {
    let probe = |path: &Path| std::os::unix::net::UnixStream::connect(path).map(drop);
    // Listening before the lock is released: a server that comes next must find the path
    // answered, not refused (refused reads as stale, and it would take the path over).
    let listen =
        |socket: &Socket| socket.listen(options.backlog).map_err(|e| with_path(path, e, "cannot listen"));
    let socket = bind_unix_path(path, Type::STREAM, probe, listen)?;
    Ok(mio::net::UnixListener::from_std(socket.into()))
}

/// Opens a non-blocking Unix datagram socket bound at `path`, taking over a stale socket
/// file exactly as [`listen_unix`] does (a live one answers a datagram `connect`).
///
/// # Errors
///
/// As for [`listen_unix`].
pub fn bind_unix_datagram(path: &Path) -> io::Result<mio::net::UnixDatagram> {
    let probe = |path: &Path| std::os::unix::net::UnixDatagram::unbound()?.connect(path);
    // A bound datagram socket answers a connect at once: nothing more to do under the lock.
    let socket = bind_unix_path(path, Type::DGRAM, probe, |_| Ok(()))?;
    Ok(mio::net::UnixDatagram::from_std(socket.into()))
}

/// Opens a non-blocking UDP socket bound to `addr`. An IPv6 address also receives IPv4
/// where the system's default allows it (`net.ipv6.bindv6only`).
///
/// # Errors
///
/// What `socket` or `bind` return, with the address in the message.
pub fn bind_udp(addr: SocketAddr) -> io::Result<mio::net::UdpSocket> {
    let with_addr = |e: io::Error| io::Error::new(e.kind(), format!("{e}: {addr}"));
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into()).map_err(with_addr)?;
    Ok(mio::net::UdpSocket::from_std(socket.into()))
}

/// "cannot bind /run/x/echo.sock: No such file or directory (os error 2)": the OS's own
/// words go with the path, which alone did not say what to fix.
fn with_path(path: &Path, e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// A non-blocking Unix socket of `kind` bound at `path`, after taking over a stale socket
/// file there: one that `probe` (a connect of the right kind) finds nobody answering. `ready`
/// runs under the lock too, after the bind: whatever makes the socket answer `probe`.
fn bind_unix_path(
    path: &Path,
    kind: Type,
    probe: impl Fn(&Path) -> io::Result<()>,
    ready: impl FnOnce(&Socket) -> io::Result<()>,
) -> io::Result<Socket> {
    let address = socket2::SockAddr::unix(path).map_err(|e| with_path(path, e, "unusable socket path"))?;
    // Check, remove and bind under the directory's lock: without it, two servers started at
    // once could both judge the file stale, and the second remove the first one's fresh
    // socket and bind its own, leaving the first listening where nobody can reach it. The
    // lock is held only for these few system calls; the socket outlives it, and a server
    // that comes next finds the path answered.
    let takeover = lock_directory_of(path);
    if let Ok(metadata) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if !metadata.file_type().is_socket() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("exists and is not a socket: {}", path.display()),
            ));
        }
        match probe(path) {
            Ok(()) => {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("a server is listening there already: {}", path.display()),
                ))
            }
            // Nobody answers: a stale file from a server that is gone. Only under the lock
            // is it safe to remove; without one, it is refused instead.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused && takeover.is_some() => {
                log::info!("removing stale socket file {}", path.display());
                std::fs::remove_file(path).map_err(|e| with_path(path, e, "cannot remove stale socket"))?;
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!(
                        "a stale socket file is in the way and its directory cannot be locked to \
                         take it over safely; remove it: {}",
                        path.display()
                    ),
                ))
            }
            Err(e) => return Err(with_path(path, e, "cannot check existing socket")),
        }
    }
    let socket = Socket::new(Domain::UNIX, kind, None)?;
    socket.set_nonblocking(true)?;
    socket.bind(&address).map_err(|e| with_path(path, e, "cannot bind"))?;
    ready(&socket)?;
    Ok(socket)
}

/// Removes the socket file at `path` if `still_yours` says so of what is there now (say,
/// the same device and inode as the file the caller bound), under the directory lock
/// [`listen_unix`] takes to take over a stale path: no takeover can slip between the check
/// and the removal, and so remove the file of a server that took the path over meanwhile.
/// For a server's exit, as Redis and nginx remove their socket files. Returns whether it
/// removed the file; `false` too if nothing is there.
///
/// # Errors
///
/// The directory cannot be locked (then nothing is removed), or the removal failed.
///
/// # Examples
///
/// ```
/// use std::os::unix::fs::MetadataExt;
/// # fn main() -> std::io::Result<()> {
/// let dir = std::env::temp_dir().join(format!("evloop-doc-remove-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let path = dir.join("server.sock");
/// let listener = evloop::net::listen_unix(&path, evloop::net::ListenOptions::default())?;
/// let bound = std::fs::metadata(&path)?.ino();
/// // ... serve; then, at exit:
/// drop(listener);
/// assert!(evloop::net::remove_unix_socket_file(&path, |now| now.ino() == bound)?);
/// assert!(!path.exists());
/// # std::fs::remove_dir_all(&dir)
/// # }
/// ```
pub fn remove_unix_socket_file(
    path: &Path,
    still_yours: impl FnOnce(&std::fs::Metadata) -> bool,
) -> io::Result<bool> {
    let _lock = lock_directory_of(path).ok_or_else(|| {
        io::Error::other(format!("cannot lock the directory of {} to remove it safely", path.display()))
    })?;
    use std::os::unix::fs::FileTypeExt;
    let yours =
        std::fs::symlink_metadata(path).is_ok_and(|now| now.file_type().is_socket() && still_yours(&now));
    if yours {
        std::fs::remove_file(path)?;
    }
    Ok(yours)
}

/// An exclusive `flock` on the directory that holds `path`, released when the returned file
/// is dropped; `None` if the directory cannot be opened or locked (then no stale file is
/// taken over). The directory, not a lock file beside the socket, so nothing is left behind
/// and no lock file's own removal can race.
fn lock_directory_of(path: &Path) -> Option<std::fs::File> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let file = std::fs::File::open(directory).ok()?;
    match file.lock() {
        Ok(()) => Some(file),
        Err(e) => {
            log::debug!("cannot lock {} for a socket takeover: {e}", directory.display());
            None
        }
    }
}

/// Sets `TCP_NODELAY` on a listening socket, once, so accepted connections start with it;
/// returns whether they do. Linux copies the option from the listener to every socket it
/// accepts (the accepted socket is cloned from the listener), so there the reactor makes no
/// `setsockopt` per connection; elsewhere it says `false` and each accepted socket is set
/// on its own. (`accepted_sockets_have_nodelay_from_their_listener` in `reactor/tests.rs`
/// checks the inheritance with `getsockopt`.)
pub(crate) fn set_listener_nodelay(listener: &mio::net::TcpListener) -> io::Result<bool> {
    socket2::SockRef::from(listener).set_tcp_nodelay(true)?;
    Ok(ACCEPT_INHERITS_NODELAY)
}

/// Makes a socket non-blocking (for adopted streams, which may come from blocking code).
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    socket2::SockRef::from(&fd).set_nonblocking(true)
}

/// Is this `accept` error about running out of a resource (file descriptors, process or
/// system wide; kernel memory)? Those are transient: they clear when connections close, so
/// the listener backs off and retries instead of spinning or failing.
pub(crate) fn is_resource_exhaustion(error: &io::Error) -> bool {
    // ENOMEM = 12, ENFILE = 23, EMFILE = 24 (Linux and the BSDs), ENOBUFS = 105 (Linux).
    // std has no ErrorKind for the descriptor limits.
    matches!(error.raw_os_error(), Some(12 | 23 | 24 | 105))
}

/// A TCP listener the reactor can serve ([`Reactor::add_listener`](crate::Reactor::add_listener)):
/// std's or mio's. The reactor makes it non-blocking itself, so a `std` listener straight
/// from `bind`, or a mio one made `from_std` of a blocking socket, cannot stall the loop.
pub trait IntoTcpListener: sealed::Sealed {
    /// The listener as mio's type (the descriptor unchanged).
    fn into_mio(self) -> mio::net::TcpListener;
}

/// A Unix-domain listener the reactor can serve
/// ([`Reactor::add_unix_listener`](crate::Reactor::add_unix_listener)): std's or mio's,
/// made non-blocking by the reactor as for [`IntoTcpListener`].
pub trait IntoUnixListener: sealed::Sealed {
    /// The listener as mio's type (the descriptor unchanged).
    fn into_mio(self) -> mio::net::UnixListener;
}

impl IntoTcpListener for std::net::TcpListener {
    fn into_mio(self) -> mio::net::TcpListener {
        mio::net::TcpListener::from_std(self)
    }
}

impl IntoTcpListener for mio::net::TcpListener {
    fn into_mio(self) -> mio::net::TcpListener {
        self
    }
}

impl IntoUnixListener for std::os::unix::net::UnixListener {
    fn into_mio(self) -> mio::net::UnixListener {
        mio::net::UnixListener::from_std(self)
    }
}

impl IntoUnixListener for mio::net::UnixListener {
    fn into_mio(self) -> mio::net::UnixListener {
        self
    }
}

/// Only the four listener types above: the traits are for naming them in signatures.
mod sealed {
    pub trait Sealed {}
    impl Sealed for std::net::TcpListener {}
    impl Sealed for mio::net::TcpListener {}
    impl Sealed for std::os::unix::net::UnixListener {}
    impl Sealed for mio::net::UnixListener {}
}
