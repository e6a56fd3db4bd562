"""The node lifecycle controller against a real API server, with short grace periods."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from kubecore.api import resources as R
from kubecore.client.rest import ApiClient
from services.endpointslice.controller import EndpointSliceController
from services.nodelifecycle.controller import NodeLifecycleController
from services.nodelifecycle.staleness import format_time, ready_status
from tests.support.controllers import create_pod, running, until


@pytest.fixture
async def client(apiserver):
    async with ApiClient(apiserver.config) as c:
        yield c


async def heartbeat(client: ApiClient, node: str, *, ago: float = 0.0) -> None:
    beat = format_time(datetime.now(UTC) - timedelta(seconds=ago))
    await client.patch(R.NODES, node, {"status": {"conditions": [
        {"type": "Ready", "status": "True", "reason": "KubeletReady",
         "message": "node agent is posting ready status", "lastHeartbeatTime": beat,
         "lastTransitionTime": beat}]}}, subresource="status")


async def make_node(client: ApiClient, name: str, *, ago: float = 0.0) -> None:
    await client.create(R.NODES, {"metadata": {"name": name}})
    await heartbeat(client, name, ago=ago)


async def pod_ready(client: ApiClient, name: str) -> str:
    return ready_status(await client.get(R.PODS, name, "default"))


async def test_a_silent_node_goes_unknown_and_its_pods_not_ready(client):
    await make_node(client, "dead", ago=60)
    await make_node(client, "alive")
    await create_pod(client, "on-dead", ip="10.1.0.1", node="dead")
    await create_pod(client, "on-alive", ip="10.1.0.2", node="alive")
    controller = NodeLifecycleController(client, grace=30)
    async with running(controller):
        async def dead_unknown():
            return ready_status(await client.get(R.NODES, "dead")) == "Unknown"
        await until(dead_unknown)
        node = await client.get(R.NODES, "dead")
        (ready,) = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready["reason"] == "NodeStatusUnknown"
        assert ready["message"] == "Kubelet stopped posting node status."

        async def pod_not_ready():
            return await pod_ready(client, "on-dead") == "False"
        await until(pod_not_ready)
        await asyncio.sleep(0.3)
        assert ready_status(await client.get(R.NODES, "alive")) == "True"
        assert await pod_ready(client, "on-alive") == "True"


async def test_heartbeats_keep_a_node_ready_and_their_end_is_noticed(client):
    await make_node(client, "n1")
    await create_pod(client, "p1", ip="10.1.0.1", node="n1")
    controller = NodeLifecycleController(client, grace=1.5)
    async with running(controller):
        for _ in range(8):  # 2.4 s of heartbeats, longer than the grace
            await heartbeat(client, "n1")
            await asyncio.sleep(0.3)
        assert ready_status(await client.get(R.NODES, "n1")) == "True"
        silent_since = asyncio.get_running_loop().time()

        async def unknown():
            return ready_status(await client.get(R.NODES, "n1")) == "Unknown"
        await until(unknown, timeout=10)
        # Seconds-resolution heartbeats: noticed within grace + 1 s, and not long after.
        assert asyncio.get_running_loop().time() - silent_since < 1.5 + 1.0 + 1.0
        await until(lambda: _is(pod_ready(client, "p1"), "False"))

        # The node agent comes back and sets Ready itself; the controller lets it be.
        await heartbeat(client, "n1")
        await asyncio.sleep(0.5)
        assert ready_status(await client.get(R.NODES, "n1")) == "True"


async def _is(coro, value) -> bool:
    return await coro == value


async def test_a_ready_pod_on_an_unknown_node_is_taken_out(client):
    await make_node(client, "dead", ago=60)
    async with running(NodeLifecycleController(client, grace=1)):
        await until(lambda: _is(_node_ready(client, "dead"), "Unknown"))
        await create_pod(client, "late", ip="10.1.0.3", node="dead")
        await until(lambda: _is(pod_ready(client, "late"), "False"))


async def _node_ready(client: ApiClient, name: str) -> str:
    return ready_status(await client.get(R.NODES, name))


async def test_endpoints_of_pods_on_a_lost_node_turn_not_ready(client):
    await client.create(R.SERVICES, {"metadata": {"name": "web", "namespace": "default"},
                                     "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})
    await make_node(client, "n1")
    await make_node(client, "n2")
    await create_pod(client, "web-1", ip="10.1.0.1", node="n1")
    await create_pod(client, "web-2", ip="10.1.0.2", node="n2")

    async def conditions():
        items, _ = await client.list(R.ENDPOINTSLICES, "default",
                                     label_selector="kubernetes.io/service-name=web")
        return {ep["targetRef"]["name"]: ep["conditions"]["ready"]
                for s in items for ep in s.get("endpoints") or []}

    async with running(EndpointSliceController(client)), \
            running(NodeLifecycleController(client, grace=1.5)):
        await until(lambda: _is(conditions(), {"web-1": True, "web-2": True}))
        for _ in range(10):  # n2 keeps posting; n1 has stopped
            await heartbeat(client, "n2")
            await asyncio.sleep(0.3)
        await until(lambda: _is(conditions(), {"web-1": False, "web-2": True}))
