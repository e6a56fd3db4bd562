"""What a Node may hold, against the real API server over etcd: a pod range that is a free
node subnet of the cluster CIDR (claimed in the Node's own transaction, so concurrent writers
never share one, and released when the Node goes), and InternalIPs that are plain addresses
in the node network. Refused writes are 422s that leave nothing behind."""
from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.conftest import ApiServer, Http, api_settings

pytestmark = pytest.mark.etcd

NODES = "/api/v1/nodes"
MERGE = "application/merge-patch+json"
OUT = "is out the range of cluster cidr 10.244.0.0/16"


def node(name: str, **spec: object) -> dict:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "spec": dict(spec)}


async def names(http: Http) -> list[str]:
    code, lst = await http.get(NODES)
    assert code == 200, lst
    return sorted(n["metadata"]["name"] for n in lst["items"])


REFUSED = [
    ("half-of-everything", {"podCIDR": "0.0.0.0/1"}, "spec.podCIDRs[0]",
     f'Invalid value: "0.0.0.0/1": cidr 0.0.0.0/1 {OUT}'),
    ("other-half", {"podCIDR": "128.0.0.0/1"}, "spec.podCIDRs[0]",
     f'Invalid value: "128.0.0.0/1": cidr 128.0.0.0/1 {OUT}'),
    ("default-route", {"podCIDRs": ["0.0.0.0/0"]}, "spec.podCIDRs[0]",
     f'Invalid value: "0.0.0.0/0": cidr 0.0.0.0/0 {OUT}'),
    ("the-whole-cluster", {"podCIDR": "10.244.0.0/16"}, "spec.podCIDRs[0]",
     'Invalid value: "10.244.0.0/16": must be a /24 (the node CIDR mask size) of the cluster cidr '
     "10.244.0.0/16"),
    ("host-bits", {"podCIDR": "10.244.3.9/24"}, "spec.podCIDRs[0]",
     'Invalid value: "10.244.3.9/24": must be a network address with no host bits set '
     "(e.g. 10.244.3.0/24)"),
    ("list-wins-over-podCIDR", {"podCIDR": "10.244.3.0/24", "podCIDRs": ["0.0.0.0/1"]},
     "spec.podCIDRs[0]", f'Invalid value: "0.0.0.0/1": cidr 0.0.0.0/1 {OUT}'),
    ("not-a-cidr", {"podCIDR": "127.0.0.1:2379"}, "spec.podCIDRs[0]",
     'Invalid value: []string{"127.0.0.1:2379"}: must be valid CIDR'),
]


@pytest.mark.parametrize("spec,field,message", [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
async def test_a_pod_range_outside_the_node_subnets_is_refused(http, spec, field, message):
    code, status = await http.post(NODES, node("n1", **spec))
    assert code == 422, status
    assert status["reason"] == "Invalid"
    assert status["details"]["causes"] == [{"reason": "FieldValueInvalid", "field": field,
                                            "message": message}]
    assert status["message"] == f'Node "n1" is invalid: {field}: {message}'
    assert await names(http) == []


async def test_a_range_is_held_by_one_node_until_it_is_deleted(http):
    code, a = await http.post(NODES, node("a", podCIDR="10.244.7.0/24"))
    assert code == 201 and a["spec"]["podCIDRs"] == ["10.244.7.0/24"], a
    code, status = await http.post(NODES, node("b", podCIDRs=["10.244.7.0/24"]))
    assert code == 422, status
    assert status["details"]["causes"] == [{
        "reason": "FieldValueInvalid", "field": "spec.podCIDRs[0]",
        "message": 'Invalid value: "10.244.7.0/24": provided range is already allocated'}]
    # a picked range never lands on a claimed one either
    picked = set()
    for name in ("c", "d", "e"):
        code, body = await http.post(NODES, node(name))
        assert code == 201, body
        picked.add(body["spec"]["podCIDR"])
    assert "10.244.7.0/24" not in picked and len(picked) == 3
    assert (await http.delete(f"{NODES}/a"))[0] == 200
    code, b = await http.post(NODES, node("b", podCIDRs=["10.244.7.0/24"]))
    assert code == 201 and b["spec"]["podCIDR"] == "10.244.7.0/24", b


async def test_concurrent_creates_of_one_range_let_exactly_one_through(http):
    results = await asyncio.gather(*(http.post(NODES, node(f"n{i}", podCIDR="10.244.9.0/24"))
                                     for i in range(8)))
    codes = sorted(code for code, _ in results)
    assert codes == [201] + [422] * 7, results
    winners = [b["metadata"]["name"] for code, b in results if code == 201]
    assert await names(http) == winners


async def test_concurrent_picks_and_asks_never_share_a_range(http):
    # picks start at the first subnet, where the asks are: either side may win a subnet, a
    # lost pick retries with the next free one, a lost ask is a 422
    asks = [http.post(NODES, node(f"ask{i}", podCIDR=f"10.244.{i}.0/24")) for i in range(6)]
    picks = [http.post(NODES, node(f"pick{i}")) for i in range(6)]
    results = await asyncio.gather(*asks, *picks)
    assert all(code == 201 for code, _ in results[6:]), results[6:]
    assert all(code in (201, 422) for code, _ in results[:6]), results[:6]
    cidrs = [b["spec"]["podCIDR"] for code, b in results if code == 201]
    assert len(cidrs) == len(set(cidrs)), cidrs
    code, lst = await http.get(NODES)
    assert sorted(n["spec"]["podCIDR"] for n in lst["items"]) == sorted(cidrs)


async def test_a_range_cannot_be_changed_or_cleared(http):
    code, n = await http.post(NODES, node("n1"))
    assert code == 201, n
    cidr = n["spec"]["podCIDR"]
    for patch in ({"spec": {"podCIDR": "10.244.200.0/24", "podCIDRs": ["10.244.200.0/24"]}},
                  {"spec": {"podCIDRs": ["0.0.0.0/1"]}}):
        code, status = await http.patch(f"{NODES}/n1", patch, MERGE)
        assert code == 422, status
        assert status["details"]["causes"][0]["field"] == "spec.podCIDRs", status
    code, n = await http.get(f"{NODES}/n1")
    assert n["spec"]["podCIDR"] == cidr and n["spec"]["podCIDRs"] == [cidr]


def addresses(*pairs: tuple[str, str]) -> dict:
    return {"status": {"addresses": [{"type": t, "address": a} for t, a in pairs]}}


async def test_an_internal_ip_is_a_plain_address(http):
    code, n = await http.post(NODES, node("n1"))
    assert code == 201, n
    for bad in ("127.0.0.1:2379/v3/kv/range?x#", "127.0.0.1:2379", "[::1]", "etcd.local"):
        code, status = await http.patch(f"{NODES}/n1/status", addresses(("InternalIP", bad)), MERGE)
        assert code == 422, status
        assert status["details"]["causes"] == [{
            "reason": "FieldValueInvalid", "field": "status.addresses[0].address",
            "message": f'Invalid value: "{bad}": must be a valid IP address, (e.g. 10.9.8.7 or '
                       '2001:db8::ffff)'}]
    code, status = await http.post(NODES, {**node("n2"), **addresses(("InternalIP", "10.0.0.1/8"))})
    assert code == 422 and status["details"]["causes"][0]["field"] == "status.addresses[0].address"
    code, status = await http.patch(f"{NODES}/n1/status", {"status": {"addresses": "10.0.0.1"}}, MERGE)
    assert code == 422, status
    code, n = await http.patch(f"{NODES}/n1/status", addresses(("InternalIP", "10.250.0.11"),
                                                               ("Hostname", "n1")), MERGE)
    assert code == 200 and n["status"]["addresses"][0]["address"] == "10.250.0.11", n
    assert await names(http) == ["n1"]


@pytest.fixture
async def node_network_server(etcd):
    server = await ApiServer(api_settings(etcd, node_cidr="10.250.0.0/24")).start()
    try:
        async with server.session() as session:
            yield Http(session)
    finally:
        await server.stop()


async def test_with_a_node_network_an_internal_ip_must_be_in_it(node_network_server):
    http = node_network_server
    code, n = await http.post(NODES, {**node("n1"), **addresses(("InternalIP", "10.250.0.11"))})
    assert code == 201, n
    for bad in ("127.0.0.1", "10.244.1.1", "192.0.2.1"):
        code, status = await http.patch(f"{NODES}/n1/status", addresses(("InternalIP", bad)), MERGE)
        assert code == 422, status
        assert status["details"]["causes"] == [{
            "reason": "FieldValueInvalid", "field": "status.addresses[0].address",
            "message": f'Invalid value: "{bad}": must be an address of the node network 10.250.0.0/24'}]
    code, status = await http.post(NODES, {**node("n2"), **addresses(("ExternalIP", "127.0.0.1"))})
    assert code == 422, status
    code, n = await http.get(f"{NODES}/n1")
    assert n["status"]["addresses"] == [{"type": "InternalIP", "address": "10.250.0.11"}]


async def test_addresses_stored_before_the_rule_do_not_block_a_heartbeat(etcd):
    async with ApiServerAt(etcd) as http:
        code, n = await http.post(NODES, {**node("n1"), **addresses(("InternalIP", "127.0.0.1"))})
        assert code == 201, n
    async with ApiServerAt(etcd, node_cidr="10.250.0.0/24") as http:
        heartbeat = {"status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                                "conditions": [{"type": "Ready", "status": "True"}]}}
        code, n = await http.patch(f"{NODES}/n1/status", heartbeat, MERGE)
        assert code == 200, n
        code, status = await http.patch(f"{NODES}/n1/status", addresses(("InternalIP", "127.0.0.2")), MERGE)
        assert code == 422, status


class ApiServerAt:
    """An API server over `etcd` with these settings, for one block."""

    def __init__(self, etcd, **overrides: object) -> None:
        self.server = ApiServer(api_settings(etcd, **overrides))
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Http:
        await self.server.start()
        self.session = self.server.session()
        return Http(self.session)

    async def __aexit__(self, *exc: object) -> None:
        assert self.session is not None
        await self.session.close()
        await self.server.stop()
