//! CPU placement and accounting for the echo bench: who runs where, and how long each ran.
//!
//! Servers record the kernel id of every thread they run on ([`current_tid`]) into their
//! [`Tids`]. `main` pins those threads (and the client's) with [`pin`]. The client opens a
//! measurement window with a [`cpu_snapshot`] of the server's threads and closes it with
//! [`cpu_since`]; the client's own time comes from [`cpu_ns`] of its thread. All figures are
//! the first field of `/proc/self/task/TID/schedstat`: nanoseconds on a CPU, user + system.

use std::sync::{Arc, Mutex};

/// Kernel thread ids of a server's threads, for their schedstat. Each thread records itself
/// (evloop workers in their factory closure, tokio's in `on_thread_start`), hence the mutex.
pub type Tids = Arc<Mutex<Vec<u32>>>;

/// Pins thread `tid` of this process to one CPU with `taskset` (std has no affinity call and the
/// crate has no `libc` dependency to reach `sched_setaffinity`). Returns whether it worked.
pub fn pin(tid: u32, cpu: usize) -> bool {
    std::process::Command::new("taskset")
        .args(["-p", "-c", &cpu.to_string(), &tid.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// The calling thread's kernel id: `/proc/thread-self` links to `PID/task/TID`.
pub fn current_tid() -> u32 {
    let link = std::fs::read_link("/proc/thread-self").expect("read /proc/thread-self");
    link.file_name().and_then(|n| n.to_str()).and_then(|n| n.parse().ok()).expect("parse thread id")
}

/// Nanoseconds thread `tid` of this process has spent on a CPU (user + system), or `None` if
/// the thread is gone.
pub fn cpu_ns(tid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok()?;
    Some(text.split_whitespace().next().and_then(|f| f.parse().ok()).expect("parse schedstat"))
}

/// (thread id, on-CPU nanoseconds) for each of a server's threads at one instant.
pub type CpuSnapshot = Vec<(u32, u64)>;

/// On-CPU nanoseconds of each of the server's threads, read now.
pub fn cpu_snapshot(tids: &Tids) -> CpuSnapshot {
    let tids = tids.lock().expect("tids lock").clone();
    tids.into_iter().filter_map(|tid| Some((tid, cpu_ns(tid)?))).collect()
}

/// On-CPU nanoseconds the server's threads spent since `before`, summed over all of them. A
/// thread started since then counts from zero; one that has ended is left out (neither happens
/// here: every server thread lives as long as its server).
pub fn cpu_since(before: &CpuSnapshot, tids: &Tids) -> u64 {
    let since = |&(tid, now): &(u32, u64)| now - before.iter().find(|b| b.0 == tid).map_or(0, |b| b.1);
    cpu_snapshot(tids).iter().map(since).sum()
}
