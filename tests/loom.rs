//! loom models of the two cross-thread hand-offs into the loop, both ending in its one
//! `mio::Waker`: the offload pool's completions (`src/offload.rs`, flag `notified`) and the
//! `Sender` inbox (`src/reactor/mail.rs`, flags `wake_pending` and `closed`).
//!
//! Run them (a separate target directory: `--cfg loom` rebuilds every crate):
//!
//! ```text
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release --test loom
//! ```
//!
//! loom runs each model under every interleaving of its threads (up to a preemption bound)
//! and every outcome the C++11 memory model allows for the atomics, which a stress test on
//! x86 cannot show (x86 never reorders a store after a later load; the model may).
//!
//! The models copy the protocol, not the code: the library's types hold a real
//! `mio::Waker` and spawn real threads, which loom cannot drive. So each model uses the
//! same atomics with the same orderings, the same lock scope and the same order of steps
//! as the source, and `the_models_mirror_the_source` (which runs in every `cargo test`)
//! fails when those source lines change, so a model cannot silently drift from the code.
//!
//! The waker: mio's Linux waker is an eventfd registered edge-triggered; every `wake()` is
//! a `write` that raises a new edge, and the loop never reads the counter. So "a wake is on
//! its way" is a flag the waker sets and a poll takes; a poll that finds it clear would
//! block. The property checked: when every other thread is done, the loop polls until it
//! would block, and by then it has every item that was accepted, exactly once, in each
//! sender's order. An item left behind is a lost wake-up: the real loop would sleep on it.

/// The lines each model copies, in the order they occur in the file. If one fails, the
/// protocol changed: update the model in this file to match, then these lines.
#[test]
fn the_models_mirror_the_source() {
    let offload = include_str!("../src/offload.rs");
    assert_in_order(
        offload,
        &[
            // drain: clear, then take
            "self.shared.notified.store(false, Ordering::SeqCst);",
            "out.append(&mut lock(&self.shared.done));",
            // a worker: push, then wake unless a wake is outstanding
            "lock(&shared.done).push((tag, result));",
            "if !shared.notified.swap(true, Ordering::SeqCst) {",
            "shared.waker.wake()",
        ],
    );
    let mail = include_str!("../src/reactor/mail.rs");
    assert_in_order(
        mail,
        &[
            // close: under the queue's lock, set closed, clear
            "let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);",
            "self.closed.store(true, Ordering::SeqCst);",
            "queue.clear();",
            // push: under the lock, closed?, then a bounded push; then wake unless pending
            "let mut queue = self.inbox.queue.lock().unwrap_or_else(PoisonError::into_inner);",
            "if self.inbox.closed.load(Ordering::SeqCst) {",
            "if queue.len() >= self.inbox.capacity {",
            "queue.push_back(item);",
            "if !self.inbox.wake_pending.swap(true, Ordering::AcqRel) {",
            "self.waker.wake()",
            // take_inbox: clear, then take
            "self.inbox.wake_pending.store(false, Ordering::Release);",
            "std::mem::take(&mut *self.inbox.queue.lock()",
        ],
    );
}

fn assert_in_order(source: &str, lines: &[&str]) {
    let mut from = 0;
    for line in lines {
        match source[from..].find(line) {
            Some(at) => from += at + line.len(),
            None => panic!("the loom model copies `{line}`, which is no longer there (in this order)"),
        }
    }
}

#[cfg(loom)]
mod models {
    use loom::sync::atomic::{AtomicBool, Ordering};
    use loom::sync::{Arc, Mutex};
    use loom::thread;
    use std::collections::VecDeque;

    /// Explores every interleaving with up to three preemptions per execution (tokio's CI
    /// uses two); the models are small enough for the exhaustive search to finish in seconds.
    /// Prints how many executions were explored, so a run shows it searched.
    fn model(f: impl Fn() + Sync + Send + 'static) {
        let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = std::sync::Arc::clone(&runs);
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            f();
        });
        eprintln!("{} executions explored", runs.load(std::sync::atomic::Ordering::Relaxed));
    }

    /// The reactor's one `mio::Waker` (an edge-triggered eventfd) and its poll. The kernel
    /// keeps an eventfd's count and wakes its waiters under one spinlock, so a lock models
    /// it exactly. (Not an atomic flag: loom may let a plain store from one thread slip in
    /// front of another thread's earlier swap when the two are not ordered by anything,
    /// a reordering C11 forbids; a lock leaves no room for it.)
    #[derive(Default)]
    struct Waker {
        edge: Mutex<bool>,
    }

    impl Waker {
        /// `write(eventfd, 1)`: the kernel queues an event.
        fn wake(&self) {
            *self.edge.lock().unwrap() = true;
        }

        /// One non-blocking poll: did the waker's event come? (Taking it consumes it.)
        fn poll(&self) -> bool {
            std::mem::take(&mut *self.edge.lock().unwrap())
        }
    }

    /// The loop clearing a "wake outstanding" flag: `store(false, SeqCst)` in the offload
    /// pool, `store(false, Release)` in the inbox. Modelled as `swap(false, Release)`:
    ///
    /// - loom 0.7 keeps a plain store only partially ordered against a concurrent
    ///   swap that read an older value, and may then let a later swap read "past" the
    ///   store — a modification order C11 forbids (an RMW reads the value right before it
    ///   in the one total order). The models then report wake-ups lost that no C11
    ///   execution loses. When every write to the flag is an RMW, loom chains them totally.
    /// - A swap whose result is ignored stores the same value with the same release
    ///   semantics; it does not acquire (so it adds no synchronisation the source lacks).
    ///   loom treats `SeqCst` as acquire/release anyway, so `Release` is what it would
    ///   model of the pool's `SeqCst` store.
    /// - What is lost: executions where the clear lands in the modification order *before*
    ///   a flag write that already ran. Every other write to these flags is a swap, which
    ///   reads its predecessor, so such an execution is the one where that swap ran after
    ///   the clear, which loom explores by scheduling it so.
    fn clear(flag: &AtomicBool) {
        flag.swap(false, Ordering::Release);
    }

    /// `OffloadPool`'s hand-off: the `done` list and the `notified` flag.
    struct Pool {
        done: Mutex<Vec<u64>>,
        notified: AtomicBool,
        waker: Arc<Waker>,
    }

    impl Pool {
        /// A worker reporting a finished job (`work` after the job ran).
        fn complete(&self, tag: u64) {
            self.done.lock().unwrap().push(tag);
            if !self.notified.swap(true, Ordering::SeqCst) {
                self.waker.wake();
            }
        }

        /// `OffloadPool::drain`, called by the loop on every waker event. The source's
        /// `store(false, SeqCst)` is a swap here whose old value is ignored: see
        /// `clear` for why that is the faithful translation.
        fn drain(&self, out: &mut Vec<u64>) {
            clear(&self.notified);
            out.append(&mut self.done.lock().unwrap());
        }
    }

    /// What a sender gets back (`SendError` without the item).
    #[derive(Debug, PartialEq)]
    enum Refused {
        Full,
        Closed,
    }

    /// `Inbox` and `Sender::push`: a bounded queue, `wake_pending`, `closed`.
    struct Inbox {
        queue: Mutex<VecDeque<u64>>,
        capacity: usize,
        wake_pending: AtomicBool,
        closed: AtomicBool,
        waker: Arc<Waker>,
    }

    impl Inbox {
        fn new(capacity: usize, waker: Arc<Waker>) -> Inbox {
            Inbox {
                queue: Mutex::new(VecDeque::new()),
                capacity,
                wake_pending: AtomicBool::new(false),
                closed: AtomicBool::new(false),
                waker,
            }
        }

        /// `Sender::push`.
        fn push(&self, item: u64) -> Result<(), Refused> {
            {
                let mut queue = self.queue.lock().unwrap();
                if self.closed.load(Ordering::SeqCst) {
                    return Err(Refused::Closed);
                }
                if queue.len() >= self.capacity {
                    return Err(Refused::Full);
                }
                queue.push_back(item);
            }
            if !self.wake_pending.swap(true, Ordering::AcqRel) {
                self.waker.wake();
            }
            Ok(())
        }

        /// `Reactor::take_inbox`, called by the loop on every waker event.
        fn take(&self, out: &mut Vec<u64>) {
            clear(&self.wake_pending);
            out.extend(std::mem::take(&mut *self.queue.lock().unwrap()));
        }

        /// `Inbox::close`, when the reactor stops.
        fn close(&self) {
            let mut queue = self.queue.lock().unwrap();
            self.closed.store(true, Ordering::SeqCst);
            queue.clear();
        }
    }

    /// The loop's side: on each waker event, what `Reactor::woken` does (inbox, then pool).
    struct Loop {
        waker: Arc<Waker>,
        inbox: Arc<Inbox>,
        pool: Arc<Pool>,
        messages: Vec<u64>,
        completions: Vec<u64>,
    }

    impl Loop {
        fn new(inbox_capacity: usize) -> Loop {
            let waker = Arc::new(Waker::default());
            let pool =
                Pool { done: Mutex::new(Vec::new()), notified: AtomicBool::new(false), waker: waker.clone() };
            Loop {
                inbox: Arc::new(Inbox::new(inbox_capacity, waker.clone())),
                pool: Arc::new(pool),
                waker,
                messages: Vec::new(),
                completions: Vec::new(),
            }
        }

        /// One turn with a zero timeout: handle the waker's event if there is one.
        fn turn(&mut self) {
            if self.waker.poll() {
                self.inbox.take(&mut self.messages);
                self.pool.drain(&mut self.completions);
            }
        }

        /// Turns until the next poll would block (the other threads are done by now).
        fn until_idle(&mut self) {
            while self.waker.poll() {
                self.inbox.take(&mut self.messages);
                self.pool.drain(&mut self.completions);
            }
        }
    }

    /// Two workers finish jobs while the loop turns: every completion reaches the loop,
    /// once, whichever way the pushes, swaps, clears and takes interleave.
    #[test]
    fn offload_completions_are_never_stranded() {
        model(|| {
            let mut lp = Loop::new(4);
            let workers: Vec<_> = [[1, 2], [3, 4]]
                .into_iter()
                .map(|tags| {
                    let pool = lp.pool.clone();
                    thread::spawn(move || tags.into_iter().for_each(|tag| pool.complete(tag)))
                })
                .collect();
            lp.turn();
            lp.turn();
            workers.into_iter().for_each(|w| w.join().unwrap());
            lp.until_idle();
            let mut got = lp.completions.clone();
            got.sort_unstable();
            assert_eq!(got, [1, 2, 3, 4], "a completion was lost or delivered twice");
        });
    }

    /// Two senders on other threads and a loop taking the inbox: what was accepted arrives
    /// once, in each sender's order; what was refused as full never arrives.
    #[test]
    fn sender_messages_are_never_stranded_or_doubled() {
        model(|| {
            // Room for two of the four messages: the Full path is part of the model.
            let mut lp = Loop::new(2);
            let senders: Vec<_> = [[10, 11], [20, 21]]
                .into_iter()
                .map(|items| {
                    let inbox = lp.inbox.clone();
                    thread::spawn(move || {
                        items.into_iter().filter(|&item| inbox.push(item).is_ok()).collect::<Vec<_>>()
                    })
                })
                .collect();
            lp.turn();
            let accepted: Vec<Vec<u64>> = senders.into_iter().map(|s| s.join().unwrap()).collect();
            lp.until_idle();
            let got = &lp.messages;
            for sent in &accepted {
                let arrived: Vec<u64> = got.iter().copied().filter(|m| sent.contains(m)).collect();
                assert_eq!(&arrived, sent, "accepted messages lost, doubled or reordered: got {got:?}");
            }
            assert_eq!(got.len(), accepted.iter().map(Vec::len).sum::<usize>(), "a refused message arrived");
        });
    }

    /// Both paths share the one waker and each coalesces with its own flag: a completion
    /// and a message racing each other and the loop both arrive.
    #[test]
    fn one_waker_serves_both_paths() {
        model(|| {
            let mut lp = Loop::new(4);
            let pool = lp.pool.clone();
            let worker = thread::spawn(move || pool.complete(1));
            let inbox = lp.inbox.clone();
            let sender = thread::spawn(move || inbox.push(7));
            lp.turn();
            worker.join().unwrap();
            assert_eq!(sender.join().unwrap(), Ok(()));
            lp.until_idle();
            assert_eq!((&lp.completions[..], &lp.messages[..]), (&[1][..], &[7][..]));
        });
    }

    /// A send racing the reactor's stop: the sender is told `Closed`, or its message was
    /// queued before the close cleared it — never `Ok(())` with the message stranded after
    /// the close. (This model found the race when `closed` was checked before taking the
    /// lock; `push` and `close` now decide under the same lock.)
    #[test]
    fn a_send_accepted_during_close_is_not_stranded() {
        model(|| {
            let lp = Loop::new(4);
            let inbox = lp.inbox.clone();
            let sender = thread::spawn(move || inbox.push(5));
            lp.inbox.close();
            let sent = sender.join().unwrap();
            let stranded = lp.inbox.queue.lock().unwrap().len();
            assert!(sent.is_err() || stranded == 0, "accepted after close and stranded: {sent:?}");
        });
    }
}
