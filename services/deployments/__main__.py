"""`python -m services.deployments --apiserver http://127.0.0.1:6443 --health-port 10257`:
the ReplicaSet and Deployment controllers."""
from __future__ import annotations

import argparse
import sys

from kubecore.controller.flags import controller_parser, run_controller_main
from services.deployments.app import DeploymentsManager


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = controller_parser("services.deployments", "The ReplicaSet and Deployment controllers.",
                               health_port=10257)
    parser.add_argument("--replicaset-workers", type=int, default=5)
    parser.add_argument("--deployment-workers", type=int, default=5)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return run_controller_main(parse_args(argv), lambda client, a: DeploymentsManager(
        client, replicaset_workers=a.replicaset_workers, deployment_workers=a.deployment_workers))


if __name__ == "__main__":
    sys.exit(main())
