//! The integration tests' helpers (`tests/it` and the binaries of their own: `fd_leak`,
//! `mem`, `select_props`): an in-process server on `127.0.0.1:0`, a seeded PRNG, deadlines,
//! and socket tricks. Every wait here is bounded, so a hang becomes a failure; waiting on
//! what the kernel shows of a server is [`crate::observe`]'s.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use evloop::{Config, Cx, Handle, Handler, Input, Reactor, Stats, Turn};

/// Turns a reactor the test drives itself until `done` holds; fails after 20 s.
#[track_caller]
pub fn turn_until<H: Handler>(
    reactor: &mut Reactor<H>,
    what: &str,
    mut done: impl FnMut(&mut Reactor<H>) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done(reactor) {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        assert_eq!(reactor.run_once(Some(Duration::from_millis(10))).unwrap(), Turn::Running);
    }
}

/// Starts env_logger once (quiet unless `RUST_LOG` is set).
pub fn init() {
    let _ = env_logger::builder().is_test(true).try_init();
}

/// A reactor running on its own thread; shut down and joined on drop.
pub struct Server {
    pub addr: SocketAddr,
    pub handle: Handle,
    /// The server thread's kernel thread id, to read its CPU time.
    pub tid: u32,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Server {
    /// Starts a reactor with `config`, listening on an ephemeral loopback port.
    pub fn start<H, F>(config: Config, factory: F) -> Server
    where
        H: Handler,
        F: FnMut(SocketAddr) -> H + Send + 'static,
    {
        init();
        let (tx, rx) = mpsc::channel();
        let thread = thread::spawn(move || {
            let mut reactor = Reactor::new(config)?;
            let (_, addr) = reactor.listen("127.0.0.1:0".parse().unwrap(), factory)?;
            let tid = current_tid();
            tx.send((addr, reactor.handle(), tid)).unwrap();
            reactor.run()
        });
        let (addr, handle, tid) = rx.recv_timeout(Duration::from_secs(10)).expect("server did not start");
        Server { addr, handle, tid, thread: Some(thread) }
    }

    pub fn stats(&self) -> Stats {
        self.handle.stats()
    }

    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
        stream
    }

    /// A client whose receive buffer is fixed small (16 KiB) before connecting, so the
    /// kernel's autotuning (up to `tcp_rmem`'s maximum, 32 MiB on some machines) cannot
    /// soak up what a test means to leave pending in the server.
    pub fn connect_small_window(&self) -> TcpStream {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.set_recv_buffer_size(16 * 1024).unwrap();
        socket.connect(&self.addr.into()).expect("connect");
        let stream = TcpStream::from(socket);
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
        stream
    }

    /// Shuts the reactor down and waits (bounded) for `run()` to return.
    pub fn stop(mut self) -> io::Result<()> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> io::Result<()> {
        let Some(thread) = self.thread.take() else { return Ok(()) };
        self.handle.shutdown();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !thread.is_finished() {
            assert!(Instant::now() < deadline, "reactor did not stop within 20 s of shutdown()");
            thread::sleep(Duration::from_millis(5));
        }
        thread.join().expect("reactor thread panicked")
    }

    /// Waits until `check(stats)` holds, or panics after `within`.
    #[track_caller]
    pub fn wait_for(&self, within: Duration, what: &str, check: impl Fn(&Stats) -> bool) -> Stats {
        let deadline = Instant::now() + within;
        loop {
            let stats = self.stats();
            if check(&stats) {
                return stats;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}; stats: {stats:#?}");
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// CPU time (user + system) the reactor thread has used so far.
    pub fn cpu_time(&self) -> Duration {
        thread_cpu_time(self.tid)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !thread::panicking() {
            self.stop_inner().expect("reactor returned an error");
        } else if let Some(_thread) = self.thread.take() {
            self.handle.shutdown();
        }
    }
}

/// The calling thread's kernel id, from `/proc/thread-self` (Linux).
fn current_tid() -> u32 {
    let link = std::fs::read_link("/proc/thread-self").expect("/proc/thread-self");
    link.file_name().unwrap().to_str().unwrap().parse().unwrap()
}

/// CPU time of one thread of this process, from `/proc/self/task/TID/stat` (clock ticks).
pub fn thread_cpu_time(tid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap_or_default();
    cpu_from_stat(&stat)
}

/// utime + stime from a `/proc/.../stat` line, assuming the usual 100 ticks per second.
pub fn cpu_from_stat(stat: &str) -> Duration {
    // Fields after the command name (which is in parentheses and may contain spaces).
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { return Duration::ZERO };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, i.e. 11 and 12 after the name.
    let ticks: u64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// xorshift64*: a tiny seeded PRNG so failures can be replayed (`EVLOOP_SEED`).
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// A seed from `EVLOOP_SEED` or the clock, printed so a failing run can be repeated.
    pub fn seeded(test: &str) -> Rng {
        let seed = std::env::var("EVLOOP_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
        });
        eprintln!("{test}: EVLOOP_SEED={seed}");
        Rng::new(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// `read` that retries `Interrupted`, as `read_exact` and `read_line` do. A blocking read on
/// a socket with a timeout can fail with `EINTR` here although the suite installs no signal
/// handler: a child that exits while a test thread is spawning another (signals blocked)
/// leaves its `SIGCHLD` pending, and the kernel then wakes another thread's timed `recv`
/// with it (seen with `perf record -e signal:signal_generate`; it failed two http tests).
pub trait ReadSome: Read {
    fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                result => return result,
            }
        }
    }
}

impl<R: Read + ?Sized> ReadSome for R {}

/// `write` that retries `Interrupted`, as `write_all` does (see [`ReadSome`]).
pub trait WriteSome: Write {
    fn write_some(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            match self.write(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                result => return result,
            }
        }
    }
}

impl<W: Write + ?Sized> WriteSome for W {}

/// Sends RST instead of FIN when `stream` is dropped.
pub fn set_linger_zero(stream: &TcpStream) {
    socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO)).unwrap();
}

/// One echo round trip: `msg` out, the same bytes back.
#[track_caller]
pub fn round_trip(stream: &mut TcpStream, msg: &[u8]) {
    stream.write_all(msg).unwrap();
    let mut back = vec![0; msg.len()];
    stream.read_exact(&mut back).unwrap();
    assert_eq!(back, msg);
}

/// The echo handler the tests serve.
pub struct Echo;

impl Handler for Echo {
    type Msg = ();
    fn on_data(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
        cx.write(input.bytes());
        input.consume_all();
    }
}

/// A small config for tests: small buffers so limits are reached quickly.
pub fn small_config() -> Config {
    Config {
        max_conns: 512,
        max_input: 8 * 1024,
        out_high_watermark: 64 * 1024,
        out_low_watermark: 16 * 1024,
        shutdown_timeout: Duration::from_secs(2),
        ..Config::default()
    }
}

/// Streams `payload` in random chunks (1 B to 64 KiB, log-uniform, so tiny chunks are common)
/// with occasional pauses while reading the echo concurrently, then half-closes and checks
/// that the echo is exact and followed by the server's EOF.
pub fn stream_and_verify(server_addr: std::net::SocketAddr, payload: Vec<u8>, mut rng: Rng) {
    let mut stream = std::net::TcpStream::connect(server_addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let expected = payload.clone();
    let sender = thread::spawn(move || {
        let mut sent = 0;
        while sent < payload.len() {
            let magnitude = rng.range(0, 16);
            let chunk = rng.range(1, 1 << magnitude).min(payload.len() - sent);
            writer.write_all(&payload[sent..sent + chunk]).unwrap();
            sent += chunk;
            if rng.range(0, 15) == 0 {
                thread::sleep(Duration::from_micros(rng.range(0, 2000) as u64));
            }
        }
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let mut echoed = Vec::with_capacity(expected.len());
    stream.read_to_end(&mut echoed).expect("read echo until the server's EOF");
    sender.join().unwrap();
    assert_eq!(echoed.len(), expected.len(), "echoed length");
    assert!(echoed == expected, "echoed bytes differ from the ones sent");
}

/// A fresh, empty directory of this test process's own under the system's temp dir
/// (`evloop-NAME-PID`: NAME must differ between tests, which run at once), removed with
/// everything in it when the guard is dropped: at the end of the test, and also when it
/// fails, as the panic unwinds.
pub fn temp_dir(name: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("evloop-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

/// See [`temp_dir`]; derefs to its path.
#[derive(Debug)]
pub struct TempDir(std::path::PathBuf);

impl std::ops::Deref for TempDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::path::Path> for TempDir {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
