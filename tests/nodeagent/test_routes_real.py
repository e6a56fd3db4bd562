"""The node agent's routing table for real, in a scratch node namespace: `RouteTable.sync`
installs a route to another node's pods only if it passes the node network rules, whatever
it is handed; the default route's halves never reach the kernel."""
from __future__ import annotations

import subprocess

import pytest

from kubecore.api.nodenet import NodeRanges
from services.nodeagent.routes import ROUTE_PROTO, RouteTable
from tests.nodeagent.conftest import needs_netns

pytestmark = needs_netns

RANGES = NodeRanges.parse("10.244.0.0/16", 24, "10.250.0.0/24")


def on_the_node_network(ns: str) -> None:
    """eth0 with the node's address (a veth pair inside the namespace, its peer up too)."""
    subprocess.run(["ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "peer0"],
                   check=True)
    subprocess.run(["ip", "-n", ns, "addr", "add", "10.250.0.11/24", "dev", "eth0"], check=True)
    for dev in ("eth0", "peer0"):
        subprocess.run(["ip", "-n", ns, "link", "set", dev, "up"], check=True)


def routes_in(ns: str) -> list[str]:
    out = subprocess.run(["ip", "-n", ns, "-4", "route", "show", "proto", str(ROUTE_PROTO)],
                         check=True, capture_output=True, text=True).stdout
    return [" ".join(line.split()[:3]) for line in out.splitlines() if line.strip()]


async def test_sync_refuses_what_a_node_object_must_not_route(node_netns, caplog):
    on_the_node_network(node_netns)
    table = RouteTable(RANGES, f"/run/netns/{node_netns}")
    wanted = {("0.0.0.0/1", "10.250.0.12"), ("128.0.0.0/1", "10.250.0.12"),
              ("10.244.0.0/16", "10.250.0.12"), ("10.244.2.0/24", "192.0.2.1"),
              ("10.244.1.0/24", "10.250.0.12")}
    added, deleted = await table.sync(wanted)
    assert added == {("10.244.1.0/24", "10.250.0.12")} and deleted == set()
    assert routes_in(node_netns) == ["10.244.1.0/24 via 10.250.0.12"]
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 4
    await table.sync(wanted)  # told once: the next sync adds nothing to the log
    assert len([r for r in caplog.records if "refused" in r.getMessage()]) == 4
    assert routes_in(node_netns) == ["10.244.1.0/24 via 10.250.0.12"]


@pytest.mark.parametrize("cidr", ["0.0.0.0/1", "128.0.0.0/1"])
async def test_an_installed_route_is_not_replaced_by_a_wider_one(node_netns, cidr):
    on_the_node_network(node_netns)
    table = RouteTable(RANGES, f"/run/netns/{node_netns}")
    await table.sync({("10.244.1.0/24", "10.250.0.12")})
    added, deleted = await table.sync({(cidr, "10.250.0.12")})
    assert added == set() and deleted == {("10.244.1.0/24", "10.250.0.12")}
    assert routes_in(node_netns) == []
