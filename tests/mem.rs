//! Memory on the hot path, measured with a counting global allocator (a test binary of its
//! own, since a `#[global_allocator]` is per binary): steady-state echo allocates nothing per
//! message, and idle connections hold no per-connection buffers.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use evloop::{Config, Reactor};

/// Counts allocations, and live bytes, made by threads that opted in (the reactor thread),
/// so the test's own client threads don't blur the numbers.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);

thread_local! {
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

fn counted() -> bool {
    COUNTED.try_with(Cell::get).unwrap_or(false)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if counted() {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            LIVE_BYTES.fetch_add(layout.size() as i64, Ordering::Relaxed);
        }
        // SAFETY: forwarding the caller's layout to the system allocator unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if counted() {
            LIVE_BYTES.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        }
        // SAFETY: `ptr` came from `System.alloc` with this layout (see `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if counted() {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            LIVE_BYTES.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        }
        // SAFETY: as for `alloc` and `dealloc`: the pointer and layout are the caller's own.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

// The integration tests' echo handler (support/src/testing.rs).
use evloop_support::observe::wait_until;
use evloop_support::testing::Echo;

/// Starts a counted reactor thread; returns its address and handle.
fn start() -> (std::net::SocketAddr, evloop::Handle, thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel();
    let server = thread::spawn(move || {
        COUNTED.with(|c| c.set(true));
        let mut reactor = Reactor::new(Config::default()).unwrap();
        let (_, addr) = reactor.listen("127.0.0.1:0".parse().unwrap(), |_| Echo).unwrap();
        tx.send((addr, reactor.handle())).unwrap();
        reactor.run().unwrap();
    });
    let (addr, handle) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    (addr, handle, server)
}

fn ping_pong(streams: &mut [TcpStream], rounds: usize, size: usize) {
    let msg = vec![0xabu8; size];
    let mut back = vec![0u8; size];
    for _ in 0..rounds {
        for stream in streams.iter_mut() {
            stream.write_all(&msg).unwrap();
        }
        for stream in streams.iter_mut() {
            stream.read_exact(&mut back).unwrap();
            assert_eq!(back, msg);
        }
    }
}

/// Sends 16 MiB (more than the kernel buffers of both sockets hold) without reading until the reactor has output waiting for this client, then
/// reads everything back.
fn burst(stream: &mut TcpStream, handle: &evloop::Handle) {
    const SIZE: usize = 16 << 20;
    let mut writer = stream.try_clone().unwrap();
    let sender = thread::spawn(move || writer.write_all(&vec![5u8; SIZE]).unwrap());
    wait_until(Duration::from_secs(10), "the reactor buffers output", || handle.stats().out_buffered > 0);
    let mut back = vec![0u8; SIZE];
    stream.read_exact(&mut back).unwrap();
    sender.join().unwrap();
    assert!(back.iter().all(|&b| b == 5));
}

/// Both tests share the counters, so they run one after the other inside one test.
#[test]
fn steady_state_echo_allocates_nothing_and_idle_connections_hold_no_buffers() {
    let (addr, handle, server) = start();

    // Zero allocations per message once warmed up: 10 connections, 64 B and 16 KiB messages.
    let mut streams: Vec<TcpStream> = (0..10).map(|_| TcpStream::connect(addr).unwrap()).collect();
    for stream in &streams {
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream.set_nodelay(true).unwrap();
    }
    ping_pong(&mut streams, 200, 64);
    ping_pong(&mut streams, 50, 16 * 1024);
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    ping_pong(&mut streams, 2000, 64);
    ping_pong(&mut streams, 200, 16 * 1024);
    let during = ALLOCATIONS.load(Ordering::SeqCst) - before;
    assert_eq!(during, 0, "{during} allocations during 22,000 echoed messages");

    // Idle connections: the live bytes the reactor holds per connection, after a burst.
    drop(streams);
    let within = Duration::from_secs(10);
    wait_until(within, "the reactor closes them", || handle.stats().active == 0);
    let baseline = LIVE_BYTES.load(Ordering::SeqCst);
    let mut idle: Vec<TcpStream> = (0..500).map(|_| TcpStream::connect(addr).unwrap()).collect();
    for stream in &mut idle {
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        // One burst each (64 KiB: the size of the shared read buffer) so that any buffer a
        // connection kept would show.
        let burst = vec![7u8; 64 * 1024];
        stream.write_all(&burst).unwrap();
        let mut back = vec![0u8; burst.len()];
        stream.read_exact(&mut back).unwrap();
    }
    wait_until(within, "every burst is written", || {
        let stats = handle.stats();
        stats.active == 500 && stats.out_buffered == 0
    });
    let per_conn = (LIVE_BYTES.load(Ordering::SeqCst) - baseline) / idle.len() as i64;
    println!("reactor heap per idle connection: {per_conn} bytes");
    assert!(per_conn < 1024, "{per_conn} bytes of heap per idle connection");

    drop(idle);

    // Buffers do not stay large after a burst: each of 20 clients makes the reactor buffer
    // output (it sends 16 MiB before reading any of it back), then drains it. Afterwards the
    // reactor holds no more per connection than before the bursts.
    let burst_clients = 20;
    let mut bursty: Vec<TcpStream> = (0..burst_clients).map(|_| TcpStream::connect(addr).unwrap()).collect();
    for stream in &mut bursty {
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream.write_all(b"warm").unwrap();
        let mut back = [0u8; 4];
        stream.read_exact(&mut back).unwrap();
    }
    // One burst first, so the shared buffers have their working size in the baseline.
    burst(&mut bursty[0], &handle);
    wait_until(within, "the burst is drained", || handle.stats().out_buffered == 0);
    let before_bursts = LIVE_BYTES.load(Ordering::SeqCst);
    for stream in bursty.iter_mut().skip(1) {
        burst(stream, &handle);
    }
    wait_until(within, "the bursts are drained", || handle.stats().out_buffered == 0);
    let kept = (LIVE_BYTES.load(Ordering::SeqCst) - before_bursts) / (burst_clients as i64 - 1);
    println!("reactor heap kept per connection after a 16 MiB burst: {kept} bytes");
    assert!(kept < 1024, "{kept} bytes kept per connection after its burst");

    drop(bursty);
    handle.shutdown();
    server.join().unwrap();
}
