//! The connection model test: seeded interleavings of what a peer and a handler can do to
//! one connection (or to a forwarded pair), checked against what each side must observe.
//!
//! ```text
//!   seed ──► Rng ──► a script: steps of peer acts (send N, half-close, reset, read all /
//!                     slowly / not at all) and handler acts (write, pause, resume,
//!                     shutdown_write, close, abort, yield, later on a timer, on the next
//!                     input, two in one callback), each followed by 0–2 turns
//!              │
//!   one thread: the reactor through run_once(0), the peers through non-blocking sockets
//!              │
//!   finish: peers half-close and read to the end, handlers resume and close after EOF
//!              │
//!   check: every byte exactly once and in order, on_eof only after the last byte, the
//!          close reason, no reset where a graceful close was promised, memory bounds
//! ```
//!
//! One thread owns both ends, so a run depends only on its seed (and the kernel's loopback,
//! which delivers in the sender's system call): a failure prints the seed and the script,
//! and `EVLOOP_SEED=<seed> cargo test --test it model::` replays it. The default seeds are
//! fixed (0..CASES) so CI tries the same interleavings every time; `EVLOOP_MODEL_SEEDS=a..b`
//! tries others, and `EVLOOP_MODEL_ALL=1` counts every failing seed instead of stopping at
//! the first (`benches/model_soak.sh` runs many). TESTING.md says what it has caught.

mod handler;
mod peer;

use std::rc::Rc;
use std::time::{Duration, Instant};

use evloop::{Config, ConnId, Linger, Reactor, Reason};

use evloop_support::testing::Rng;
use handler::{Act, Board, Msg, Scripted, Shared, HIGH_WATERMARK, LOW_WATERMARK, MAX_WRITE};
use peer::{Peer, Reading};

/// Cases per test in a plain `cargo test`.
const CASES: u64 = 300;

/// Plain connections: one handler, one peer.
#[test]
fn single_connections() {
    run_cases("single_connections", false);
}

/// Forwarded pairs: two connections joined by `forward_to` both ways, each with its peer;
/// half-closes carried across by messages, as `examples/proxy.rs` does.
#[test]
fn forwarded_pairs() {
    run_cases("forwarded_pairs", true);
}

fn run_cases(test: &str, pair: bool) {
    evloop_support::testing::init();
    let seeds: Vec<u64> = match (std::env::var("EVLOOP_SEED"), std::env::var("EVLOOP_MODEL_SEEDS")) {
        (Ok(seed), _) => vec![seed.parse().expect("EVLOOP_SEED is a number")],
        (_, Ok(range)) => {
            let (a, b) = range.split_once("..").expect("EVLOOP_MODEL_SEEDS is START..END");
            (a.parse().expect("a number")..b.parse().expect("a number")).collect()
        }
        _ => (0..CASES).collect(),
    };
    // `EVLOOP_MODEL_ALL=1` runs every seed and counts the failures (for a soak, or to
    // measure how quickly a reintroduced bug is found); by default the first one stops it.
    let keep_going = std::env::var_os("EVLOOP_MODEL_ALL").is_some();
    let mut failed = Vec::new();
    for &seed in &seeds {
        if let Err(failure) = run_case(seed, pair) {
            let report = format!("{test}: seed {seed} failed: {failure}\nreplay: EVLOOP_SEED={seed} cargo test --test it model::{test}");
            if !keep_going {
                panic!("{report}");
            }
            eprintln!("{}", report.lines().next().unwrap_or_default());
            failed.push(seed);
        }
    }
    assert!(failed.is_empty(), "{test}: {} of {} seeds failed: {failed:?}", failed.len(), seeds.len());
}

/// The reactor's settings for the model: small watermarks and reads, so holds happen;
/// lingering always, so a graceful close never resets a peer that is still sending.
fn model_config() -> Config {
    Config {
        out_high_watermark: HIGH_WATERMARK,
        out_low_watermark: LOW_WATERMARK,
        read_chunk: 4 * 1024,
        read_budget: 8 * 1024,
        max_input: 16 * 1024,
        linger: Linger::Always,
        linger_timeout: Duration::from_secs(5),
        ..Config::default()
    }
}

/// One run: its sockets, reactor and what everyone saw.
struct Run {
    reactor: Reactor<Scripted>,
    board: Shared,
    ids: Vec<ConnId>,
    peers: Vec<Peer>,
    rng: Rng,
    /// Something ended a connection early on purpose (a reset, an abort, a close before
    /// the peer finished): exactness is then not owed, only order.
    script: Vec<String>,
}

fn run_case(seed: u64, pair: bool) -> Result<(), String> {
    let mut rng = Rng::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1));
    let unix = rng.range(0, 1) == 1;
    let mut reactor = Reactor::new(model_config()).map_err(|e| e.to_string())?;
    let board: Shared = Rc::default();
    let sides = if pair { 2 } else { 1 };
    let (mut ids, mut peers) = (Vec::new(), Vec::new());
    for role in 0..sides {
        let (ours, peer) = peer::pair(unix, role as u8);
        let handler = Scripted::new(&board, role, rng.next_u64());
        ids.push(reactor.adopt(ours, handler).map_err(|e| e.to_string())?);
        peers.push(peer);
    }
    let kind = if unix { "unix" } else { "tcp" };
    let mut run = Run { reactor, board, ids, peers, rng, script: vec![format!("{kind}, pair: {pair}")] };
    if pair {
        run.post(0, Msg::Partner(run.ids[1]));
        run.post(1, Msg::Partner(run.ids[0]));
        // Joined before the script starts: an EOF before the join would end a side alone.
        run.turn()?;
    }
    let steps = run.rng.range(5, 40);
    for _ in 0..steps {
        run.step(pair);
    }
    let finished = run.finish();
    let verdict = finished.and_then(|()| check(&run, pair));
    verdict.map_err(|failure| {
        let trace = run.board.borrow().trace.join("\n");
        format!("{failure}\nscript:\n{}\nhandler trace:\n{trace}", run.script.join("\n"))
    })
}

impl Run {
    fn post(&mut self, role: usize, message: Msg) {
        self.script.push(format!("  post {role}: {message:?}"));
        // A closed connection refuses: that is fine, the script goes on.
        let _ = self.reactor.send(self.ids[role], message);
    }

    fn turn(&mut self) -> Result<(), String> {
        self.reactor.run_once(Some(Duration::ZERO)).map(|_| ()).map_err(|e| format!("run_once: {e}"))
    }

    /// One scripted act, then a few turns and the peers' reads.
    fn step(&mut self, pair: bool) {
        let role = self.rng.range(0, self.peers.len() - 1);
        if self.rng.range(0, 1) == 0 {
            self.peer_act(role);
        } else {
            let act = self.handler_act(pair, 0);
            self.post(role, Msg::Do(act));
        }
        for _ in 0..self.rng.range(0, 2) {
            let _ = self.turn();
            for peer in &mut self.peers {
                peer.read(false);
            }
        }
    }

    fn peer_act(&mut self, role: usize) {
        let peer = &mut self.peers[role];
        let what = match self.rng.range(0, 19) {
            0..=9 => {
                let n = self.rng.range(1, 12 * 1024);
                format!("send {n}: took {}", peer.send(n))
            }
            10..=11 => {
                peer.half_close();
                "half-close".to_string()
            }
            12 => {
                // Rare: a reset ends the story early.
                if self.rng.range(0, 2) == 0 {
                    peer.reset();
                    "reset".to_string()
                } else {
                    "(no reset this time)".to_string()
                }
            }
            13..=14 => {
                peer.reading = Reading::Stopped;
                "stop reading".to_string()
            }
            15..=16 => {
                peer.reading = Reading::Slowly;
                "read slowly".to_string()
            }
            _ => {
                peer.reading = Reading::All;
                "read everything".to_string()
            }
        };
        self.script.push(format!("  peer {role}: {what}"));
    }

    /// A random act; nested ones (later, on the next input, both) at most two deep.
    fn handler_act(&mut self, pair: bool, depth: usize) -> Act {
        let simple = depth >= 2;
        loop {
            let act = match self.rng.range(0, 15) {
                // A pair's handlers only forward: their writes would interleave with it.
                0..=3 if !pair => Act::Write(self.rng.range(1, MAX_WRITE)),
                4..=5 => Act::Pause,
                6..=7 => Act::Resume,
                // A pair's write sides are shut by the half-close carried across.
                8 if !pair => Act::ShutdownWrite,
                9 if self.rng.range(0, 2) == 0 => Act::Close,
                10 if self.rng.range(0, 4) == 0 => Act::Abort,
                11 => Act::Yield,
                12 if !simple => {
                    Act::Later(self.rng.range(0, 1500) as u64, Box::new(self.handler_act(pair, depth + 1)))
                }
                13 if !simple => Act::OnNextData(Box::new(self.handler_act(pair, depth + 1))),
                14..=15 if !simple => {
                    let first = self.handler_act(pair, depth + 1);
                    Act::Both(Box::new(first), Box::new(self.handler_act(pair, depth + 1)))
                }
                _ => continue,
            };
            return act;
        }
    }

    /// Ends the run: every peer half-closes and reads to the end, every handler resumes and
    /// closes after its EOF. Fails if the connections do not all close, or a peer never
    /// sees its end, within 10 s.
    fn finish(&mut self) -> Result<(), String> {
        self.script.push("finish".into());
        for role in 0..self.peers.len() {
            self.peers[role].reading = Reading::All;
            self.peers[role].half_close();
            self.post(role, Msg::Do(Act::Finish));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            self.turn()?;
            for peer in &mut self.peers {
                peer.read(true);
            }
            let closed = self.board.borrow().sides[..self.peers.len()].iter().all(|s| s.closed.is_some());
            let peers_done = self.peers.iter().all(|p| !p.can_read());
            if closed && peers_done {
                return Ok(());
            }
            if Instant::now() > deadline {
                let board = self.board.borrow();
                let states: Vec<String> = (0..self.peers.len())
                    .map(|r| {
                        let p = &self.peers[r];
                        format!(
                            "side {r}: closed {:?}; peer eof {} error {:?} reset {}",
                            board.sides[r].closed, p.eof, p.error, p.reset
                        )
                    })
                    .collect();
                return Err(format!("stuck after finishing: {}", states.join("; ")));
            }
            if closed {
                // Nothing is left to turn for but the peers' reads.
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }
}

/// `part` is the first `part.len()` bytes of `whole`.
fn is_prefix(part: &[u8], whole: &[u8]) -> bool {
    part.len() <= whole.len() && part == &whole[..part.len()]
}

fn check(run: &Run, pair: bool) -> Result<(), String> {
    let board = run.board.borrow();
    let stats = run.reactor.stats();
    if stats.active != 0 || stats.out_buffered != 0 {
        return Err(format!(
            "left behind: {} connections, {} bytes buffered",
            stats.active, stats.out_buffered
        ));
    }
    // A handler writes only under the high watermark, at most MAX_WRITE at once; a
    // forwarder reads no more than its partner's headroom under it.
    let bound = if pair { HIGH_WATERMARK } else { HIGH_WATERMARK + MAX_WRITE } as u64;
    if stats.out_buffered_peak > bound {
        return Err(format!("pending output peaked at {} bytes, over {bound}", stats.out_buffered_peak));
    }
    for role in 0..run.peers.len() {
        let peer = &run.peers[role];
        let side = &board.sides[role];
        let reason = side.closed.expect("finish waited for every close");
        // Only a reset by its own peer may close a connection with an error.
        if matches!(reason, Reason::Error(_)) && !peer.reset {
            return Err(format!("side {role} closed with {reason:?}, but its peer did not reset"));
        }
        if !matches!(reason, Reason::Error(_) | Reason::PeerClosed | Reason::Local) {
            return Err(format!("side {role} closed with {reason:?}"));
        }
        if let Some(at) = side.eof_at {
            if !peer.fin_sent && !peer.reset {
                return Err(format!("side {role}: on_eof, but its peer never sent FIN"));
            }
            if !peer.reset && !pair && at != peer.sent.len() {
                return Err(format!("side {role}: on_eof after {at} bytes of the {} sent", peer.sent.len()));
            }
        }
        if pair {
            // What this side's peer sent went to the other's peer.
            let other = &run.peers[1 - role];
            if !is_prefix(&other.got, &peer.sent) {
                return Err(format!(
                    "pair: peer {} got bytes peer {role} never sent in that order",
                    1 - role
                ));
            }
        } else {
            check_single(role, side, peer)?;
        }
    }
    if pair {
        check_pair(&board, &run.peers)?;
    }
    Ok(())
}

/// One connection: its input reached the handler exactly (all of it, if the peer finished
/// and nothing cut the connection short), and the handler's output reached the peer.
fn check_single(role: usize, side: &handler::Side, peer: &Peer) -> Result<(), String> {
    if !is_prefix(&side.got, &peer.sent) {
        return Err(format!("side {role}: the handler got bytes the peer never sent in that order"));
    }
    let cut_short = peer.reset || side.aborted || side.closed_by_handler;
    if !cut_short {
        if !side.saw_eof {
            return Err(format!("side {role}: the peer finished, but on_eof never ran"));
        }
        let delivered = side.got.len() + side.held;
        if delivered != peer.sent.len() {
            return Err(format!("side {role}: {delivered} bytes delivered of the {} sent", peer.sent.len()));
        }
    }
    if !is_prefix(&peer.got, &side.wrote) {
        return Err(format!("side {role}: the peer got bytes the handler never wrote in that order"));
    }
    if !peer.reset && !side.aborted {
        if let Some(e) = peer.error {
            return Err(format!("side {role}: the peer saw {e:?} after a graceful close"));
        }
        if peer.got.len() != side.wrote.len() || !peer.eof {
            return Err(format!(
                "side {role}: the peer got {} of the {} bytes written (EOF: {})",
                peer.got.len(),
                side.wrote.len(),
                peer.eof
            ));
        }
    }
    Ok(())
}

/// A pair with nothing cut short: each peer got exactly what the other sent, then EOF.
fn check_pair(board: &Board, peers: &[Peer]) -> Result<(), String> {
    let cut_short =
        peers.iter().any(|p| p.reset) || board.sides.iter().any(|s| s.aborted || s.closed_by_handler);
    if cut_short {
        return Ok(());
    }
    for role in 0..2 {
        let (from, to) = (&peers[role], &peers[1 - role]);
        if to.got.len() != from.sent.len() || !to.eof || to.error.is_some() {
            return Err(format!(
                "pair: peer {} got {} of the {} bytes peer {role} sent (EOF: {}, error: {:?})",
                1 - role,
                to.got.len(),
                from.sent.len(),
                to.eof,
                to.error
            ));
        }
    }
    Ok(())
}
