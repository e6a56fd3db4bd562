"""``python -m services.dns``: run the cluster DNS server.

The records come from the API server through kubecore's shared informers (``informers.py``);
until both Services and EndpointSlices have been listed the zone answers SERVFAIL and /readyz
is 503. Without ``--apiserver`` the server runs with an empty index that never syncs, so it
answers SERVFAIL for the zone and forwards or refuses everything else.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator

from kubecore.client.config import ClientConfig, from_flags
from kubecore.client.rest import ApiClient
from kubecore.controller.health import Health, HealthServer, create_health_app
from kubecore.informer.factory import SharedInformerFactory

from .forward import parse_upstream
from .informers import ClusterWatch
from .metrics import dns_registry
from .readiness import records_synced
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
    parser.add_argument("--apiserver", default=None,
                        help="API server URL to watch (overrides the kubeconfig's)")
    parser.add_argument("--kubeconfig", default=None,
                        help="kubeconfig: the API server, its CA and this server's credentials")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    if args.ttl < 0 or not 0 <= args.port < 65536:
        parser.error("--ttl must be >= 0 and --port a port number")
    return args


@contextlib.asynccontextmanager
async def run_informers(index: RecordIndex, *, apiserver: ClientConfig) -> AsyncIterator[ClusterWatch]:
    """Feed ``index`` from shared informers on Services and EndpointSlices (all namespaces).

    Returns at once: the informers list and watch in the background, retrying while the API
    server is unreachable; the index is marked synced (and /readyz turns 200) only once both
    have listed.
    """
    client = ApiClient(apiserver)
    watch = ClusterWatch(index, SharedInformerFactory(client))
    try:
        await watch.start()
        log.info("watching services and endpointslices at %s", apiserver.server)
        yield watch
    finally:
        await watch.stop()
        await client.close()


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
    health: HealthServer | None = None
    if args.metrics_port:
        registry = dns_registry(server.stats, server.handler.cache, index, server.tcp)
        app = create_health_app(Health(registry=registry, ready=records_synced(index)))
        health = await HealthServer(app, args.metrics_listen, args.metrics_port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with contextlib.AsyncExitStack() as stack:
            if args.apiserver or args.kubeconfig:
                config = from_flags(args.kubeconfig, args.apiserver)
                await stack.enter_async_context(run_informers(index, apiserver=config))
            await stop.wait()
    finally:
        await server.stop()
        if health is not None:
            await health.stop()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
