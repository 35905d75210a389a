"""The lab's protocol in Python, shared by the Python servers beside it (standard library only).

The same protocol as examples/lab/protocol.rs: a line `N` asks for fib(N) by the naive
recursive function (CPU-bound), a line `sleep MS` for a sleep (I/O-bound); the reply is a line:
the value, `slept MS`, or `ERR <reason>`. Over HTTP (thread_per_conn.py and fork_per_conn.py
with --protocol http, for `lab siege`): GET /fib/N and GET /sleep/MS.

Every server takes the lab's flags (--addr HOST:PORT, --protocol, --threads K, --processes P),
prints `listening on ADDR` once bound, and dies with the process that started it.
"""

import argparse
import ctypes
import http.server
import signal
import socket
import sys
import time

MAX_N = 45
MAX_SLEEP_MS = 60_000
MAX_LINE = 64
BACKLOG = 128  # socketserver's default of 5 would drop some of ten simultaneous connects


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def number(digits, limit):
    """Decimal digits up to `limit`, or the reason they are refused."""
    if not digits or not digits.isdigit() or not digits.isascii():
        return None, "not a number"
    value = int(digits)
    return (value, None) if value <= limit else (None, "too large")


def parse(line):
    """A request line (bytes, without its newline) as ("fib", n), ("sleep", ms) or ("err", why)."""
    text = line.rstrip(b"\r").decode("ascii", "replace")
    if text.startswith("sleep "):
        ms, error = number(text[len("sleep "):], MAX_SLEEP_MS)
        return ("err", error) if error else ("sleep", ms)
    n, error = number(text, MAX_N)
    return ("err", error) if error else ("fib", n)


def reply(kind, value):
    """The reply line for a performed request."""
    if kind == "fib":
        return b"%d\n" % value
    if kind == "sleep":
        return b"slept %d\n" % value
    return b"ERR %s\n" % value.encode()


def perform_blocking(request):
    """Computes or sleeps on this thread; returns the reply line."""
    kind, value = request
    if kind == "fib":
        return reply("fib", fib(value))
    if kind == "sleep":
        time.sleep(value / 1000)
    return reply(kind, value)


def serve_blocking(conn):
    """Serves one connection to its end with blocking calls (threads and processes)."""
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buffered = b""
    while True:
        end = buffered.find(b"\n")
        if end < 0:
            if len(buffered) >= MAX_LINE:
                conn.sendall(b"ERR line too long\n")
                return
            chunk = conn.recv(4096)
            if not chunk:
                return
            buffered += chunk
            continue
        line, buffered = buffered[:end], buffered[end + 1:]
        conn.sendall(perform_blocking(parse(line)))


class HTTPHandler(http.server.BaseHTTPRequestHandler):
    """GET /fib/N and GET /sleep/MS over HTTP/1.1; `Connection: close` is honoured by the
    base class (it sets close_connection from the header)."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        status, body = 404, b"ERR no such path (GET /fib/N or /sleep/MS)\n"
        for prefix, kind, limit in (("/fib/", "fib", MAX_N), ("/sleep/", "sleep", MAX_SLEEP_MS)):
            if self.path.startswith(prefix):
                value, error = number(self.path[len(prefix):], limit)
                if error:
                    status, body = 400, reply("err", error)
                else:
                    status, body = 200, perform_blocking((kind, value))
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass  # one line per request would cost more than the request


class QuietDisconnects:
    """A socketserver mix-in: a client that disconnects before its reply is written (a load
    generator stopping at the end of its time does this to every open request) is not worth
    socketserver's traceback on stderr; other errors still get one."""

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def arguments(description, http=False):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--addr", default="127.0.0.1:7070", help="HOST:PORT to listen on")
    protocols = ["line", "http"] if http else ["line"]
    parser.add_argument("--protocol", default="line", choices=protocols)
    parser.add_argument("--threads", type=int, default=4, help="threads of the pool")
    parser.add_argument("--processes", type=int, default=4, help="worker processes")
    args = parser.parse_args()
    host, _, port = args.addr.rpartition(":")
    if not host or not port.isdigit():
        parser.error("--addr must be HOST:PORT")
    args.address = (host, int(port))
    if args.threads < 1 or args.processes < 1:
        parser.error("--threads and --processes must be at least 1")
    die_with_parent()
    return args


def listen(address):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(address)
    listener.listen(BACKLOG)
    return listener


def announce(address):
    host, port = address[:2]
    print(f"listening on {host}:{port}", flush=True)


def die_with_parent():
    """SIGKILL this process when its parent dies (Linux prctl(PR_SET_PDEATHSIG)), so a server
    or worker never outlives the lab that started it; elsewhere a no-op."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def serve_forever_serial(listener):
    """Accept one connection, serve it to the end, accept the next: the serial server, and
    the body of each thread of the pool and each preforked process."""
    while True:
        conn, _ = listener.accept()
        with conn:
            try:
                serve_blocking(conn)
            except OSError:
                pass  # the client went away; serve the next one


def main_guard(run):
    """Runs `run`, ending quietly on SIGTERM or Ctrl-C rather than with a traceback."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        run()
    except KeyboardInterrupt:
        pass
