//! The lab's only `unsafe` code: the process primitives the process models need and std does
//! not offer — `fork`, `_exit`, `waitpid`, the parent-death signal, `kill` by PID, and passing a descriptor
//! over a UNIX socket (`SCM_RIGHTS`). Each is a small wrapper with its safety argument next
//! to the `unsafe` block; nothing else in the lab touches `libc`.

use std::io;
use std::mem;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr;

/// Which side of a `fork` this is.
pub enum Fork {
    Parent,
    Child,
}

/// `fork(2)`: the process is duplicated; both copies return from here.
///
/// # Safety
///
/// The calling process must have exactly one thread. A child of a multi-threaded process
/// gets a copy of memory in which other threads may have held locks (the allocator's among
/// them) that nobody will ever release; with one thread there are no such locks, and the
/// child can go on running ordinary Rust code.
pub unsafe fn fork() -> io::Result<Fork> {
    // SAFETY: `fork` takes no arguments; the single-thread requirement is the caller's.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Fork::Child),
        _ => Ok(Fork::Parent),
    }
}

/// Ends a forked child with `status`, without unwinding, destructors or `atexit` handlers:
/// those belong to the parent's process image (a second flush of a copied stdout buffer, for
/// instance, would print its contents twice).
pub fn exit_child(status: i32) -> ! {
    // SAFETY: `_exit` is async-signal-safe, takes an integer and does not return.
    unsafe { libc::_exit(status) }
}

/// Makes the kernel kill this (child) process when its parent dies, so killing a model's
/// server by its PID never leaves worker processes behind.
pub fn die_with_parent(parent: u32) {
    // SAFETY: `prctl(PR_SET_PDEATHSIG, signal)` takes integers and changes only this
    // process's own attribute.
    let set = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) };
    if set != 0 {
        log::warn!("prctl(PR_SET_PDEATHSIG): {}", io::Error::last_os_error());
    }
    // The parent may have died before the prctl; then this process was re-parented already.
    // SAFETY: `getppid` takes no arguments and cannot fail.
    if unsafe { libc::getppid() } as u32 != parent {
        exit_child(0);
    }
}

/// Collects every child that has exited, without waiting, so none lingers as a zombie (and
/// its CPU time is added to this process's `cutime`/`cstime`).
pub fn reap_exited() {
    // SAFETY: `waitpid` with a null status pointer writes nothing; `WNOHANG` never blocks.
    while unsafe { libc::waitpid(-1, ptr::null_mut(), libc::WNOHANG) } > 0 {}
}

/// Waits for any child to exit; `Ok(None)` when there are no children left.
pub fn wait_child() -> io::Result<Option<u32>> {
    loop {
        // SAFETY: as in `reap_exited`; without `WNOHANG` it blocks until a child exits.
        match unsafe { libc::waitpid(-1, ptr::null_mut(), 0) } {
            -1 => {
                let error = io::Error::last_os_error();
                match error.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(libc::ECHILD) => return Ok(None),
                    _ => return Err(error),
                }
            }
            pid => return Ok(Some(pid as u32)),
        }
    }
}

/// Control-message space for one descriptor, aligned as `cmsghdr` requires.
#[repr(C)]
union DescriptorMessage {
    header: libc::cmsghdr,
    bytes: [u8; 64],
}

/// A `msghdr` for one data byte (`iov`) and one control message (`control`), the shape both
/// directions of descriptor passing use.
fn descriptor_message(
    iov: &mut libc::iovec,
    control: &mut DescriptorMessage,
    control_len: usize,
) -> libc::msghdr {
    // SAFETY: all-zero bytes are a valid `msghdr` (null pointers, zero lengths).
    let mut message: libc::msghdr = unsafe { mem::zeroed() };
    message.msg_iov = iov;
    message.msg_iovlen = 1;
    message.msg_control = ptr::addr_of_mut!(*control).cast();
    message.msg_controllen = control_len;
    message
}

/// Sends a duplicate of `fd` to the process at the other end of `channel` (one data byte
/// carries the `SCM_RIGHTS` control message). The caller may close its own copy afterwards.
/// `channel` is a connected UNIX stream socket (std's or mio's).
pub fn send_fd(channel: &impl AsFd, fd: BorrowedFd<'_>) -> io::Result<()> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec { iov_base: byte.as_mut_ptr().cast(), iov_len: 1 };
    // SAFETY: all-zero bytes are a valid `cmsghdr` and byte array.
    let mut control: DescriptorMessage = unsafe { mem::zeroed() };
    // SAFETY: CMSG_SPACE/CMSG_LEN are pure arithmetic on the given length.
    let space = unsafe { libc::CMSG_SPACE(mem::size_of::<libc::c_int>() as u32) } as usize;
    let message = descriptor_message(&mut iov, &mut control, space);
    // SAFETY: `message` points at `control`, which is 64 bytes: room for one header and one
    // int (CMSG_SPACE(4) is 24 on Linux), so CMSG_FIRSTHDR is non-null and the writes through
    // it and CMSG_DATA stay inside `control`. `sendmsg` only reads `message`, `iov` and
    // `control`, all alive for the call.
    let sent = unsafe {
        let header = libc::CMSG_FIRSTHDR(&message);
        (*header).cmsg_level = libc::SOL_SOCKET;
        (*header).cmsg_type = libc::SCM_RIGHTS;
        (*header).cmsg_len = libc::CMSG_LEN(mem::size_of::<libc::c_int>() as u32) as usize;
        ptr::write_unaligned(libc::CMSG_DATA(header).cast::<libc::c_int>(), fd.as_raw_fd());
        libc::sendmsg(channel.as_fd().as_raw_fd(), &message, libc::MSG_NOSIGNAL)
    };
    match sent {
        1 => Ok(()),
        -1 => Err(io::Error::last_os_error()),
        _ => Err(io::Error::other("sendmsg sent no byte")),
    }
}

/// Receives a descriptor sent with [`send_fd`]; `Ok(None)` when the sender has closed the
/// channel. On a non-blocking channel with nothing to receive, the error is `WouldBlock`;
/// a message that arrived without its descriptor (the kernel drops it when this process has
/// no descriptor left, `MSG_CTRUNC`) is an error of kind [`io::ErrorKind::InvalidData`].
pub fn recv_fd(channel: &impl AsFd) -> io::Result<Option<OwnedFd>> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec { iov_base: byte.as_mut_ptr().cast(), iov_len: 1 };
    // SAFETY: as in `send_fd`.
    let mut control: DescriptorMessage = unsafe { mem::zeroed() };
    let mut message = descriptor_message(&mut iov, &mut control, mem::size_of::<DescriptorMessage>());
    loop {
        // SAFETY: `recvmsg` writes at most `iov_len` bytes into `byte` and at most
        // `msg_controllen` bytes into `control`, both alive and owned here.
        // `MSG_CMSG_CLOEXEC` marks the received descriptor close-on-exec.
        let received =
            unsafe { libc::recvmsg(channel.as_fd().as_raw_fd(), &mut message, libc::MSG_CMSG_CLOEXEC) };
        match received {
            0 => return Ok(None),
            -1 => {
                let error = io::Error::last_os_error();
                if error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(error);
            }
            _ => break,
        }
    }
    // SAFETY: the kernel filled `message`'s control buffer; CMSG_FIRSTHDR returns null or a
    // header inside it, and a header of type SCM_RIGHTS from SOL_SOCKET carries at least one
    // int. The descriptor it names was just installed in this process's table for us, and
    // nothing else owns it, so `OwnedFd` may take ownership (and close it when dropped).
    unsafe {
        let header = libc::CMSG_FIRSTHDR(&message);
        if header.is_null()
            || (*header).cmsg_level != libc::SOL_SOCKET
            || (*header).cmsg_type != libc::SCM_RIGHTS
        {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "a message without a descriptor"));
        }
        let fd = ptr::read_unaligned(libc::CMSG_DATA(header).cast::<libc::c_int>());
        Ok(Some(OwnedFd::from_raw_fd(fd)))
    }
}

/// Sends SIGKILL to `pid` (one of the lab's own server processes or their descendants).
/// A process that is already gone is not an error: it is what was wanted.
pub fn kill(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return };
    if pid <= 0 {
        return; // 0 and negative values would signal whole process groups.
    }
    // SAFETY: `kill` takes integers; a positive pid names exactly one process.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

/// Makes the process `command` starts receive SIGKILL when the thread that starts it ends
/// (in the lab, the main thread: when the lab exits or is killed), so no server outlives
/// the lab, even one killed with SIGKILL.
pub fn kill_with_parent(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before `exec`, where only
    // async-signal-safe calls are allowed: `prctl` is a plain system call, and the closure
    // allocates nothing and takes no lock.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
