"""`python -m services.daemonset --kubeconfig FILE --health-port N`: the DaemonSet controller,
one pod per node that should run it."""
from __future__ import annotations

import argparse
import sys

from kubecore.controller.flags import controller_parser, run_controller_main
from services.daemonset.controller import DaemonSetController


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = controller_parser("services.daemonset", __doc__ or "", health_port=10267)
    parser.add_argument("--workers", type=int, default=2)
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(run_controller_main(parse_args(), lambda client, a: DaemonSetController(
        client, workers=a.workers)))
