"""`python -m services.deployments --apiserver http://127.0.0.1:6443 --health-port 10257`"""
from __future__ import annotations

import argparse
import asyncio
import sys

from kubecore.client import ApiClient
from kubecore.controller import setup_logging
from services.deployments.app import DeploymentsManager


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m services.deployments",
                                     description="The ReplicaSet and Deployment controllers.")
    parser.add_argument("--apiserver", required=True, help="API server URL")
    parser.add_argument("--health-port", type=int, default=10257,
                        help="/healthz /readyz /metrics on 127.0.0.1 (0: any free port)")
    parser.add_argument("--health-host", default="127.0.0.1")
    parser.add_argument("--replicaset-workers", type=int, default=5)
    parser.add_argument("--deployment-workers", type=int, default=5)
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--log-json", action="store_true", help="one JSON object per log line")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    async with ApiClient(args.apiserver) as client:
        manager = DeploymentsManager(client, replicaset_workers=args.replicaset_workers,
                                     deployment_workers=args.deployment_workers)
        await manager.run(health_port=args.health_port, health_host=args.health_host)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.log_level, json_lines=args.log_json)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
