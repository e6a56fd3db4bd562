"""Fixtures for the real tests: a scratch node namespace, a runtime over it, and a guard that the
root network namespace is left exactly as it was.

The CNI plugins run with the scratch node namespace as their host side (`host_netns`), so ptp's
host veths, routes and ip_forward, and portmap's iptables rules, all land there.
"""
from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from services.nodeagent import procfs
from services.nodeagent.cni import CniExecutor, NetworkConfigList, default_conflist
from services.nodeagent.runtime import Runtime

POD_CIDR = "10.244.1.0/24"
HAVE_PLUGINS = all(os.access(f"/usr/lib/cni/{p}", os.X_OK) for p in ("ptp", "host-local", "portmap"))
IS_ROOT = os.geteuid() == 0

needs_netns = pytest.mark.skipif(not (IS_ROOT and HAVE_PLUGINS and shutil.which("nsenter")),
                                 reason="needs root, iproute2, util-linux and the CNI reference plugins")


def _sh(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def root_netns_snapshot() -> dict[str, str]:
    """What must not change in the root network namespace (links, routes, iptables, forwarding)."""
    snap = {
        "links": "\n".join(sorted(line.split(":")[1].strip() for line in _sh("ip", "-o", "link").splitlines())),
        "routes": _sh("ip", "route", "show", "table", "all"),
        "ip_forward": Path("/proc/sys/net/ipv4/ip_forward").read_text(),
    }
    if shutil.which("iptables-save"):
        snap["iptables"] = "\n".join(line for line in _sh("iptables-save").splitlines() if not line.startswith("#"))
    return snap


@pytest.fixture(scope="session", autouse=True)
def root_netns_untouched() -> Iterator[None]:
    if not IS_ROOT:
        yield
        return
    before = root_netns_snapshot()
    yield
    after = root_netns_snapshot()
    for key in before:
        assert after[key] == before[key], f"root network namespace changed: {key}"


def _delete_netns(name: str) -> None:
    path = f"/run/netns/{name}"
    for pid in procfs.pids_in_netns(path):
        procfs.signal_pid(pid, 9)
    subprocess.run(["ip", "netns", "delete", name], capture_output=True)


@pytest.fixture
def node_name() -> str:
    return f"t{secrets.token_hex(3)}"


@pytest.fixture
def node_netns(node_name: str) -> Iterator[str]:
    """A scratch 'node': a network namespace standing for the node's host side."""
    name = f"mc-{node_name}-node"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        _delete_netns(name)


@pytest.fixture
def ipam_dir(tmp_path: Path) -> Path:
    return tmp_path / "ipam"


@pytest.fixture
def conflist(ipam_dir: Path) -> NetworkConfigList:
    return NetworkConfigList.from_dict(default_conflist(pod_cidr=POD_CIDR, ipam_data_dir=ipam_dir))


@pytest.fixture
def cni(conflist: NetworkConfigList, node_netns: str) -> CniExecutor:
    return CniExecutor(conflist, host_netns=node_netns, timeout=20)


@pytest.fixture
async def runtime(node_name: str, tmp_path: Path, cni: CniExecutor) -> AsyncIterator[Runtime]:
    rt = Runtime(node_name=node_name, state_dir=tmp_path / "state", cni=cni)
    try:
        yield rt
    finally:
        try:
            await rt.cleanup_orphans(set())
        finally:
            rt.close()
            # Belt and braces: nothing of this node may survive the test.
            for ns in os.listdir("/run/netns") if os.path.isdir("/run/netns") else []:
                if ns.startswith(f"mc-{node_name}-") and ns != f"mc-{node_name}-node":
                    _delete_netns(ns)


def leases(ipam_dir: Path, network: str = "minicluster") -> list[str]:
    """IP addresses host-local holds leases for (one file per IP)."""
    d = ipam_dir / network
    if not d.is_dir():
        return []
    return sorted(p.name for p in d.iterdir() if p.name[0].isdigit())



@pytest.fixture(scope="session")
def image_store(tmp_path_factory: pytest.TempPathFactory):
    """A node's image store with the default images (built from this machine's packages once,
    cached like `cluster up` caches them)."""
    from cluster import nodeimages
    from services.nodeagent.oci.store import ContentStore

    store = ContentStore(tmp_path_factory.mktemp("images"))
    for built in nodeimages.build_all():
        store.import_archive(built.archive)
    return store
