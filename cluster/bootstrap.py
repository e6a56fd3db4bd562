"""`python -m cluster.bootstrap`: create the objects a new cluster needs (used by compose,
where no launcher runs): the kube-dns Service and its endpoints."""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from cluster.config import ClusterConfig


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="cluster.bootstrap")
    p.add_argument("--kubeconfig", required=True, help="an admin kubeconfig")
    p.add_argument("--dns-ip", required=True, action="append",
                   help="an address of a DNS server (repeat for several)")
    a = p.parse_args(argv)
    from cluster.launcher import bootstrap_objects
    from kubecore.client.rest import ApiUnavailable

    for _ in range(120):
        try:
            asyncio.run(bootstrap_objects(ClusterConfig(), kubeconfig=Path(a.kubeconfig),
                                          dns_ips=a.dns_ip))
            print("bootstrap objects present")
            return 0
        except ApiUnavailable:
            time.sleep(1)
    print("error: the API server did not answer", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
