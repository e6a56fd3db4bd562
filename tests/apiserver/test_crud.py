"""Create, read, update, patch and delete through the REST paths, against real etcd."""
from __future__ import annotations

import asyncio
import json

import pytest

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.client.rest import ApiClient
from services.apiserver.registry import namespaces
from tests.conftest import ApiServer, api_settings

SVC = "/api/v1/namespaces/default/services"


def service(name: str, port: int = 80, **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"selector": {"app": name}, "ports": [{"port": port}], **spec}}


async def test_default_namespaces_and_kubernetes_service(http):
    code, body = await http.get("/api/v1/namespaces")
    assert code == 200
    names = {n["metadata"]["name"] for n in body["items"]}
    assert {"default", "kube-system"} <= names
    code, svc = await http.get(f"{SVC}/kubernetes")
    assert code == 200
    assert svc["spec"]["clusterIP"] == "10.96.0.1"


async def test_create_get_list_service_with_server_metadata(http):
    code, created = await http.post(SVC, service("web"))
    assert code == 201, created
    meta = created["metadata"]
    assert meta["namespace"] == "default"
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert meta["generation"] == 1
    assert int(meta["resourceVersion"]) > 0
    spec = created["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    assert spec["clusterIPs"] == [spec["clusterIP"]]

    code, got = await http.get(f"{SVC}/web")
    assert code == 200 and got == created

    code, lst = await http.get(SVC)
    assert lst["kind"] == "ServiceList" and lst["apiVersion"] == "v1"
    assert int(lst["metadata"]["resourceVersion"]) >= int(meta["resourceVersion"])
    assert {"kubernetes", "web"} == {s["metadata"]["name"] for s in lst["items"]}

    code, everywhere = await http.get("/api/v1/services")
    assert code == 200 and {"kubernetes", "web"} <= {s["metadata"]["name"] for s in everywhere["items"]}


async def test_list_of_nothing_has_empty_items(http):
    code, lst = await http.get("/api/v1/namespaces/default/pods")
    assert code == 200 and lst["items"] == []


async def test_generate_name(http):
    body = service("x")
    del body["metadata"]["name"]
    body["metadata"]["generateName"] = "web-"
    code, created = await http.post(SVC, body)
    assert code == 201
    assert created["metadata"]["name"].startswith("web-") and len(created["metadata"]["name"]) == 9


async def test_replace_bumps_generation_on_spec_change_only(http):
    _, created = await http.post(SVC, service("web"))
    created["metadata"]["labels"]["tier"] = "front"
    code, updated = await http.put(f"{SVC}/web", created)
    assert code == 200
    assert updated["metadata"]["generation"] == 1
    assert int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    updated["spec"]["ports"][0]["port"] = 81
    code, again = await http.put(f"{SVC}/web", updated)
    assert code == 200 and again["metadata"]["generation"] == 2
    assert again["spec"]["clusterIP"] == created["spec"]["clusterIP"]


async def test_stale_resource_version_is_a_conflict(http):
    _, created = await http.post(SVC, service("web"))
    stale = json.loads(json.dumps(created))
    created["metadata"]["labels"]["v"] = "2"
    assert (await http.put(f"{SVC}/web", created))[0] == 200
    stale["metadata"]["labels"]["v"] = "3"
    code, status = await http.put(f"{SVC}/web", stale)
    assert code == 409
    assert status["kind"] == "Status" and status["reason"] == "Conflict"
    assert "the object has been modified" in status["message"]
    _, now = await http.get(f"{SVC}/web")
    assert now["metadata"]["labels"]["v"] == "2"


async def test_replace_keeps_cluster_ip_when_unset_and_refuses_a_change(http):
    _, created = await http.post(SVC, service("web"))
    body = service("web", port=90)
    code, updated = await http.put(f"{SVC}/web", body)
    assert code == 200 and updated["spec"]["clusterIP"] == created["spec"]["clusterIP"]
    body["spec"]["clusterIP"] = "10.96.7.7"
    code, status = await http.put(f"{SVC}/web", body)
    assert code == 422, status
    assert 'spec.clusterIPs[0]: Invalid value: []string{"10.96.7.7"}: may not change once set' \
        in status["message"]


@pytest.mark.parametrize("ctype,patch,check", [
    ("application/merge-patch+json", {"metadata": {"labels": {"tier": "db", "app": None}}},
     lambda o: o["metadata"]["labels"] == {"tier": "db"}),
    ("application/json-patch+json", [{"op": "replace", "path": "/spec/ports/0/port", "value": 8080}],
     lambda o: o["spec"]["ports"][0]["port"] == 8080),
    ("application/strategic-merge-patch+json",
     {"spec": {"ports": [{"port": 443, "name": "https"}, {"port": 80, "name": "http"}]}},
     lambda o: sorted(p["port"] for p in o["spec"]["ports"]) == [80, 443]
     and next(p for p in o["spec"]["ports"] if p["port"] == 80)["name"] == "http"),
], ids=["merge", "json", "strategic"])
async def test_patch_kinds(http, ctype, patch, check):
    await http.post(SVC, service("web"))
    code, patched = await http.patch(f"{SVC}/web", patch, ctype)
    assert code == 200, patched
    assert check(patched)
    _, stored = await http.get(f"{SVC}/web")
    assert stored == patched


async def test_strategic_patch_delete_directive(http):
    body = service("web")
    body["spec"]["ports"] = [{"name": "a", "port": 80}, {"name": "b", "port": 81}]
    await http.post(SVC, body)
    code, patched = await http.patch(f"{SVC}/web", {"spec": {"ports": [{"port": 81, "$patch": "delete"}]}},
                                     "application/strategic-merge-patch+json")
    assert code == 200
    assert [p["port"] for p in patched["spec"]["ports"]] == [80]


async def test_delete_returns_the_object_and_frees_the_name(http):
    _, created = await http.post(SVC, service("web"))
    code, deleted = await http.delete(f"{SVC}/web")
    assert code == 200 and deleted["metadata"]["uid"] == created["metadata"]["uid"]
    assert (await http.get(f"{SVC}/web"))[0] == 404
    assert (await http.post(SVC, service("web")))[0] == 201


async def test_status_is_ignored_on_main_resource_and_only_status_on_subresource(http):
    _, created = await http.post(SVC, service("web", type="LoadBalancer"))
    created["status"] = {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}
    _, updated = await http.put(f"{SVC}/web", created)
    assert updated["status"] == {"loadBalancer": {}}
    updated["status"] = {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}
    updated["spec"]["ports"][0]["port"] = 99
    code, st = await http.put(f"{SVC}/web/status", updated)
    assert code == 200
    assert st["status"]["loadBalancer"]["ingress"] == [{"ip": "1.2.3.4", "ipMode": "VIP"}]
    assert st["spec"]["ports"][0]["port"] == 80


async def test_label_selectors(http):
    for name, labels in [("a", {"env": "prod", "tier": "web"}), ("b", {"env": "dev"}),
                         ("c", {"env": "prod"})]:
        body = service(name)
        body["metadata"]["labels"] = labels
        assert (await http.post(SVC, body))[0] == 201

    async def names(selector: str) -> set[str]:
        code, lst = await http.get(f"{SVC}?labelSelector={selector}")
        assert code == 200, lst
        return {s["metadata"]["name"] for s in lst["items"]}

    assert await names("env=prod") == {"a", "c"}
    assert await names("env==prod,tier=web") == {"a"}
    assert await names("env!=prod") == {"b", "kubernetes"}
    assert await names("env in (dev,prod)") == {"a", "b", "c"}
    assert await names("env notin (prod)") == {"b", "kubernetes"}
    assert await names("tier") == {"a"}
    assert await names("!env") == {"kubernetes"}


async def test_field_selectors(http):
    await http.post(SVC, service("web"))
    code, lst = await http.get(f"{SVC}?fieldSelector=metadata.name=web")
    assert code == 200 and [s["metadata"]["name"] for s in lst["items"]] == ["web"]
    code, lst = await http.get("/api/v1/services?fieldSelector=metadata.namespace!=default")
    assert code == 200 and lst["items"] == []
    code, status = await http.get(f"{SVC}?fieldSelector=spec.bogus=1")
    assert code == 400 and "field label not supported" in status["message"]


async def test_namespace_deletion_removes_its_content(http):
    assert (await http.post("/api/v1/namespaces", {"metadata": {"name": "team"}}))[0] == 201
    assert (await http.post("/api/v1/namespaces/team/services", service("web")))[0] == 201
    code, ns = await http.delete("/api/v1/namespaces/team")
    assert code == 200 and ns["status"]["phase"] == "Terminating"
    code, status = await http.post("/api/v1/namespaces/team/services", service("other"))
    assert code in (403, 404)
    for _ in range(100):
        if (await http.get("/api/v1/namespaces/team"))[0] == 404:
            break
        await asyncio.sleep(0.1)
    assert (await http.get("/api/v1/namespaces/team"))[0] == 404
    assert (await http.get("/api/v1/namespaces/team/services/web"))[0] == 404


async def test_protected_namespaces_cannot_be_deleted(http):
    code, status = await http.delete("/api/v1/namespaces/default")
    assert code == 403 and status["reason"] == "Forbidden"


async def test_nodes_get_a_pod_cidr_each(http):
    cidrs = set()
    for name in ("node-a", "node-b"):
        code, node = await http.post("/api/v1/nodes", {"metadata": {"name": name}})
        assert code == 201, node
        cidrs.add(node["spec"]["podCIDR"])
    assert len(cidrs) == 2 and all(c.startswith("10.244.") and c.endswith("/24") for c in cidrs)


async def test_endpointslices_in_discovery_group(http):
    slice_ = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
              "metadata": {"name": "web-abc", "labels": {"kubernetes.io/service-name": "web"}},
              "addressType": "IPv4",
              "endpoints": [{"addresses": ["10.244.1.5"], "conditions": {"ready": True}}],
              "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}
    path = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"
    code, created = await http.post(path, slice_)
    assert code == 201, created
    code, lst = await http.get("/apis/discovery.k8s.io/v1/endpointslices"
                               "?labelSelector=kubernetes.io/service-name=web")
    assert code == 200 and [s["metadata"]["name"] for s in lst["items"]] == ["web-abc"]
    bad = dict(slice_, metadata={"name": "bad"}, endpoints=[{"addresses": ["not-an-ip"]}])
    code, status = await http.post(path, bad)
    assert code == 422 and "endpoints[0].addresses[0]" in status["message"]


async def test_discovery_documents(http):
    code, api = await http.get("/api")
    assert code == 200 and api["versions"] == ["v1"]
    code, v1 = await http.get("/api/v1")
    by_name = {r["name"]: r for r in v1["resources"]}
    assert by_name["services"]["shortNames"] == ["svc"] and "all" in by_name["services"]["categories"]
    assert {"pods", "pods/status", "pods/binding", "nodes", "namespaces"} <= set(by_name)
    code, apis = await http.get("/apis")
    assert {"discovery.k8s.io", "apps"} <= {g["name"] for g in apis["groups"]}
    code, disc = await http.get("/apis/discovery.k8s.io/v1")
    assert [r["name"] for r in disc["resources"]] == ["endpointslices"]
    code, ver = await http.get("/version")
    assert ver["major"] == "1" and ver["gitVersion"].startswith("v1.")


async def test_update_with_another_uid_is_a_conflict(http):
    _, created = await http.post(SVC, service("web"))
    code, status = await http.patch(f"{SVC}/web", {"metadata": {"uid": "not-the-uid", "labels": {"x": "y"}}},
                                    "application/merge-patch+json")
    assert code == 409 and "Precondition failed: UID" in status["message"]
    code, ok = await http.patch(f"{SVC}/web", {"metadata": {"uid": created["metadata"]["uid"], "labels": {"x": "y"}}},
                                "application/merge-patch+json")
    assert code == 200 and ok["metadata"]["labels"]["x"] == "y"


async def test_a_list_larger_than_grpcs_default_message_limit(etcd, http):
    # 4 MiB is gRPC's default receive limit; write past it straight into etcd, then list.
    from services.apiserver.storage.etcd import Etcd, put

    store = Etcd([etcd.endpoint])
    blob = "x" * 60_000
    try:
        for i in range(80):
            obj = {"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": f"big-{i}", "namespace": "default", "annotations": {"blob": blob}},
                   "spec": {"ports": [{"port": 80}], "clusterIP": "None"}}
            key = f"/registry/services/default/big-{i}"
            await store.txn([], [put(key, json.dumps(obj).encode())])
    finally:
        await store.close()
    code, lst = await http.get(SVC)
    assert code == 200, lst
    assert len(lst["items"]) == 81


async def delete_namespace_held_by_a_finalizer(client: ApiClient) -> None:
    """Namespace "team" deleted while a service in it is held by a finalizer."""
    await client.create(R.NAMESPACES, {"metadata": {"name": "team"}})
    held = service("held")
    held["metadata"]["finalizers"] = ["example.com/hold"]
    await client.create(R.SERVICES, held, "team")
    await client.delete(R.NAMESPACES, "team")


async def release_and_see_the_namespace_go(client: ApiClient) -> None:
    await client.patch(R.SERVICES, "held", {"metadata": {"finalizers": None}}, "team")
    for _ in range(50):
        try:
            await client.get(R.NAMESPACES, "team")
        except ApiError as exc:
            assert exc.code == 404
            return
        await asyncio.sleep(0.1)
    pytest.fail("the namespace stayed Terminating after its content was gone")


async def test_namespace_deletion_goes_on_after_a_restart(etcd):
    # The emptying of a Terminating namespace is work the server does in the background; a
    # server that restarts meanwhile must take it up again, or the namespace stays for ever.
    settings = api_settings(etcd)
    first = await ApiServer(settings).start()
    try:
        async with ApiClient(first.config) as client:
            await delete_namespace_held_by_a_finalizer(client)
            for _ in range(50):  # the content is marked: the emptying has begun
                svc = await client.get(R.SERVICES, "held", "team")
                if svc["metadata"].get("deletionTimestamp"):
                    break
                await asyncio.sleep(0.1)
            assert svc["metadata"].get("deletionTimestamp")
    finally:
        await first.stop()
    second = await ApiServer(settings).start()
    try:
        async with ApiClient(second.config) as client:
            await release_and_see_the_namespace_go(client)
    finally:
        await second.stop()


async def test_namespace_deletion_waits_out_a_long_held_finalizer(etcd, monkeypatch):
    # Content held by a finalizer for a long time (600 passes over it here) must not make
    # the server give up: once the finalizer goes, so do the content and the namespace.
    monkeypatch.setattr(namespaces, "NAMESPACE_RETRY_SECONDS", 0.001)
    server = await ApiServer(api_settings(etcd)).start()
    try:
        async with ApiClient(server.config) as client:
            await delete_namespace_held_by_a_finalizer(client)
            await asyncio.sleep(6)  # about twice what 600 passes take
            await release_and_see_the_namespace_go(client)
    finally:
        await server.stop()
