"""The node lifecycle controller against the recording fake API client, on a fixed clock: the
writes it makes and what it does when one fails, without etcd. test_controller.py runs it
against the real API server, with real time."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from kubecore.api import resources as R
from kubecore.api.types import Obj
from services.nodelifecycle.controller import NodeLifecycleController
from services.nodelifecycle.staleness import format_time, ready_status
from tests.fakes.api import FakeApiClient
from tests.support.controllers import create_pod, running, until

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def node(name: str, *, ago: float) -> Obj:
    beat = format_time(NOW - timedelta(seconds=ago))
    return {"metadata": {"name": name}, "status": {"conditions": [
        {"type": "Ready", "status": "True", "reason": "KubeletReady",
         "message": "node agent is posting ready status", "lastHeartbeatTime": beat,
         "lastTransitionTime": beat}]}}


def pod(name: str, node_name: str, *, ready: bool = True) -> Obj:
    return {"metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": node_name, "containers": [{"name": "c", "image": "busybox"}]},
            "status": {"phase": "Running", "podIP": "10.1.0.1", "conditions": [
                {"type": "Ready", "status": "True" if ready else "False"}]}}


def controller(api: FakeApiClient, grace: float = 30) -> NodeLifecycleController:
    return NodeLifecycleController(api, grace=grace, clock=lambda: NOW)  # type: ignore[arg-type]


def stored_ready(api: FakeApiClient, rt: R.ResourceType, name: str) -> str:
    obj = api.stored(rt, name, "default")
    assert obj is not None
    return ready_status(obj)


async def settled(api: FakeApiClient, *, writes: int) -> None:
    """Wait for `writes` writes, then a little longer to catch any more."""
    async def enough() -> bool:
        return len(api.writes()) >= writes
    await until(enough, timeout=10)
    await asyncio.sleep(0.2)


async def test_a_silent_node_goes_unknown_and_only_its_ready_pods_are_marked():
    api = FakeApiClient()
    api.preload(R.NODES, node("dead", ago=60), node("alive", ago=10))
    api.preload(R.PODS, pod("on-dead", "dead"), pod("on-dead-unready", "dead", ready=False),
                pod("on-alive", "alive"))
    async with running(controller(api)):
        await settled(api, writes=2)
    assert api.writes() == ["update_status nodes/dead status",
                            "update_status pods/default/on-dead status"]
    dead = api.stored(R.NODES, "dead")
    assert dead is not None
    (ready,) = [c for c in dead["status"]["conditions"] if c["type"] == "Ready"]
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
    assert ready["lastHeartbeatTime"] == format_time(NOW - timedelta(seconds=60))
    assert stored_ready(api, R.PODS, "on-dead") == "False"
    assert stored_ready(api, R.PODS, "on-alive") == "True"
    # The node write was a compare-and-swap on the version the informer had read.
    node_write = api.calls[[str(c) for c in api.calls].index("update_status nodes/dead status")]
    assert node_write.body["metadata"]["resourceVersion"] == "1"


async def test_a_ready_pod_on_an_unknown_node_is_taken_out():
    api = FakeApiClient()
    api.preload(R.NODES, node("dead", ago=60))
    async with running(controller(api)):
        await settled(api, writes=1)
        await create_pod(api, "late", ip="10.1.0.3", node="dead")  # type: ignore[arg-type]
        await settled(api, writes=4)
    assert api.writes() == ["update_status nodes/dead status", "create pods/default/late",
                            "patch pods/default/late status",
                            "update_status pods/default/late status"]
    assert stored_ready(api, R.PODS, "late") == "False"


async def test_a_pod_deleted_meanwhile_is_skipped_and_the_others_are_marked():
    api = FakeApiClient()
    api.preload(R.NODES, node("dead", ago=60))
    api.preload(R.PODS, pod("gone", "dead"), pod("stays", "dead"))
    api.meanwhile("update_status", R.PODS, "gone", lambda: api.remove(R.PODS, "gone", "default"))
    async with running(controller(api)):
        await settled(api, writes=3)
    writes = api.writes()
    assert writes[0] == "update_status nodes/dead status"
    assert sorted(writes[1:]) == ["update_status pods/default/gone status",  # 404: skipped
                                  "update_status pods/default/stays status"]
    assert stored_ready(api, R.PODS, "stays") == "False"


async def test_a_heartbeat_between_read_and_write_wins():
    api = FakeApiClient()
    api.preload(R.NODES, node("n1", ago=60))
    api.preload(R.PODS, pod("p1", "n1"))

    def heartbeat(obj: Obj) -> None:
        obj["status"] = node("n1", ago=0)["status"]
    api.meanwhile("update_status", R.NODES, "n1", lambda: api.edit(R.NODES, "n1", None, heartbeat))
    async with running(controller(api)):
        await settled(api, writes=1)
        await asyncio.sleep(0.3)  # the 409 puts n1 back on the queue; the retry finds it fresh
    assert api.writes() == ["update_status nodes/n1 status"]  # refused: a compare-and-swap
    assert stored_ready(api, R.NODES, "n1") == "True"
    assert stored_ready(api, R.PODS, "p1") == "True"
