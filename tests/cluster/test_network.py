"""The launcher's route overlap check, against real routing tables in a scratch namespace."""
from __future__ import annotations

import subprocess
import uuid

import pytest

from cluster.config import ROUTE_PROTO, ClusterConfig
from cluster.network import overlapping_routes


@pytest.fixture
def scratch_ns():
    name = f"mctest-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "add", "d0", "type", "veth", "peer", "name", "d1"], check=True)
        for dev in ("d0", "d1"):
            subprocess.run(["ip", "-n", name, "link", "set", dev, "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def add_route(ns: str, *args: str) -> None:
    subprocess.run(["ip", "-n", ns, "route", "add", *args], check=True)


def test_a_route_into_a_cluster_range_is_reported(scratch_ns):
    cfg = ClusterConfig()
    assert overlapping_routes(cfg, scratch_ns) == []
    add_route(scratch_ns, "10.96.4.0/24", "dev", "d0")
    add_route(scratch_ns, "192.0.2.0/24", "dev", "d0")
    clashes = overlapping_routes(cfg, scratch_ns)
    assert len(clashes) == 1 and clashes[0].startswith("10.96.4.0/24")


def test_a_wider_route_counts_but_our_own_do_not(scratch_ns):
    cfg = ClusterConfig()
    add_route(scratch_ns, "blackhole", "10.244.0.0/16", "proto", str(ROUTE_PROTO))  # left by a cluster of ours
    assert overlapping_routes(cfg, scratch_ns) == []
    add_route(scratch_ns, "10.0.0.0/8", "dev", "d0")
    assert [c.split()[0] for c in overlapping_routes(cfg, scratch_ns)] == ["10.0.0.0/8"]
