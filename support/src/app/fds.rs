//! The examples' `unsafe` outside the lab: taking ownership of listening sockets a process
//! was started with, and signalling the process it takes over from. std offers neither (an
//! inherited descriptor is just a number until something claims it; `kill` by PID is libc).
//! Each `unsafe` block has its safety argument beside it; nothing else in `app` touches
//! `libc`.
//!
//! Two ways listening sockets arrive, both as descriptors open across `exec`:
//!
//! - `EVLOOP_LISTEN_FDS=3,5`: from an older process of the same server, in an upgrade
//!   (`upgrade.rs`), the way nginx passes its `NGINX` variable.
//! - `LISTEN_FDS=N` with `LISTEN_PID` equal to this process's id: from a supervisor, by
//!   systemd's socket activation convention (`sd_listen_fds(3)`): descriptors 3 to 3+N-1.
//!
//! The variables are removed once read, so a process this one starts later does not take
//! them for its own.

use std::collections::BTreeSet;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// The listening descriptors this process was handed, owned (each exactly once); empty if
/// it was handed none.
///
/// # Errors
///
/// A variable that is not a list of descriptor numbers, or names one that is not open.
pub fn take_listen_fds() -> io::Result<Vec<OwnedFd>> {
    let numbers = listen_fd_numbers()?;
    for name in ["EVLOOP_LISTEN_FDS", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"] {
        std::env::remove_var(name);
    }
    numbers
        .into_iter()
        .map(|fd| {
            // SAFETY: `fcntl(F_GETFD)` only reads the descriptor's flags; on a number that is
            // not open it fails with EBADF and touches nothing.
            if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
                let cause = io::Error::last_os_error();
                return Err(io::Error::new(cause.kind(), format!("inherited descriptor {fd}: {cause}")));
            }
            // SAFETY: the descriptor is open (checked just above) and nothing in this process
            // owns it: it was inherited across `exec`, it is claimed here once (the numbers
            // are deduplicated, and the variables naming them are removed before anything
            // else can read them), and the examples call this once, at start-up.
            Ok(unsafe { OwnedFd::from_raw_fd(fd) })
        })
        .collect()
}

/// The descriptor numbers the environment names, deduplicated.
fn listen_fd_numbers() -> io::Result<BTreeSet<RawFd>> {
    let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidInput, what);
    if let Ok(list) = std::env::var("EVLOOP_LISTEN_FDS") {
        return list
            .split(',')
            .map(|n| n.trim().parse::<RawFd>().ok().filter(|&fd| fd > 2))
            .collect::<Option<BTreeSet<RawFd>>>()
            .ok_or_else(|| {
                invalid(format!("EVLOOP_LISTEN_FDS={list:?}: expected descriptor numbers like 3,4"))
            });
    }
    let for_us =
        std::env::var("LISTEN_PID").ok().and_then(|pid| pid.parse::<u32>().ok()) == Some(std::process::id());
    match std::env::var("LISTEN_FDS") {
        Ok(count) if for_us => {
            let count: RawFd =
                count.parse().map_err(|_| invalid(format!("LISTEN_FDS={count:?}: not a count")))?;
            // systemd's convention: the descriptors start right after stderr.
            Ok((3..3 + count).collect())
        }
        _ => Ok(BTreeSet::new()),
    }
}

/// Asks process `pid` to drain and exit (`SIGQUIT`, nginx's graceful stop).
///
/// # Errors
///
/// What `kill` said (no such process, not permitted).
pub fn quit(pid: u32) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pid out of range"))?;
    // SAFETY: `kill` takes two integers and only sends a signal; a wrong pid is an error.
    if unsafe { libc::kill(pid, libc::SIGQUIT) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
