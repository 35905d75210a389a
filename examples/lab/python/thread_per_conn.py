"""A thread per connection: socketserver's ThreadingMixIn (HTTPServer's with --protocol http).
Threads overlap their waits, but under the GIL only one of them computes at a time."""

import http.server
import socketserver

import labproto


class LineHandler(socketserver.BaseRequestHandler):
    def handle(self):
        labproto.serve_blocking(self.request)


class LineServer(labproto.QuietDisconnects, socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = labproto.BACKLOG


class HTTPServer(labproto.QuietDisconnects, socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = labproto.BACKLOG


def main():
    args = labproto.arguments(__doc__, http=True)
    if args.protocol == "http":
        server = HTTPServer(args.address, labproto.HTTPHandler)
    else:
        server = LineServer(args.address, LineHandler)
    labproto.announce(server.server_address)
    server.serve_forever()


labproto.main_guard(main)
