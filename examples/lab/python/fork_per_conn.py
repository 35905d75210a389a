"""A process per connection: socketserver's ForkingMixIn (HTTPServer's with --protocol http).
The parent accepts and forks; the child serves the connection and exits."""

import http.server
import socketserver

import labproto


class DieWithParent:
    """Runs in the forked child (ForkingMixIn calls finish_request there)."""

    def finish_request(self, request, client_address):
        labproto.die_with_parent()
        super().finish_request(request, client_address)


class LineHandler(socketserver.BaseRequestHandler):
    def handle(self):
        labproto.serve_blocking(self.request)


class LineServer(labproto.QuietDisconnects, DieWithParent, socketserver.ForkingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    request_queue_size = labproto.BACKLOG


class HTTPServer(labproto.QuietDisconnects, DieWithParent, socketserver.ForkingMixIn, http.server.HTTPServer):
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
