"""``python -m services.apiserverlb``: a TCP load balancer in front of the API servers.

    python -m services.apiserverlb --listen 127.0.0.2:6443 --backend 10.250.0.1:6443 \\
        --backend 10.250.0.254:6443 --ca-file ca.crt [--health-port 10312]

See balancer.py. Backends are checked with `GET /readyz` over HTTPS, verified with
``--ca-file`` (the cluster CA that signed the API servers' certificate).
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import ssl
import sys

import aiohttp
from prometheus_client import CollectorRegistry

from kubecore.controller.health import Health, HealthServer, create_health_app
from kubecore.controller.logs import setup_logging
from services.apiserverlb.balancer import Backend, Balancer, Check

log = logging.getLogger("services.apiserverlb")


def host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not host:port")
    return host, int(port)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m services.apiserverlb", description=__doc__.split("\n")[0])
    p.add_argument("--listen", type=host_port, required=True, help="host:port to accept clients on")
    p.add_argument("--backend", type=host_port, action="append", required=True,
                   help="an API server's host:port (repeat for each)")
    p.add_argument("--ca-file", required=True, help="the CA that signed the API servers' certificate")
    p.add_argument("--check-interval", type=float, default=1.0)
    p.add_argument("--health-port", type=int, default=10312, help="/healthz /readyz /metrics on loopback; 0: any")
    p.add_argument("--log-level", default="INFO")
    p.add_argument("--log-json", action="store_true")
    a = p.parse_args(argv)
    if not a.check_interval > 0:
        p.error("--check-interval must be greater than 0")
    try:
        ssl.create_default_context(cafile=a.ca_file)
    except (OSError, ssl.SSLError) as exc:
        p.error(f"--ca-file: {a.ca_file}: {exc}")
    return a


def readyz_check(ca_file: str, session: aiohttp.ClientSession) -> Check:
    context = ssl.create_default_context(cafile=ca_file)

    async def check(b: Backend) -> bool:
        try:
            async with session.get(f"https://{b.address}/readyz", ssl=context,
                                   timeout=aiohttp.ClientTimeout(total=1.0)) as resp:
                return resp.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False
    return check


async def run(a: argparse.Namespace, stop: asyncio.Event) -> None:
    registry = CollectorRegistry()
    async with aiohttp.ClientSession() as session:
        balancer = Balancer([Backend(h, p) for h, p in a.backend], readyz_check(a.ca_file, session),
                            registry=registry, interval=a.check_interval)

        async def ready() -> str | None:
            return None if balancer.any_healthy else "no backend is healthy"
        health = HealthServer(create_health_app(Health(registry=registry, ready=ready)), "127.0.0.1", a.health_port)
        await balancer.check_once()  # first checks before the first client
        checks = asyncio.create_task(balancer.check_loop())
        server = await asyncio.start_server(balancer.handle, *a.listen)
        await health.start()
        log.info("balancing %s over %s", ":".join(map(str, a.listen)), [b.address for b in balancer.backends])
        try:
            await stop.wait()
        finally:
            server.close()
            checks.cancel()
            await health.stop()


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    setup_logging(a.log_level, json_lines=a.log_json)

    async def go() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run(a, stop)
    try:
        asyncio.run(go())
    except OSError as exc:  # the listen address taken, or not ours
        sys.stderr.write(f"error: cannot listen on {a.listen[0]}:{a.listen[1]}: {exc.strerror or exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
