//! A pool of worker threads for CPU-bound work, whose results come back to the loop thread.
//!
//! ```text
//!  loop thread                     workers (K threads)                    loop thread
//!  submit(tag, job) ─► [bounded job queue] ─► catch_unwind(job) ─► done list ─► Waker ─► drain() ─► on_done
//!        │ full?                                                   (wake only if not
//!        └─► Err(Busy)                                              already notified)
//! ```
//!
//! The loop must never run a long computation itself: one handler hogging the only thread
//! stalls every connection (the classic `fib(35)` demonstration). So the job goes to a
//! worker, and the result is pushed onto a list and announced through the reactor's
//! `mio::Waker`. Wakes coalesce: a worker calls `wake()` only when it flips the `notified`
//! flag from false to true, and the loop clears the flag *before* taking the whole list, so
//! a result pushed after the take always causes a fresh wake — none is ever stranded.
//!
//! A job that panics is caught; its submitter gets `Err(JobError::Panicked)` and the worker
//! thread lives on. The queue is bounded: when it is full, `submit` says
//! [`OffloadError::Busy`] at once instead of queueing without limit.
//!
//! # Shutdown
//!
//! Dropping the pool (or [`OffloadPool::shutdown`]) closes the queue: jobs still waiting
//! are discarded without running, jobs already running finish (a thread cannot be
//! cancelled), their results are discarded, and every worker is joined.
//!
//! The pool does not know about connections: callers tag jobs with a `u64` and route
//! results themselves (the reactor uses the connection's token, generation included, so a
//! result for a closed connection is recognised and dropped).
//!
//! # Cancellation
//!
//! Work for someone who has gone should stop. [`cancel`](OffloadPool::cancel) drops the
//! jobs of a tag that are still waiting (they never run) and raises the tag's [`Cancel`]
//! flag, which a running job may poll to stop early (a thread cannot be stopped from
//! outside). The reactor cancels a connection's jobs when it closes.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};

use mio::Waker;

/// A job: runs once on a worker thread.
pub type Job<T> = Box<dyn FnOnce() -> T + Send + 'static>;

/// A flag a running job may poll to learn that its result is no longer wanted (its
/// connection closed). Cheap to clone; all clones share the flag.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A new, unraised flag.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Has the job been cancelled? Poll it now and then in a long computation and return
    /// early (any value: it will be dropped) when it says yes.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Raises the flag.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Why [`OffloadPool::submit`] (or [`Cx::offload`](crate::Cx::offload)) refused a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffloadError {
    /// The queue is full: answer "busy" or try later.
    Busy,
    /// The pool is shutting down.
    Closed,
}

impl fmt::Display for OffloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OffloadError::Busy => f.write_str("offload queue is full"),
            OffloadError::Closed => f.write_str("offload pool is shut down"),
        }
    }
}

impl std::error::Error for OffloadError {}

/// Why an accepted job produced no result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobError {
    /// The job panicked; the panic message, if it was a string.
    Panicked(String),
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobError::Panicked(message) => write!(f, "job panicked: {message}"),
        }
    }
}

impl std::error::Error for JobError {}

/// A finished job: its tag and its result.
pub type Completion<T> = (u64, Result<T, JobError>);

/// A fixed set of worker threads with a bounded queue, reporting through a `mio::Waker`.
///
/// Usable on its own with any `mio::Poll`: register a `Waker`, give it to the pool, and
/// call [`drain`](OffloadPool::drain) when the waker's token shows up.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use evloop::offload::OffloadPool;
/// use mio::{Events, Poll, Token, Waker};
///
/// # fn main() -> std::io::Result<()> {
/// let mut poll = Poll::new()?;
/// let waker = Arc::new(Waker::new(poll.registry(), Token(0))?);
/// let pool = OffloadPool::new(2, 16, waker)?;
/// pool.submit(7, Box::new(|| 6 * 7)).expect("queue has room");
///
/// let mut events = Events::with_capacity(8);
/// let mut done = Vec::new();
/// let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
/// while done.is_empty() && std::time::Instant::now() < deadline {
///     poll.poll(&mut events, Some(std::time::Duration::from_millis(100)))?;
///     pool.drain(&mut done);
/// }
/// assert_eq!(done, [(7, Ok(42))]);
/// # Ok(())
/// # }
/// ```
pub struct OffloadPool<T> {
    shared: Arc<PoolShared<T>>,
    workers: Vec<JoinHandle<()>>,
}

impl<T> fmt::Debug for OffloadPool<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OffloadPool")
            .field("workers", &self.workers.len())
            .field("capacity", &self.shared.capacity)
            .finish()
    }
}

struct PoolShared<T> {
    queue: Mutex<Queue<T>>,
    /// Signalled when a job is queued or the pool closes.
    job_ready: Condvar,
    /// Most jobs waiting (not yet running) at once.
    capacity: usize,
    done: Mutex<Vec<Completion<T>>>,
    /// A wake is outstanding: set by the worker that wakes, cleared by `drain`.
    notified: AtomicBool,
    waker: Arc<Waker>,
    /// Jobs dropped without running because they were cancelled.
    cancelled: AtomicU64,
}

/// A job waiting in the queue: its tag, the flag that cancels it, and the job.
type Queued<T> = (u64, Cancel, Job<T>);

struct Queue<T> {
    jobs: VecDeque<Queued<T>>,
    closed: bool,
}

/// Locks a mutex, ignoring poisoning: jobs run outside every lock here and panics inside
/// them are caught, so a poisoned lock can only come from a bug in this file; the data it
/// guards (plain queues) is still consistent.
fn lock<X>(mutex: &Mutex<X>) -> MutexGuard<'_, X> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T: Send + 'static> OffloadPool<T> {
    /// Starts `threads` workers (at least one) with room for `capacity` waiting jobs
    /// (at least one).
    ///
    /// # Errors
    ///
    /// If a thread cannot be spawned; workers already started are stopped and joined.
    pub fn new(threads: usize, capacity: usize, waker: Arc<Waker>) -> io::Result<OffloadPool<T>> {
        let shared = Arc::new(PoolShared {
            queue: Mutex::new(Queue { jobs: VecDeque::new(), closed: false }),
            job_ready: Condvar::new(),
            capacity: capacity.max(1),
            done: Mutex::new(Vec::new()),
            notified: AtomicBool::new(false),
            waker,
            cancelled: AtomicU64::new(0),
        });
        let mut pool = OffloadPool { shared, workers: Vec::new() };
        for i in 0..threads.max(1) {
            let shared = Arc::clone(&pool.shared);
            let worker =
                thread::Builder::new().name(format!("evloop-offload-{i}")).spawn(move || work(&shared))?;
            pool.workers.push(worker);
        }
        Ok(pool)
    }

    /// Queues `job`, tagged with `tag` for routing its result.
    ///
    /// # Errors
    ///
    /// [`OffloadError::Busy`] if `capacity` jobs are already waiting,
    /// [`OffloadError::Closed`] after shutdown began.
    pub fn submit(&self, tag: u64, job: Job<T>) -> Result<(), OffloadError> {
        self.submit_cancellable(tag, Cancel::new(), job)
    }

    /// Queues `job` like [`submit`](OffloadPool::submit), cancelled when `cancel` is raised
    /// before it starts (it is then dropped without running); a running job can poll the
    /// same flag.
    ///
    /// # Errors
    ///
    /// As for `submit`.
    pub fn submit_cancellable(&self, tag: u64, cancel: Cancel, job: Job<T>) -> Result<(), OffloadError> {
        let mut queue = lock(&self.shared.queue);
        if queue.closed {
            return Err(OffloadError::Closed);
        }
        if queue.jobs.len() >= self.shared.capacity {
            return Err(OffloadError::Busy);
        }
        queue.jobs.push_back((tag, cancel, job));
        drop(queue);
        self.shared.job_ready.notify_one();
        Ok(())
    }

    /// Cancels every job tagged `tag`: waiting ones are dropped now, and their flags (shared
    /// with running ones that were submitted with the same [`Cancel`]) are raised. Returns
    /// how many waiting jobs were dropped.
    pub fn cancel(&self, tag: u64) -> usize {
        let mut queue = lock(&self.shared.queue);
        let before = queue.jobs.len();
        queue.jobs.retain(|(job_tag, cancel, _)| {
            let mine = *job_tag == tag;
            if mine {
                cancel.cancel();
            }
            !mine
        });
        let dropped = before - queue.jobs.len();
        self.shared.cancelled.fetch_add(dropped as u64, Ordering::Relaxed);
        dropped
    }

    /// Jobs dropped without running because they were cancelled, since the pool started.
    pub fn cancelled(&self) -> u64 {
        self.shared.cancelled.load(Ordering::Relaxed)
    }

    /// Moves every finished job's result into `out`. Call it whenever the waker fires.
    pub fn drain(&self, out: &mut Vec<Completion<T>>) {
        // Clear the flag first: a worker finishing after this point flips it back and wakes
        // the loop again, so its result cannot be left behind until an unrelated event.
        self.shared.notified.store(false, Ordering::SeqCst);
        out.append(&mut lock(&self.shared.done));
    }

    /// Jobs waiting for a worker.
    pub fn queued(&self) -> usize {
        lock(&self.shared.queue).jobs.len()
    }

    /// Number of worker threads.
    pub fn threads(&self) -> usize {
        self.workers.len()
    }

    /// Closes the queue, discards waiting jobs, and joins every worker (waiting for running
    /// jobs to finish).
    pub fn shutdown(mut self) {
        self.stop();
    }
}

impl<T> OffloadPool<T> {
    fn stop(&mut self) {
        {
            let mut queue = lock(&self.shared.queue);
            queue.closed = true;
            queue.jobs.clear();
        }
        self.shared.job_ready.notify_all();
        for worker in self.workers.drain(..) {
            // A worker only ends by returning (panics in jobs are caught), so join cannot
            // report a panic worth propagating.
            let _ = worker.join();
        }
    }
}

impl<T> Drop for OffloadPool<T> {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A worker's life: take a job, run it, report, repeat until the queue closes.
fn work<T>(shared: &PoolShared<T>) {
    loop {
        let (tag, cancel, job) = {
            let mut queue = lock(&shared.queue);
            loop {
                if queue.closed {
                    return;
                }
                if let Some(next) = queue.jobs.pop_front() {
                    break next;
                }
                queue = shared.job_ready.wait(queue).unwrap_or_else(PoisonError::into_inner);
            }
        };
        if cancel.is_cancelled() {
            // Cancelled after this worker took it from the queue (the submitter raised the
            // flag it shares with the job): nobody wants the result.
            shared.cancelled.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        // The job owns everything it touches (it is `Send + 'static` and runs once), so no
        // state of ours can be left half-updated by its panic.
        let result = run_catching(job);
        lock(&shared.done).push((tag, result));
        // Result first, wake second; and only one wake per drain.
        if !shared.notified.swap(true, Ordering::SeqCst) {
            if let Err(e) = shared.waker.wake() {
                log::error!("offload worker could not wake the loop: {e}");
            }
        }
    }
}

/// Runs `job`, turning a panic into `JobError::Panicked` with its message. The job owns
/// everything it touches (it is `Send + 'static` and runs once), so no state of ours can be
/// left half-updated by its panic.
pub(crate) fn run_catching<T>(job: impl FnOnce() -> T) -> Result<T, JobError> {
    panic::catch_unwind(AssertUnwindSafe(job)).map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".to_string());
        JobError::Panicked(message)
    })
}

#[cfg(test)]
mod tests;
