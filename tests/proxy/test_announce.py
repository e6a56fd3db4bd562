"""Which node answers ARP for a load-balancer address (layer-2 mode), as tables, and the
announcing itself against an in-memory interface."""
from __future__ import annotations

import hashlib

import pytest

from services.proxy.announce import addresses_to_announce, announce, elected, ready_nodes
from tests.proxy.objects import external, port, service


def node(name: str, ready: str | None = "True") -> dict:
    conditions = [{"type": "Ready", "status": ready}] if ready else []
    return {"metadata": {"name": name}, "status": {"conditions": conditions}}


def lb(name: str, *ips: str, ip_mode: str | None = "VIP", type_: str = "LoadBalancer") -> dict:
    return external(service(name, "10.96.0.9", [port(80)], type_=type_), lb_ips=list(ips), ip_mode=ip_mode)


def hash_order(ip: str, *names: str) -> list[str]:
    return sorted(names, key=lambda n: hashlib.sha256(f"{n}#{ip}".encode()).digest())


def test_ready_nodes() -> None:
    assert ready_nodes([node("a"), node("b", "Unknown"), node("c", None), node("d", "False"),
                        node("e")]) == ["a", "e"]


def test_election_is_the_same_everywhere_and_spreads() -> None:
    names = [f"mc-node-{i}" for i in range(1, 4)]
    owners = {elected(f"10.250.0.{i}", names) for i in range(200, 251)}
    assert owners == set(names), "fifty addresses land on every node"
    assert elected("10.250.0.200", names) == elected("10.250.0.200", names[::-1])
    assert elected("10.250.0.200", []) is None


@pytest.mark.parametrize("services,nodes,expected", [
    ([lb("a", "10.250.0.200")], [node("n1")], {"10.250.0.200"}),
    ([lb("a", "10.250.0.200")], [node("n1"), node("n2")],
     {"10.250.0.200"} if hash_order("10.250.0.200", "n1", "n2")[0] == "n1" else set()),
    # the elected node is not ready: the next one in the address's order takes it
    ([lb("a", "10.250.0.200")],
     [node(hash_order("10.250.0.200", "n1", "n2")[0], "Unknown"),
      node(hash_order("10.250.0.200", "n1", "n2")[1])],
     {"10.250.0.200"} if hash_order("10.250.0.200", "n1", "n2")[1] == "n1" else set()),
    ([lb("a", "10.250.0.200", ip_mode="Proxy")], [node("n1")], set()),
    ([lb("a", "10.250.0.200", type_="ClusterIP")], [node("n1")], set()),
    ([lb("a", "10.250.0.200")], [node("n1", "False")], set()),
], ids=["only-node", "two-nodes", "failover", "proxy-mode", "not-a-load-balancer", "not-ready"])
def test_addresses_to_announce(services: list[dict], nodes: list[dict], expected: set[str]) -> None:
    assert addresses_to_announce(services, nodes, "n1") == expected


class FakeAddresses:
    def __init__(self, *ips: str) -> None:
        self.ips = set(ips)
        self.calls: list[tuple[str, str]] = []

    async def list(self) -> set[str]:
        return set(self.ips)

    async def add(self, ip: str) -> None:
        self.calls.append(("add", ip))
        self.ips.add(ip)

    async def delete(self, ip: str) -> None:
        self.calls.append(("delete", ip))
        self.ips.discard(ip)


async def test_announce_adds_and_removes_only_the_difference() -> None:
    addresses = FakeAddresses("10.250.0.200", "10.250.0.203")
    added, deleted = await announce(addresses, frozenset({"10.250.0.200", "10.250.0.201"}))
    assert (added, deleted) == ({"10.250.0.201"}, {"10.250.0.203"})
    assert addresses.calls == [("add", "10.250.0.201"), ("delete", "10.250.0.203")]
    assert await announce(addresses, frozenset({"10.250.0.200", "10.250.0.201"})) == (set(), set())
