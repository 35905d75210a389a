//! The offload pool through the reactor: results reach the right connection on the loop
//! thread, panics become error replies, results for closed connections are dropped.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::{Condvar, Mutex};
use std::thread;
use std::time::Duration;

use evloop::{Config, Cx, Handler, Input, JobError, OffloadError, TimerId};

use evloop_support::observe::wait_until;
use evloop_support::testing::{set_linger_zero, small_config, Server};

/// A line protocol over the pool: `panic`, `sleep MS` (a job that sleeps on a worker),
/// `gate` (a job that holds its worker until a test calls [`open_gate`]), `echo WORD` (a job
/// returning the word), `later WORD` (a timer whose callback offloads).
struct Jobs;

/// The `gate` job's gate: (the job has started, the test has opened it). A sleep would make
/// the test depend on how fast a loaded machine runs it; a gate holds the job exactly as long
/// as the test needs (at most 20 s).
static GATE: (Mutex<(bool, bool)>, Condvar) = (Mutex::new((false, false)), Condvar::new());

fn wait_at_gate() -> String {
    let (state, changed) = &GATE;
    let mut guard = state.lock().unwrap();
    guard.0 = true;
    changed.notify_all();
    let (guard, _) = changed.wait_timeout_while(guard, Duration::from_secs(20), |(_, open)| !*open).unwrap();
    if guard.1 {
        "through the gate".into()
    } else {
        "gate never opened".into()
    }
}

/// How many `hold` jobs have started on a worker (only `a_full_queue_refuses_with_busy`
/// sends them): what that test waits for before it fills the queue.
static HOLDS_STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Waits (at most 10 s) until a `gate` job is running on a worker.
fn gate_reached() {
    let (state, changed) = &GATE;
    let guard = state.lock().unwrap();
    let (guard, _) =
        changed.wait_timeout_while(guard, Duration::from_secs(10), |(reached, _)| !*reached).unwrap();
    assert!(guard.0, "the gate job never started");
}

fn open_gate() {
    let (state, changed) = &GATE;
    state.lock().unwrap().1 = true;
    changed.notify_all();
}

impl Jobs {
    fn submit(&mut self, cx: &mut Cx<'_, Self>, job: impl FnOnce() -> String + Send + 'static) {
        match cx.offload(job) {
            Ok(()) => {}
            Err(OffloadError::Busy) => cx.write(b"ERR busy\n"),
            Err(OffloadError::Closed) => cx.write(b"ERR closed\n"),
        }
    }
}

impl Handler for Jobs {
    type Msg = String;

    fn on_data(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
        while let Some(line) = input.take_line(b'\n') {
            let line = String::from_utf8_lossy(line).into_owned();
            let (verb, arg) = line.split_once(' ').unwrap_or((&line, ""));
            let arg = arg.to_string();
            match verb {
                "panic" => self.submit(cx, || panic!("job exploded")),
                "sleep" => {
                    let ms: u64 = arg.parse().unwrap_or(0);
                    self.submit(cx, move || {
                        thread::sleep(Duration::from_millis(ms));
                        format!("slept {ms}")
                    })
                }
                "hold" => {
                    let ms: u64 = arg.parse().unwrap_or(0);
                    self.submit(cx, move || {
                        HOLDS_STARTED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        thread::sleep(Duration::from_millis(ms));
                        format!("slept {ms}")
                    })
                }
                "gate" => self.submit(cx, wait_at_gate),
                "echo" => self.submit(cx, move || arg),
                "later" => {
                    cx.set_timer(Duration::from_millis(10));
                }
                _ => cx.write(b"ERR unknown\n"),
            }
        }
    }

    fn on_timer(&mut self, _id: TimerId, cx: &mut Cx<'_, Self>) {
        self.submit(cx, || "from a timer".to_string());
    }

    fn on_done(&mut self, result: Result<String, JobError>, cx: &mut Cx<'_, Self>) {
        match result {
            Ok(reply) => cx.write(format!("{reply}\n").as_bytes()),
            Err(JobError::Panicked(_)) => cx.write(b"ERR internal\n"),
        }
    }
}

fn jobs_server(threads: usize, queue: usize) -> Server {
    let config = Config { offload_threads: threads, offload_queue: queue, ..small_config() };
    Server::start(config, |_| Jobs)
}

fn lines(stream: &TcpStream) -> std::io::Lines<BufReader<TcpStream>> {
    BufReader::new(stream.try_clone().unwrap()).lines()
}

/// A panicking job becomes an `ERR internal` reply for its own connection; the pool keeps
/// its workers and later jobs succeed.
#[test]
fn a_panicking_job_becomes_an_error_reply() {
    let server = jobs_server(2, 16);
    let mut stream = server.connect();
    let mut replies = lines(&stream);
    stream.write_all(b"panic\n").unwrap();
    assert_eq!(replies.next().unwrap().unwrap(), "ERR internal");
    for i in 0..10 {
        stream.write_all(format!("echo {i}\n").as_bytes()).unwrap();
        assert_eq!(replies.next().unwrap().unwrap(), i.to_string());
    }
    let stats = server.wait_for(Duration::from_secs(5), "all results counted", |s| s.offload_completed == 11);
    assert_eq!(stats.offload_panics, 1);
}

/// A job whose connection was reset before it finished: its result is dropped (counted as
/// stale), nothing crashes, and a new connection — likely in the reused slab slot — gets
/// only its own replies.
#[test]
fn results_for_closed_connections_are_dropped() {
    let server = jobs_server(1, 16);
    let doomed = server.connect();
    let mut writer = doomed.try_clone().unwrap();
    writer.write_all(b"gate\n").unwrap();
    // Running, not just queued: a queued job of a closed connection is dropped without
    // running (counted as cancelled), which is another test's subject.
    gate_reached();
    set_linger_zero(&doomed);
    drop((doomed, writer));
    server.wait_for(Duration::from_secs(5), "reset seen", |s| s.active == 0);
    // Only now may the job finish: its connection is certainly gone.
    open_gate();

    let mut fresh = server.connect();
    let mut replies = lines(&fresh);
    fresh.write_all(b"echo mine\n").unwrap();
    assert_eq!(replies.next().unwrap().unwrap(), "mine", "only the fresh connection's result reaches it");
    // The stats are published at the end of the turn that wrote "mine": wait for them.
    let stats = server.wait_for(Duration::from_secs(5), "stale result dropped", |s| {
        s.stale_events >= 1 && s.offload_completed >= 1
    });
    assert_eq!(stats.offload_completed, 1, "only the fresh connection's result was delivered");
    assert_eq!(stats.offload_cancelled, 0, "the job was running, not waiting, when its connection closed");
}

/// A timer callback can offload too: the pool is not tied to input handling.
#[test]
fn a_timer_callback_can_offload() {
    let server = jobs_server(1, 4);
    let mut stream = server.connect();
    let mut replies = lines(&stream);
    stream.write_all(b"later\n").unwrap();
    assert_eq!(replies.next().unwrap().unwrap(), "from a timer");
}

/// The queue is bounded: one busy worker, one waiting job, and the next is refused.
#[test]
fn a_full_queue_refuses_with_busy() {
    let server = jobs_server(1, 1);
    let mut stream = server.connect();
    let mut replies = lines(&stream);
    stream.write_all(b"hold 300\n").unwrap();
    // The worker has taken the first job, so the queue is empty when the next two come.
    wait_until(Duration::from_secs(10), "the first job runs", || {
        HOLDS_STARTED.load(std::sync::atomic::Ordering::SeqCst) >= 1
    });
    stream.write_all(b"sleep 0\nsleep 0\n").unwrap();
    assert_eq!(replies.next().unwrap().unwrap(), "ERR busy");
    assert_eq!(replies.next().unwrap().unwrap(), "slept 300");
    assert_eq!(replies.next().unwrap().unwrap(), "slept 0");
    assert_eq!(server.stats().offload_rejected, 1);
}

/// Ten thousand trivial jobs from 10 connections finishing almost together: every result
/// reaches its own connection (no wake is lost, none misrouted).
#[test]
fn ten_thousand_results_all_arrive() {
    let server = jobs_server(2, 20_000);
    let clients: Vec<_> = (0..10)
        .map(|c| {
            let mut stream = server.connect();
            thread::spawn(move || {
                let mut replies = lines(&stream);
                let batch: String = (0..1000).map(|i| format!("echo {c}-{i}\n")).collect();
                stream.write_all(batch.as_bytes()).unwrap();
                let mut got: Vec<String> = (0..1000).map(|_| replies.next().unwrap().unwrap()).collect();
                got.sort();
                let mut want: Vec<String> = (0..1000).map(|i| format!("{c}-{i}")).collect();
                want.sort();
                assert_eq!(got, want);
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
}

/// Shutdown with jobs in flight: `run()` returns promptly, the running job is waited for,
/// queued ones are discarded.
#[test]
fn shutdown_with_jobs_in_flight_returns() {
    let server = jobs_server(1, 16);
    let mut stream = server.connect();
    stream.write_all(b"sleep 200\nsleep 5000\nsleep 5000\n").unwrap();
    server.wait_for(Duration::from_secs(5), "jobs submitted", |s| s.offload_submitted == 3);
    let started = std::time::Instant::now();
    server.stop().unwrap();
    assert!(started.elapsed() < Duration::from_secs(4), "shutdown waited for queued jobs");
}
