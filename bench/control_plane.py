"""What the benchmarks run against, started the way the tests start it (tests/conftest.py):
the API server as its own process serving HTTPS with the test session's PKI, the benchmark
itself as the admin, and every component it starts with a kubeconfig of the identity the
cluster gives that component (cluster/credentials.py). So the figures include what TLS,
authentication and authorization cost a real cluster, and a component that lacks a
permission under RBAC fails here as it would there.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cluster.credentials import CONTROL_PLANE_IDENTITIES, NETPOL_IDENTITY, PROXY_IDENTITY, node_identity

if TYPE_CHECKING:
    from tests.conftest import ApiServerProcess


def identity(component: str) -> tuple[str, tuple[str, ...]]:
    """(user, groups) of `component`: a key of CONTROL_PLANE_IDENTITIES ("scheduler",
    "endpointslice", "dns", ...), "proxy", "netpol", or "node:<name>" for that node's agent."""
    if component == "proxy":
        return PROXY_IDENTITY
    if component == "netpol":
        return NETPOL_IDENTITY
    if component.startswith("node:"):
        return node_identity(component.removeprefix("node:"))
    return CONTROL_PLANE_IDENTITIES[component]


def kubeconfig_for(server: ApiServerProcess, directory: Path, component: str) -> Path:
    """A kubeconfig file for `server` as `component` (see `identity`), under `directory`."""
    user, groups = identity(component)
    return server.kubeconfig(directory / f"{component.replace(':', '-')}.kubeconfig", user, groups)


def start_apiserver(etcd_endpoint: str, log_dir: Path, *extra: str) -> ApiServerProcess:
    """`python -m services.apiserver` over `etcd_endpoint`, on a free loopback port, HTTPS
    with the test PKI; its log in `log_dir`. Stop it with `.stop()`."""
    from tests.conftest import ApiServerProcess

    return ApiServerProcess([etcd_endpoint], log_path=log_dir / "apiserver.log",
                            extra=list(extra)).start()
