"""`python -m services.apiserver --etcd-servers 127.0.0.1:2379 --port 6443`"""
from __future__ import annotations

import logging
import sys

from aiohttp import web

from services.apiserver.app import create_app
from services.apiserver.settings import parse_args


def main(argv: list[str] | None = None) -> int:
    settings = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    hosts = [h.strip() for h in settings.bind_address.split(",") if h.strip()]
    web.run_app(create_app(settings), host=hosts if len(hosts) > 1 else hosts[0], port=settings.port,
                print=lambda *a: None, access_log=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
