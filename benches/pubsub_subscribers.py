#!/usr/bin/env python3
"""Subscribers for benches/pubsub_compare.sh: N connections that SUBSCRIBE to one channel,
then read and count until each has received EXPECTED publications (or TIMEOUT seconds pass).

usage: pubsub_subscribers.py PORT N CHANNEL PAYLOAD EXPECTED [TIMEOUT]

Prints "ready" on stdout once every subscription is confirmed, then, at the end, one line:
"subscribers=N received=TOTAL expected=N*EXPECTED complete=YES|NO seconds=S". Counting is by
bytes: every publication of PAYLOAD on CHANNEL arrives as the same RESP2 push, so a reader
needs no parser to count it. Standard library only; one thread, non-blocking sockets.
"""
import selectors
import socket
import sys
import time


def resp(*parts):
    out = b"*%d\r\n" % len(parts)
    for part in parts:
        out += b"$%d\r\n%s\r\n" % (len(part), part)
    return out


def main():
    port, n, channel, payload, expected = sys.argv[1:6]
    n, expected = int(n), int(expected)
    timeout = float(sys.argv[6]) if len(sys.argv) > 6 else 60.0
    channel, payload = channel.encode(), payload.encode()
    push = resp(b"message", channel, payload)
    confirm = b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%s\r\n:1\r\n" % (len(channel), channel)
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", int(port)))
        s.sendall(resp(b"SUBSCRIBE", channel))
        socks.append(s)
    # The confirmation first (blocking: it comes at once), then nothing but pushes.
    for s in socks:
        got = b""
        while len(got) < len(confirm):
            chunk = s.recv(len(confirm) - len(got))
            if not chunk:
                sys.exit("a subscriber was closed before its confirmation")
            got += chunk
        if got != confirm:
            sys.exit("unexpected subscription reply: %r" % got)
        s.setblocking(False)
    print("ready", flush=True)
    want = expected * len(push)
    received = {s.fileno(): 0 for s in socks}
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    start = time.monotonic()
    done = 0
    while done < n and time.monotonic() - start < timeout:
        for key, _ in sel.select(timeout=0.5):
            s = key.fileobj
            try:
                data = s.recv(1 << 20)
            except BlockingIOError:
                continue
            if not data:
                sel.unregister(s)
                done += 1
                continue
            received[s.fileno()] += len(data)
            if received[s.fileno()] >= want:
                sel.unregister(s)
                done += 1
    total = sum(received.values()) // len(push)
    complete = all(r == want for r in received.values())
    print("subscribers=%d received=%d expected=%d complete=%s seconds=%.2f"
          % (n, total, n * expected, "YES" if complete else "NO", time.monotonic() - start), flush=True)


if __name__ == "__main__":
    main()
