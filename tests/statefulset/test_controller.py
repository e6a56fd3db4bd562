"""The StatefulSet controller in-process against the real API server (and etcd); the test
plays the node agents (`FakeKubelet`)."""
from __future__ import annotations

from typing import Any

from kubecore.api import resources as R
from kubecore.api.types import Obj
from kubecore.client.rest import ApiClient
from services.statefulset import identity as ident
from services.statefulset.app import StatefulSetManager
from tests.statefulset.kubelet import FakeKubelet, live
from tests.support.controllers import running, until


def statefulset(name: str = "web", replicas: int = 3, image: str = "nginx:1", **spec: Any) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "serviceName": "nginx",
                     "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}},
                     **spec}}


async def pods_of(client: ApiClient, app: str = "web") -> dict[str, Obj]:
    items, _ = await client.list(R.PODS, "default", label_selector=f"app={app}")
    return {p["metadata"]["name"]: p for p in items if live(p)}


async def settled(client: ApiClient, name: str = "web", **expected: Any) -> Obj:
    async def check() -> Obj | None:
        sts = await client.get(R.STATEFULSETS, name, "default")
        status = sts.get("status") or {}
        ok = all(status.get(k) == v for k, v in expected.items())
        return sts if ok and status.get("observedGeneration") == sts["metadata"]["generation"] else None
    return await until(check, timeout=30)


async def test_parallel_makes_all_pods_at_once_and_replaces_a_failed_one(apiserver):
    async with ApiClient(apiserver.config) as client:
        manager = StatefulSetManager(client)
        kubelet = FakeKubelet(client, delay=0.3)
        async with running(manager), kubelet.run():
            await client.create(R.STATEFULSETS, statefulset(replicas=4, podManagementPolicy="Parallel"))
            await settled(client, replicas=4, readyReplicas=4)
            # all four appeared before any was ready
            assert sorted(n for n, ready in kubelet.created if not ready) == ["web-0", "web-1", "web-2", "web-3"]
            old_uid = (await pods_of(client))["web-2"]["metadata"]["uid"]
            kubelet.hold.add("web-2")
            await kubelet.set_status("web-2", "Failed", False)

            async def replaced() -> bool:
                pod = (await pods_of(client)).get("web-2")
                return pod is not None and pod["metadata"]["uid"] != old_uid
            await until(replaced, timeout=20)


async def test_partition_updates_only_the_pods_above_it(apiserver):
    async with ApiClient(apiserver.config) as client:
        manager = StatefulSetManager(client)
        kubelet = FakeKubelet(client)
        async with running(manager), kubelet.run():
            spec = {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}}
            await client.create(R.STATEFULSETS, statefulset(replicas=4, **spec))
            first = await settled(client, replicas=4, readyReplicas=4)
            await client.patch(R.STATEFULSETS, "web", {"spec": {"template": {"spec": {
                "containers": [{"name": "c", "image": "nginx:2"}]}}}}, "default",
                patch_type="strategic")
            sts = await settled(client, replicas=4, readyReplicas=4, updatedReplicas=2, currentReplicas=2)
            assert sts["status"]["currentRevision"] == first["status"]["currentRevision"]
            images = {n: p["spec"]["containers"][0]["image"] for n, p in (await pods_of(client)).items()}
            assert images == {"web-0": "nginx:1", "web-1": "nginx:1", "web-2": "nginx:2", "web-3": "nginx:2"}
            await client.patch(R.STATEFULSETS, "web", {"spec": {"updateStrategy": {
                "rollingUpdate": {"partition": 0}}}}, "default")
            sts = await settled(client, replicas=4, readyReplicas=4, updatedReplicas=4, currentReplicas=4)
            assert sts["status"]["currentRevision"] == sts["status"]["updateRevision"]


async def test_orphaned_pods_and_revisions_are_adopted_by_a_new_set(apiserver):
    async with ApiClient(apiserver.config) as client:
        manager = StatefulSetManager(client)
        kubelet = FakeKubelet(client)
        async with running(manager), kubelet.run():
            await client.create(R.STATEFULSETS, statefulset(replicas=2))
            await settled(client, replicas=2, readyReplicas=2)
            before = {n: p["metadata"]["uid"] for n, p in (await pods_of(client)).items()}
            await client.delete(R.STATEFULSETS, "web", "default", propagation_policy="Orphan")

            async def orphaned() -> bool:
                pods = await pods_of(client)
                return len(pods) == 2 and all(not p["metadata"].get("ownerReferences") for p in pods.values())
            # no garbage collector runs here: the Orphan finalizer is finished by hand
            sts = await client.get(R.STATEFULSETS, "web", "default")
            for p in (await pods_of(client)).values():
                await client.patch(R.PODS, p["metadata"]["name"], {"metadata": {"ownerReferences": None}}, "default")
            revs, _ = await client.list(R.CONTROLLERREVISIONS, "default")
            for r in revs:
                await client.patch(R.CONTROLLERREVISIONS, r["metadata"]["name"],
                                   {"metadata": {"ownerReferences": None}}, "default")
            await client.patch(R.STATEFULSETS, "web", {"metadata": {"finalizers": None}}, "default")
            await until(orphaned)
            await until(lambda: _gone(client, sts))

            await client.create(R.STATEFULSETS, statefulset(replicas=2))
            new = await settled(client, replicas=2, readyReplicas=2, currentReplicas=2)
            uid = new["metadata"]["uid"]
            pods = await pods_of(client)
            assert {n: p["metadata"]["uid"] for n, p in pods.items()} == before  # the same pods
            assert all(ident.owner_reference(new) in p["metadata"]["ownerReferences"] for p in pods.values())
            revs, _ = await client.list(R.CONTROLLERREVISIONS, "default")
            assert len(revs) == 1 and revs[0]["metadata"]["ownerReferences"][0]["uid"] == uid
            assert new["status"]["currentRevision"] == revs[0]["metadata"]["name"]


async def _gone(client: ApiClient, sts: Obj) -> bool:
    items, _ = await client.list(R.STATEFULSETS, "default")
    return all(i["metadata"]["uid"] != sts["metadata"]["uid"] for i in items)


async def test_history_is_trimmed_to_the_limit_and_rollback_renumbers(apiserver):
    async with ApiClient(apiserver.config) as client:
        manager = StatefulSetManager(client)
        kubelet = FakeKubelet(client)
        async with running(manager), kubelet.run():
            await client.create(R.STATEFULSETS, statefulset(replicas=1, revisionHistoryLimit=1,
                                                           podManagementPolicy="Parallel"))
            first = await settled(client, updatedReplicas=1, readyReplicas=1)
            for image in ("nginx:2", "nginx:3"):
                await client.patch(R.STATEFULSETS, "web", {"spec": {"template": {"spec": {
                    "containers": [{"name": "c", "image": image}]}}}}, "default", patch_type="strategic")
                await settled(client, updatedReplicas=1, readyReplicas=1, currentReplicas=1)

            async def history() -> list[tuple[int, str]] | None:
                revs, _ = await client.list(R.CONTROLLERREVISIONS, "default")
                got = sorted((r["revision"], r["data"]["spec"]["template"]["spec"]["containers"][0]["image"])
                             for r in revs)
                return got if len(got) == 2 else None
            assert await until(history) == [(2, "nginx:2"), (3, "nginx:3")]
            # back to nginx:2: its revision is renumbered, no new one is made
            await client.patch(R.STATEFULSETS, "web", {"spec": {"template": {"spec": {
                "containers": [{"name": "c", "image": "nginx:2"}]}}}}, "default", patch_type="strategic")
            sts = await settled(client, updatedReplicas=1, readyReplicas=1, currentReplicas=1)
            assert await until(history) == [(3, "nginx:3"), (4, "nginx:2")]
            assert sts["status"]["updateRevision"] != first["status"]["updateRevision"]
