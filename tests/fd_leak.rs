//! No file descriptor leaks: a test binary of its own, with a single test, so no other test
//! opens or closes descriptors while `/proc/self/fd` is being counted.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use evloop::{Config, Reactor};

// The integration tests' echo handler (support/src/testing.rs).
use evloop_support::testing::Echo;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd").count()
}

/// 1,000 connect / echo / close cycles against a reactor, then shutdown: the process
/// holds exactly as many descriptors as before the reactor existed.
#[test]
fn a_thousand_connections_then_shutdown_leak_no_descriptors() {
    let before = open_fds();
    let (tx, rx) = mpsc::channel();
    let server = thread::spawn(move || {
        let mut reactor = Reactor::new(Config::default())?;
        let (_, addr) = reactor.listen("127.0.0.1:0".parse().unwrap(), |_| Echo)?;
        tx.send((addr, reactor.handle())).unwrap();
        reactor.run()
    });
    let (addr, handle) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    for i in 0..1000u32 {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream.write_all(&i.to_le_bytes()).unwrap();
        let mut back = [0; 4];
        stream.read_exact(&mut back).unwrap();
        assert_eq!(back, i.to_le_bytes());
        // Half the clients leave with a clean FIN, half just drop mid-connection.
        if i % 2 == 0 {
            stream.shutdown(std::net::Shutdown::Write).unwrap();
            let mut rest = Vec::new();
            stream.read_to_end(&mut rest).unwrap();
        }
    }
    // Some connections stay open across shutdown: it must close them too.
    let open: Vec<TcpStream> = (0..10).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while handle.stats().accepted < 1010 {
        assert!(std::time::Instant::now() < deadline, "the last connections were never accepted");
        thread::sleep(Duration::from_millis(2));
    }
    handle.shutdown();
    server.join().unwrap().unwrap();
    let stats = handle.stats();
    assert_eq!(stats.accepted, 1010);
    assert_eq!(stats.closed.total(), 1010);
    drop(open);
    // A handle keeps the waker's eventfd alive (so `shutdown()` on it never fails);
    // it goes with the last handle.
    drop(handle);
    assert_eq!(open_fds(), before, "descriptors leaked");
}
