//! The two echo servers, each started in-process on threads of its own.
//!
//! `main` starts one pair ([`start_evloop`] + [`start_tokio`]`(None)`, or in workers mode
//! [`start_evloop_workers`] + [`start_tokio`]`(Some(n))`) and keeps it for the whole run. A
//! [`Server`] gives the client its address and `main`/the client the ids of its threads (for
//! pinning and CPU accounting, see `cpu.rs`); [`Server::shutdown`] stops it at the end and
//! prints evloop's connection stats.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};

use evloop::workers::Workers;
use evloop::{Config, Cx, Handle, Handler, Input, Reactor};

use crate::cpu::{current_tid, Tids};

/// evloop's echo: the reactor reads into its shared buffer, we copy to the output buffer.
struct Echo;

impl Handler for Echo {
    type Msg = ();

    fn on_data(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
        cx.write(input.bytes());
        input.consume_all();
    }
}
enum Stop {
    Evloop(Handle, JoinHandle<()>),
    Workers(Workers),
    /// tokio's accept loop checks this flag after each accept; stopping sets it and connects
    /// once so the loop wakes up (avoids needing tokio's "sync" feature for a oneshot).
    Tokio(Arc<AtomicBool>, JoinHandle<()>),
}

pub struct Server {
    pub name: String,
    pub addr: SocketAddr,
    /// Every thread the server runs on; its CPU time is the sum over them.
    pub tids: Tids,
    stop: Stop,
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

pub fn start_evloop() -> Server {
    let (tx, rx) = mpsc::channel();
    let thread = thread::Builder::new()
        .name("evloop-server".into())
        .spawn(move || {
            // The reactor is not Send: build it on the thread that runs it.
            let mut reactor = Reactor::<Echo>::new(Config::default()).expect("evloop: reactor");
            let (_, addr) = reactor.listen(loopback(), |_peer| Echo).expect("evloop: listen");
            tx.send((addr, reactor.handle(), current_tid())).expect("evloop: report");
            reactor.run().expect("evloop: run");
        })
        .expect("spawn evloop thread");
    let (addr, handle, tid) = rx.recv().expect("evloop server thread died during startup");
    let tids = Arc::new(Mutex::new(vec![tid]));
    Server { name: "evloop".into(), addr, tids, stop: Stop::Evloop(handle, thread) }
}

/// `count` share-nothing reactors on `count` threads, one `SO_REUSEPORT` listener each.
pub fn start_evloop_workers(count: usize) -> Server {
    let tids = Tids::default();
    let record = Arc::clone(&tids);
    let workers = Workers::start(count, loopback(), Config::default(), move |_worker| {
        // Runs once on each worker's own thread, before its reactor starts.
        record.lock().expect("tids lock").push(current_tid());
        |_peer| Echo
    })
    .expect("evloop: workers");
    let addr = workers.addr();
    Server { name: format!("evloop x {count}"), addr, tids, stop: Stop::Workers(workers) }
}

/// tokio's echo: a `current_thread` runtime, or with `workers: Some(n)` a `multi_thread` one
/// with `n` worker threads. Either way the accept loop runs in `block_on` on the thread started
/// here (as under `#[tokio::main]`) and each connection is a spawned task.
pub fn start_tokio(workers: Option<usize>) -> Server {
    let listener = std::net::TcpListener::bind(loopback()).expect("tokio: bind");
    listener.set_nonblocking(true).expect("tokio: nonblocking");
    let addr = listener.local_addr().expect("tokio: local_addr");
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let tids = Tids::default();
    let record = Arc::clone(&tids);
    let (tx, rx) = mpsc::channel();
    let thread = thread::Builder::new()
        .name("tokio-server".into())
        .spawn(move || {
            record.lock().expect("tids lock").push(current_tid());
            let rt = match workers {
                None => tokio::runtime::Builder::new_current_thread().enable_io().build(),
                Some(n) => tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(n)
                    .enable_io()
                    .on_thread_start(move || record.lock().expect("tids lock").push(current_tid()))
                    .build(),
            }
            .expect("tokio: rt");
            tx.send(()).expect("tokio: report");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio: from_std");
                loop {
                    let Ok((stream, _peer)) = listener.accept().await else { continue };
                    if flag.load(Ordering::SeqCst) {
                        break;
                    }
                    tokio::spawn(tokio_echo(stream));
                }
            });
            // Dropping the runtime drops any task still alive (none: the client closed them).
        })
        .expect("spawn tokio thread");
    rx.recv().expect("tokio server thread died during startup");
    let name = workers.map_or_else(|| "tokio".into(), |n| format!("tokio mt x {n}"));
    Server { name, addr, tids, stop: Stop::Tokio(stop, thread) }
}

async fn tokio_echo(mut stream: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if stream.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

impl Server {
    /// Stops the server and waits for its threads to end.
    pub fn shutdown(self) {
        let name = self.name;
        let joined = |thread: JoinHandle<()>| {
            thread.join().unwrap_or_else(|_| panic!("{name} server thread panicked"));
        };
        let stats = match self.stop {
            Stop::Evloop(handle, thread) => {
                handle.shutdown();
                joined(thread);
                handle.stats()
            }
            Stop::Workers(workers) => {
                workers.shutdown();
                workers.join().unwrap_or_else(|e| panic!("{name}: {e}"))
            }
            Stop::Tokio(flag, thread) => {
                flag.store(true, Ordering::SeqCst);
                let _ = std::net::TcpStream::connect(self.addr); // wakes the accept loop
                joined(thread);
                return;
            }
        };
        println!(
            "# {name} stats: accepted={} closed_by_error={} bytes_in={} bytes_out={}",
            stats.accepted, stats.closed.error, stats.bytes_in, stats.bytes_out
        );
    }
}
