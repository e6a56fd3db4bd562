"""`python -m services.endpointslice --apiserver URL --health-port N`: run the
EndpointSlice, endpoints and EndpointSlice mirroring controllers until SIGTERM/SIGINT."""
from __future__ import annotations

import argparse
import sys

from kubecore.controller.flags import controller_parser, run_controller_main
from services.endpointslice.app import EndpointsManager
from services.endpointslice.planner import MAX_ENDPOINTS_PER_SLICE


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = controller_parser("services.endpointslice", __doc__ or "", health_port=10260)
    parser.add_argument("--workers", type=int, default=4, help="services reconciled at once")
    parser.add_argument("--max-endpoints-per-slice", type=int, default=MAX_ENDPOINTS_PER_SLICE)
    parser.add_argument("--concurrent-endpoint-syncs", type=int, default=4,
                        help="Services whose Endpoints are synced at once")
    parser.add_argument("--mirroring-concurrent-service-endpoint-syncs", type=int, default=4,
                        help="Endpoints mirrored into EndpointSlices at once")
    parser.add_argument("--mirroring-max-endpoints-per-subset", type=int, default=1000)
    args = parser.parse_args(argv)
    if not 1 <= args.max_endpoints_per_slice <= 1000:
        parser.error("--max-endpoints-per-slice must be between 1 and 1000")
    if not 1 <= args.mirroring_max_endpoints_per_subset <= 1000:
        parser.error("--mirroring-max-endpoints-per-subset must be between 1 and 1000")
    return args


if __name__ == "__main__":
    sys.exit(run_controller_main(parse_args(), lambda client, a: EndpointsManager(
        client, workers=a.workers, max_endpoints=a.max_endpoints_per_slice,
        endpoints_workers=a.concurrent_endpoint_syncs,
        mirroring_workers=a.mirroring_concurrent_service_endpoint_syncs,
        mirroring_max_endpoints_per_subset=a.mirroring_max_endpoints_per_subset)))
