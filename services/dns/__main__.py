"""``python -m services.dns``: run the cluster DNS server.

The records come from the API server through kubecore's shared informers; that wiring is the
one piece still missing (see ``run_informers``). Without ``--apiserver`` the server runs with
an empty index that never syncs, so it answers SERVFAIL for the zone and forwards or refuses
everything else.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from aiohttp import web

from .forward import parse_upstream
from .health import create_health_app
from .metrics import dns_registry
from .records import RecordIndex
from .server import DnsServer

log = logging.getLogger("services.dns")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m services.dns", description=__doc__)
    parser.add_argument("--listen", default="0.0.0.0", help="address for UDP and TCP")
    parser.add_argument("--port", type=int, default=53, help="port for UDP and TCP")
    parser.add_argument("--zone", default="cluster.local", help="the cluster domain")
    parser.add_argument("--ttl", type=int, default=5, help="TTL of cluster records, seconds")
    parser.add_argument(
        "--upstream",
        action="append",
        default=[],
        type=parse_upstream,
        metavar="ADDR[:PORT]",
        help="forward names outside the zone here (repeatable); without it they get REFUSED",
    )
    parser.add_argument("--forward-timeout", type=float, default=2.0)
    parser.add_argument(
        "--metrics-port", type=int, default=9153, help="/healthz /readyz /metrics; 0 disables"
    )
    parser.add_argument("--metrics-listen", default="127.0.0.1")
    parser.add_argument("--apiserver", default=None, help="API server URL to watch")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    if args.ttl < 0 or not 0 <= args.port < 65536:
        parser.error("--ttl must be >= 0 and --port a port number")
    return args


async def run_informers(index: RecordIndex, *, apiserver: str) -> None:
    """TODO(kubecore): feed ``index`` from kubecore's shared informers once they exist.

    Planned wiring, nothing more (no HTTP watch client of our own here):
      - Service informer: add/update -> ``index.upsert_service(obj)``;
        delete -> ``index.delete_service(ns, name)``.
      - EndpointSlice informer (discovery.k8s.io/v1): add/update ->
        ``index.upsert_endpointslice(obj)``; delete -> ``index.delete_endpointslice(ns, name)``.
        (``index.apply_event(kind, event_type, obj)`` takes raw watch events as well.)
      - once both report has_synced: ``index.mark_synced()``; only then /readyz turns 200 and
        the zone is answered instead of SERVFAIL.
    """
    log.warning(
        "informer wiring to %s is not implemented yet (waiting for kubecore); "
        "the zone answers SERVFAIL until synced",
        apiserver,
    )


async def serve(args: argparse.Namespace) -> None:
    index = RecordIndex()
    server = DnsServer(
        index,
        zone=args.zone,
        ttl=args.ttl,
        upstreams=args.upstream,
        forward_timeout=args.forward_timeout,
    )
    await server.start(args.listen, args.port)
    runner: web.AppRunner | None = None
    if args.metrics_port:
        registry = dns_registry(server.stats, server.handler.cache, index)
        runner = web.AppRunner(create_health_app(reader=index, registry=registry))
        await runner.setup()
        await web.TCPSite(runner, args.metrics_listen, args.metrics_port).start()
    if args.apiserver:
        await run_informers(index, apiserver=args.apiserver)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()
        if runner is not None:
            await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
