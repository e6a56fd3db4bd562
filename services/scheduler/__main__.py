"""`python -m services.scheduler --apiserver http://127.0.0.1:6443 --health-port 10259`:
bind pending pods to ready nodes."""
from __future__ import annotations

import argparse
import sys

from kubecore.controller.flags import controller_parser, run_controller_main
from kubecore.informer.factory import SharedInformerFactory
from services.scheduler.plan import DEFAULT_SCHEDULER
from services.scheduler.scheduler import Scheduler


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = controller_parser("services.scheduler", "Bind pending pods to ready nodes.", health_port=10259)
    parser.add_argument("--scheduler-name", default=DEFAULT_SCHEDULER,
                        help="schedule the pods whose spec.schedulerName is this")
    parser.add_argument("--workers", type=int, default=16, help="bindings in flight at once")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return run_controller_main(parse_args(argv), lambda client, a: Scheduler(
        client, SharedInformerFactory(client), scheduler_name=a.scheduler_name, workers=a.workers))


if __name__ == "__main__":
    sys.exit(main())
