"""``python -m services.netpol``: one node's NetworkPolicy agent.

    python -m services.netpol --kubeconfig PATH --node-name N [--netns NAME] [--health-port 10258]
    python -m services.netpol --cleanup [--netns NAME]

In the local cluster it runs inside the node's network namespace, as the proxy does, and
programs that namespace's `ip minicluster-netpol` table through libnftables
(kubecore/nftables.py; ``--netns`` makes its thread join a named namespace instead, for
tests). SIGTERM leaves the rules in place: pods stay isolated while the agent restarts.
``--cleanup`` deletes the table. Its health port (the node's loopback) also answers the node
agent's `POST /podnetwork` for each new sandbox (see services/netpol/agent.py).
"""
from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import shutil
import signal
import sys
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CollectorRegistry

from kubecore.api import resources as R
from kubecore.api.types import Obj
from kubecore.client.config import ConfigError, from_flags
from kubecore.client.rest import ApiClient
from kubecore.controller.health import Health, HealthServer, create_health_app
from kubecore.controller.logs import setup_logging
from kubecore.informer.factory import SharedInformerFactory, wait_for_cache_sync
from kubecore.informer.informer import Informer
from kubecore.nftables import NftError, nft_runner
from services.netpol.agent import PolicyAgent
from services.netpol.rules import FAMILY, TABLE

log = logging.getLogger("services.netpol")
KINDS = {"pods": R.PODS, "namespaces": R.NAMESPACES, "networkpolicies": R.NETWORKPOLICIES}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m services.netpol", description=__doc__.split("\n")[0])
    parser.add_argument("--kubeconfig", default=None)
    parser.add_argument("--apiserver", default=None)
    parser.add_argument("--node-name", help="this node's name: its pods are the ones isolated here")
    parser.add_argument("--netns", default=None, help="program this named network namespace instead of our own")
    parser.add_argument("--health-port", type=int, default=10258, help="/healthz /readyz /metrics; 0: any")
    parser.add_argument("--health-listen", default="127.0.0.1")
    parser.add_argument("--min-sync-period", type=float, default=0.2)
    parser.add_argument("--cleanup", action="store_true", help="delete the table, then exit")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--log-json", action="store_true")
    args = parser.parse_args(argv)
    if shutil.which("nft") is None:
        parser.error("the nft command is missing (Debian's nftables package)")
    if not args.cleanup and not ((args.apiserver or args.kubeconfig) and args.node_name):
        parser.error("--kubeconfig (or --apiserver) and --node-name are required (unless --cleanup)")
    return args


def pod_network_handler(agent: PolicyAgent) -> Callable[[web.Request], Awaitable[web.Response]]:
    """`POST /podnetwork` {namespace, name, uid, ip}: the node agent's new sandbox; answered
    once the table accounts for it (200), or 504 after `timeout` seconds (default 10)."""
    async def handle(request: web.Request) -> web.Response:
        return await _pod_network(agent, request)
    return handle


async def _pod_network(agent: PolicyAgent, request: web.Request) -> web.Response:
    try:
        body = await request.json()
        namespace, name, uid, ip = (str(body[k]) for k in ("namespace", "name", "uid", "ip"))
        ipaddress.IPv4Address(ip)
        timeout = min(float(body.get("timeout", 10)), 60.0)
    except (ValueError, KeyError, TypeError, AttributeError):
        return web.json_response({"error": "want JSON {namespace, name, uid, ip (IPv4)[, timeout]}"}, status=400)
    if await agent.wait_programmed(namespace, name, uid, ip, timeout):
        return web.json_response({"programmed": True})
    why = "policies not programmed yet" if not agent.ready else f"pod {namespace}/{name} not seen from the API yet"
    return web.json_response({"error": f"not programmed within {timeout:g}s: {why}"}, status=504)


def attach(agent: PolicyAgent, factory: SharedInformerFactory, kind: str) -> Informer:
    """An informer of `kind` (all namespaces) feeding the agent."""
    informer = factory.informer(KINDS[kind])

    def changed(obj: Obj) -> None:
        agent.on_object(kind, obj)

    def updated(_old: Obj, new: Obj) -> None:
        agent.on_object(kind, new)

    def deleted(obj: Obj) -> None:
        agent.on_deleted(kind, obj)

    informer.add_handlers(on_add=changed, on_update=updated, on_delete=deleted)
    return informer


async def run(args: argparse.Namespace, stop: asyncio.Event) -> None:
    registry = CollectorRegistry()
    agent = PolicyAgent(args.node_name, nft_runner(args.netns), registry=registry,
                        min_interval=args.min_sync_period)
    client = ApiClient(from_flags(args.kubeconfig, args.apiserver))
    factory = SharedInformerFactory(client)
    informers = [attach(agent, factory, kind) for kind in KINDS]

    async def ready() -> str | None:
        return None if agent.ready else "policies not programmed yet"

    app = create_health_app(Health(registry=registry, informers=lambda: factory.informers, ready=ready))
    app.router.add_post("/podnetwork", pod_network_handler(agent))
    health = HealthServer(app, args.health_listen, args.health_port)
    try:
        await health.start()
        await factory.start()
        while not await wait_for_cache_sync(*informers, timeout=0.5):
            if stop.is_set():
                return
        for kind in KINDS:
            agent.mark_synced(kind)
        agent.runner.start()
        log.info("caches synced; programming policies", extra={"node": args.node_name})
        await stop.wait()
    finally:
        await agent.runner.stop()
        await factory.stop()
        await client.close()
        await health.stop()


async def main_async(args: argparse.Namespace) -> int:
    if args.cleanup:
        try:
            await nft_runner(args.netns).run(f"add table {FAMILY} {TABLE}\ndelete table {FAMILY} {TABLE}\n")
        except NftError as exc:
            sys.stderr.write(f"error: {exc}\n")
            return 1
        return 0
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await run(args, stop)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.log_level, json_lines=args.log_json)
    try:
        return asyncio.run(main_async(args))
    except ConfigError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
