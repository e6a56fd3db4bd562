"""The node agent's gate (services/nodeagent/policygate.py) against the policy agent's
`POST /podnetwork` (services/netpol/__main__.py), over real HTTP on loopback; the agent's
`nft` is a recording fake."""
from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from kubecore.controller.health import HealthServer
from services.netpol.__main__ import pod_network_handler
from services.netpol.agent import PolicyAgent
from services.nodeagent.policygate import PolicyGate, PolicyGateError
from tests.netpol.test_agent import DENY_ALL, RecordingNft, new_pod


@pytest.fixture
async def served():
    nft = RecordingNft()
    agent = PolicyAgent("node-a", nft, registry=CollectorRegistry(), min_interval=0.01)
    agent.on_object("networkpolicies", DENY_ALL)
    agent.on_object("pods", new_pod("web", "u1"))
    app = web.Application()
    app.router.add_post("/podnetwork", pod_network_handler(agent))
    server = await HealthServer(app).start()
    agent.runner.start()
    try:
        yield agent, nft, f"http://127.0.0.1:{server.port}"
    finally:
        await agent.runner.stop()
        await server.stop()


async def test_the_gate_opens_once_the_table_has_the_pod(served) -> None:
    agent, nft, url = served
    for kind in ("pods", "namespaces", "networkpolicies"):
        agent.mark_synced(kind)
    gate = PolicyGate(url, timeout=2)
    try:
        await gate.wait("a", "web", "u1", "10.244.1.7")
    finally:
        await gate.close()
    assert "10.244.1.7" in nft.tables[-1]


async def test_an_agent_not_synced_yet_keeps_the_gate_shut_and_says_why(served) -> None:
    _, nft, url = served
    gate = PolicyGate(url, timeout=0.3)
    try:
        with pytest.raises(PolicyGateError, match="504: not programmed within 0.3s: policies not programmed yet"):
            await gate.wait("a", "web", "u1", "10.244.1.7")
    finally:
        await gate.close()
    assert nft.tables == []


async def test_a_gate_with_no_agent_behind_it_says_so() -> None:
    gate = PolicyGate("http://127.0.0.1:9", timeout=0.5)  # discard: nothing listens
    try:
        with pytest.raises(PolicyGateError, match="is not answering"):
            await gate.wait("a", "web", "u1", "10.244.1.7")
    finally:
        await gate.close()


@pytest.mark.parametrize("body", [{"namespace": "a"}, {"namespace": "a", "name": "w", "uid": "u", "ip": "x"}, []])
async def test_bad_asks_are_refused_with_what_is_wanted(served, body) -> None:
    _, _, url = served
    async with aiohttp.ClientSession() as s, s.post(url + "/podnetwork", json=body) as resp:
        assert resp.status == 400
        assert "want JSON" in (await resp.json())["error"]
