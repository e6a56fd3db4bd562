"""Orphan and Foreground deletion: the garbage collector against a real API server (no
Deployment or ReplicaSet controller runs: the objects are written as they would)."""
from __future__ import annotations

import asyncio
import contextlib

import pytest

from kubecore.api import resources as R
from kubecore.client.rest import ApiClient
from services.gc.controller import GarbageCollector
from tests.gc.test_controller import TEMPLATE, exists, gone, make_service
from tests.support.controllers import create_pod, owner_ref, running, until


@pytest.fixture
async def client(apiserver):
    async with ApiClient(apiserver.config) as c:
        yield c


async def deployment_chain(client: ApiClient, pods: int = 2) -> tuple[dict, dict, list[dict]]:
    """Deployment web -> ReplicaSet web-123 -> pods web-123-<i>, references as the
    controllers write them (controller, blockOwnerDeletion)."""
    spec = {"replicas": pods, "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE}
    deploy = await client.create(R.DEPLOYMENTS, {"metadata": {"name": "web", "namespace": "default"},
                                                 "spec": spec})
    rs = await client.create(R.REPLICASETS, {
        "metadata": {"name": "web-123", "namespace": "default",
                     "ownerReferences": [owner_ref(deploy)]}, "spec": spec})
    made = [await create_pod(client, f"web-123-{i}", owner=owner_ref(rs)) for i in range(pods)]
    return deploy, rs, made


class Deletions:
    """The resourceVersion (etcd revision) at which each watched object went, and the
    finalizers each was seen with."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self.at: dict[str, int] = {}
        self.finalizers: dict[str, set[str]] = {}
        self.tasks: list[asyncio.Task] = []

    async def _watch(self, rt) -> None:
        _, rv = await self.client.list(rt, "default")
        async for event in self.client.watch(rt, "default", resource_version=rv):
            meta = event.object.get("metadata") or {}
            key = f"{rt.plural}/{meta.get('name')}"
            self.finalizers.setdefault(key, set()).update(meta.get("finalizers") or [])
            if event.type == "DELETED":
                self.at[key] = int(meta["resourceVersion"])

    async def __aenter__(self) -> Deletions:
        self.tasks = [asyncio.create_task(self._watch(rt))
                      for rt in (R.DEPLOYMENTS, R.REPLICASETS, R.PODS)]
        await asyncio.sleep(0.2)
        return self

    async def __aexit__(self, *exc) -> None:
        for t in self.tasks:
            t.cancel()
        for t in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t


async def test_orphan_leaves_the_dependents_without_the_reference(client):
    deploy, rs, pods = await deployment_chain(client)
    svc = await make_service(client, "web")
    # a second owner: the object stays owned by it, only the deployment's reference goes
    shared = await client.create(R.REPLICASETS, {
        "metadata": {"name": "shared", "namespace": "default",
                     "ownerReferences": [owner_ref(deploy), owner_ref(svc, controller=False)]},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "x"}},
                 "template": {**TEMPLATE, "metadata": {"labels": {"app": "x"}}}}})
    # marked while no collector runs: the one that starts finds it
    marked = await client.delete(R.DEPLOYMENTS, "web", "default", propagation_policy="Orphan")
    assert marked["metadata"]["finalizers"] == ["orphan"]
    await asyncio.sleep(0.2)
    assert await exists(client, R.DEPLOYMENTS, "web")
    async with running(GarbageCollector(client)) as health:
        await until(lambda: gone(client, R.DEPLOYMENTS, "web"))
        left = await client.get(R.REPLICASETS, "web-123", "default")
        assert "ownerReferences" not in left["metadata"]
        assert left["metadata"]["uid"] == rs["metadata"]["uid"]
        still_shared = await client.get(R.REPLICASETS, "shared", "default")
        assert [r["uid"] for r in still_shared["metadata"]["ownerReferences"]] == \
            [svc["metadata"]["uid"]]
        await asyncio.sleep(0.5)  # and nothing collects them afterwards
        for p in pods:
            live = await client.get(R.PODS, p["metadata"]["name"], "default")
            assert [r["uid"] for r in live["metadata"]["ownerReferences"]] == [rs["metadata"]["uid"]]
        assert await exists(client, R.REPLICASETS, "web-123")
        assert shared["metadata"]["uid"] == still_shared["metadata"]["uid"]
        import aiohttp
        async with aiohttp.ClientSession() as s:
            async with s.get(f"http://127.0.0.1:{health.port}/metrics") as r:
                text = await r.text()
        assert 'gc_orphaned_total{resource="replicasets"} 2.0' in text
        assert 'gc_finalizers_removed_total{finalizer="orphan"} 1.0' in text


async def test_foreground_deletes_the_dependents_first_and_the_owner_last(client):
    await deployment_chain(client, pods=3)
    await create_pod(client, "bystander")
    async with running(GarbageCollector(client)), Deletions(client) as seen:
        marked = await client.delete(R.DEPLOYMENTS, "web", "default",
                                     propagation_policy="Foreground")
        assert marked["metadata"]["finalizers"] == ["foregroundDeletion"]
        assert marked["metadata"]["deletionTimestamp"]
        await until(lambda: gone(client, R.DEPLOYMENTS, "web"))
        await until(lambda: asyncio.sleep(0, len(seen.at) == 5))
    pods = [seen.at[f"pods/web-123-{i}"] for i in range(3)]
    assert max(pods) < seen.at["replicasets/web-123"] < seen.at["deployments/web"]
    # the ReplicaSet has dependents of its own: it went in the foreground too
    assert "foregroundDeletion" in seen.finalizers["replicasets/web-123"]
    assert await exists(client, R.PODS, "bystander")


async def test_a_blocking_dependent_holds_its_owner_until_it_is_gone(client):
    spec = {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE}
    rs = await client.create(R.REPLICASETS, {"metadata": {"name": "web-123", "namespace": "default"},
                                             "spec": spec})
    # bound to a node (no agent here): their deletion waits for the node's confirmation
    await create_pod(client, "blocker", owner=owner_ref(rs), node="node-a")
    await create_pod(client, "free", owner={**owner_ref(rs), "blockOwnerDeletion": False},
                     node="node-a")
    async with running(GarbageCollector(client)):
        await client.delete(R.REPLICASETS, "web-123", "default", propagation_policy="Foreground")

        async def both_terminating():
            got = [await client.get(R.PODS, n, "default") for n in ("blocker", "free")]
            return all(p["metadata"].get("deletionTimestamp") for p in got)
        await until(both_terminating)
        await asyncio.sleep(0.5)
        held = await client.get(R.REPLICASETS, "web-123", "default")
        assert held["metadata"]["finalizers"] == ["foregroundDeletion"]
        # the node is done with the blocking pod: it goes, and the owner after it, while
        # the pod that does not block is still terminating
        await client.delete(R.PODS, "blocker", "default", grace_period_seconds=0)
        await until(lambda: gone(client, R.REPLICASETS, "web-123"))
        assert await exists(client, R.PODS, "free")


async def test_background_and_orphan_side_by_side(client):
    """Background stays as it was: the owner goes at once, its dependents after it."""
    web = await make_service(client, "web")
    db = await make_service(client, "db")
    for name, owner in [("web-a", web), ("db-a", db)]:
        await client.create(R.ENDPOINTSLICES, {
            "metadata": {"name": name, "namespace": "default", "ownerReferences": [owner_ref(owner)]},
            "addressType": "IPv4", "endpoints": []})
    async with running(GarbageCollector(client)):
        await client.delete(R.SERVICES, "web", "default", propagation_policy="Background")
        assert await gone(client, R.SERVICES, "web")
        await client.delete(R.SERVICES, "db", "default", propagation_policy="Orphan")
        await until(lambda: gone(client, R.ENDPOINTSLICES, "web-a"))
        await until(lambda: gone(client, R.SERVICES, "db"))
        await asyncio.sleep(0.3)
        kept = await client.get(R.ENDPOINTSLICES, "db-a", "default")
        assert "ownerReferences" not in kept["metadata"]


async def test_foreground_service_with_the_endpointslice_controller_running(client):
    """The EndpointSlice controller makes no new slices for a service being deleted, so
    the collector's deletions are not undone and the service goes."""
    from services.endpointslice.controller import EndpointSliceController

    await make_service(client, "web")
    await create_pod(client, "web-1", labels={"app": "web"}, ip="10.1.0.1")
    slicer = EndpointSliceController(client)
    async with running(slicer), running(GarbageCollector(client)):
        async def slices():
            items, _ = await client.list(R.ENDPOINTSLICES, "default",
                                         label_selector="kubernetes.io/service-name=web")
            return items
        await until(slices)
        await client.delete(R.SERVICES, "web", "default", propagation_policy="Foreground")
        await until(lambda: gone(client, R.SERVICES, "web"))
        await asyncio.sleep(0.3)
        assert await slices() == []
        assert await exists(client, R.PODS, "web-1")
    # one slice made before the deletion, none after
    assert slicer.registry.get_sample_value("endpointslice_slice_writes_total",
                                            {"op": "create"}) == 1.0
