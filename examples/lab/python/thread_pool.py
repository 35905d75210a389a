"""A pool of threads: --threads K threads started up front, each accepting on the shared
listening socket and serving one connection at a time. Under the GIL they compute one at a
time, but wait (accept, recv, sleep) in parallel."""

import threading

import labproto


def main():
    args = labproto.arguments(__doc__)
    listener = labproto.listen(args.address)
    threads = [
        threading.Thread(target=labproto.serve_forever_serial, args=(listener,), daemon=True)
        for _ in range(args.threads)
    ]
    for thread in threads:
        thread.start()
    labproto.announce(listener.getsockname())
    for thread in threads:
        thread.join()


labproto.main_guard(main)
