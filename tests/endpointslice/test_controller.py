"""The EndpointSlice controller against a real API server (in-process, over real etcd)."""
from __future__ import annotations

import asyncio
import re

import aiohttp
import pytest

from kubecore.api import resources as R
from kubecore.client.rest import ApiClient
from kubecore.informer.factory import SharedInformerFactory
from services.endpointslice.controller import EndpointSliceController
from tests.support.controllers import create_pod, running, set_pod_status, until

SVC_LABEL = "kubernetes.io/service-name"


async def make_service(client: ApiClient, name: str = "web", *, selector=None, ports=None) -> dict:
    spec = {"ports": ports or [{"name": "http", "port": 80, "targetPort": 8080}]}
    if selector is not False:
        spec["selector"] = selector or {"app": "web"}
    return await client.create(R.SERVICES, {"metadata": {"name": name, "namespace": "default"},
                                            "spec": spec})


async def slices_of(client: ApiClient, service: str = "web") -> list[dict]:
    items, _ = await client.list(R.ENDPOINTSLICES, "default", label_selector=f"{SVC_LABEL}={service}")
    return sorted(items, key=lambda s: s["metadata"]["name"])


def endpoints_by_pod(slices: list[dict]) -> dict[str, dict]:
    return {ep["targetRef"]["name"]: ep for s in slices for ep in s.get("endpoints") or []}


async def metric(port: int, name: str) -> float:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"http://127.0.0.1:{port}/metrics") as r:
            text = await r.text()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture
async def client(apiserver):
    async with ApiClient(apiserver.config) as c:
        yield c


async def test_slices_follow_pods_ready_not_ready_terminating_deleted(client):
    svc = await make_service(client)
    await create_pod(client, "web-1", ip="10.1.0.1", node="node-1")
    await create_pod(client, "web-2", ip="10.1.0.2", node="node-1")
    await create_pod(client, "no-ip", node="node-1")
    await create_pod(client, "other", labels={"app": "db"}, ip="10.1.0.9")
    async with running(EndpointSliceController(client)) as health:
        async def two_endpoints():
            slices = await slices_of(client)
            return slices if len(endpoints_by_pod(slices)) == 2 else None
        (slice_,) = await until(two_endpoints)
        meta = slice_["metadata"]
        assert re.fullmatch(r"web-[a-z0-9]{5}", meta["name"])
        assert meta["labels"] == {SVC_LABEL: "web", "endpointslice.kubernetes.io/managed-by":
                                  "endpointslice-controller.k8s.io"}
        assert meta["ownerReferences"] == [{"apiVersion": "v1", "kind": "Service", "name": "web",
                                            "uid": svc["metadata"]["uid"], "controller": True,
                                            "blockOwnerDeletion": True}]
        assert slice_["addressType"] == "IPv4"
        assert slice_["ports"] == [{"name": "http", "protocol": "TCP", "port": 8080}]
        pod1 = await client.get(R.PODS, "web-1", "default")
        assert endpoints_by_pod([slice_])["web-1"] == {
            "addresses": ["10.1.0.1"],
            "conditions": {"ready": True, "serving": True, "terminating": False},
            "nodeName": "node-1",
            "targetRef": {"kind": "Pod", "name": "web-1", "namespace": "default",
                          "uid": pod1["metadata"]["uid"]}}

        await set_pod_status(client, "web-2", ip="10.1.0.2", ready=False)

        async def web2_not_ready():
            ep = endpoints_by_pod(await slices_of(client)).get("web-2")
            return ep and ep["conditions"] == {"ready": False, "serving": False, "terminating": False}
        await until(web2_not_ready)

        await set_pod_status(client, "web-2", ip="10.1.0.2", ready=True)
        await client.delete(R.PODS, "web-2", "default")  # bound to a node: graceful

        async def web2_terminating():
            ep = endpoints_by_pod(await slices_of(client)).get("web-2")
            return ep and ep["conditions"] == {"ready": False, "serving": True, "terminating": True}
        await until(web2_terminating)

        await client.delete(R.PODS, "web-2", "default", grace_period_seconds=0)

        async def web2_gone():
            return set(endpoints_by_pod(await slices_of(client))) == {"web-1"}
        await until(web2_gone)
        assert len(await slices_of(client)) == 1  # rewritten in place, not replaced
        assert await metric(health.port, "endpointslice_slice_writes_total") >= 4


async def test_named_target_port_resolved_per_pod_into_separate_slices(client):
    await make_service(client, ports=[{"name": "http", "port": 80, "targetPort": "web"}])
    for name, number, ip in [("a", 8080, "10.1.0.1"), ("b", 9090, "10.1.0.2"), ("c", 8080, "10.1.0.3")]:
        await create_pod(client, name, ip=ip,
                         ports=[{"name": "web", "containerPort": number, "protocol": "TCP"}])
    async with running(EndpointSliceController(client)):
        async def two_slices():
            slices = await slices_of(client)
            return slices if len(endpoints_by_pod(slices)) == 3 else None
        slices = await until(two_slices)
        layout = sorted((s["ports"][0]["port"], sorted(endpoints_by_pod([s]))) for s in slices)
        assert layout == [(8080, ["a", "c"]), (9090, ["b"])]


async def test_more_than_100_pods_make_two_slices(client):
    await make_service(client)
    await asyncio.gather(*(create_pod(client, f"p{i:03d}", ip=f"10.1.0.{i + 1}") for i in range(120)))
    async with running(EndpointSliceController(client)):
        async def all_listed():
            slices = await slices_of(client)
            return slices if len(endpoints_by_pod(slices)) == 120 else None
        slices = await until(all_listed, timeout=30)
        assert sorted(len(s["endpoints"]) for s in slices) == [20, 100]


async def test_selector_removed_slices_go_but_selectorless_slices_stay(client):
    await make_service(client, "web")
    await make_service(client, "manual", selector=False, ports=[{"port": 53, "targetPort": 53}])
    manual = await client.create(R.ENDPOINTSLICES, {
        "metadata": {"name": "manual-1", "namespace": "default", "labels": {SVC_LABEL: "manual"}},
        "addressType": "IPv4", "endpoints": [{"addresses": ["192.0.2.10"]}],
        "ports": [{"name": "", "port": 53, "protocol": "UDP"}]})
    # A user's slice for a selected service: not the controller's either.
    users = await client.create(R.ENDPOINTSLICES, {
        "metadata": {"name": "web-extra", "namespace": "default", "labels": {SVC_LABEL: "web"}},
        "addressType": "IPv4", "endpoints": [{"addresses": ["192.0.2.11"]}]})
    await create_pod(client, "web-1", ip="10.1.0.1")
    async with running(EndpointSliceController(client)):
        async def ours():
            return [s for s in await slices_of(client) if s["metadata"]["name"] != "web-extra"]
        await until(ours)
        svc = await client.get(R.SERVICES, "web", "default")
        svc["spec"]["selector"] = None
        await client.replace(R.SERVICES, svc)

        async def only_users_left():
            return [s["metadata"]["name"] for s in await slices_of(client)] == ["web-extra"]
        await until(only_users_left)
        await asyncio.sleep(0.5)
        assert (await client.get(R.ENDPOINTSLICES, "manual-1", "default"))["metadata"][
            "resourceVersion"] == manual["metadata"]["resourceVersion"]
        assert (await client.get(R.ENDPOINTSLICES, "web-extra", "default"))["metadata"][
            "resourceVersion"] == users["metadata"]["resourceVersion"]


async def test_service_deleted_slices_go(client):
    await make_service(client)
    await create_pod(client, "web-1", ip="10.1.0.1")
    async with running(EndpointSliceController(client)):
        await until(lambda: slices_of(client))
        await client.delete(R.SERVICES, "web", "default")

        async def none_left():
            return not await slices_of(client)
        await until(none_left)


async def test_nothing_written_when_nothing_changed(client):
    await make_service(client)
    for i in range(5):
        await create_pod(client, f"web-{i}", ip=f"10.1.0.{i + 1}")
    factory = SharedInformerFactory(client, resync_period=0.2)  # every object, again and again
    controller = EndpointSliceController(client, factory=factory)
    async with running(controller) as health:
        async def settled():
            slices = await slices_of(client)
            return slices if len(endpoints_by_pod(slices)) == 5 else None
        await until(settled)
        await asyncio.sleep(0.5)  # the echoes of our own writes come back meanwhile
        versions = [s["metadata"]["resourceVersion"] for s in await slices_of(client)]
        writes = await metric(health.port, "endpointslice_slice_writes_total")
        noops = await metric(health.port, 'endpointslice_syncs_total{result="noop"}')
        # Changes that show in no endpoint: a pod annotation, a service label.
        pod = await client.get(R.PODS, "web-0", "default")
        pod["metadata"]["annotations"] = {"touched": "yes"}
        await client.replace(R.PODS, pod)
        await client.patch(R.SERVICES, "web", {"metadata": {"labels": {"touched": "yes"}}}, "default")
        await asyncio.sleep(1.5)  # several resyncs
        assert [s["metadata"]["resourceVersion"] for s in await slices_of(client)] == versions
        assert await metric(health.port, "endpointslice_slice_writes_total") == writes
        assert await metric(health.port, 'endpointslice_syncs_total{result="noop"}') > noops


async def test_a_restarted_controller_rewrites_nothing(client):
    await make_service(client)
    for i in range(3):
        await create_pod(client, f"web-{i}", ip=f"10.1.0.{i + 1}")
    async with running(EndpointSliceController(client)):
        async def settled():
            slices = await slices_of(client)
            return slices if len(endpoints_by_pod(slices)) == 3 else None
        before = await until(settled)
    async with running(EndpointSliceController(client)) as health:
        async def all_reconciled():
            return await metric(health.port, 'endpointslice_syncs_total{result="noop"}') >= 2
        await until(all_reconciled)  # web and the kubernetes service
        assert await slices_of(client) == before
        assert await metric(health.port, "endpointslice_slice_writes_total") == 0
