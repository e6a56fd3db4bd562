"""`python -m services.loadbalancer --pool 10.250.0.200-10.250.0.250 --health-port N`: an
address from the pool for every LoadBalancer Service, in its status.loadBalancer.ingress."""
from __future__ import annotations

import argparse
import sys

from kubecore.client.rest import ApiClient
from kubecore.controller.flags import controller_parser, run_controller_main
from services.loadbalancer.controller import LoadBalancerController
from services.loadbalancer.pool import PoolError, parse_pool


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = controller_parser("services.loadbalancer", __doc__ or "", health_port=10310)
    parser.add_argument("--pool", required=True,
                        help="the addresses to hand out: FIRST-LAST or a CIDR, on the nodes' network")
    parser.add_argument("--load-balancer-class", default=None,
                        help="serve Services of this loadBalancerClass (default: those without one)")
    args = parser.parse_args(argv)
    try:
        args.address_pool = parse_pool(args.pool)
    except PoolError as exc:
        parser.error(f"--pool: {exc}")
    return args


def build(client: ApiClient, args: argparse.Namespace) -> LoadBalancerController:
    return LoadBalancerController(client, pool=args.address_pool, lb_class=args.load_balancer_class)


if __name__ == "__main__":
    sys.exit(run_controller_main(parse_args(), build))
