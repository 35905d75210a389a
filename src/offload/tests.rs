//! The pool on its own, with a real `mio::Poll` and waker: results, panics, the bounded
//! queue, coalesced wakes, shutdown.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};

use super::*;

fn pool<T: Send + 'static>(threads: usize, capacity: usize) -> (Poll, OffloadPool<T>) {
    let poll = Poll::new().unwrap();
    let waker = Arc::new(Waker::new(poll.registry(), Token(0)).unwrap());
    (poll, OffloadPool::new(threads, capacity, waker).unwrap())
}

/// Polls and drains until `count` results have arrived (bounded).
fn collect<T>(poll: &mut Poll, pool: &OffloadPool<T>, count: usize) -> Vec<Completion<T>>
where
    T: Send + 'static,
{
    let mut events = Events::with_capacity(8);
    let mut done = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while done.len() < count {
        assert!(Instant::now() < deadline, "only {} of {count} results arrived", done.len());
        poll.poll(&mut events, Some(Duration::from_millis(100))).unwrap();
        pool.drain(&mut done);
    }
    done
}

/// Ten thousand trivial jobs finishing almost together: with wakes coalesced, every
/// result still arrives (a lost wake would leave results stranded and time out here).
#[test]
fn every_result_arrives_and_wakes_coalesce() {
    let (mut poll, pool) = pool::<u64>(2, 20_000);
    for i in 0..10_000u64 {
        pool.submit(i, Box::new(move || i * 2)).unwrap();
    }
    let mut done = collect(&mut poll, &pool, 10_000);
    done.sort_by_key(|(tag, _)| *tag);
    assert!(done.iter().all(|(tag, result)| *result == Ok(tag * 2)));
}

/// A panicking job is reported as an error; the worker survives and runs later jobs.
#[test]
fn a_panicking_job_is_reported_and_the_worker_lives_on() {
    let (mut poll, pool) = pool::<u32>(1, 16);
    pool.submit(1, Box::new(|| panic!("deliberate"))).unwrap();
    let done = collect(&mut poll, &pool, 1);
    assert_eq!(done, [(1, Err(JobError::Panicked("deliberate".into())))]);
    for i in 0..10 {
        pool.submit(i, Box::new(move || i as u32)).unwrap();
    }
    assert_eq!(collect(&mut poll, &pool, 10).len(), 10);
    assert_eq!(pool.threads(), 1);
}

/// The queue is bounded: with the only worker busy, `capacity` jobs wait and the next
/// one is refused with `Busy` at once.
#[test]
fn a_full_queue_says_busy() {
    let (mut poll, pool) = pool::<u32>(1, 2);
    let (started_tx, started_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    pool.submit(
        0,
        Box::new(move || {
            started_tx.send(()).unwrap();
            release_rx.recv().unwrap();
            0
        }),
    )
    .unwrap();
    started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    pool.submit(1, Box::new(|| 1)).unwrap();
    pool.submit(2, Box::new(|| 2)).unwrap();
    assert_eq!(pool.queued(), 2);
    assert_eq!(pool.submit(3, Box::new(|| 3)), Err(OffloadError::Busy));
    release_tx.send(()).unwrap();
    assert_eq!(collect(&mut poll, &pool, 3).len(), 3);
}

/// Shutdown discards waiting jobs, lets the running one finish, and joins every worker.
#[test]
fn shutdown_discards_queued_jobs_and_joins() {
    let (_poll, pool) = pool::<u32>(1, 8);
    let (ran_tx, ran_rx) = mpsc::channel();
    let (started_tx, started_rx) = mpsc::channel();
    let slow_ran = ran_tx.clone();
    pool.submit(
        0,
        Box::new(move || {
            started_tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(100));
            slow_ran.send(0).unwrap();
            0
        }),
    )
    .unwrap();
    started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    for i in 1..5 {
        let ran = ran_tx.clone();
        pool.submit(
            i,
            Box::new(move || {
                ran.send(i).unwrap();
                i as u32
            }),
        )
        .unwrap();
    }
    pool.shutdown();
    // The running job finished before shutdown returned (the workers were joined), and no
    // queued one ran.
    assert_eq!(ran_rx.try_recv(), Ok(0), "shutdown returned before the running job finished");
    drop(ran_tx);
    let ran: Vec<u64> = ran_rx.iter().collect();
    assert!(ran.is_empty(), "queued jobs ran after shutdown: {ran:?}");
}
