"""`python -m services.nodelifecycle --apiserver URL --grace 40 --health-port N`: mark
nodes that stopped posting status Ready=Unknown and their pods Ready=False."""
from __future__ import annotations

import argparse
import sys

from kubecore.controller.flags import controller_parser, run_controller_main
from services.nodelifecycle.controller import DEFAULT_GRACE, NodeLifecycleController


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = controller_parser("services.nodelifecycle", __doc__ or "", health_port=10263)
    parser.add_argument("--grace", type=float, default=DEFAULT_GRACE,
                        help="seconds without a heartbeat before a node is Unknown")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    if args.grace <= 0:
        parser.error("--grace must be positive")
    return args


if __name__ == "__main__":
    sys.exit(run_controller_main(parse_args(), lambda client, a: NodeLifecycleController(
        client, grace=a.grace, workers=a.workers)))
