"""The DaemonSet controller in-process against the in-memory API (tests/fakes/api.py), with
node agents stood in by `kubelet.py`: nodes coming and going, the rolling update's budget,
OnDelete, and the revisions `kubectl rollout` reads."""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from kubecore.api import resources as R
from services.daemonset.controller import DaemonSetController
from services.daemonset.placement import target_node
from tests.daemonset.kubelet import kubelets
from tests.fakes.api import FakeApiClient
from tests.support.controllers import running, until


def _node(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}}


def _ds(image: str = "busybox:1", **strategy: Any) -> dict[str, Any]:
    return {"metadata": {"name": "agent", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                     **({"updateStrategy": strategy} if strategy else {}),
                     "template": {"metadata": {"labels": {"app": "agent"}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}}}


def _live(api: FakeApiClient) -> list[dict[str, Any]]:
    return [p for (plural, _, _), p in api.objects.items()
            if plural == "pods" and not p["metadata"].get("deletionTimestamp")]


def _image(pod: dict[str, Any]) -> str:
    return str(pod["spec"]["containers"][0]["image"])


def _status(api: FakeApiClient) -> dict[str, Any]:
    return (api.stored(R.DAEMONSETS, "agent", "default") or {}).get("status") or {}


async def test_a_pod_per_node_as_nodes_come_and_go() -> None:
    api = FakeApiClient()
    api.preload(R.NODES, _node("n1"), _node("n2"), _node("other", role="db"))
    ds = _ds()
    ds["spec"]["template"]["spec"]["affinity"] = {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "role", "operator": "NotIn", "values": ["db"]}]}]}}}
    api.preload(R.DAEMONSETS, ds)
    async with running(DaemonSetController(api)), kubelets(api, bind=True):  # type: ignore[arg-type]
        async def placed(*nodes: str) -> bool:
            return sorted(str(target_node(p)) for p in _live(api)) == sorted(nodes)
        await until(lambda: placed("n1", "n2"))
        await until(lambda: _async(_status(api).get("numberAvailable") == 2))
        assert _status(api)["desiredNumberScheduled"] == 2 and _status(api)["observedGeneration"] == 1
        await api.create(R.NODES, _node("n3"))
        await until(lambda: placed("n1", "n2", "n3"))
        await until(lambda: _async(_status(api).get("numberReady") == 3))
        await api.patch(R.NODES, "n1", {"metadata": {"labels": {"role": "db"}}})
        await until(lambda: placed("n2", "n3"))
        await until(lambda: _async(_status(api).get("desiredNumberScheduled") == 2
                                   and _status(api).get("numberMisscheduled") == 0))
    revisions = [o for (plural, _, _), o in api.objects.items() if plural == "controllerrevisions"]
    assert [r["revision"] for r in revisions] == [1]
    hash_ = revisions[0]["metadata"]["labels"]["controller-revision-hash"]
    assert {p["metadata"]["labels"]["controller-revision-hash"] for p in _live(api)} == {hash_}


async def _async(value: bool) -> bool:
    return value


async def _observe_until(done: Callable[[], bool], observe: Callable[[], Any],
                         timeout: float = 20.0) -> None:
    """Call `observe` every few milliseconds until `done`: what was true all along the way."""
    async def loop() -> None:
        while not done():
            observe()
            await asyncio.sleep(0.005)
    await asyncio.wait_for(loop(), timeout)


def _rolled_out(api: FakeApiClient, generation: int, nodes: int) -> bool:
    """What `kubectl rollout status ds` waits for."""
    status = _status(api)
    return bool(status.get("observedGeneration") == generation
                and status.get("updatedNumberScheduled") == nodes
                and status.get("numberAvailable") == nodes)


async def test_rolling_update_replaces_one_node_at_a_time_and_history_grows() -> None:
    api = FakeApiClient()
    api.preload(R.NODES, *(_node(f"n{i}") for i in range(4)))
    api.preload(R.DAEMONSETS, _ds())
    controller = DaemonSetController(api)  # type: ignore[arg-type]
    async with running(controller), kubelets(api, bind=True):
        await until(lambda: _async(_status(api).get("numberAvailable") == 4))
        await api.patch(R.DAEMONSETS, "agent", {"spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": "busybox:2"}]}}}}, "default", patch_type="strategic")
        seen_ready: list[int] = []
        await _observe_until(lambda: _rolled_out(api, 2, 4), lambda: seen_ready.append(len(
            [p for p in _live(api) if (p.get("status") or {}).get("phase") == "Running"])))
        most_unavailable = 4 - min(seen_ready)
        assert {_image(p) for p in _live(api)} == {"busybox:2"}
        assert most_unavailable <= 1  # maxUnavailable 1, the default
        # back to the first template: its revision becomes the newest
        await api.patch(R.DAEMONSETS, "agent", {"spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": "busybox:1"}]}}}}, "default", patch_type="strategic")
        await until(lambda: _async({_image(p) for p in _live(api)} == {"busybox:1"}
                                   and len(_live(api)) == 4), timeout=30)

        async def numbered() -> bool:
            revs = {o["data"]["spec"]["template"]["spec"]["containers"][0]["image"]: o["revision"]
                    for (plural, _, _), o in api.objects.items() if plural == "controllerrevisions"}
            return revs == {"busybox:1": 3, "busybox:2": 2}
        await until(numbered)


async def test_surge_keeps_the_old_pod_until_the_new_one_is_available() -> None:
    api = FakeApiClient()
    api.preload(R.NODES, _node("n1"), _node("n2"))
    api.preload(R.DAEMONSETS, _ds(type="RollingUpdate", rollingUpdate={"maxSurge": 1, "maxUnavailable": 0}))
    async with running(DaemonSetController(api)), kubelets(api, bind=True):  # type: ignore[arg-type]
        await until(lambda: _async(_status(api).get("numberAvailable") == 2))
        await api.patch(R.DAEMONSETS, "agent", {"spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": "busybox:2"}]}}}}, "default", patch_type="strategic")
        nodes_running: list[int] = []
        await _observe_until(lambda: _rolled_out(api, 2, 2) and len(_live(api)) == 2,
                             lambda: nodes_running.append(len({
                                 target_node(p) for p in _live(api)
                                 if (p.get("status") or {}).get("phase") == "Running"})))
        fewest_running = min(nodes_running)
        assert {_image(p) for p in _live(api)} == {"busybox:2"}
        assert fewest_running == 2  # every node kept a running pod throughout


async def test_on_delete_replaces_only_what_is_deleted() -> None:
    api = FakeApiClient()
    api.preload(R.NODES, _node("n1"), _node("n2"))
    api.preload(R.DAEMONSETS, _ds(type="OnDelete"))
    async with running(DaemonSetController(api)), kubelets(api, bind=True):  # type: ignore[arg-type]
        await until(lambda: _async(_status(api).get("numberAvailable") == 2))
        await api.patch(R.DAEMONSETS, "agent", {"spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": "busybox:2"}]}}}}, "default", patch_type="strategic")
        await until(lambda: _async(_status(api).get("observedGeneration") == 2))
        assert "updatedNumberScheduled" not in _status(api)  # 0, left out as kube's omitempty
        assert {_image(p) for p in _live(api)} == {"busybox:1"}
        victim = next(p for p in _live(api) if target_node(p) == "n1")
        await api.delete(R.PODS, victim["metadata"]["name"], "default")
        await until(lambda: _async(sorted(_image(p) for p in _live(api)) == ["busybox:1", "busybox:2"]
                                   and len(_live(api)) == 2))
        assert {target_node(p) for p in _live(api) if _image(p) == "busybox:2"} == {"n1"}
