"""`python -m services.scheduler --apiserver http://127.0.0.1:6443 --health-port 10259`"""
from __future__ import annotations

import argparse
import asyncio
import sys

from kubecore.client import ApiClient
from kubecore.controller import setup_logging
from kubecore.informer import SharedInformerFactory
from services.scheduler.plan import DEFAULT_SCHEDULER
from services.scheduler.scheduler import Scheduler


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m services.scheduler",
                                     description="Bind pending pods to ready nodes.")
    parser.add_argument("--apiserver", required=True, help="API server URL")
    parser.add_argument("--health-port", type=int, default=10259,
                        help="/healthz /readyz /metrics on 127.0.0.1 (0: any free port)")
    parser.add_argument("--health-host", default="127.0.0.1")
    parser.add_argument("--scheduler-name", default=DEFAULT_SCHEDULER,
                        help="schedule the pods whose spec.schedulerName is this")
    parser.add_argument("--workers", type=int, default=16, help="bindings in flight at once")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--log-json", action="store_true", help="one JSON object per log line")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    async with ApiClient(args.apiserver) as client:
        scheduler = Scheduler(client, SharedInformerFactory(client),
                              scheduler_name=args.scheduler_name, workers=args.workers)
        await scheduler.run(health_port=args.health_port, health_host=args.health_host)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.log_level, json_lines=args.log_json)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
