"""The endpoints and mirroring controllers (with the slice controller, as the endpointslice
process runs them) against a real API server over real etcd."""
from __future__ import annotations

import pytest

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.client.rest import ApiClient
from services.endpointslice.app import EndpointsManager
from tests.support.controllers import running, set_pod_status, until

SVC_LABEL = "kubernetes.io/service-name"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"


@pytest.fixture
async def client(apiserver):
    async with ApiClient(apiserver.config) as c:
        yield c


async def get_or_none(client: ApiClient, rt, name: str) -> dict | None:
    try:
        return await client.get(rt, name, "default")
    except ApiError as exc:
        if exc.code == 404:
            return None
        raise


async def test_endpoints_follow_a_headless_service_s_pods(client):
    svc = await client.create(R.SERVICES, {
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"clusterIP": "None", "selector": {"app": "web"},
                 "ports": [{"name": "http", "port": 80, "targetPort": "web"}]}})
    web = [{"name": "web", "containerPort": 8080, "protocol": "TCP"}]
    for i in range(2):
        await client.create(R.PODS, {
            "metadata": {"name": f"web-{i}", "namespace": "default", "labels": {"app": "web"}},
            "spec": {"hostname": f"web-{i}", "subdomain": "web", "nodeName": "node-1",
                     "containers": [{"name": "c", "image": "busybox", "ports": web}]}}, "default")
    await set_pod_status(client, "web-0", ip="10.1.0.1", ready=True)
    await set_pod_status(client, "web-1", ip="10.1.0.2", ready=False)
    async with running(EndpointsManager(client)):
        async def two_addresses():
            ep = await get_or_none(client, R.ENDPOINTS, "web")
            subsets = (ep or {}).get("subsets") or []
            return ep if subsets and len(subsets[0].get("notReadyAddresses") or []) == 1 else None
        ep = await until(two_addresses)
        pod0 = await client.get(R.PODS, "web-0", "default")
        assert ep["metadata"]["labels"] == {"app": "web", "service.kubernetes.io/headless": ""}
        # first sync of a Service: the change it reflects is the Service's creation
        assert ep["metadata"]["annotations"] == {
            "endpoints.kubernetes.io/last-change-trigger-time": svc["metadata"]["creationTimestamp"]}
        assert ep["subsets"] == [{
            "addresses": [{"ip": "10.1.0.1", "hostname": "web-0", "nodeName": "node-1",
                           "targetRef": {"kind": "Pod", "namespace": "default", "name": "web-0",
                                         "uid": pod0["metadata"]["uid"]}}],
            "notReadyAddresses": [{"ip": "10.1.0.2", "hostname": "web-1", "nodeName": "node-1",
                                   "targetRef": {"kind": "Pod", "namespace": "default", "name": "web-1",
                                                 "uid": (await client.get(R.PODS, "web-1", "default"))
                                                 ["metadata"]["uid"]}}],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}]
        # the slice controller, in the same process, names the endpoints for DNS too
        slices, _ = await client.list(R.ENDPOINTSLICES, "default", label_selector=f"{SVC_LABEL}=web")
        assert sorted(e.get("hostname") for s in slices for e in s["endpoints"]) == ["web-0", "web-1"]

        await set_pod_status(client, "web-1", ip="10.1.0.2", ready=True)

        async def both_ready():
            ep = await get_or_none(client, R.ENDPOINTS, "web")
            subset = ((ep or {}).get("subsets") or [{}])[0]
            return len(subset.get("addresses") or []) == 2 and "notReadyAddresses" not in subset
        await until(both_ready)

        await client.delete(R.SERVICES, "web", "default")

        async def gone():
            return await get_or_none(client, R.ENDPOINTS, "web") is None
        await until(gone)


async def test_selectorless_endpoints_are_the_user_s_and_mirrored_into_slices(client):
    await client.create(R.SERVICES, {"metadata": {"name": "ext", "namespace": "default"},
                                     "spec": {"ports": [{"name": "pg", "port": 5432}]}})
    users = await client.create(R.ENDPOINTS, {
        "metadata": {"name": "ext", "namespace": "default", "labels": {"team": "db"}},
        "subsets": [{"addresses": [{"ip": "192.0.2.10"}], "notReadyAddresses": [{"ip": "192.0.2.11"}],
                     "ports": [{"name": "pg", "port": 5432}]}]}, "default")
    async with running(EndpointsManager(client)):
        async def mirrored():
            items, _ = await client.list(R.ENDPOINTSLICES, "default", label_selector=f"{SVC_LABEL}=ext")
            return items
        (slice_,) = await until(mirrored)
        assert slice_["metadata"]["labels"] == {
            "team": "db", SVC_LABEL: "ext", MANAGED_BY: "endpointslicemirroring-controller.k8s.io"}
        assert slice_["metadata"]["ownerReferences"] == [{
            "apiVersion": "v1", "kind": "Endpoints", "name": "ext", "uid": users["metadata"]["uid"],
            "controller": True, "blockOwnerDeletion": True}]
        assert [(e["addresses"], e["conditions"]) for e in slice_["endpoints"]] == [
            (["192.0.2.10"], {"ready": True}), (["192.0.2.11"], {"ready": False})]
        assert slice_["ports"] == [{"name": "pg", "port": 5432, "protocol": "TCP"}]

        # the user's Endpoints stay as written: the endpoints controller does not touch them
        assert (await client.get(R.ENDPOINTS, "ext", "default"))["subsets"] == users["subsets"]

        users["subsets"][0]["addresses"].append({"ip": "192.0.2.12"})
        users = await client.replace(R.ENDPOINTS, users)

        async def three():
            items = await mirrored()
            return len(items) == 1 and len(items[0]["endpoints"]) == 3 and \
                items[0]["metadata"]["name"] == slice_["metadata"]["name"]
        await until(three)

        users["metadata"]["labels"]["endpointslice.kubernetes.io/skip-mirror"] = "true"
        await client.replace(R.ENDPOINTS, users)

        async def none_left():
            return await mirrored() == []
        await until(none_left)


async def test_bad_endpoints_refused_and_nothing_stored(client):
    with pytest.raises(ApiError) as refused:
        await client.create(R.ENDPOINTS, {
            "metadata": {"name": "bad", "namespace": "default"},
            "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": 70000}]}]}, "default")
    assert refused.value.code == 422
    assert [(c["field"], c["message"]) for c in (refused.value.details or {})["causes"]] == [
        ("subsets[0].addresses[0].ip",
         'Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)'),
        ("subsets[0].ports[0].port", "Invalid value: 70000: must be between 1 and 65535, inclusive")]
    assert await get_or_none(client, R.ENDPOINTS, "bad") is None


async def test_endpoints_stored_repacked_as_kube_apiserver_stores_them(client):
    port = {"name": "pg", "port": 5432}
    written = [{"addresses": [{"ip": "192.0.2.2"}], "ports": [port]},
               {"addresses": [{"ip": "192.0.2.1"}], "ports": [port]},
               {"notReadyAddresses": [{"ip": "192.0.2.1"}], "ports": [port]}]
    stored = await client.create(R.ENDPOINTS, {"metadata": {"name": "db", "namespace": "default"},
                                               "subsets": written}, "default")
    canonical = [{"addresses": [{"ip": "192.0.2.2"}], "notReadyAddresses": [{"ip": "192.0.2.1"}],
                  "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]}]
    assert stored["subsets"] == canonical
    assert (await client.get(R.ENDPOINTS, "db", "default"))["subsets"] == canonical
    stored["subsets"] = list(reversed(written))
    assert (await client.replace(R.ENDPOINTS, stored))["subsets"] == canonical
    # causes name the subsets as they were sent, before any repacking
    stored["subsets"] = [*written, {"addresses": [{"ip": "0.0.0.0"}], "ports": [port]}]
    with pytest.raises(ApiError) as refused:
        await client.replace(R.ENDPOINTS, stored)
    assert [c["field"] for c in (refused.value.details or {})["causes"]] == ["subsets[3].addresses[0].ip"]
