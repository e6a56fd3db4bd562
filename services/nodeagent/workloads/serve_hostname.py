"""agnhost `serve-hostname`: answers every HTTP request with the hostname (port 9376 by default)."""
from __future__ import annotations

import argparse
import socket

from services.nodeagent.workloads._http import QuietHandler, serve


class Handler(QuietHandler):
    def do_GET(self) -> None:
        self.reply(socket.gethostname())

    do_HEAD = do_GET


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=9376)
    # agnhost's flags for TCP/UDP modes; only HTTP is served.
    parser.add_argument("--http", default="true")
    parser.add_argument("--tcp", default="false")
    parser.add_argument("--udp", default="false")


def run(ns: argparse.Namespace) -> None:
    serve(Handler, ns.port, banner="serve-hostname")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="serve-hostname")
    add_arguments(parser)
    run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
