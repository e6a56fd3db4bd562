"""`python -m services.serviceaccounts --apiserver URL --root-ca-file ca.crt --health-port N`:
a `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap in every namespace."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kubecore.client.config import ClientConfig
from kubecore.client.rest import ApiClient
from kubecore.controller.flags import controller_parser, run_controller_main
from services.serviceaccounts.controller import ServiceAccountsController


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = controller_parser("services.serviceaccounts", __doc__ or "", health_port=10265)
    parser.add_argument("--root-ca-file", default="",
                        help="PEM bundle of the cluster CA, published as kube-root-ca.crt's ca.crt "
                        "(default: the CA this process trusts the API server with)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    args.root_ca = ""
    if args.root_ca_file:
        try:
            args.root_ca = Path(args.root_ca_file).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            parser.error(f"--root-ca-file: {exc}")
        if "-----BEGIN CERTIFICATE-----" not in args.root_ca:
            parser.error(f"--root-ca-file: {args.root_ca_file} holds no PEM certificate")
    return args


def client_ca(config: ClientConfig) -> str:
    """The CA this process trusts the API server with: what kube-controller-manager publishes
    when it is given no --root-ca-file."""
    if config.ca_data:
        return config.ca_data.decode()
    if config.ca_file:
        return Path(config.ca_file).read_text()
    return ""


def build(client: ApiClient, args: argparse.Namespace) -> ServiceAccountsController:
    return ServiceAccountsController(client, root_ca=args.root_ca or client_ca(client.config),
                                     workers=args.workers)


if __name__ == "__main__":
    sys.exit(run_controller_main(parse_args(), build))
