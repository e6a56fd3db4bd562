"""agnhost `netexec`: the HTTP (and UDP) test server of the Kubernetes e2e suite.

HTTP: `/` (NOW: time), `/hostname`, `/clientip` (the caller's ip:port as this pod sees it,
which shows whether a proxy hop SNATed), `/echo?msg=`, `/header?key=`, `/healthz`,
`/exit?code=`. UDP (--udp-port, default 8081, -1 disables): `hostname`, `echo <msg>`,
`clientip`.
"""
from __future__ import annotations

import argparse
import datetime
import os
import socket
import threading
from urllib.parse import parse_qs, urlsplit

from services.nodeagent.workloads._http import QuietHandler, serve


class Handler(QuietHandler):
    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path == "/":
            self.reply(f"NOW: {datetime.datetime.now().isoformat()}")
        elif url.path == "/hostname":
            self.reply(socket.gethostname())
        elif url.path == "/clientip":
            host, port = self.client_address[:2]
            self.reply(f"{host}:{port}")
        elif url.path == "/echo":
            self.reply(query.get("msg", [""])[0])
        elif url.path == "/header":
            self.reply(self.headers.get(query.get("key", [""])[0], ""))
        elif url.path == "/healthz":
            self.reply("ok")
        elif url.path == "/exit":
            code = int(query.get("code", ["0"])[0])
            self.reply("")
            self.wfile.flush()
            os._exit(code)
        else:
            self.reply("404 page not found\n", status=404)

    do_POST = do_GET


def serve_udp(port: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", port))
    while True:
        data, addr = sock.recvfrom(2048)
        text = data.decode(errors="replace").strip()
        if text == "hostname":
            answer = socket.gethostname()
        elif text == "clientip":
            answer = f"{addr[0]}:{addr[1]}"
        elif text.startswith("echo "):
            answer = text[5:]
        else:
            answer = ""
        sock.sendto(answer.encode(), addr)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--http-port", type=int, default=8080)
    parser.add_argument("--udp-port", type=int, default=8081)
    parser.add_argument("--sctp-port", type=int, default=-1)  # accepted for compatibility, not served


def run(ns: argparse.Namespace) -> None:
    if ns.udp_port > 0:
        threading.Thread(target=serve_udp, args=(ns.udp_port,), daemon=True).start()
    serve(Handler, ns.http_port, banner="netexec")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="netexec")
    add_arguments(parser)
    run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
