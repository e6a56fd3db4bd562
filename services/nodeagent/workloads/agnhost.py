"""The agnhost image's entrypoint: `agnhost <subcommand> [flags]`.

Subcommands: `netexec`, `serve-hostname`, `pause` (sleep until signalled).
"""
from __future__ import annotations

import argparse
import signal
import sys

from services.nodeagent.workloads import netexec, serve_hostname


def pause() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    print("Paused", flush=True)
    while True:
        signal.pause()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="agnhost")
    sub = parser.add_subparsers(dest="subcommand")
    netexec.add_arguments(sub.add_parser("netexec"))
    serve_hostname.add_arguments(sub.add_parser("serve-hostname"))
    sub.add_parser("pause")
    ns = parser.parse_args(argv)
    if ns.subcommand == "netexec":
        netexec.run(ns)
    elif ns.subcommand == "serve-hostname":
        serve_hostname.run(ns)
    elif ns.subcommand == "pause":
        pause()
    else:
        parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
