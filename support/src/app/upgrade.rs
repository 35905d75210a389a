//! Zero-downtime upgrade, the way nginx does it, for the examples that serve (`echo`, `http`):
//!
//! ```text
//!   old process, SIGUSR2 ──► spawn the same binary, same arguments, its listening sockets
//!        inherited (close-on-exec cleared for the spawn), EVLOOP_LISTEN_FDS=3,5,
//!        EVLOOP_UPGRADE_FROM=<old pid>; watch the child
//!   new process ──► takes the sockets (fds.rs) instead of binding, serves, rewrites the pid
//!        file, sends the old one SIGQUIT
//!   old process, SIGQUIT ──► drains (Reactor::drain): stops accepting, answers what it
//!        accepted, exits when the last connection is gone or --drain-timeout passes
//!   the new process fails to start (exits, or says nothing within 10 s) ──► the old one logs
//!        it and serves on
//! ```
//!
//! Both processes hold the same listening sockets while the new one starts, so no client is
//! refused: a connection waiting in a backlog is accepted by whichever process accepts
//! first, and each process answers what it accepted. The same path starts a server from
//! sockets a supervisor hands it (`LISTEN_FDS`, systemd's socket activation). Descriptors are
//! inherited rather than sent over a socket (`SCM_RIGHTS`) because the new process is a child
//! of the old one anyway, and inheritance needs no protocol between them.

use std::io::{self, Write};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use super::fds;
use crate::cli::Secs;

/// How long a new process has to say it serves before the old one gives up on it.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// `--pid-file` and `--drain-timeout`, for the examples that can be upgraded.
#[derive(Debug, Clone, clap::Args)]
pub struct UpgradeFlags {
    /// Write the process id here (rewritten by the new process of an upgrade: SIGUSR2)
    #[arg(long, value_name = "PATH")]
    pub pid_file: Option<PathBuf>,

    /// On SIGQUIT (or once an upgrade's new process serves), stop accepting and let open
    /// connections finish for at most this long: seconds, or with a unit (2m)
    #[arg(long, value_name = "SECS", default_value_t = Secs::from(30), value_parser = crate::cli::duration_secs)]
    pub drain_timeout: Secs,
}

impl UpgradeFlags {
    pub fn drain_timeout(&self) -> Duration {
        self.drain_timeout.0
    }
}

/// A listening socket this process was handed.
#[derive(Debug)]
pub enum Inherited {
    Tcp(std::net::TcpListener),
    Unix(UnixListener),
}

/// The listening sockets this process was started with (an upgrade's, or a supervisor's);
/// empty when it should bind its own.
///
/// # Errors
///
/// A descriptor that is not a listening TCP or Unix stream socket.
pub fn take_inherited() -> io::Result<Vec<Inherited>> {
    fds::take_listen_fds()?.into_iter().map(classify).collect()
}

fn classify(fd: OwnedFd) -> io::Result<Inherited> {
    let number = fd.as_raw_fd();
    let socket = socket2::Socket::from(fd);
    let not_a_listener = |why: &str| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("inherited descriptor {number}: {why}"))
    };
    if !socket.is_listener().map_err(|e| not_a_listener(&e.to_string()))? {
        return Err(not_a_listener("not a listening socket"));
    }
    // Not handed on to whatever this process starts later, unless an upgrade asks.
    socket.set_cloexec(true)?;
    socket.set_nonblocking(true)?;
    match socket.local_addr()?.as_socket() {
        Some(_) => Ok(Inherited::Tcp(socket.into())),
        None => Ok(Inherited::Unix(UnixListener::from(OwnedFd::from(socket)))),
    }
}

/// What to say in `listening on …` for an inherited socket.
pub fn describe(inherited: &Inherited) -> String {
    match inherited {
        Inherited::Tcp(listener) => {
            listener.local_addr().map_or_else(|e| format!("(inherited: {e})"), |a| a.to_string())
        }
        Inherited::Unix(listener) => {
            match listener.local_addr().ok().and_then(|a| a.as_pathname().map(Path::to_path_buf)) {
                Some(path) => format!("unix:{}", path.display()),
                None => "unix:(unnamed)".into(),
            }
        }
    }
}

/// Whether this process is an upgrade's new one (started by an older process of the same
/// server, which handed it its sockets), until it has asked the old one to drain.
pub fn from_older_process() -> bool {
    std::env::var_os("EVLOOP_UPGRADE_FROM").is_some()
}

/// Now serving: writes the pid file (a rename, so a reader never sees half of it) and, if
/// this process is an upgrade's new one, asks the old one to drain.
pub fn serving(flags: &UpgradeFlags) {
    if let Some(path) = &flags.pid_file {
        if let Err(e) = write_pid_file(path) {
            log::error!("cannot write the pid file {}: {e}", path.display());
        }
    }
    if let Ok(old) = std::env::var("EVLOOP_UPGRADE_FROM") {
        std::env::remove_var("EVLOOP_UPGRADE_FROM");
        match old
            .parse::<u32>()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
            .and_then(fds::quit)
        {
            Ok(()) => log::info!("upgrade: serving; asked the old process {old} to drain"),
            Err(e) => log::error!("upgrade: cannot ask the old process {old} to drain: {e}"),
        }
    }
}

fn write_pid_file(path: &Path) -> io::Result<()> {
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = std::fs::File::create(&temporary)?;
    writeln!(file, "{}", std::process::id())?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}

/// At exit: removes the pid file if it still names this process (after an upgrade it names
/// the new one, which must keep it).
pub fn exiting(flags: &UpgradeFlags) {
    let Some(path) = &flags.pid_file else { return };
    let ours = std::fs::read_to_string(path).is_ok_and(|text| text.trim() == std::process::id().to_string());
    if ours {
        let _ = std::fs::remove_file(path);
    }
}

/// Starts the new process of an upgrade: this binary (as it is on disk now: the path it
/// was started by, so a rebuilt binary is the one that runs), the same arguments, the
/// listening sockets `listeners` inherited.
///
/// # Errors
///
/// The spawn failed (the binary is gone, not executable, ...); the sockets are left as they
/// were.
pub fn spawn_successor(listeners: &[BorrowedFd<'_>]) -> io::Result<Child> {
    let binary = std::env::args_os().next().map(PathBuf::from).filter(|p| p.components().count() > 1);
    let binary = match binary {
        Some(path) => path,
        None => std::env::current_exe()?,
    };
    let set_inheritable = |inheritable: bool| -> io::Result<()> {
        listeners.iter().try_for_each(|fd| socket2::SockRef::from(fd).set_cloexec(!inheritable))
    };
    let numbers: Vec<String> = listeners.iter().map(|fd| fd.as_raw_fd().to_string()).collect();
    set_inheritable(true)?;
    let spawned = Command::new(&binary)
        .args(std::env::args_os().skip(1))
        .env("EVLOOP_LISTEN_FDS", numbers.join(","))
        .env("EVLOOP_UPGRADE_FROM", std::process::id().to_string())
        .spawn();
    // Back to close-on-exec whatever happened: no later child gets them by accident.
    set_inheritable(false)?;
    let child =
        spawned.map_err(|e| io::Error::new(e.kind(), format!("cannot start {}: {e}", binary.display())))?;
    log::info!("upgrade: started {} as process {}", binary.display(), child.id());
    Ok(child)
}

/// Watches an upgrade's new process until it asks this one to drain (`quit_received`): if
/// it exits first, or says nothing within [`START_TIMEOUT`], the upgrade failed and this
/// process serves on. Returns whether the child is still to be watched.
pub fn check_successor(child: &mut Child, started: std::time::Instant, quit_received: bool) -> bool {
    if quit_received {
        return false;
    }
    match child.try_wait() {
        Ok(Some(status)) => {
            log::error!("upgrade failed: the new process {} exited ({status}); still serving", child.id());
            false
        }
        Ok(None) if started.elapsed() > START_TIMEOUT => {
            log::error!(
                "upgrade failed: the new process {} did not start serving within {START_TIMEOUT:?}; \
                 stopped it, still serving",
                child.id()
            );
            let _ = child.kill();
            let _ = child.wait();
            false
        }
        Ok(None) => true,
        Err(e) => {
            log::error!("upgrade: cannot watch the new process {}: {e}", child.id());
            false
        }
    }
}
