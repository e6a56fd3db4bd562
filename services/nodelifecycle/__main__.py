"""`python -m services.nodelifecycle --apiserver URL --grace 40 --health-port N`: mark
nodes that stopped posting status Ready=Unknown and their pods Ready=False."""
from __future__ import annotations

import argparse
import asyncio

from kubecore.client import ApiClient
from kubecore.controller import setup_logging
from services.nodelifecycle.controller import DEFAULT_GRACE, NodeLifecycleController


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m services.nodelifecycle", description=__doc__)
    parser.add_argument("--apiserver", required=True, help="API server URL")
    parser.add_argument("--grace", type=float, default=DEFAULT_GRACE,
                        help="seconds without a heartbeat before a node is Unknown")
    parser.add_argument("--health-port", type=int, default=10263,
                        help="/healthz /readyz /metrics port (0: any free port)")
    parser.add_argument("--health-host", default="127.0.0.1")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--log-json", action="store_true")
    args = parser.parse_args(argv)
    if args.grace <= 0:
        parser.error("--grace must be positive")
    return args


async def main(args: argparse.Namespace) -> None:
    async with ApiClient(args.apiserver) as client:
        controller = NodeLifecycleController(client, grace=args.grace, workers=args.workers)
        await controller.run(health_host=args.health_host, health_port=args.health_port)


if __name__ == "__main__":
    args = parse_args()
    setup_logging(args.log_level, json_lines=args.log_json)
    asyncio.run(main(args))
