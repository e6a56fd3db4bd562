"""`python -m services.apiserver --etcd-servers 127.0.0.1:2379 --port 6443
--tls-cert-file apiserver.crt --tls-private-key-file apiserver.key --client-ca-file ca.crt`"""
from __future__ import annotations

import gc
import logging
import sys

from aiohttp import web

from services.apiserver.app import create_app
from services.apiserver.settings import parse_args, server_ssl_context


def main(argv: list[str] | None = None) -> int:
    settings = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    hosts = [h.strip() for h in settings.bind_address.split(",") if h.strip()]
    # The watch caches keep every object and a window of recent events alive, so each
    # full pass of the cycle collector walks all of them: at the default thresholds that
    # was about a tenth of a busy server's CPU, in pauses of tens of milliseconds. What
    # the server allocates is mostly acyclic (JSON dicts and lists, freed by reference
    # counting), so collect less often, and leave start-up's objects out of every pass.
    gc.set_threshold(25_000, 20, 100)
    gc.freeze()
    web.run_app(create_app(settings), host=hosts if len(hosts) > 1 else hosts[0], port=settings.port,
                ssl_context=server_ssl_context(settings), print=lambda *a: None, access_log=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
