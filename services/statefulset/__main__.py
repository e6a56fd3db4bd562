"""`python -m services.statefulset --kubeconfig FILE --health-port N`: the StatefulSet
controller, until SIGTERM/SIGINT."""
from __future__ import annotations

import argparse
import sys

from kubecore.controller.flags import controller_parser, run_controller_main
from services.statefulset.app import StatefulSetManager


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = controller_parser("services.statefulset", __doc__ or "", health_port=10267)
    parser.add_argument("--workers", type=int, default=5)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return run_controller_main(parse_args(argv), lambda client, a: StatefulSetManager(
        client, workers=a.workers))


if __name__ == "__main__":
    sys.exit(main())
