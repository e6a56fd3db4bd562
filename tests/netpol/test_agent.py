"""The policy agent's answer to a new sandbox (`wait_programmed`): given only after a sync with
the pod's new address is in the kernel. With a fake `nft` that records each table it is given."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry

from services.netpol.agent import PolicyAgent

NODE = "node-a"
DENY_ALL = {"metadata": {"namespace": "a", "name": "deny-all"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}


class RecordingNft:
    def __init__(self) -> None:
        self.tables: list[str] = []
        self.delay = 0.0

    async def run(self, text: str) -> None:
        await asyncio.sleep(self.delay)
        self.tables.append(text)


def new_pod(name: str, uid: str, node: str = NODE) -> dict:
    """A pod as the API shows it before the node agent reported its address."""
    return {"metadata": {"namespace": "a", "name": name, "uid": uid, "labels": {"app": name}},
            "spec": {"nodeName": node, "containers": [{"name": "c"}]}, "status": {"phase": "Pending"}}


@pytest.fixture
async def agent() -> AsyncIterator[tuple[PolicyAgent, RecordingNft]]:
    nft = RecordingNft()
    a = PolicyAgent(NODE, nft, registry=CollectorRegistry(), min_interval=0.01)
    a.on_object("namespaces", {"metadata": {"name": "a", "labels": {"kubernetes.io/metadata.name": "a"}}})
    a.on_object("networkpolicies", DENY_ALL)
    for kind in ("pods", "namespaces", "networkpolicies"):
        a.mark_synced(kind)
    a.runner.start()
    try:
        yield a, nft
    finally:
        await a.runner.stop()


async def test_the_answer_comes_after_the_table_with_the_new_address(agent) -> None:
    a, nft = agent
    a.on_object("pods", new_pod("web", "u1"))
    nft.delay = 0.1  # the answer must wait for nft, not only for the sync to begin
    assert await a.wait_programmed("a", "web", "u1", "10.244.1.7", timeout=2)
    assert "10.244.1.7" in nft.tables[-1]  # isolated by deny-all before its first packet


async def test_a_pod_no_policy_selects_is_answered_after_one_sync(agent) -> None:
    a, nft = agent
    a.on_deleted("networkpolicies", DENY_ALL)
    a.on_object("pods", new_pod("free", "u2"))
    assert await a.wait_programmed("a", "free", "u2", "10.244.1.8", timeout=2)
    assert "10.244.1.8" not in nft.tables[-1]


async def test_no_answer_for_a_pod_not_seen_or_of_another_uid(agent) -> None:
    a, _ = agent
    assert not await a.wait_programmed("a", "ghost", "u3", "10.244.1.9", timeout=0.3)
    a.on_object("pods", new_pod("web", "u-new"))
    assert not await a.wait_programmed("a", "web", "u-old", "10.244.1.10", timeout=0.3)


async def test_the_pod_arriving_later_is_answered_then(agent) -> None:
    a, nft = agent
    waiting = asyncio.create_task(a.wait_programmed("a", "late", "u4", "10.244.1.11", timeout=2))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    a.on_object("pods", new_pod("late", "u4"))
    assert await waiting
    assert "10.244.1.11" in nft.tables[-1]


async def test_the_stand_in_address_goes_once_the_status_has_one(agent) -> None:
    a, nft = agent
    a.on_object("pods", new_pod("web", "u5"))
    assert await a.wait_programmed("a", "web", "u5", "10.244.1.12", timeout=2)
    reported = new_pod("web", "u5")
    reported["status"] = {"phase": "Running", "podIP": "10.244.1.12"}
    a.on_object("pods", reported)
    await asyncio.sleep(0.2)
    assert a.new_addresses == {}
    assert "10.244.1.12" in nft.tables[-1]
