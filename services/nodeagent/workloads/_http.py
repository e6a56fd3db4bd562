"""Shared bits for the workload HTTP servers."""
from __future__ import annotations

import signal
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class QuietHandler(BaseHTTPRequestHandler):
    """One access line per request on stdout (the container log), nothing on stderr."""

    server_version = "minicluster"

    def log_message(self, format: str, *args: object) -> None:
        sys.stdout.write(f"{self.address_string()} {format % args}\n")
        sys.stdout.flush()

    def reply(self, body: str, status: int = 200, content_type: str = "text/plain; charset=utf-8") -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve(handler: type[BaseHTTPRequestHandler], port: int, *, banner: str) -> None:
    """Serve until SIGTERM/SIGINT, which exit cleanly (status 0), as nginx does on SIGQUIT."""
    server = Server(("0.0.0.0", port), handler)

    def _stop(signum: int, _frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _stop)
    print(f"{banner} listening on :{port} as {socket.gethostname()}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
