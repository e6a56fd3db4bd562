"""What the `nginx` image runs here: an HTTP server on port 80 answering with the pod's hostname.

The hostname is the pod's name (the container runs in the pod's UTS namespace), which makes
load-balancing across pods visible from a client.
"""
from __future__ import annotations

import argparse
import socket

from services.nodeagent.workloads._http import QuietHandler, serve


class Handler(QuietHandler):
    def do_GET(self) -> None:
        if self.path == "/healthz":
            self.reply("ok\n")
        else:
            self.reply(socket.gethostname() + "\n")

    do_HEAD = do_GET


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="nginx")
    parser.add_argument("--port", type=int, default=80)
    # `nginx -g 'daemon off;'` is how the image's CMD reads; accept and ignore it.
    parser.add_argument("-g", dest="directives", default="")
    ns = parser.parse_args(argv)
    serve(Handler, ns.port, banner="nginx")


if __name__ == "__main__":
    main()
