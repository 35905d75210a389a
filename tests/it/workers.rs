//! Share-nothing workers on one `SO_REUSEPORT` address: the kernel spreads connections,
//! every worker serves its own, and shutdown stops them all.

use std::io::Read;
use std::net::TcpStream;
use std::process::Command;
use std::thread;
use std::time::Duration;

use evloop::workers::Workers;

use crate::examples::{example, Running};
use evloop_support::testing::{init, round_trip, small_config, Echo, ReadSome, Rng};

/// 200 clients against 4 workers: each gets its own bytes back, the connections land on
/// several workers (the kernel hashes each 4-tuple to a listener), and `join` after
/// `shutdown` returns the summed counters.
#[test]
fn connections_spread_over_workers_and_all_are_served() {
    init();
    let workers = Workers::start(4, "127.0.0.1:0".parse().unwrap(), small_config(), |_| |_| Echo).unwrap();
    let addr = workers.addr();
    let mut rng = Rng::seeded("workers");
    let clients: Vec<_> = (0..200)
        .map(|_| {
            let payload = rng.bytes(4096);
            thread::spawn(move || {
                let mut stream = TcpStream::connect(addr).unwrap();
                stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                round_trip(&mut stream, &payload);
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    let busy = workers.handles().iter().filter(|h| h.stats().accepted > 0).count();
    assert!(busy >= 2, "all connections went to one worker");
    workers.shutdown();
    let stats = workers.join().unwrap();
    assert_eq!(stats.accepted, 200);
    assert_eq!(stats.closed.total(), 200);
    assert_eq!(stats.bytes_out, 200 * 4096);
}

/// A worker that cannot start (the address is taken by a listener without SO_REUSEPORT)
/// makes `start` fail with an error that names the worker.
#[test]
fn start_fails_cleanly_when_the_address_is_taken() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let err = Workers::start(2, addr, small_config(), |_| |_| Echo).unwrap_err();
    assert!(err.to_string().contains("worker 0"), "{err}");
}

/// `echo --workers 3` serves clients and stops gracefully on SIGTERM: every worker shuts
/// down through its reactor (the summed final stats count 12 shutdown closes).
#[test]
fn echo_example_with_workers() {
    let mut command = Command::new(example("echo"));
    command.args(["--addr", "127.0.0.1:0", "--workers", "3"]);
    let mut server = Running::start_logged(command);
    let mut clients: Vec<TcpStream> = (0..12).map(|_| server.connect()).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        round_trip(client, format!("client {i}").as_bytes());
    }
    let status = server.signal_and_wait("TERM");
    assert!(status.success(), "{status}");
    // Every worker shut down through its reactor, closing all 12 clients between them.
    let log = server.log();
    assert!(log.contains("shutdown 12,"), "not a graceful shutdown of every worker:\n{log}");
    for client in &mut clients {
        let mut buf = [0; 8];
        assert_eq!(client.read_some(&mut buf).unwrap(), 0, "EOF after shutdown");
    }
}

/// Writes every message it gets to its peer (and echoes input).
struct Mailbox;

impl evloop::Handler for Mailbox {
    type Msg = Vec<u8>;
    fn on_data(&mut self, input: &mut evloop::Input<'_>, cx: &mut evloop::Cx<'_, Self>) {
        cx.write(input.bytes());
        input.consume_all();
    }
    fn on_message(&mut self, message: Vec<u8>, cx: &mut evloop::Cx<'_, Self>) {
        cx.write(&message);
    }
}

/// `start_with` hands each worker's reactor to a setup closure on its thread: here each
/// adopts one end of a socketpair and hands out its `Sender`; messages sent from the test
/// thread through each worker's sender come out of that worker's stream, and a reactor
/// timer set in the setup fires on that worker.
#[test]
fn each_worker_takes_adopted_streams_messages_and_timers() {
    use std::os::unix::net::UnixStream;
    use std::sync::{mpsc, Arc, Mutex};
    init();
    let (tx, rx) = mpsc::channel();
    let tx = Arc::new(Mutex::new(tx));
    let workers =
        Workers::start_with(2, "127.0.0.1:0".parse().unwrap(), small_config(), move |worker, reactor| {
            let (ours, theirs) = UnixStream::pair().unwrap();
            let id = reactor.adopt(ours, Mailbox).unwrap();
            reactor.set_timer(Duration::from_millis(10), move |r| {
                r.send(id, format!("timer on worker {worker};").into_bytes()).unwrap();
            });
            tx.lock().unwrap().send((worker, id, reactor.sender(), theirs)).unwrap();
            |_| Mailbox
        })
        .unwrap();
    let mut seen = Vec::new();
    for _ in 0..2 {
        let (worker, id, sender, mut theirs) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        sender.send(id, format!("hello worker {worker};").into_bytes()).unwrap();
        theirs.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let expected = [format!("timer on worker {worker};"), format!("hello worker {worker};")];
        let mut got = vec![0; expected[0].len() + expected[1].len()];
        theirs.read_exact(&mut got).unwrap();
        let got = String::from_utf8(got).unwrap();
        // The timer (10 ms) and the message race: both arrive, in either order.
        assert!(got == expected.concat() || got == format!("{}{}", expected[1], expected[0]), "{got}");
        seen.push(worker);
    }
    seen.sort();
    assert_eq!(seen, vec![0, 1]);
    workers.shutdown();
    let stats = workers.join().unwrap();
    assert_eq!(stats.adopted, 2);
    assert_eq!(stats.messages_delivered, 4);
}

/// Workers' listeners have a lifecycle too: paused, clients wait in the backlog unanswered;
/// resumed, they are served; workers started from listeners made elsewhere (an upgrade's
/// inherited sockets) serve each; a drain ends them once their clients leave.
#[test]
fn workers_pause_resume_drain_and_start_from_listeners() {
    use std::io::Write;
    let workers = Workers::start(2, "127.0.0.1:0".parse().unwrap(), small_config(), |_| |_| Echo).unwrap();
    assert_eq!(workers.listeners().len(), 2, "one SO_REUSEPORT socket per worker, kept for a handover");
    let turns = |w: &Workers| w.handles().iter().map(|h| h.stats().turns).collect::<Vec<_>>();
    let before = turns(&workers);
    workers.pause();
    // Each worker is woken by the request and carries it out in that turn: once every one
    // has turned since, the pause is in force.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while turns(&workers).iter().zip(&before).any(|(now, then)| now <= then) {
        assert!(std::time::Instant::now() < deadline, "the workers did not wake");
        thread::yield_now();
    }
    let mut waiting = TcpStream::connect(workers.addr()).unwrap();
    waiting.write_all(b"queued").unwrap();
    waiting.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    assert!(waiting.read_some(&mut [0; 8]).is_err(), "answered while paused");
    workers.resume();
    waiting.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut back = [0; 6];
    waiting.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"queued");

    // The same sockets, handed to a second set of workers (as an upgrade's new process gets
    // them): both sets serve the one address until the first drains.
    let handed: Vec<_> = workers.listeners().iter().map(|l| l.try_clone().unwrap()).collect();
    let successor =
        Workers::from_listeners(handed, small_config(), |_, _: &mut evloop::Reactor<Echo>| |_| Echo).unwrap();
    assert_eq!(successor.addr(), workers.addr());
    workers.drain(Duration::from_secs(10));
    drop(waiting);
    let stats = workers.join().unwrap();
    assert_eq!(stats.closed.shutdown, 0, "the drain cut a client off");
    for _ in 0..10 {
        let mut stream = TcpStream::connect(successor.addr()).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        round_trip(&mut stream, b"after the drain");
    }
    successor.shutdown();
    assert_eq!(successor.join().unwrap().accepted, 10);
}
