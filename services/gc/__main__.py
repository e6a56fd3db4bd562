"""`python -m services.gc --apiserver URL --health-port N`: delete objects whose owners
are gone, orphan or delete the dependents of owners deleted with Orphan or Foreground,
until SIGTERM/SIGINT."""
from __future__ import annotations

import argparse
import sys

from kubecore.api import resources as R
from kubecore.controller.flags import controller_parser, run_controller_main
from services.gc.controller import WATCHED, GarbageCollector


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = controller_parser("services.gc", __doc__ or "", health_port=10261)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--resources", default=",".join(rt.plural for rt in WATCHED),
                        help="comma-separated kinds to watch as owners and dependents")
    args = parser.parse_args(argv)
    resources = []
    for name in args.resources.split(","):
        rt = R.lookup(name.strip())
        if rt is None:
            parser.error(f"unknown resource {name!r}")
        resources.append(rt)
    args.resource_types = resources
    return args


if __name__ == "__main__":
    sys.exit(run_controller_main(parse_args(), lambda client, a: GarbageCollector(
        client, resources=a.resource_types, workers=a.workers)))
