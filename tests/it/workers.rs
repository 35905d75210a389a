//! Share-nothing workers on one `SO_REUSEPORT` address: the kernel spreads connections,
//! every worker serves its own, and shutdown stops them all.

use std::io::Read;
use std::net::TcpStream;
use std::process::Command;
use std::thread;
use std::time::Duration;

use evloop::workers::Workers;

use crate::examples::{example, Running};
use crate::util::{init, round_trip, small_config, Echo, Rng};

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
    assert!(log.contains("shutdown: 12 }"), "not a graceful shutdown of every worker:\n{log}");
    for client in &mut clients {
        let mut buf = [0; 8];
        assert_eq!(client.read(&mut buf).unwrap(), 0, "EOF after shutdown");
    }
}
