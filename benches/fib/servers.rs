//! The servers the fib bench measures: evloop's `fib` example as a child process, and the
//! tokio peer on a thread of this process.
//!
//! `main` calls [`build_example`] once, then starts one server at a time — [`Server::start`]
//! for `--mode inline` and `--mode offload`, [`TokioServer::start`] for the peer — hands its
//! address to the client code (`client.rs`), and drops it before the next one starts. Both
//! guards stop their server on drop (the child is killed by its PID and reaped; the tokio
//! thread is told to stop and joined), so no path out of the bench leaves one running.

use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::{Res, MAX_N};

/// Requests up to this N are computed on the loop thread, by evloop's example and the tokio
/// peer alike.
const INLINE_MAX_N: u32 = 20;

/// Builds the example with the cargo running this bench, and returns the binary's path.
pub fn build_example() -> Res<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("# building: {cargo} build --release --example fib");
    let status = Command::new(&cargo)
        .args(["build", "--release", "--example", "fib"])
        .current_dir(root)
        .status()
        .map_err(|e| format!("running {cargo}: {e}"))?;
    if !status.success() {
        return Err(format!("building the fib example failed: {status}"));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |d| root.join(d));
    Ok(target.join("release").join("examples").join("fib"))
}

/// A running fib server process. Dropping it kills the process (by the PID we spawned) and
/// reaps it, so no path out of the bench — error or panic — leaves a server behind.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
}

impl Server {
    pub fn start(bin: &Path, mode: &str, threads: usize) -> Res<Server> {
        let child = Command::new(bin)
            .args(["--mode", mode, "--threads", &threads.to_string(), "--addr", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", bin.display()))?;
        // The guard exists from here on: every early return below kills the child.
        let mut server = Server { child, addr: SocketAddr::from(([127, 0, 0, 1], 0)) };
        let stdout = server.child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut out = BufReader::new(stdout);
            let mut first = String::new();
            let _ = tx.send(out.read_line(&mut first).map(|_| first));
            // Keep draining, so the server never writes into a closed pipe.
            let _ = io::copy(&mut out, &mut io::sink());
        });
        let line = match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(line)) => line,
            Ok(Err(e)) => return Err(format!("{mode} server: reading its stdout: {e}")),
            Err(_) => return Err(format!("{mode} server: no `listening on` line within 10 s")),
        };
        server.addr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("{mode} server: unexpected first line {line:?}"))?;
        Ok(server)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The tokio peer: the fib protocol on a current-thread tokio runtime, on a thread of this
/// process (see the bench's doc in `main.rs`). Dropping it stops the server and joins its thread.
pub struct TokioServer {
    pub addr: SocketAddr,
    /// Tells the accept loop to return; `None` once sent.
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// The loop thread; `None` once joined.
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl TokioServer {
    /// Binds 127.0.0.1:0 and starts the loop thread; `threads` caps the blocking pool.
    pub fn start(threads: usize) -> Res<TokioServer> {
        let err = |e: io::Error| format!("tokio server: {e}");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .max_blocking_threads(threads)
            .thread_name("tokio-fib-worker")
            .build()
            .map_err(err)?;
        // Bind here, so the address and any error are known before `start` returns. The
        // listener registers with the runtime's I/O driver, which moves with the runtime.
        let listener = {
            let _in_runtime = runtime.enter();
            let std_listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(err)?;
            std_listener.set_nonblocking(true).map_err(err)?;
            tokio::net::TcpListener::from_std(std_listener).map_err(err)?
        };
        let addr = listener.local_addr().map_err(err)?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let thread = thread::Builder::new()
            .name("tokio-fib-loop".into())
            // Dropping the runtime at the end of the thread cancels the connection tasks.
            .spawn(move || runtime.block_on(tokio_accept_loop(listener, stop_rx)))
            .map_err(err)?;
        Ok(TokioServer { addr, stop: Some(stop_tx), thread: Some(thread) })
    }

    /// Stops the server, joins its thread and reports how the accept loop ended.
    pub fn shut_down(&mut self) -> Res {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(()); // fails only if the loop already returned (an error)
        }
        match self.thread.take().map(JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(format!("tokio server: {e}")),
            Some(Err(_)) => Err("tokio server: its thread panicked".into()),
        }
    }
}

impl Drop for TokioServer {
    fn drop(&mut self) {
        let _ = self.shut_down();
    }
}

/// Accepts connections, a task each, until `stop` fires.
async fn tokio_accept_loop(
    listener: tokio::net::TcpListener,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> io::Result<()> {
    loop {
        tokio::select! {
            _ = &mut stop => return Ok(()),
            accepted = listener.accept() => {
                let (stream, _peer) = accepted?;
                tokio::spawn(async move {
                    // A failed connection only ends itself; the clients report what they saw.
                    let _ = tokio_serve_conn(stream).await;
                });
            }
        }
    }
}

/// One connection: answers request lines in order, one at a time, like the evloop server
/// (which stops reading while a request is in progress).
async fn tokio_serve_conn(mut stream: tokio::net::TcpStream) -> io::Result<()> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

    stream.set_nodelay(true)?; // as evloop does for every accepted connection
    let (read, mut write) = stream.split();
    let mut lines = tokio::io::BufReader::new(read).lines();
    while let Some(line) = lines.next_line().await? {
        let reply = match parse_request(&line) {
            // Small N on the loop thread, as evloop does: cheaper than a trip to the pool.
            Ok(Request::Fib(n)) if n <= INLINE_MAX_N => fib(n).to_string(),
            // The standard fix for CPU work under tokio: a blocking-pool thread.
            Ok(Request::Fib(n)) => match tokio::task::spawn_blocking(move || fib(n)).await {
                Ok(value) => value.to_string(),
                Err(_) => "ERR internal".into(),
            },
            Ok(Request::Sleep(ms)) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                format!("slept {ms}")
            }
            Err(reason) => format!("ERR {reason}"),
        };
        write.write_all(format!("{reply}\n").as_bytes()).await?;
    }
    Ok(())
}

/// A request of the fib protocol (see `examples/fib.rs`).
enum Request {
    Fib(u32),
    Sleep(u64),
}

/// Parses one request line for the tokio peer: the valid requests exactly as the example
/// parses them (`N` up to MAX_N, `sleep MS`); every other line gets a short `ERR`.
fn parse_request(line: &str) -> Result<Request, &'static str> {
    let text = line.trim();
    if let Some(ms) = text.strip_prefix("sleep") {
        return ms.trim().parse().map(Request::Sleep).map_err(|_| "bad sleep");
    }
    match text.parse() {
        Ok(n) if text.bytes().all(|b| b.is_ascii_digit()) && n <= MAX_N => Ok(Request::Fib(n)),
        _ => Err("bad request"),
    }
}

/// The server's CPU-bound workload, the same naive recursion as `examples/fib.rs`.
fn fib(n: u32) -> u64 {
    if n < 2 {
        u64::from(n)
    } else {
        fib(n - 1) + fib(n - 2)
    }
}
