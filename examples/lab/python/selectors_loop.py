"""A select loop (the selectors module): one thread, non-blocking sockets, each fib computed
inline. A sleep is a deadline: select's timeout ends at the earliest one, and meanwhile that
client is not read from (its replies stay in order) while everyone else is served."""

import heapq
import selectors
import socket
import time

import labproto


class Client:
    def __init__(self, conn):
        self.conn = conn
        self.input = b""
        self.output = b""
        self.closing = False
        self.sleeping = None  # the sleep's milliseconds while one is in progress


def main():
    args = labproto.arguments(__doc__)
    listener = labproto.listen(args.address)
    listener.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    wakeups = []  # heap of (deadline, sequence, client)
    sequence = 0
    labproto.announce(listener.getsockname())

    def settle(client):
        """Answers what can be answered, writes, and watches for what the client needs."""
        nonlocal sequence
        while not client.closing and client.sleeping is None:
            end = client.input.find(b"\n")
            if end < 0:
                if len(client.input) >= labproto.MAX_LINE:
                    client.output += b"ERR line too long\n"
                    client.closing = True
                break
            line, client.input = client.input[:end], client.input[end + 1:]
            kind, value = labproto.parse(line)
            if kind == "sleep":
                client.sleeping = value
                sequence += 1
                heapq.heappush(wakeups, (time.monotonic() + value / 1000, sequence, client))
            else:
                client.output += labproto.perform_blocking((kind, value))
        if client.output:
            try:
                sent = client.conn.send(client.output)
                client.output = client.output[sent:]
            except BlockingIOError:
                pass
            except OSError:
                return drop(client)
        if client.closing and not client.output:
            return drop(client)
        events = 0
        if not client.closing and client.sleeping is None:
            events |= selectors.EVENT_READ
        if client.output:
            events |= selectors.EVENT_WRITE
        watched = selector.get_map().get(client.conn)
        if watched and not events:
            selector.unregister(client.conn)
        elif events and not watched:
            selector.register(client.conn, events, client)
        elif events and watched.events != events:
            selector.modify(client.conn, events, client)

    def drop(client):
        if client.conn in selector.get_map():
            selector.unregister(client.conn)
        client.conn.close()
        client.closing = True

    while True:
        timeout = max(0.0, wakeups[0][0] - time.monotonic()) if wakeups else None
        for key, mask in selector.select(timeout):
            if key.fileobj is listener:
                try:
                    conn, _ = listener.accept()
                except BlockingIOError:
                    continue
                conn.setblocking(False)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                settle(Client(conn))
                continue
            client = key.data
            if mask & selectors.EVENT_READ:
                try:
                    chunk = client.conn.recv(4096)
                except BlockingIOError:
                    chunk = None
                except OSError:
                    chunk = b""
                if chunk == b"":
                    drop(client)
                    continue
                client.input += chunk or b""
            settle(client)
        now = time.monotonic()
        while wakeups and wakeups[0][0] <= now:
            _, _, client = heapq.heappop(wakeups)
            if client.closing:
                continue  # gone while it slept
            client.output += labproto.reply("sleep", client.sleeping)
            client.sleeping = None
            settle(client)


labproto.main_guard(main)
