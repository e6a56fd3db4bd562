"""`python -m services.endpointslice --apiserver URL --health-port N`: run the
EndpointSlice controller until SIGTERM/SIGINT."""
from __future__ import annotations

import argparse
import sys

from kubecore.controller.flags import controller_parser, run_controller_main
from services.endpointslice.controller import EndpointSliceController
from services.endpointslice.planner import MAX_ENDPOINTS_PER_SLICE


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = controller_parser("services.endpointslice", __doc__ or "", health_port=10260)
    parser.add_argument("--workers", type=int, default=4, help="services reconciled at once")
    parser.add_argument("--max-endpoints-per-slice", type=int, default=MAX_ENDPOINTS_PER_SLICE)
    args = parser.parse_args(argv)
    if not 1 <= args.max_endpoints_per_slice <= 1000:
        parser.error("--max-endpoints-per-slice must be between 1 and 1000")
    return args


if __name__ == "__main__":
    sys.exit(run_controller_main(parse_args(), lambda client, a: EndpointSliceController(
        client, workers=a.workers, max_endpoints=a.max_endpoints_per_slice)))
