"""`python -m services.netview --kubeconfig F [--listen 127.0.0.1] [--port 10380]`: the live
picture of the cluster's network (services/netview/__init__.py)."""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from aiohttp import web

from kubecore.client.rest import ApiClient
from kubecore.controller.flags import client_parser, run_client_main
from services.netview.app import NetView, create_app

log = logging.getLogger("netview")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = client_parser("services.netview", __doc__ or "")
    p.add_argument("--listen", default="127.0.0.1", help="the address the page is served on")
    p.add_argument("--port", type=int, default=10380)
    args = p.parse_args(argv)
    if not 0 < args.port < 65536:
        p.error(f"--port {args.port}: 1-65535")
    return args


async def serve(args: argparse.Namespace, client: ApiClient) -> None:
    view = NetView(client)
    runner = web.AppRunner(create_app(view), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, args.listen, args.port).start()
    await view.factory.start()
    log.info("serving the cluster's network on http://%s:%d/", args.listen, args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await view.factory.stop()
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run_client_main(args, lambda client: serve(args, client))
    except OSError as exc:  # the port taken, the address not ours
        sys.stderr.write(f"error: serving on {args.listen}:{args.port}: {exc}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
