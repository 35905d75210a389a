"""Processes x threads, the pooled-process mix-in's design: --processes P forked processes,
each with --threads K threads accepting on the one inherited listening socket and serving one
connection at a time (HTTP with --protocol http). No thread or process is created per
request; P processes give CPython every core, K threads per process overlap the waits."""

import multiprocessing
import threading

import labproto


def serve_connections(listener, protocol):
    while True:
        conn, address = listener.accept()
        try:
            if protocol == "http":
                # Serves requests until the client closes or asks to (`Connection: close`).
                labproto.HTTPHandler(conn, address, None)
            else:
                labproto.serve_blocking(conn)
        except OSError:
            pass  # the client went away
        finally:
            conn.close()


def worker(listener, threads, protocol):
    labproto.die_with_parent()
    pool = [
        threading.Thread(target=serve_connections, args=(listener, protocol), daemon=True)
        for _ in range(threads)
    ]
    for thread in pool:
        thread.start()
    labproto.main_guard(lambda: [thread.join() for thread in pool])


def main():
    args = labproto.arguments(__doc__, http=True)
    listener = labproto.listen(args.address)
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=worker, args=(listener, args.threads, args.protocol))
        for _ in range(args.processes)
    ]
    for process in workers:
        process.start()
    labproto.announce(listener.getsockname())
    for process in workers:
        process.join()


if __name__ == "__main__":
    labproto.main_guard(main)
