//! The Unix socket files a server removes when it exits cleanly, as Redis and nginx do, so
//! a stopped server leaves no file behind.
//!
//! ```text
//! bound (app::listen) or handed over by an older process of ours ─► claim(path): remember
//!                                                                    its device and inode
//! the reactor has stopped ─► remove_claimed(handed_over): unless an upgrade's new process
//!                            took the sockets, remove each claimed path that is still the
//!                            file claimed (evloop::net::remove_unix_socket_file)
//! ```
//!
//! What is never removed:
//! - a socket a supervisor handed over (systemd's `LISTEN_FDS`): its file is the
//!   supervisor's, which binds it once and serves it across restarts;
//! - any socket while a successor exists (an upgrade under way or done): the new process
//!   serves that very file, inherited;
//! - a path whose file is no longer the one claimed (another device or inode): a newer
//!   server took the path over once ours was stale, and the file is its own. The check and
//!   the removal hold the directory lock that `evloop::net::listen_unix` takes to take a
//!   stale path over, so no such takeover can slip between them.
//!
//! A process that exits at once (a second SIGINT) or crashes leaves its file: the next
//! server at the path finds it stale and takes it over.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A socket file this process created or inherited from an older process of its own.
struct Claimed {
    path: PathBuf,
    device: u64,
    inode: u64,
}

/// Process-wide, like the signals and the exit they serve.
static CLAIMED: Mutex<Vec<Claimed>> = Mutex::new(Vec::new());

/// Remembers the socket file at `path` (as it is now) to remove at exit.
pub fn claim(path: &Path) {
    match std::fs::symlink_metadata(path) {
        Ok(metadata) => {
            let claimed = Claimed { path: path.to_path_buf(), device: metadata.dev(), inode: metadata.ino() };
            CLAIMED.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(claimed);
        }
        Err(e) => log::warn!("socket file {}: {e}; it will not be removed at exit", path.display()),
    }
}

/// Removes every claimed socket file that is still the one claimed, unless `handed_over`:
/// an upgrade's new process holds (or is taking) the sockets, and serves those files. Called
/// once the reactor has stopped.
pub fn remove_claimed(handed_over: bool) {
    if handed_over {
        return;
    }
    let claimed = std::mem::take(&mut *CLAIMED.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
    for file in claimed {
        let unchanged = |now: &std::fs::Metadata| now.dev() == file.device && now.ino() == file.inode;
        match evloop::net::remove_unix_socket_file(&file.path, unchanged) {
            Ok(true) => log::info!("removed socket file {}", file.path.display()),
            Ok(false) => log::info!("socket file {} is another server's now; left", file.path.display()),
            Err(e) => log::warn!("cannot remove socket file {}: {e}", file.path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A claimed file is removed; one replaced since (another inode) is left; nothing is
    /// removed while a successor exists. One test: the claims and the flag are process-wide.
    #[test]
    fn removes_only_the_claimed_file_and_not_while_a_successor_serves() {
        let dir = std::env::temp_dir().join(format!("evloop-socket-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ours = dir.join("ours.sock");
        let replaced = dir.join("replaced.sock");
        let _ours_listener = std::os::unix::net::UnixListener::bind(&ours).unwrap();
        let first = std::os::unix::net::UnixListener::bind(&replaced).unwrap();
        claim(&ours);
        claim(&replaced);
        // Another server took `replaced` over: a new file at the same path. Made beside it and
        // renamed over it while the first is still open, so the two cannot share an inode.
        let _theirs = std::os::unix::net::UnixListener::bind(dir.join("theirs.sock")).unwrap();
        std::fs::rename(dir.join("theirs.sock"), &replaced).unwrap();
        drop(first);

        remove_claimed(true);
        assert!(ours.exists() && replaced.exists(), "removed while a successor serves");

        remove_claimed(false);
        assert!(!ours.exists(), "the claimed file is still there");
        assert!(replaced.exists(), "removed the file of the server that took the path over");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
