//! The lingering close and its policies (`Config::linger`): a reply is never destroyed by a
//! reset in the cases lingering exists for, under every policy that claims to protect them,
//! and the default closes at once when nothing says the peer may still send.
//!
//! Why the replies are large (256 KiB) and the clients' receive windows small: on Linux a
//! reset does not destroy what already sits in the client's receive queue, only what the
//! server's kernel still holds. Over loopback a small reply is in the client's queue the
//! moment it is written, so only a reply that waits in the server's send queue shows the
//! damage — as any reply does on a real network, where it is in flight for a round trip.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::Duration;

use evloop::{Config, Cx, Handler, Input, Linger};

use evloop_support::testing::{small_config, Server};

/// The size of the reply the tests' server sends: far more than the client's receive window.
const REPLY_LEN: usize = 256 * 1024;

/// The reply: a pattern, so a truncated or damaged reply cannot pass for a whole one.
fn reply(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Answers the first line it gets with a reply and closes: an HTTP server answering a
/// request that asked for the connection to close, or refusing one.
struct Answerer {
    reply_len: usize,
    /// Consume everything received (as a server that refuses a request does), rather than
    /// only the line answered (pipelined requests behind it stay unconsumed).
    consume_all: bool,
    /// Say the peer may still send (`Cx::linger_on_close`): a body left unread.
    ask: bool,
}

impl Handler for Answerer {
    type Msg = ();
    fn on_data(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
        let Some(end) = input.bytes().iter().position(|&b| b == b'\n') else { return };
        if self.consume_all {
            input.consume_all();
        } else {
            input.consume(end + 1);
        }
        cx.write(&reply(self.reply_len));
        if self.ask {
            cx.linger_on_close();
        }
        cx.close();
    }
}

fn server(linger: Linger, config: Config, consume_all: bool, ask: bool) -> Server {
    let config = Config { linger, ..config };
    Server::start(config, move |_| Answerer { reply_len: REPLY_LEN, consume_all, ask })
}

/// Reads the reply to the server's EOF; a reset is an error.
fn read_reply(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut got = Vec::new();
    stream.read_to_end(&mut got).map(|_| got)
}

#[track_caller]
fn assert_whole(result: io::Result<Vec<u8>>, case: &str) {
    match result {
        Ok(got) => assert!(got == reply(REPLY_LEN), "{case}: reply damaged ({} bytes)", got.len()),
        Err(e) => panic!("{case}: the reply was reset: {e}"),
    }
}

/// A pipelining client: three requests in one write, then — once the first byte of the
/// answer is back — one more, as a client streaming its queue does; then it reads.
fn pipeline(server: &Server) -> io::Result<Vec<u8>> {
    let mut stream = server.connect_small_window();
    stream.write_all(b"GET\nGET\nGET\n")?;
    let mut first = [0; 1];
    stream.read_exact(&mut first)?;
    // The server may be gone already (that is what `Off` risks): the reply tells.
    let _ = stream.write_all(b"GET\n");
    let mut rest = read_reply(&mut stream)?;
    rest.insert(0, first[0]);
    Ok(rest)
}

/// Pipelined requests behind the one answered with a close: the reply arrives whole and then
/// EOF. The server's evidence differs by case: with a 4-byte read buffer the read that took
/// the first request filled it (the socket may hold more: `READ_READY`); with the default
/// buffer one read took all three and the handler left two unconsumed.
#[test]
fn pipelined_requests_behind_a_close_never_reset_the_reply() {
    for linger in [Linger::WhenNeeded, Linger::Always] {
        for read_chunk in [4, small_config().read_chunk] {
            let server = server(linger, Config { read_chunk, ..small_config() }, false, false);
            assert_whole(pipeline(&server), &format!("{linger:?}, read_chunk {read_chunk}"));
            let stats = server.wait_for(Duration::from_secs(5), "the close", |s| s.closed.local == 1);
            assert_eq!(stats.lingered, 1, "{linger:?}, read_chunk {read_chunk}");
        }
    }
}

/// The control for the test above: without lingering the same exchange loses the reply to a
/// reset, so the test does detect what it guards against.
#[test]
fn without_lingering_pipelined_requests_reset_the_reply() {
    for read_chunk in [4, small_config().read_chunk] {
        let server = server(Linger::Off, Config { read_chunk, ..small_config() }, false, false);
        match pipeline(&server) {
            Ok(got) => assert!(got.len() < REPLY_LEN, "read_chunk {read_chunk}: the reply survived"),
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "read_chunk {read_chunk}"),
        }
        let stats = server.wait_for(Duration::from_secs(5), "the close", |s| s.closed.local == 1);
        assert_eq!(stats.lingered, 0);
    }
}

/// A request whose body (4 MiB) is far larger than what the server reads before answering
/// an error and closing: the client's whole body goes out (the lingering server reads and
/// discards it), then the client reads the whole reply and EOF. Under `WhenNeeded` the
/// handler says it left a body unread (`linger_on_close`), as the http example does.
#[test]
fn a_body_larger_than_the_server_reads_before_its_error_answer_does_not_reset_it() {
    for (linger, ask) in [(Linger::WhenNeeded, true), (Linger::Always, false)] {
        let server = server(linger, small_config(), true, ask);
        let mut stream = server.connect_small_window();
        let mut writer = stream.try_clone().unwrap();
        let sender = thread::spawn(move || -> io::Result<()> {
            writer.write_all(b"POST\n")?;
            writer.write_all(&vec![b'b'; 4 << 20])?;
            writer.shutdown(Shutdown::Write)
        });
        sender.join().unwrap().unwrap_or_else(|e| panic!("{linger:?}: the body was refused: {e}"));
        assert_whole(read_reply(&mut stream), &format!("{linger:?}"));
        let stats = server.wait_for(Duration::from_secs(5), "the close", |s| s.closed.local == 1);
        assert_eq!(stats.lingered, 1);
    }
}

/// A client that sends its request, keeps sending for 100 ms more (small writes 20 ms
/// apart) and only then half-closes and reads: it gets the whole reply and EOF.
#[test]
fn a_client_that_half_closes_late_gets_the_whole_reply() {
    for (linger, ask) in [(Linger::WhenNeeded, true), (Linger::Always, false)] {
        let server = server(linger, small_config(), true, ask);
        let mut stream = server.connect_small_window();
        stream.write_all(b"GET\n").unwrap();
        for _ in 0..5 {
            thread::sleep(Duration::from_millis(20));
            stream.write_all(b"more of the request\n").unwrap();
        }
        stream.shutdown(Shutdown::Write).unwrap();
        assert_whole(read_reply(&mut stream), &format!("{linger:?}"));
        let stats = server.wait_for(Duration::from_secs(5), "the close", |s| s.closed.local == 1);
        assert_eq!(stats.lingered, 1);
    }
}

/// One request per connection, answered, nothing more sent: the default closes each at once
/// (no FIN-and-wait, no extra read; counted by the reactor), `Always` lingers on each, and
/// both count the close as the handler's (`Reason::Local`, as before the policies existed).
#[test]
fn the_default_closes_at_once_when_nothing_says_the_peer_may_send() {
    const CONNS: u64 = 20;
    // Where a short read does not prove the socket empty (evloop's portable path: not
    // Linux, or built with `--cfg evloop_portable`), the socket may still hold input after
    // the request, so the default takes the safe side and lingers.
    let short_read_drains = cfg!(any(target_os = "linux", target_os = "android")) && !cfg!(evloop_portable);
    let by_default = if short_read_drains { 0 } else { CONNS };
    for (linger, lingered) in [(Linger::WhenNeeded, by_default), (Linger::Always, CONNS), (Linger::Off, 0)] {
        let config = Config { linger, ..small_config() };
        let server = Server::start(config, |_| Answerer { reply_len: 6, consume_all: false, ask: false });
        for _ in 0..CONNS {
            let mut stream = server.connect();
            stream.write_all(b"GET\n").unwrap();
            let got = read_reply(&mut stream).expect("reply and EOF");
            assert_eq!(got, reply(6));
        }
        let stats = server.wait_for(Duration::from_secs(5), "every close", |s| s.closed.local == CONNS);
        assert_eq!(stats.lingered, lingered, "{linger:?}");
        assert_eq!(stats.closed.total(), CONNS, "{linger:?}: {stats:?}");
    }
}
