#!/usr/bin/env python3
"""The soak: the echo, http, proxy and chat examples under a mixed load for a long time,
every byte and every response verified, with the servers' memory and descriptors sampled
from /proc every 10 s. Started by benches/soak.sh (which builds the release examples);
see BENCHMARKS.md ("Soak") for the figures and TESTING.md for where it fits.

The load, per server (client threads run until the duration is up):
  echo   connections doing 1-20 round trips of 1 B-16 KiB of seeded random bytes, sent in
         random chunks and compared byte for byte; some end with a half-close (the rest
         must still come back, then EOF), some with a reset (SO_LINGER 0) mid-stream.
  proxy  the same echo load, through the proxy example in front of the echo server.
  http   keep-alive connections: GET / (sometimes pipelined), POST /echo with a random body,
         GET /bytes/N, GET /fib/N, each status and body checked; malformed request lines
         (400 then close), oversized heads (431 then close), resets mid-request.
  chat   groups of four members: every round each sends a line, and each must receive the
         others' lines exactly, in order; join/leave notices of other groups pass by;
         some members leave by reset.

Verdict: a server is flat if its RSS in the last third of the run stays within 10 % +
1 MiB of the first third's (after a warm-up sample), and its descriptor count returns to
the count before the load once the load stops. Exit status 0 when every check held and
everything stayed flat.
"""

import argparse
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

FIB = [0, 1]
while len(FIB) < 93:
    FIB.append(FIB[-1] + FIB[-2])


class Tally:
    """Counters and the first errors, shared by every client thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.errors = []

    def add(self, key, n=1):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + n

    def error(self, what):
        with self.lock:
            self.counts["errors"] = self.counts.get("errors", 0) + 1
            if len(self.errors) < 20:
                self.errors.append(what)


class Mismatch(Exception):
    """A reply that differs from what the protocol promises."""


def connect(addr):
    s = socket.create_connection(addr, timeout=20)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def reset(s):
    """Closes with an RST instead of a FIN."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def recv_exact(s, n):
    out = bytearray()
    while len(out) < n:
        chunk = s.recv(min(65536, n - len(out)))
        if not chunk:
            raise Mismatch(f"EOF after {len(out)} of {n} bytes")
        out += chunk
    return bytes(out)


def recv_to_eof(s):
    out = bytearray()
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return bytes(out)
        out += chunk


# --- echo (direct and through the proxy) -------------------------------------------------


def echo_client(addr, label, rng, tally, stop):
    while not stop.is_set():
        try:
            s = connect(addr)
        except OSError as e:
            tally.error(f"{label}: connect: {e}")
            time.sleep(0.1)
            continue
        try:
            ending = rng.random()
            if ending < 0.08:
                # Reset mid-stream: send, never read, abort.
                s.sendall(rng.randbytes(rng.randint(1, 32768)))
                reset(s)
                tally.add(f"{label} resets")
                continue
            for _ in range(rng.randint(1, 20)):
                payload = rng.randbytes(rng.randint(1, 16384))
                at = 0
                while at < len(payload):
                    step = rng.randint(1, 4096)
                    s.sendall(payload[at : at + step])
                    at += step
                back = recv_exact(s, len(payload))
                if back != payload:
                    raise Mismatch(f"{len(payload)}-byte echo differs")
                tally.add(f"{label} round trips")
                tally.add(f"{label} bytes verified", len(payload))
            if ending < 0.2:
                # Half-close: the last payload must still come back whole, then EOF.
                payload = rng.randbytes(rng.randint(0, 8192))
                s.sendall(payload)
                s.shutdown(socket.SHUT_WR)
                back = recv_to_eof(s)
                if back != payload:
                    raise Mismatch(f"after half-close got {len(back)} of {len(payload)} bytes")
                tally.add(f"{label} half-closes")
                tally.add(f"{label} bytes verified", len(payload))
            s.close()
        except (OSError, Mismatch) as e:
            tally.error(f"{label}: {type(e).__name__}: {e}")
            s.close()


# --- http ---------------------------------------------------------------------------------


class HttpConn:
    def __init__(self, addr):
        self.sock = connect(addr)
        self.buf = b""

    def read_response(self):
        """(status, headers dict, body); the body framed by Content-Length."""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Mismatch(f"EOF in a response head ({len(self.buf)} bytes)")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or parts[0] != "HTTP/1.1":
            raise Mismatch(f"bad status line {lines[0]!r}")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(self.buf) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Mismatch(f"EOF in a body ({len(self.buf)} of {length})")
            self.buf += chunk
        body, self.buf = self.buf[:length], self.buf[length:]
        return int(parts[1]), headers, body

    def expect_closed(self):
        rest = self.buf + recv_to_eof(self.sock)
        if rest:
            raise Mismatch(f"{len(rest)} bytes after a closing response")
        self.sock.close()


def http_client(addr, rng, tally, stop):
    conn = None
    while not stop.is_set():
        try:
            if conn is None:
                conn = HttpConn(addr)
            roll = rng.random()
            if roll < 0.04:
                conn.sock.sendall(b"THIS IS NOT AN HTTP REQUEST LINE\r\n\r\n")
                status, _, _ = conn.read_response()
                if status != 400:
                    raise Mismatch(f"malformed request line answered {status}")
                conn.expect_closed()
                conn = None
                tally.add("http bad requests")
            elif roll < 0.06:
                conn.sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n")
                status, _, _ = conn.read_response()
                if status != 431:
                    raise Mismatch(f"oversized head answered {status}")
                conn.expect_closed()
                conn = None
                tally.add("http bad requests")
            elif roll < 0.10:
                conn.sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\npartial")
                reset(conn.sock)
                conn = None
                tally.add("http resets")
            elif roll < 0.45:
                depth = 3 if rng.random() < 0.2 else 1
                conn.sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * depth)
                for _ in range(depth):
                    status, _, body = conn.read_response()
                    if (status, body) != (200, b"hello\n"):
                        raise Mismatch(f"GET / answered {status} {body[:40]!r}")
                    tally.add("http responses verified")
            elif roll < 0.65:
                body = rng.randbytes(rng.randint(0, 32768))
                conn.sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
                status, _, back = conn.read_response()
                if (status, back) != (200, body):
                    raise Mismatch(f"POST /echo of {len(body)} bytes answered {status}, {len(back)} bytes")
                tally.add("http responses verified")
                tally.add("http bytes verified", len(body))
            elif roll < 0.85:
                n = rng.randint(0, 262144)
                conn.sock.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: x\r\n\r\n" % n)
                status, _, back = conn.read_response()
                if (status, back) != (200, b"x" * n):
                    raise Mismatch(f"/bytes/{n} answered {status}, {len(back)} bytes")
                tally.add("http responses verified")
                tally.add("http bytes verified", n)
            else:
                n = rng.randint(0, 25)
                conn.sock.sendall(b"GET /fib/%d HTTP/1.1\r\nHost: x\r\n\r\n" % n)
                status, _, back = conn.read_response()
                if (status, back.strip()) != (200, str(FIB[n]).encode()):
                    raise Mismatch(f"/fib/{n} answered {status} {back[:40]!r}")
                tally.add("http responses verified")
            if conn is not None and rng.random() < 0.05:
                conn.sock.close()
                conn = None
        except (OSError, Mismatch, ValueError) as e:
            tally.error(f"http: {type(e).__name__}: {e}")
            if conn is not None:
                conn.sock.close()
            conn = None
    if conn is not None:
        conn.sock.close()


# --- chat ---------------------------------------------------------------------------------


class Member:
    def __init__(self, addr):
        self.sock = connect(addr)
        self.buf = b""
        welcome = self.line()
        prefix = "* welcome, you are "
        if not welcome.startswith(prefix):
            raise Mismatch(f"no welcome: {welcome!r}")
        self.id = welcome[len(prefix) :]

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Mismatch("chat connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()


def chat_client(addr, rng, tally, stop):
    while not stop.is_set():
        members = []
        try:
            members = [Member(addr) for _ in range(4)]
            ids = {m.id for m in members}
            for rnd in range(rng.randint(5, 50)):
                sent = {}
                for m in members:
                    text = f"{m.id} round {rnd} {rng.randbytes(rng.randint(0, 200)).hex()}"
                    m.sock.sendall(text.encode() + b"\n")
                    sent[m.id] = text
                for m in members:
                    # Every other member's line of this round, each exactly once.
                    want = {f"{other}: {sent[other]}" for other in ids if other != m.id}
                    while want:
                        line = m.line()
                        if line in want:
                            want.remove(line)
                            tally.add("chat lines verified")
                        elif line.split(": ", 1)[0] in ids and not line.startswith("*"):
                            raise Mismatch(f"unexpected line from the group: {line[:80]!r}")
            for m in members:
                if rng.random() < 0.25:
                    reset(m.sock)
                    tally.add("chat resets")
                else:
                    m.sock.close()
            tally.add("chat sessions")
        except (OSError, Mismatch, UnicodeDecodeError) as e:
            tally.error(f"chat: {type(e).__name__}: {e}")
            for m in members:
                m.sock.close()


# --- servers and sampling -----------------------------------------------------------------


def start(exe, args, logdir, name):
    log = open(os.path.join(logdir, f"{name}.log"), "w")
    proc = subprocess.Popen([exe] + args, stdout=subprocess.PIPE, stderr=log, text=True)
    line = proc.stdout.readline().strip()
    if not line.startswith("listening on "):
        proc.kill()
        sys.exit(f"{name}: no 'listening on' line (got {line!r}); see {log.name}")
    host, port = line.rsplit(" ", 1)[1].rsplit(":", 1)
    return proc, (host, int(port))


def sample(pid):
    """(RSS in KiB, open descriptors) of a process, from /proc."""
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600, help="seconds of load (default 600)")
    parser.add_argument("--examples", required=True, help="directory of the release example binaries")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: the clock, printed)")
    parser.add_argument("--interval", type=float, default=10, help="seconds between /proc samples (default 10)")
    opts = parser.parse_args()
    seed = opts.seed if opts.seed is not None else time.time_ns() % 2**32
    print(f"soak: {opts.duration:.0f} s, seed {seed}", flush=True)

    logdir = tempfile.mkdtemp(prefix="evloop-soak-")
    exe = lambda name: os.path.join(opts.examples, name)  # noqa: E731
    servers = {}
    servers["echo"] = start(exe("echo"), ["--addr", "127.0.0.1:0"], logdir, "echo")
    upstream = "%s:%d" % servers["echo"][1]
    servers["proxy"] = start(exe("proxy"), ["--listen", "127.0.0.1:0", "--upstream", upstream], logdir, "proxy")
    servers["http"] = start(exe("http"), ["--addr", "127.0.0.1:0", "--threads", "1"], logdir, "http")
    servers["chat"] = start(exe("chat"), ["--addr", "127.0.0.1:0"], logdir, "chat")
    pids = {name: proc.pid for name, (proc, _) in servers.items()}
    baseline = {name: sample(pid) for name, pid in pids.items()}

    tally, stop = Tally(), threading.Event()
    master = random.Random(seed)
    plan = [
        (echo_client, (servers["echo"][1], "echo"), 3),
        (echo_client, (servers["proxy"][1], "proxy"), 3),
        (http_client, (servers["http"][1],), 3),
        (chat_client, (servers["chat"][1],), 1),
    ]
    threads = []
    for func, args, count in plan:
        for _ in range(count):
            rng = random.Random(master.getrandbits(64))
            threads.append(threading.Thread(target=func, args=args + (rng, tally, stop), daemon=True))
    started = time.monotonic()
    for t in threads:
        t.start()

    samples = {name: [] for name in pids}
    while True:
        elapsed = time.monotonic() - started
        for name, pid in pids.items():
            if servers[name][0].poll() is not None:
                sys.exit(f"{name} died (exit {servers[name][0].returncode}); see {logdir}")
            samples[name].append((elapsed,) + sample(pid))
        if elapsed >= opts.duration:
            break
        time.sleep(min(opts.interval, opts.duration - elapsed + 0.01))
    stop.set()
    for t in threads:
        t.join(timeout=60)
    stuck = sum(t.is_alive() for t in threads)

    # After the load: descriptors must come back to where they were (lingering closes
    # may hold a few for up to a couple of seconds).
    after = {}
    deadline = time.monotonic() + 15
    while True:
        after = {name: sample(pid) for name, pid in pids.items()}
        if all(after[n][1] == baseline[n][1] for n in pids) or time.monotonic() > deadline:
            break
        time.sleep(0.5)

    print("\nsamples (seconds: RSS MiB / open fds)")
    for name in pids:
        row = "  ".join(f"{t:.0f}s:{rss / 1024:.1f}/{fds}" for t, rss, fds in samples[name])
        print(f"  {name:5} before:{baseline[name][0] / 1024:.1f}/{baseline[name][1]}  {row}  "
              f"after:{after[name][0] / 1024:.1f}/{after[name][1]}")

    print("\nverdict")
    all_flat = True
    for name in pids:
        series = samples[name][1:] or samples[name]  # the first sample is the warm-up
        third = max(1, len(series) // 3)
        early = max(rss for _, rss, _ in series[:third])
        late = max(rss for _, rss, _ in series[-third:])
        rss_flat = late <= early * 1.10 + 1024
        fds_back = after[name][1] == baseline[name][1]
        peak_fds = max(fds for _, _, fds in samples[name])
        all_flat &= rss_flat and fds_back
        print(f"  {name:5} RSS {early / 1024:.1f} -> {late / 1024:.1f} MiB ({'flat' if rss_flat else 'GREW'}); "
              f"fds {baseline[name][1]} before, peak {peak_fds}, {after[name][1]} after "
              f"({'back to baseline' if fds_back else 'LEAKED'})")

    print("\ncounts")
    for key in sorted(tally.counts):
        print(f"  {key}: {tally.counts[key]}")
    for e in tally.errors:
        print(f"  error: {e}")
    if stuck:
        print(f"  {stuck} client threads still stuck after the stop")

    for proc, _ in servers.values():
        proc.terminate()
    for proc, _ in servers.values():
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    ok = all_flat and not tally.errors and not stuck
    print(f"\nsoak {'PASSED' if ok else 'FAILED'}: {tally.counts.get('errors', 0)} errors, "
          f"{'all flat' if all_flat else 'NOT flat'} (server logs in {logdir})")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
