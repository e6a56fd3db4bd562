"""``python -m services.proxy``: one node's service proxy (iptables or nftables mode).

    python -m services.proxy --apiserver URL --node-name N --cluster-cidr 10.244.0.0/16 \
        --health-port N [--proxy-mode iptables|nftables] [--service-cluster-ip-range CIDR] \
        [--netns NAME] [--min-sync-period S] [--sync-period 30]
    python -m services.proxy --cleanup [--netns NAME]

In the local cluster it runs inside the node's network namespace (``nsenter --net=...``)
and programs that namespace's own tables; ``--netns`` instead runs every iptables and
conntrack command through ``ip netns exec NAME``, and nft transactions in a thread that joined
NAME (kubecore/nftables.py) (tests, benchmarks).

Restart-safe: SIGTERM stops the watches and the sync loop and leaves the rules in place. A
new process touches nothing until both caches have synced, then its first (full) sync
rewrites each chain in one iptables-restore, so services keep working throughout.
``--cleanup`` is for teardown only: it removes every chain and jump of the proxy, and its
nftables table. Starting in one mode removes what the other mode left (as kube-proxy does),
so a node switched between modes never runs both.
"""
from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import shutil
import signal

from prometheus_client import CollectorRegistry

from kubecore.client.config import from_flags
from kubecore.client.rest import ApiClient
from kubecore.controller.health import Health, HealthServer, create_health_app
from kubecore.controller.logs import setup_logging
from kubecore.controller.metrics import ControllerCollector
from kubecore.informer.factory import SharedInformerFactory, wait_for_cache_sync
from services.proxy.announce import IpAddresses
from services.proxy.cleanup import cleanup
from services.proxy.debug import add_debug_routes
from services.proxy.healthcheck import ServiceHealthServer
from services.proxy.informers import attach_informers
from services.proxy.iptables import supports_random_fully
from services.proxy.nftsync import NftCommands
from services.proxy.proxier import PROXY_MODES, Proxier
from services.proxy.readiness import rules_synced
from services.proxy.rules import NodeSettings

log = logging.getLogger("services.proxy")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m services.proxy", description=__doc__.split("\n")[0])
    parser.add_argument("--apiserver", help="API server URL to watch (overrides the kubeconfig's)")
    parser.add_argument("--kubeconfig", default=None,
                        help="kubeconfig: the API server, its CA and the proxy's credentials")
    parser.add_argument("--node-name", help="this node's name (marks local endpoints)")
    parser.add_argument("--cluster-cidr", default=None,
                        help="pod CIDR; cluster-IP traffic from outside it is masqueraded")
    parser.add_argument("--health-port", type=int, default=10256,
                        help="/healthz /readyz /metrics; 0 picks a free port")
    parser.add_argument("--health-listen", default="127.0.0.1")
    parser.add_argument("--netns", default=None,
                        help="program this named network namespace instead of our own")
    parser.add_argument("--proxy-mode", choices=PROXY_MODES, default="iptables",
                        help="program iptables chains, or one nftables table with verdict maps")
    parser.add_argument("--service-cluster-ip-range", action="append", default=[], metavar="CIDR",
                        help="the service CIDR (repeatable): in nftables mode, traffic to a cluster IP "
                        "no Service holds is dropped")
    parser.add_argument("--min-sync-period", type=float, default=None,
                        help="minimum seconds between two syncs (bursts merge into one; default: 1 in "
                        "iptables mode, whose every sync restores whole chains, 0 in nftables mode, whose "
                        "partial syncs write only what changed)")
    parser.add_argument("--sync-period", type=float, default=30.0,
                        help="seconds after which a full resync runs even without changes")
    parser.add_argument("--announce-interface", default=None,
                        help="answer ARP on this interface (the node network's) for the load-balancer "
                        "addresses this node is elected for (layer-2 mode; default: none)")
    parser.add_argument("--cleanup", action="store_true",
                        help="remove all of the proxy's chains and jumps, then exit")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--log-json", action="store_true")
    args = parser.parse_args(argv)
    if not args.cleanup and not ((args.apiserver or args.kubeconfig) and args.node_name):
        parser.error("--kubeconfig (or --apiserver) and --node-name are required (unless --cleanup)")
    if args.min_sync_period is None:
        # a pod Ready -> its rules on every node in tens of ms (bench.network_programming_latency);
        # syncs never overlap, so changes arriving during one are merged into the next
        args.min_sync_period = 0.0 if args.proxy_mode == "nftables" else 1.0
    if args.min_sync_period < 0 or args.sync_period <= 0:
        parser.error("--min-sync-period must be >= 0 and --sync-period > 0")
    if args.proxy_mode == "nftables" and not args.cleanup and shutil.which("nft") is None:
        parser.error("--proxy-mode nftables needs the nft command (Debian's nftables package)")
    for cidr in args.service_cluster_ip_range:
        try:
            ipaddress.IPv4Network(cidr)
        except ValueError:
            parser.error(f"--service-cluster-ip-range: {cidr!r} is not an IPv4 network")
    return args


async def run_cleanup(args: argparse.Namespace, *, modes: tuple[str, ...] = PROXY_MODES) -> None:
    """Remove what the given modes programmed (by default both)."""
    extra: dict[str, object] = {"netns": args.netns or "-"}
    if "iptables" in modes:
        plan = await cleanup(netns=args.netns)
        extra.update(deleted_rules=plan.deleted_rules,
                     deleted_chains=sum(len(c) for c in plan.deleted_chains.values()))
    if "nftables" in modes:
        extra["deleted_nftables_table"] = await NftCommands(netns=args.netns).delete_table()
    log.info("cleanup done", extra=extra)


async def run(args: argparse.Namespace, stop: asyncio.Event) -> None:
    random_fully = await supports_random_fully(netns=args.netns)
    if not random_fully:
        log.warning("iptables is older than 1.6.2: MASQUERADE without --random-fully")
    settings = NodeSettings(node_name=args.node_name, cluster_cidr=args.cluster_cidr,
                            masquerade_random_fully=random_fully)
    registry = CollectorRegistry()
    addresses = (IpAddresses(args.announce_interface, netns=args.netns)
                 if args.announce_interface else None)
    # health check node ports listen in the proxy's own namespace: only when that is the node's
    health_checks = ServiceHealthServer() if args.netns is None else None
    proxier = Proxier(settings, registry=registry, netns=args.netns,
                      min_interval=args.min_sync_period, sync_period=args.sync_period,
                      addresses=addresses, mode=args.proxy_mode,
                      service_cidrs=tuple(args.service_cluster_ip_range), health_checks=health_checks)
    if health_checks is not None:
        health_checks.healthy = lambda: proxier.has_synced_rules
    # the other mode's leftovers would still catch packets before ours
    await run_cleanup(args, modes=tuple(m for m in PROXY_MODES if m != args.proxy_mode))
    client = ApiClient(from_flags(args.kubeconfig, args.apiserver))
    factory = SharedInformerFactory(client)
    informers = attach_informers(proxier, factory)
    registry.register(ControllerCollector(lambda: (), lambda: factory.informers))
    app = create_health_app(Health(registry=registry, informers=lambda: factory.informers,
                                   ready=rules_synced(proxier)))
    add_debug_routes(app, proxier)
    health = HealthServer(app, args.health_listen, args.health_port)
    try:
        await health.start()
        log.info("proxy health on http://%s:%d", args.health_listen, health.port,
                 extra={"node": args.node_name, "netns": args.netns or "-"})
        await factory.start()
        # Rules from half-filled caches would REJECT services whose endpoints are merely not
        # listed yet; until both lists are in, whatever rules exist stay untouched.
        while not await wait_for_cache_sync(*informers, timeout=0.5):
            if stop.is_set():
                return
        proxier.mark_services_synced()
        proxier.mark_endpoint_slices_synced()
        proxier.runner.start()
        log.info("caches synced; syncing rules", extra={"node": args.node_name})
        await stop.wait()
    finally:
        log.info("stopping; the rules stay in place")
        await proxier.runner.stop()
        if health_checks is not None:
            await health_checks.close()
        await factory.stop()
        await client.close()
        await health.stop()


async def main_async(args: argparse.Namespace) -> None:
    if args.cleanup:
        await run_cleanup(args)
        return
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await run(args, stop)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    setup_logging(args.log_level, json_lines=args.log_json)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
