"""`python -m services.gc --apiserver URL --health-port N`: delete objects whose owners
are gone (background propagation), until SIGTERM/SIGINT."""
from __future__ import annotations

import argparse
import asyncio

from kubecore import resources as R
from kubecore.client import ApiClient
from kubecore.controller import setup_logging
from services.gc.controller import WATCHED, GarbageCollector


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m services.gc", description=__doc__)
    parser.add_argument("--apiserver", required=True, help="API server URL")
    parser.add_argument("--health-port", type=int, default=10261,
                        help="/healthz /readyz /metrics port (0: any free port)")
    parser.add_argument("--health-host", default="127.0.0.1")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--resources", default=",".join(rt.plural for rt in WATCHED),
                        help="comma-separated kinds to watch as owners and dependents")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--log-json", action="store_true")
    args = parser.parse_args(argv)
    resources = []
    for name in args.resources.split(","):
        rt = R.lookup(name.strip())
        if rt is None:
            parser.error(f"unknown resource {name!r}")
        resources.append(rt)
    args.resource_types = resources
    return args


async def main(args: argparse.Namespace) -> None:
    async with ApiClient(args.apiserver) as client:
        gc = GarbageCollector(client, resources=args.resource_types, workers=args.workers)
        await gc.run(health_host=args.health_host, health_port=args.health_port)


if __name__ == "__main__":
    args = parse_args()
    setup_logging(args.log_level, json_lines=args.log_json)
    asyncio.run(main(args))
