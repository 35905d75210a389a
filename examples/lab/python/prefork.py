"""Preforked processes: --processes P multiprocessing workers (forked), each accepting on the
one listening socket they inherited and serving one connection at a time."""

import multiprocessing

import labproto


def worker(listener):
    labproto.die_with_parent()
    labproto.main_guard(lambda: labproto.serve_forever_serial(listener))


def main():
    args = labproto.arguments(__doc__)
    listener = labproto.listen(args.address)
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=worker, args=(listener,)) for _ in range(args.processes)]
    for process in workers:
        process.start()
    labproto.announce(listener.getsockname())
    for process in workers:
        process.join()


if __name__ == "__main__":
    labproto.main_guard(main)
