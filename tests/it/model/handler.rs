//! The model's handler: does what the test script tells it (write, pause, resume, shut its
//! write side, close, abort, yield, later on a timer or on the next input, or two things in
//! one callback) and records what it observes on the shared board, for the checks.
//!
//! It never asserts: a panic inside a callback would be caught by the reactor and look like
//! a connection error. Everything it sees is written down and judged after the run.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use evloop::{ConnId, Cx, Handler, Input, Reason, TimerId};

use evloop_support::testing::Rng;

/// The watermarks the model runs with: small, so holds and backpressure happen within a
/// few kilobytes.
pub const HIGH_WATERMARK: usize = 8 * 1024;
pub const LOW_WATERMARK: usize = 2 * 1024;
/// The largest single write a script asks of the handler.
pub const MAX_WRITE: usize = 6 * 1024;

/// Something the handler does inside one callback.
#[derive(Debug, Clone)]
pub enum Act {
    /// Write this many bytes of its own stream, if its pending output is under the high
    /// watermark (a well-behaved streamer: memory stays bounded).
    Write(usize),
    Pause,
    Resume,
    ShutdownWrite,
    Close,
    Abort,
    Yield,
    /// Do the act in a timer's callback, this many microseconds from now.
    Later(u64, Box<Act>),
    /// Do the act in the next `on_data`, after taking the input.
    OnNextData(Box<Act>),
    /// Both, in one callback.
    Both(Box<Act>, Box<Act>),
    /// The run is ending: resume reading, and close once the peer has finished.
    Finish,
}

/// What the test sends a handler.
#[derive(Debug)]
pub enum Msg {
    Do(Act),
    /// Forward to this connection from now on (a pair).
    Partner(ConnId),
    /// The partner's peer finished sending: shut our write side (carry the half-close).
    PartnerEof,
    /// The partner closed: close too.
    PartnerClosed,
}

/// What one connection's handler observed and did.
#[derive(Debug, Default)]
pub struct Side {
    /// Input the handler consumed, in order.
    pub got: Vec<u8>,
    /// Input it left unconsumed at its last `on_data`.
    pub held: usize,
    /// `got.len() + held` when `on_eof` ran.
    pub eof_at: Option<usize>,
    /// Bytes written while writing was open: what the peer must receive.
    pub wrote: Vec<u8>,
    /// Cleared by `shutdown_write`, `close` and `abort`: later writes are not expected.
    pub write_closed: bool,
    pub closed_by_handler: bool,
    pub aborted: bool,
    pub closed: Option<Reason>,
    /// `on_eof` ran while the handler had not closed (so the peer's FIN was seen).
    pub saw_eof: bool,
}

/// Everything the handlers of one run observed, by role (0, and 1 for a pair's second).
#[derive(Debug, Default)]
pub struct Board {
    pub sides: [Side; 2],
    /// The handler's actions as they happened, for the failure report.
    pub trace: Vec<String>,
}

pub type Shared = Rc<RefCell<Board>>;

/// One connection's handler.
pub struct Scripted {
    board: Shared,
    role: usize,
    rng: Rng,
    /// Whose input this one's is forwarded to (a pair).
    partner: Option<ConnId>,
    paused: bool,
    finishing: bool,
    /// The partner's peer finished; the write side is shut.
    partner_eof: bool,
    next_byte: u32,
    timers: Vec<(TimerId, Act)>,
    on_next_data: Vec<Act>,
}

impl Scripted {
    pub fn new(board: &Shared, role: usize, seed: u64) -> Scripted {
        Scripted {
            board: Rc::clone(board),
            role,
            rng: Rng::new(seed),
            partner: None,
            paused: false,
            finishing: false,
            partner_eof: false,
            next_byte: 0,
            timers: Vec::new(),
            on_next_data: Vec::new(),
        }
    }

    fn note(&self, what: String) {
        self.board.borrow_mut().trace.push(format!("  handler {}: {what}", self.role));
    }

    /// A close the protocol makes (after EOF, when finishing): later writes go nowhere.
    fn close(&mut self, cx: &mut Cx<'_, Self>) {
        cx.close();
        self.board.borrow_mut().sides[self.role].write_closed = true;
    }

    fn perform(&mut self, act: Act, cx: &mut Cx<'_, Self>) {
        self.note(format!("{act:?}"));
        let role = self.role;
        match act {
            Act::Write(n) => {
                if cx.pending_output() >= HIGH_WATERMARK {
                    return;
                }
                let bytes: Vec<u8> = (0..n as u32)
                    .map(|i| (self.next_byte + i).wrapping_mul(31).wrapping_add(role as u32 * 17) as u8)
                    .collect();
                self.next_byte += n as u32;
                cx.write(&bytes);
                let mut board = self.board.borrow_mut();
                let side = &mut board.sides[role];
                if !side.write_closed {
                    side.wrote.extend_from_slice(&bytes);
                }
            }
            // Once the run is finishing, nothing holds reading back any more (a pause still
            // on a timer would otherwise leave the connection paused for good).
            Act::Pause if self.finishing => {}
            Act::Pause => {
                cx.pause_read();
                self.paused = true;
            }
            Act::Resume => {
                cx.resume_read();
                self.paused = false;
            }
            Act::ShutdownWrite => {
                cx.shutdown_write();
                self.board.borrow_mut().sides[role].write_closed = true;
            }
            Act::Close => {
                cx.close();
                let mut board = self.board.borrow_mut();
                board.sides[role].write_closed = true;
                board.sides[role].closed_by_handler = true;
            }
            Act::Abort => {
                cx.abort();
                let mut board = self.board.borrow_mut();
                board.sides[role].write_closed = true;
                board.sides[role].aborted = true;
            }
            Act::Yield => cx.yield_now(),
            Act::Later(micros, act) => {
                let id = cx.set_timer(Duration::from_micros(micros));
                self.timers.push((id, *act));
            }
            Act::OnNextData(act) => self.on_next_data.push(*act),
            Act::Both(first, second) => {
                self.perform(*first, cx);
                self.perform(*second, cx);
            }
            Act::Finish => {
                self.finishing = true;
                if self.paused {
                    self.paused = false;
                    cx.resume_read();
                }
                let eof_seen = self.board.borrow().sides[role].eof_at.is_some();
                if eof_seen && self.partner.is_none() {
                    self.close(cx);
                }
            }
        }
    }
}

impl Handler for Scripted {
    type Msg = Msg;

    fn on_data(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
        // Before its pair is joined, a forwarding side keeps its input: it goes to the
        // partner first, once forwarding starts. Otherwise the handler takes it all or
        // leaves a short tail now and then (held input, offered again with the next).
        let keep = if self.partner.is_some() || self.rng.range(0, 3) > 0 {
            0
        } else {
            self.rng.range(0, 64).min(input.len())
        };
        let take = input.len() - keep;
        {
            let mut board = self.board.borrow_mut();
            let side = &mut board.sides[self.role];
            side.got.extend_from_slice(&input.bytes()[..take]);
            side.held = keep;
        }
        input.consume(take);
        for act in std::mem::take(&mut self.on_next_data) {
            self.perform(act, cx);
        }
    }

    fn on_eof(&mut self, cx: &mut Cx<'_, Self>) {
        {
            let mut board = self.board.borrow_mut();
            let side = &mut board.sides[self.role];
            side.eof_at = Some(side.got.len() + side.held);
            side.saw_eof = true;
        }
        self.note("on_eof".into());
        match self.partner {
            // A pair carries the half-close over, and closes once both peers finished.
            Some(partner) => {
                let _ = cx.send(partner, Msg::PartnerEof);
                if self.partner_eof {
                    self.close(cx);
                }
            }
            // Alone: close now, mostly; else stay open (writes may go on) until finishing.
            None => {
                if self.finishing || self.rng.range(0, 3) > 0 {
                    self.close(cx);
                }
            }
        }
    }

    fn on_timer(&mut self, id: TimerId, cx: &mut Cx<'_, Self>) {
        if let Some(at) = self.timers.iter().position(|(t, _)| *t == id) {
            let (_, act) = self.timers.swap_remove(at);
            self.perform(act, cx);
        }
    }

    fn on_message(&mut self, message: Msg, cx: &mut Cx<'_, Self>) {
        match message {
            Msg::Do(act) => self.perform(act, cx),
            Msg::Partner(to) => {
                self.partner = Some(to);
                if let Err(e) = cx.forward_to(to) {
                    self.note(format!("forward_to refused: {e}"));
                    self.close(cx);
                }
            }
            Msg::PartnerEof => {
                self.note("partner's peer finished".into());
                self.partner_eof = true;
                self.perform(Act::ShutdownWrite, cx);
                if self.board.borrow().sides[self.role].eof_at.is_some() {
                    self.close(cx);
                }
            }
            Msg::PartnerClosed => {
                self.note("partner closed".into());
                self.close(cx);
            }
        }
    }

    fn on_close(&mut self, reason: Reason, cx: &mut Cx<'_, Self>) {
        self.note(format!("on_close: {reason}"));
        self.board.borrow_mut().sides[self.role].closed = Some(reason);
        if let Some(partner) = self.partner {
            let _ = cx.send(partner, Msg::PartnerClosed);
        }
    }
}
