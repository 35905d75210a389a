//! An HTTP/1.1 server on evloop: keep-alive, pipelining, streamed bodies, CPU-bound work on
//! the offload pool, and the error answers of a server that expects abuse.
//!
//! Run:  cargo run --release --example http           (port 8080)
//! Try:  curl -i localhost:8080/            curl --data-binary @file localhost:8080/echo
//!       curl localhost:8080/fib/35         curl -o /dev/null localhost:8080/bytes/1000000000
//!       wrk -c 50 -d 5 http://127.0.0.1:8080/
//!
//! One `HttpConn` per connection is the protocol's state machine (nginx's
//! `ngx_http_request_t` phases, reduced to five states):
//!
//! ```text
//!            head complete                      body read (echoed as it arrives, for /echo)
//!   Head ─────────────────► Body ────────────────────────────────► respond
//!    ▲  │ (no body) ──────────────────────────────────────────────►   │
//!    │  │                                    /            → "hello", done
//!    │  │ malformed, too large, too slow     /bytes/N     → Streaming (paused) ── on_drained … ─┐
//!    │  └──────────► error answer, Closing   /fib/N       → Computing (paused) ── on_done ──────┤
//!    │                                                                                         │
//!    └──────────────────── response complete: next request (or Closing if not persistent) ◄────┘
//! ```
//!
//! While a response is produced over several loop turns (streaming, computing) reading is
//! paused, so pipelined requests wait in the buffers and answers go out in request order.
//!
//! Deadlines, so that no client holds a slot by being slow (nginx's `client_header_timeout`
//! and `keepalive_timeout`, Apache's `mod_reqtimeout`):
//!
//! ```text
//!  accept ──header timer──► first head complete      nothing arrived: closed quietly
//!                                                    part of a head: 408, closed
//!  response done ──idle (reactor's idle_timeout)──► first byte of the next head ──header timer──►
//!  head with a body ──body timer, extended per --body-min-rate bytes──► body read   too slow: 408
//! ```
//!
//! Empty lines between requests (RFC 9112 §2.2) are consumed and start no timer. Request heads
//! are parsed in `request.rs` (with `uri.rs`), routed in `route.rs`, response heads written in
//! `response.rs`, and the command line is `cli.rs`.

mod cli;
mod response;
mod route;

use std::time::{Duration, Instant};

use clap::{CommandFactory, Parser};
use evloop::{Config, Cx, Handler, Input, JobError, OffloadError, Reactor, TimerId};
use evloop_support::app;

// The request-head parser (and its URI checks) lives in support/, where the fuzz target
// and the property tests reach exactly what this server runs.
use evloop_support::http::request;

use cli::{Args, Settings};
use evloop_support::app::upgrade::{self, Inherited, UpgradeFlags};
use request::{Head, Method, Refusal};
use response::{Persistence, ResponseHead, Status};
use route::{route, Route};

/// How long a keep-alive connection between requests may still bring one more request once
/// the server drains (see `HttpConn::on_going_away`).
const DRAIN_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Requests answered per `on_data` call before yielding to the other connections, so one
/// client pipelining thousands of requests cannot hold the loop.
const MAX_REQUESTS_PER_TURN: usize = 64;

/// What `/bytes/N` sends, a chunk at a time.
static CHUNK: [u8; 64 * 1024] = [b'x'; 64 * 1024];

/// A request being answered: where it goes, and how the response ends.
#[derive(Debug, Clone, Copy)]
struct Request {
    route: Route,
    /// `HEAD`: the head of the response only.
    head_only: bool,
    persistence: Persistence,
}

/// Where a connection is in its conversation.
#[derive(Debug)]
enum State {
    /// Between requests, or part of a request head has arrived.
    Head,
    /// Reading a request body: `left` bytes still to come. Echoed as they arrive for
    /// `/echo`, discarded otherwise (then the request is answered once it is all read).
    /// `started` and `received` are the body deadline's clock (see `check_body_rate`).
    Body { left: u64, request: Request, started: Instant, received: u64 },
    /// Sending `/bytes/N`: `left` bytes still to write. Reading is paused.
    Streaming { left: u64, persistence: Persistence },
    /// `/fib/N` is on the offload pool; the answer is written in `on_done`. Reading is paused.
    Computing { request: Request },
    /// The last response is queued and the connection closes once it is sent.
    Closing,
}

/// One client's HTTP state machine.
struct HttpConn {
    settings: Settings,
    state: State,
    /// Armed from the accept until the first head is complete, and from the first byte of
    /// each later head until it is complete: a client that sends nothing is let go quietly,
    /// one that trickles its head is answered 408 (the classic slowloris defence).
    head_timer: Option<TimerId>,
    /// Some byte of the current request head has arrived (empty lines do not count).
    head_begun: bool,
    /// Armed while a body is read; see `check_body_rate`.
    body_timer: Option<TimerId>,
    /// The client half-closed while a response was still being produced: close after it.
    peer_done: bool,
    /// Armed when the server drains while this connection is between requests: a request
    /// that arrives before it fires is answered (with `Connection: close`); none, and the
    /// connection closes then.
    grace_timer: Option<TimerId>,
}

impl HttpConn {
    fn new(settings: Settings) -> HttpConn {
        HttpConn {
            settings,
            state: State::Head,
            head_timer: None,
            head_begun: false,
            body_timer: None,
            peer_done: false,
            grace_timer: None,
        }
    }

    /// Parses and starts requests until one needs more input or more time.
    fn serve(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
        let mut served = 0;
        loop {
            match &mut self.state {
                State::Head => {
                    if served == MAX_REQUESTS_PER_TURN {
                        cx.yield_now();
                        return;
                    }
                    // Empty lines before a request are ignored (RFC 9112 §2.2): consumed here,
                    // so they neither start the header timer nor count as part of a head.
                    input.consume(request::empty_lines(input.bytes()));
                    if input.is_empty() || input.bytes() == b"\r" {
                        return;
                    }
                    self.head_begun = true;
                    cx.set_reusable(false);
                    match request::parse(input.bytes(), self.settings.max_head) {
                        Ok(Some(head)) => {
                            self.disarm_head_timer(cx);
                            self.head_begun = false;
                            input.consume(head.len);
                            served += 1;
                            self.start(&head, cx);
                        }
                        Ok(None) => {
                            if self.head_timer.is_none() {
                                self.head_timer = Some(cx.set_timer(self.settings.header_timeout));
                            }
                            return;
                        }
                        Err(refusal) => {
                            input.consume_all();
                            self.refuse(refusal, cx);
                            return;
                        }
                    }
                }
                State::Body { left, request, received, .. } => {
                    let take = usize::try_from(*left).unwrap_or(usize::MAX).min(input.len());
                    if take == 0 {
                        return;
                    }
                    if request.route == Route::Echo {
                        cx.write(&input.bytes()[..take]);
                    }
                    input.consume(take);
                    *left -= take as u64;
                    *received += take as u64;
                    if *left > 0 {
                        return;
                    }
                    let request = *request;
                    self.state = State::Head;
                    if let Some(timer) = self.body_timer.take() {
                        cx.cancel_timer(timer);
                    }
                    if request.route == Route::Echo {
                        self.finish(request.persistence, cx);
                    } else {
                        self.respond(request, cx);
                    }
                }
                // Reading is paused while these last; what arrived before the pause waits.
                State::Streaming { .. } | State::Computing { .. } | State::Closing => return,
            }
        }
    }

    /// Routes a complete head and starts its response (or its body).
    fn start(&mut self, head: &Head<'_>, cx: &mut Cx<'_, Self>) {
        let persistence = match (head.persistent(), head.http11) {
            // Draining (an upgrade's old process): this answer is the connection's last.
            _ if cx.going_away() => Persistence::Close,
            (false, _) => Persistence::Close,
            (true, true) => Persistence::KeepOpen11,
            (true, false) => Persistence::KeepOpen10,
        };
        let routed = route(head.method, head.target, &self.settings.limits);
        // The request log, at debug level (RUST_LOG=debug): who asked what, and what for.
        if log::log_enabled!(log::Level::Debug) {
            let target = head.target;
            let outcome = match &routed {
                Ok(route) => format!("{route:?}"),
                Err((status, _, _)) => format!("{} {}", status.0, status.1),
            };
            log::debug!("conn {} {}: {:?} {target} -> {outcome}", cx.id(), cx.peer_addr(), head.method);
        }
        let route = match routed {
            Ok(route) => route,
            Err((status, message, extra)) => {
                // The connection stays usable if there is no body to skip; a refused
                // request's body is not worth reading, so then answer and close.
                let keep = head.content_length == 0 && persistence != Persistence::Close;
                let persistence = if keep { persistence } else { Persistence::Close };
                let head_only = head.method == Method::Head;
                self.answer(status, message.as_bytes(), persistence, extra, head_only, cx);
                if !keep {
                    if head.content_length > 0 {
                        // The body is on its way and will not be read: linger, so its
                        // arrival after our close cannot reset the answer (see `Linger`).
                        cx.linger_on_close();
                    }
                    self.close(cx);
                }
                return;
            }
        };
        let request = Request { route, head_only: head.method == Method::Head, persistence };
        if head.content_length == 0 {
            self.respond(request, cx);
            return;
        }
        // The interim answer is for HTTP/1.1 clients only (RFC 9110 §15.2): an HTTP/1.0
        // client would take it for the response.
        if head.expect_continue && head.http11 {
            cx.write(response::CONTINUE);
        }
        if route == Route::Echo {
            let head = ResponseHead::new(
                response::OK,
                "application/octet-stream",
                head.content_length,
                persistence,
                &[],
            );
            cx.write(head.as_bytes());
        }
        self.state = State::Body { left: head.content_length, request, started: cx.now(), received: 0 };
        self.body_timer = Some(cx.set_timer(self.settings.body_timeout));
    }

    /// The body deadline is due. The body may take `--body-timeout` plus one second per
    /// `--body-min-rate` bytes received so far (Apache `mod_reqtimeout`'s `MinRate`): a fast
    /// upload of any size keeps going, a trickle is cut off. One timer, re-armed for the time
    /// earned since it was set, rather than a re-arm per read.
    fn check_body_rate(&mut self, cx: &mut Cx<'_, Self>) {
        let State::Body { request, started, received, .. } = self.state else { return };
        let earned = Duration::from_millis(received.saturating_mul(1000) / self.settings.body_min_rate);
        let allowed = self.settings.body_timeout.saturating_add(earned);
        let elapsed = cx.now().saturating_duration_since(started);
        if elapsed < allowed {
            self.body_timer = Some(cx.set_timer(allowed - elapsed));
            return;
        }
        log::debug!("conn {}: request body too slow ({received} bytes in {elapsed:?})", cx.id());
        if request.route == Route::Echo {
            // The echo's head and part of its body are out: no answer can follow. The close
            // leaves the response short of its Content-Length, which the client detects.
            self.close(cx);
        } else {
            let body = b"request body too slow\n";
            self.answer(response::REQUEST_TIMEOUT, body, Persistence::Close, &[], false, cx);
            self.close(cx);
        }
    }

    /// Answers a request whose body (if any) has been read.
    fn respond(&mut self, request: Request, cx: &mut Cx<'_, Self>) {
        let Request { route, head_only, persistence } = request;
        match route {
            Route::Hello => {
                self.answer(response::OK, b"hello\n", persistence, &[], head_only, cx);
                self.finish(persistence, cx);
            }
            // An empty body: nothing to stream back.
            Route::Echo => {
                let head = ResponseHead::new(response::OK, "application/octet-stream", 0, persistence, &[]);
                cx.write(head.as_bytes());
                self.finish(persistence, cx);
            }
            Route::Bytes(n) => {
                let head = ResponseHead::new(response::OK, "application/octet-stream", n, persistence, &[]);
                cx.write(head.as_bytes());
                if head_only || n == 0 {
                    self.finish(persistence, cx);
                } else {
                    self.state = State::Streaming { left: n, persistence };
                    cx.pause_read();
                    self.pump(cx);
                }
            }
            // The job stops early if the client goes away (`Cancel`, raised at its close).
            Route::Fib(n) => {
                match cx.offload_cancellable(move |cancel| {
                    evloop_support::fib::fib_cancellable(n, cancel).unwrap_or(0)
                }) {
                    Ok(()) => {
                        self.state = State::Computing { request };
                        cx.pause_read();
                    }
                    Err(e) => {
                        let message = match e {
                            OffloadError::Busy => "busy, try again\n",
                            OffloadError::Closed => "shutting down\n",
                        };
                        let retry = [("Retry-After", "1")];
                        self.answer(
                            response::UNAVAILABLE,
                            message.as_bytes(),
                            persistence,
                            &retry,
                            head_only,
                            cx,
                        );
                        self.finish(persistence, cx);
                    }
                }
            }
        }
    }

    /// Writes `/bytes/N` while the socket takes it; stops when output is left pending (the
    /// kernel's buffer is full) and carries on in `on_drained`. Memory stays at one chunk in
    /// flight however slowly the client reads.
    fn pump(&mut self, cx: &mut Cx<'_, Self>) {
        let State::Streaming { left, persistence } = &mut self.state else { return };
        loop {
            // Sent now, so that what is left pending is what the kernel refused.
            cx.flush();
            if cx.pending_output() > 0 {
                return;
            }
            if *left == 0 {
                break;
            }
            let n = usize::try_from(*left).unwrap_or(usize::MAX).min(CHUNK.len());
            cx.write(&CHUNK[..n]);
            *left -= n as u64;
        }
        let persistence = *persistence;
        self.state = State::Head;
        cx.resume_read();
        self.finish(persistence, cx);
    }

    /// A whole response (head and body) with a short body.
    fn answer(
        &mut self,
        status: Status,
        body: &[u8],
        persistence: Persistence,
        extra: &[(&str, &str)],
        head_only: bool,
        cx: &mut Cx<'_, Self>,
    ) {
        let head = ResponseHead::new(status, "text/plain", body.len() as u64, persistence, extra);
        cx.write(head.as_bytes());
        if !head_only {
            cx.write(body);
        }
    }

    /// A response is complete: on to the next request, or close.
    fn finish(&mut self, persistence: Persistence, cx: &mut Cx<'_, Self>) {
        // Draining: a response begun before the drain (its head said keep-alive) is still the
        // connection's last; a client must expect a close after any complete response.
        if persistence == Persistence::Close || self.peer_done || cx.going_away() {
            self.close(cx);
        } else {
            self.state = State::Head;
            // A keep-alive connection between requests: when the server is full, the one
            // idle longest makes room for a new client (nginx's reusable connections).
            cx.set_reusable(true);
        }
    }

    /// Answers a refused head and closes: after a malformed request, where the next one
    /// starts cannot be known.
    fn refuse(&mut self, refusal: Refusal, cx: &mut Cx<'_, Self>) {
        let (status, reason) = match refusal {
            Refusal::BadRequest(reason) => (response::BAD_REQUEST, reason),
            Refusal::HeadTooLarge => (response::HEADERS_TOO_LARGE, "request head too large"),
            Refusal::TooManyFields => (response::HEADERS_TOO_LARGE, "too many header fields"),
            Refusal::UriTooLong => (response::URI_TOO_LONG, "request target too long"),
            Refusal::NotImplemented(what) => (response::NOT_IMPLEMENTED, what),
            Refusal::VersionNotSupported => (response::VERSION_NOT_SUPPORTED, "only HTTP/1.x"),
        };
        log::debug!("conn {}: refused: {} {reason}", cx.id(), status.0);
        let body = format!("{reason}\n");
        self.answer(status, body.as_bytes(), Persistence::Close, &[], false, cx);
        // Whatever the client sends next is unreadable to us, and it may well be sending.
        cx.linger_on_close();
        self.close(cx);
    }

    fn close(&mut self, cx: &mut Cx<'_, Self>) {
        self.disarm_head_timer(cx);
        if let Some(timer) = self.body_timer.take() {
            cx.cancel_timer(timer);
        }
        self.state = State::Closing;
        cx.close();
    }

    fn disarm_head_timer(&mut self, cx: &mut Cx<'_, Self>) {
        if let Some(timer) = self.head_timer.take() {
            cx.cancel_timer(timer);
        }
    }
}

impl Handler for HttpConn {
    type Msg = u64;

    /// The first head's deadline runs from the accept, as nginx's `client_header_timeout`
    /// does: a connection that sends nothing holds its slot this long, not `--idle-timeout`.
    fn on_open(&mut self, cx: &mut Cx<'_, Self>) {
        self.head_timer = Some(cx.set_timer(self.settings.header_timeout));
        // Nothing received yet: reclaimable when the server is full.
        cx.set_reusable(true);
    }

    fn on_data(&mut self, input: &mut Input<'_>, cx: &mut Cx<'_, Self>) {
        self.serve(input, cx);
    }

    fn on_eof(&mut self, cx: &mut Cx<'_, Self>) {
        match self.state {
            // A response is still being produced (only reachable if reading resumed
            // early): finish it, then close.
            State::Streaming { .. } | State::Computing { .. } => self.peer_done = true,
            // Between requests, or mid-request (a truncated request gets no answer).
            State::Head | State::Body { .. } | State::Closing => self.close(cx),
        }
    }

    fn on_drained(&mut self, cx: &mut Cx<'_, Self>) {
        self.pump(cx);
    }

    /// The server drains (SIGQUIT, an upgrade): a request under way, or one that arrives
    /// within `DRAIN_GRACE`, is answered with `Connection: close` and the connection closes
    /// after it (`start`, `finish`); a keep-alive connection still idle after the grace
    /// closes then. nginx closes idle keep-alive connections at once; the grace spares a
    /// busy client the race of a request crossing the close on the wire (a request sent in
    /// that instant would otherwise get no answer, and wrk counts a read error for it).
    fn on_going_away(&mut self, cx: &mut Cx<'_, Self>) {
        if matches!(self.state, State::Head) && !self.head_begun {
            self.grace_timer = Some(cx.set_timer(DRAIN_GRACE));
        }
    }

    fn on_done(&mut self, result: Result<u64, JobError>, cx: &mut Cx<'_, Self>) {
        let State::Computing { request } = self.state else { return };
        match result {
            Ok(value) => {
                let body = format!("{value}\n");
                self.answer(response::OK, body.as_bytes(), request.persistence, &[], request.head_only, cx);
            }
            Err(e) => {
                log::error!("conn {}: {e}", cx.id());
                let body = b"internal error\n";
                self.answer(response::INTERNAL_ERROR, body, request.persistence, &[], request.head_only, cx);
            }
        }
        self.state = State::Head;
        cx.resume_read();
        self.finish(request.persistence, cx);
    }

    fn on_timer(&mut self, id: TimerId, cx: &mut Cx<'_, Self>) {
        if self.head_timer == Some(id) {
            self.head_timer = None;
            if !self.head_begun {
                // Nothing of a request arrived since the accept: nothing to answer (nginx
                // closes such a connection without a response too). Aborted rather than
                // closed, so no lingering holds the slot: there is no reply to protect.
                log::debug!("conn {}: no request", cx.id());
                self.state = State::Closing;
                cx.abort();
                return;
            }
            log::debug!("conn {}: request head too slow", cx.id());
            let body = b"request head too slow\n";
            self.answer(response::REQUEST_TIMEOUT, body, Persistence::Close, &[], false, cx);
            // The rest of the head may still be trickling in.
            cx.linger_on_close();
            self.close(cx);
        } else if self.body_timer == Some(id) {
            self.body_timer = None;
            self.check_body_rate(cx);
        } else if self.grace_timer == Some(id) {
            self.grace_timer = None;
            if matches!(self.state, State::Head) && !self.head_begun {
                self.close(cx);
            }
        }
    }
}

/// The command line: the server's flags (`cli.rs`) and the upgrade's (`--pid-file`,
/// `--drain-timeout`).
#[derive(Debug, Parser)]
#[command(name = "http", version, after_help = cli::ROUTES)]
struct Command {
    #[command(flatten)]
    args: Args,
    #[command(flatten)]
    upgrade: UpgradeFlags,
}

fn main() {
    app::init_logging();
    let Command { args, upgrade } = Command::parse();
    let (settings, config) = (args.settings(), args.config());
    if args.workers > 1 && args.addr.tcp().is_none() {
        let message = format!("--workers needs a HOST:PORT address, not {}", args.addr);
        Command::command().error(clap::error::ErrorKind::ArgumentConflict, message).exit()
    }
    let served = upgrade::take_inherited().and_then(|inherited| match args.addr.tcp() {
        Some(addr) if args.workers > 1 => {
            serve_on_workers(args.workers, addr, config, settings, inherited, &upgrade)
        }
        _ => serve(&args.addr, config, settings, inherited, &upgrade),
    });
    if let Err(e) = served {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn serve(
    endpoint: &app::Endpoint,
    config: Config,
    settings: Settings,
    inherited: Vec<Inherited>,
    upgrade: &UpgradeFlags,
) -> std::io::Result<()> {
    let mut reactor = Reactor::new(config)?;
    let bound = app::listen_or_inherit(&mut reactor, endpoint, move || HttpConn::new(settings), inherited)?;
    app::serve_reactor(reactor, bound, Some(upgrade))
}

fn serve_on_workers(
    count: usize,
    addr: std::net::SocketAddr,
    config: Config,
    settings: Settings,
    inherited: Vec<Inherited>,
    upgrade: &UpgradeFlags,
) -> std::io::Result<()> {
    let workers =
        app::start_workers_or_inherit(count, addr, config, move || HttpConn::new(settings), inherited)?;
    app::serve_workers(workers, Some(upgrade))
}
