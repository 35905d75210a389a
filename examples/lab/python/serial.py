"""Serial: one process, one thread, one connection at a time (the naive server)."""

import labproto


def main():
    args = labproto.arguments(__doc__)
    listener = labproto.listen(args.address)
    labproto.announce(listener.getsockname())
    labproto.serve_forever_serial(listener)


labproto.main_guard(main)
