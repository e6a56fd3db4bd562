"""`python -m services.endpointslice --apiserver URL --health-port N`: run the
EndpointSlice controller until SIGTERM/SIGINT."""
from __future__ import annotations

import argparse
import asyncio

from kubecore.client import ApiClient
from kubecore.controller import setup_logging
from services.endpointslice.controller import EndpointSliceController
from services.endpointslice.planner import MAX_ENDPOINTS_PER_SLICE


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m services.endpointslice", description=__doc__)
    parser.add_argument("--apiserver", required=True, help="API server URL, e.g. http://127.0.0.1:6443")
    parser.add_argument("--health-port", type=int, default=10260,
                        help="/healthz /readyz /metrics port (0: any free port)")
    parser.add_argument("--health-host", default="127.0.0.1")
    parser.add_argument("--workers", type=int, default=4, help="services reconciled at once")
    parser.add_argument("--max-endpoints-per-slice", type=int, default=MAX_ENDPOINTS_PER_SLICE)
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--log-json", action="store_true", help="one JSON object per log line")
    args = parser.parse_args(argv)
    if not 1 <= args.max_endpoints_per_slice <= 1000:
        parser.error("--max-endpoints-per-slice must be between 1 and 1000")
    return args


async def main(args: argparse.Namespace) -> None:
    async with ApiClient(args.apiserver) as client:
        controller = EndpointSliceController(client, workers=args.workers,
                                             max_endpoints=args.max_endpoints_per_slice)
        await controller.run(health_host=args.health_host, health_port=args.health_port)


if __name__ == "__main__":
    args = parse_args()
    setup_logging(args.log_level, json_lines=args.log_json)
    asyncio.run(main(args))
