"""Deployments end to end in-process against the real API server: the ReplicaSet and
Deployment controllers run as tasks, the test plays the node agent (marks pods ready,
finishes deletions) and watches every pod event to check the rollout's bounds."""
from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.api.types import Obj
from kubecore.client.rest import ApiClient
from kubecore.informer.informer import Informer
from services.deployments import deployment_plan as plan
from services.deployments.app import DeploymentsManager
from tests.support.controllers import running, until

POD_NAME = re.compile(r"^(?P<rs>.+)-[bcdfghjklmnpqrstvwxz2456789]{5}$")


def deployment(name: str = "web", replicas: int = 3, image: str = "nginx:1.25",
               strategy: Obj | None = None, **spec: Any) -> Obj:
    d: Obj = {"apiVersion": "apps/v1", "kind": "Deployment",
              "metadata": {"name": name, "namespace": "default"},
              "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                       "template": {"metadata": {"labels": {"app": name}},
                                    "spec": {"containers": [{"name": "web", "image": image}]}},
                       **spec}}
    if strategy is not None:
        d["spec"]["strategy"] = strategy
    return d


def is_ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def active(pod: Obj) -> bool:
    return not pod["metadata"].get("deletionTimestamp")


class FakeKubelet:
    """Marks every new pod Running and Ready (with an IP) and finishes graceful deletions,
    while recording, after every pod event, how many pods exist and how many are available."""

    def __init__(self, client: ApiClient, *, auto_ready: bool = True) -> None:
        self.client = client
        self.auto_ready = auto_ready
        self.informer = Informer(client, R.PODS, namespace="default")
        self.todo: asyncio.Queue[Obj] = asyncio.Queue()
        self.max_pods = 0
        self.min_available: int | None = None
        self.tracking = False
        self._next_ip = 10
        self.informer.add_handlers(on_add=self._seen, on_update=lambda old, new: self._seen(new),
                                   on_delete=lambda pod: self._record())

    def _seen(self, pod: Obj) -> None:
        self._record()
        if not active(pod) or (self.auto_ready and not is_ready(pod)):
            self.todo.put_nowait(pod)

    def _record(self) -> None:
        if not self.tracking:
            return
        pods = [p for p in self.informer.store.list() if active(p)]
        self.max_pods = max(self.max_pods, len(pods))
        available = sum(1 for p in pods if is_ready(p))
        self.min_available = available if self.min_available is None else min(
            self.min_available, available)

    def start_tracking(self) -> None:
        self.tracking, self.max_pods, self.min_available = True, 0, None
        self._record()

    async def mark_ready(self, pod: Obj) -> None:
        self._next_ip += 1
        status = {"phase": "Running", "podIP": f"10.244.0.{self._next_ip}",
                  "conditions": [{"type": "Ready", "status": "True"}]}
        await self.client.patch(R.PODS, pod["metadata"]["name"], {"status": status}, "default",
                                subresource="status")

    async def _work(self) -> None:
        while True:
            pod = await self.todo.get()
            with contextlib.suppress(ApiError):
                if not active(pod):
                    await self.client.delete(R.PODS, pod["metadata"]["name"], "default",
                                             grace_period_seconds=0)
                elif not is_ready(pod):
                    await self.mark_ready(pod)

    @contextlib.asynccontextmanager
    async def run(self) -> AsyncIterator[FakeKubelet]:
        await self.informer.start()
        await self.informer.synced.wait()
        worker = asyncio.create_task(self._work())
        try:
            yield self
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
            await self.informer.stop()


async def replicasets_of(client: ApiClient, d_name: str) -> list[Obj]:
    items, _ = await client.list(R.REPLICASETS, "default")
    return [rs for rs in items
            if any(r["name"] == d_name for r in rs["metadata"].get("ownerReferences") or [])]


async def active_pods(client: ApiClient, label: str) -> list[Obj]:
    items, _ = await client.list(R.PODS, "default", label_selector=label)
    return [p for p in items if active(p)]


async def wait_status(client: ApiClient, name: str, **expected: int) -> Obj:
    async def matches():
        d = await client.get(R.DEPLOYMENTS, name, "default")
        status = d.get("status") or {}
        ok = all(status.get(k, 0) == v for k, v in expected.items())
        return d if ok and status.get("observedGeneration") == d["metadata"]["generation"] else None
    return await until(matches, timeout=30)


async def test_a_deployment_makes_one_replicaset_and_its_pods_and_scales(apiserver):
    async with ApiClient(apiserver.config) as client:
        manager = DeploymentsManager(client)
        kubelet = FakeKubelet(client)
        async with running(manager) as health, kubelet.run():
            await client.create(R.DEPLOYMENTS, deployment(replicas=3))
            d = await wait_status(client, "web", replicas=3, updatedReplicas=3, readyReplicas=3,
                                  availableReplicas=3, unavailableReplicas=0)
            conds = {c["type"]: c for c in d["status"]["conditions"]}
            assert conds["Available"]["status"] == "True"
            assert conds["Progressing"]["reason"] == "NewReplicaSetAvailable"
            assert d["metadata"]["annotations"][plan.REVISION] == "1"
            [rs] = await replicasets_of(client, "web")
            h = plan.pod_template_hash(d["spec"]["template"])
            assert rs["metadata"]["name"] == f"web-{h}"
            assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": h}
            assert rs["metadata"]["annotations"][plan.REVISION] == "1"
            assert rs["metadata"]["ownerReferences"] == [
                {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                 "uid": d["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]
            assert rs["status"]["readyReplicas"] == 3 and rs["status"]["availableReplicas"] == 3
            pods = await active_pods(client, "app=web")
            assert len(pods) == 3
            for pod in pods:
                assert POD_NAME.match(pod["metadata"]["name"]).group("rs") == rs["metadata"]["name"]
                assert pod["metadata"]["labels"] == {"app": "web", "pod-template-hash": h}
                assert pod["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"]
            # kubectl get deploy: READY 3/3
            async with apiserver.session() as s:
                async with s.get("/apis/apps/v1/namespaces/default/deployments/web",
                                 headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}) as r:
                    table = await r.json()
            assert table["rows"][0]["cells"][:2] == ["web", "3/3"]

            await client.patch(R.DEPLOYMENTS, "web", {"spec": {"replicas": 5}}, "default",
                               subresource="scale")
            await wait_status(client, "web", replicas=5, readyReplicas=5, availableReplicas=5)
            assert len(await active_pods(client, "app=web")) == 5
            await client.patch(R.DEPLOYMENTS, "web", {"spec": {"replicas": 1}}, "default",
                               subresource="scale")
            await wait_status(client, "web", replicas=1, readyReplicas=1, availableReplicas=1)
            assert len(await active_pods(client, "app=web")) == 1
            [rs] = await replicasets_of(client, "web")
            assert rs["spec"]["replicas"] == 1
            assert rs["metadata"]["annotations"][plan.DESIRED_REPLICAS] == "1"
            async with aiohttp.ClientSession() as s:
                async with s.get(f"http://127.0.0.1:{health.port}/metrics") as r:
                    text = await r.text()
            assert "replicaset_pods_created_total 5.0" in text
            assert "replicaset_pods_deleted_total 4.0" in text


async def rollout(client: ApiClient, kubelet: FakeKubelet, name: str, image: str) -> None:
    kubelet.start_tracking()
    await client.patch(R.DEPLOYMENTS, name, {"spec": {"template": {"spec": {"containers": [
        {"name": "web", "image": image}]}}}}, "default", patch_type="strategic")


async def test_a_changed_image_rolls_out_within_surge_and_unavailable(apiserver):
    async with ApiClient(apiserver.config) as client:
        manager = DeploymentsManager(client)
        kubelet = FakeKubelet(client)
        async with running(manager), kubelet.run():
            await client.create(R.DEPLOYMENTS, deployment(replicas=3))  # 25%: surge 1, unavailable 0
            await wait_status(client, "web", updatedReplicas=3, availableReplicas=3)
            [first] = await replicasets_of(client, "web")
            await rollout(client, kubelet, "web", "nginx:1.26")
            d = await wait_status(client, "web", replicas=3, updatedReplicas=3, availableReplicas=3)
            assert kubelet.max_pods <= 3 + 1, kubelet.max_pods
            assert kubelet.min_available is not None and kubelet.min_available >= 3 - 0
            by_name = {rs["metadata"]["name"]: rs for rs in await replicasets_of(client, "web")}
            assert set(by_name) == {first["metadata"]["name"],
                                    f"web-{plan.pod_template_hash(d['spec']['template'])}"}
            old = by_name.pop(first["metadata"]["name"])
            [new] = by_name.values()
            assert old["spec"]["replicas"] == 0
            assert new["spec"]["replicas"] == 3
            assert new["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"
            assert new["metadata"]["annotations"][plan.REVISION] == "2"
            assert d["metadata"]["annotations"][plan.REVISION] == "2"
            pods = await active_pods(client, "app=web")
            assert {p["spec"]["containers"][0]["image"] for p in pods} == {"nginx:1.26"}
            assert len(pods) == 3

            # Back to the first template: the old ReplicaSet becomes the new one, revision 3.
            await rollout(client, kubelet, "web", "nginx:1.25")
            await wait_status(client, "web", replicas=3, updatedReplicas=3, availableReplicas=3)
            assert kubelet.max_pods <= 4 and kubelet.min_available >= 3
            again = await client.get(R.REPLICASETS, first["metadata"]["name"], "default")
            assert again["spec"]["replicas"] == 3
            assert again["metadata"]["annotations"][plan.REVISION] == "3"


async def test_surge_and_unavailable_of_one_and_history_limit(apiserver):
    async with ApiClient(apiserver.config) as client:
        manager = DeploymentsManager(client)
        kubelet = FakeKubelet(client)
        strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}
        async with running(manager), kubelet.run():
            await client.create(R.DEPLOYMENTS, deployment(replicas=4, strategy=strategy,
                                                          revisionHistoryLimit=0))
            await wait_status(client, "web", updatedReplicas=4, availableReplicas=4)
            await rollout(client, kubelet, "web", "nginx:1.26")
            await wait_status(client, "web", replicas=4, updatedReplicas=4, availableReplicas=4)
            assert kubelet.max_pods <= 5 and kubelet.min_available >= 3

            async def only_new_left():
                rss = await replicasets_of(client, "web")
                return rss if len(rss) == 1 else None
            [rs] = await until(only_new_left)
            assert rs["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"


async def test_recreate_stops_every_old_pod_before_starting_new_ones(apiserver):
    async with ApiClient(apiserver.config) as client:
        manager = DeploymentsManager(client)
        kubelet = FakeKubelet(client)
        async with running(manager), kubelet.run():
            await client.create(R.DEPLOYMENTS, deployment(replicas=2, strategy={"type": "Recreate"}))
            await wait_status(client, "web", updatedReplicas=2, availableReplicas=2)
            mixed: list[set[str]] = []

            def no_mix(pod: Obj) -> None:
                images = {p["spec"]["containers"][0]["image"]
                          for p in kubelet.informer.store.list() if active(p)}
                if len(images) > 1:
                    mixed.append(images)
            kubelet.informer.add_handlers(on_add=no_mix)
            await rollout(client, kubelet, "web", "nginx:1.26")
            await wait_status(client, "web", replicas=2, updatedReplicas=2, availableReplicas=2)
            assert mixed == []
            pods = await active_pods(client, "app=web")
            assert {p["spec"]["containers"][0]["image"] for p in pods} == {"nginx:1.26"}


async def events_of(client: ApiClient, obj: Obj, reason: str) -> list[str]:
    """The messages of `reason` events about `obj`, oldest first, each `count` times."""
    meta = obj["metadata"]
    items, _ = await client.list(R.EVENTS, "default", field_selector=(
        f"involvedObject.kind={obj['kind']},involvedObject.name={meta['name']},"
        f"involvedObject.uid={meta['uid']},reason={reason}"))
    items.sort(key=lambda e: (e["firstTimestamp"], e["metadata"]["name"]))
    return [e["message"] for e in items for _ in range(e["count"])]


async def test_scaling_and_pod_changes_are_events(apiserver):
    async with ApiClient(apiserver.config) as client:
        manager = DeploymentsManager(client)
        kubelet = FakeKubelet(client)
        async with running(manager), kubelet.run():
            d = await client.create(R.DEPLOYMENTS, deployment(replicas=2))
            await wait_status(client, "web", replicas=2, availableReplicas=2)
            [rs] = await replicasets_of(client, "web")
            name = rs["metadata"]["name"]
            created = sorted(p["metadata"]["name"] for p in await active_pods(client, "app=web"))
            await client.patch(R.DEPLOYMENTS, "web", {"spec": {"replicas": 1}}, "default",
                               subresource="scale")
            await wait_status(client, "web", replicas=1, availableReplicas=1)
            [survivor] = [p["metadata"]["name"] for p in await active_pods(client, "app=web")]

            async def all_events():
                scaling = await events_of(client, d, "ScalingReplicaSet")
                creates = await events_of(client, rs, "SuccessfulCreate")
                deletes = await events_of(client, rs, "SuccessfulDelete")
                return (scaling, creates, deletes) if len(scaling) == 2 and deletes else None
            scaling, creates, deletes = await until(all_events)
        assert scaling == [f"Scaled up replica set {name} from 0 to 2",
                           f"Scaled down replica set {name} from 2 to 1"]
        assert sorted(creates) == [f"Created pod: {p}" for p in created]
        assert deletes == [f"Deleted pod: {p}" for p in created if p != survivor]
        items, _ = await client.list(R.EVENTS, "default", field_selector="reason=SuccessfulCreate")
        assert {e["source"]["component"] for e in items} == {"replicaset-controller"}
        items, _ = await client.list(R.EVENTS, "default", field_selector="reason=ScalingReplicaSet")
        assert {e["source"]["component"] for e in items} == {"deployment-controller"}
        assert all(e["involvedObject"]["apiVersion"] == "apps/v1" for e in items)

