"""Bad input gets a Kubernetes Status with the right code, and never changes what is stored."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.etcd  # every test here needs etcd; one starts its own (a smaller request limit)

SVC = "/api/v1/namespaces/default/services"


def service(name="web", **spec):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80}], **spec}}


INVALID = [
    ("uppercase-name", service("Web"), "metadata.name"),
    ("name-starts-with-digit", service("1web"), "metadata.name"),
    ("port-zero", service(ports=[{"port": 0}]), "spec.ports[0].port"),
    ("port-too-big", service(ports=[{"port": 70000}]), "spec.ports[0].port"),
    ("port-as-string", service(ports=[{"port": "http"}]), "spec.ports[0].port"),
    ("bad-protocol", service(ports=[{"port": 80, "protocol": "ICMP"}]), "spec.ports[0].protocol"),
    ("bad-target-port-name", service(ports=[{"port": 80, "targetPort": "Not_A_Name"}]),
     "spec.ports[0].targetPort"),
    ("target-port-out-of-range", service(ports=[{"port": 80, "targetPort": 70000}]), "spec.ports[0].targetPort"),
    ("unnamed-ports", service(ports=[{"port": 80}, {"port": 81}]), "spec.ports[0].name"),
    ("duplicate-port", service(ports=[{"name": "a", "port": 80}, {"name": "b", "port": 80}]),
     "spec.ports[1]"),
    ("bad-type", service(type="Balanced"), "spec.type"),
    ("bad-cluster-ip", service(clusterIP="10.96.0.300"), "spec.clusterIPs[0]"),
    ("no-ports", service(ports=[]), "spec.ports"),
    ("headless-nodeport", service(type="NodePort", clusterIP="None"), "spec.clusterIPs[0]"),
    ("bad-selector-value", service(selector={"app": "-bad-"}), "spec.selector"),
    ("bad-label-key", {**service(), "metadata": {"name": "web", "labels": {"a/b/c": "x"}}},
     "metadata.labels"),
    ("labels-not-strings", {**service(), "metadata": {"name": "web", "labels": {"a": 1}}},
     "metadata.labels.a"),
]


@pytest.mark.parametrize("body,field", [(b, f) for _, b, f in INVALID], ids=[i for i, _, _ in INVALID])
async def test_invalid_service_is_422_with_field_cause(http, body, field):
    code, status = await http.post(SVC, body)
    assert code == 422, status
    assert status["kind"] == "Status" and status["reason"] == "Invalid" and status["code"] == 422
    assert any(c["field"] == field for c in status["details"]["causes"]), status
    assert field in status["message"]
    _, lst = await http.get(SVC)
    assert [s["metadata"]["name"] for s in lst["items"]] == ["kubernetes"]


async def test_headless_service_is_valid(http):
    code, body = await http.post(SVC, service(clusterIP="None"))
    assert code == 201 and body["spec"]["clusterIP"] == "None"


async def test_already_exists(http):
    assert (await http.post(SVC, service()))[0] == 201
    code, status = await http.post(SVC, service())
    assert code == 409 and status["reason"] == "AlreadyExists"
    assert status["message"] == 'services "web" already exists'
    assert status["details"] == {"name": "web", "kind": "services"}


async def test_not_found(http):
    code, status = await http.get(f"{SVC}/nope")
    assert code == 404 and status["reason"] == "NotFound"
    assert status["message"] == 'services "nope" not found'
    code, status = await http.post("/api/v1/namespaces/nowhere/services", service())
    assert code == 404 and status["message"] == 'namespaces "nowhere" not found'


@pytest.mark.parametrize("path", ["/api/v1/namespaces/default/widgets", "/api/v2/services"])
async def test_unknown_resource_is_404_status(http, path):
    code, status = await http.get(path)
    assert code == 404 and status["kind"] == "Status"


@pytest.mark.parametrize("path", ["/apis/nope/v1/things", "/nothing/here"])
async def test_a_path_outside_the_api_roots_is_go_s_plain_404(http, path):
    """kube-apiserver's last handler is Go's http.NotFound (see endpoints/test_paths.py)."""
    assert await http.get(path) == (404, "404 page not found\n")


async def test_wrong_method_is_405(http):
    code, status = await http.put(SVC, service())
    assert code == 405 and status["reason"] == "MethodNotAllowed"
    code, status = await http.post(f"{SVC}/web", service())
    assert code == 405


@pytest.mark.parametrize("raw,ctype", [
    (b"{not json", "application/json"),
    (b"[1, 2]", "application/json"),
    (b"\xff\xfe\x00", "application/json"),
    (b"key: [unclosed", "application/yaml"),
    (b"", "application/json"),
], ids=["broken-json", "json-array", "binary", "broken-yaml", "empty"])
async def test_malformed_bodies_are_400(http, raw, ctype):
    code, status = await http.req("POST", SVC, raw=raw, content_type=ctype)
    assert code == 400, status
    assert status["reason"] == "BadRequest"


async def test_yaml_body_is_accepted(http):
    raw = b"apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  ports: [{port: 80}]\n"
    code, body = await http.req("POST", SVC, raw=raw, content_type="application/yaml")
    assert code == 201 and body["spec"]["ports"][0]["port"] == 80


async def test_no_content_type_means_json(http):
    import json
    code, body = await http.req("POST", SVC, raw=json.dumps(service()).encode(), content_type=None)
    assert code == 201


async def test_protobuf_and_unknown_types_are_415(http):
    code, status = await http.req("POST", SVC, raw=b"\x6b\x38\x73\x00",
                                  content_type="application/vnd.kubernetes.protobuf")
    assert code == 415 and status["reason"] == "UnsupportedMediaType"
    code, status = await http.req("POST", SVC, raw=b"x", content_type="text/html")
    assert code == 415
    await http.post(SVC, service())
    code, status = await http.patch(f"{SVC}/web", {"a": 1}, "application/json")
    assert code == 415


async def test_body_over_3_mib_is_413(http):
    big = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "big", "annotations": {"x": "a" * (3 * 1024 * 1024)}},
           "spec": {"ports": [{"port": 80}]}}
    code, status = await http.post(SVC, big)
    assert code == 413 and status["reason"] == "RequestEntityTooLarge"


async def test_kind_and_namespace_mismatch_are_400(http):
    code, status = await http.post(SVC, {**service(), "kind": "Pod"})
    assert code == 400 and "kind" in status["message"]
    body = service()
    body["metadata"]["namespace"] = "kube-system"
    code, status = await http.post(SVC, body)
    assert code == 400 and "namespace" in status["message"]


async def test_bad_selector_is_400(http):
    code, status = await http.get(f"{SVC}?labelSelector=a in (")
    assert code == 400 and status["kind"] == "Status"


async def test_bad_patch_leaves_object_unchanged(http):
    _, created = await http.post(SVC, service())
    code, status = await http.patch(f"{SVC}/web", [{"op": "remove", "path": "/spec/nothing"}],
                                    "application/json-patch+json")
    assert code == 422, status
    code, status = await http.patch(f"{SVC}/web", {"spec": {"ports": [{"port": 0}]}},
                                    "application/merge-patch+json")
    assert code == 422
    _, now = await http.get(f"{SVC}/web")
    assert now == created


async def test_pod_spec_validation(http):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "Bad_Name"}], "restartPolicy": "Sometimes"}}
    code, status = await http.post("/api/v1/namespaces/default/pods", pod)
    assert code == 422
    fields = {c["field"] for c in status["details"]["causes"]}
    assert {"spec.containers[0].name", "spec.containers[0].image", "spec.restartPolicy"} <= fields


POD_STRINGS_FOR_THE_NODE = [
    ("newline-hostname", {"hostname": "web\n10.0.0.1 evil"}, "spec.hostname"),
    ("long-subdomain", {"subdomain": "s" * 70}, "spec.subdomain"),
    ("newline-pod-name", {}, "metadata.name"),
    ("env-name-with-equals", {"containers": [{"name": "a", "image": "busybox", "env": [{"name": "A=B"}]}]},
     "spec.containers[0].env[0].name"),
    ("conflicting-host-ports", {"containers": [
        {"name": "a", "image": "busybox", "ports": [{"containerPort": 80, "hostPort": 8080}]},
        {"name": "b", "image": "busybox", "ports": [{"containerPort": 81, "hostPort": 8080}]}]},
     "spec.containers[1].ports[0].hostPort"),
    ("resolv-conf-injection", {"dnsConfig": {"searches": ["x\noptions rotate"]}}, "spec.dnsConfig.searches[0]"),
]


@pytest.mark.parametrize("spec,field", [(s, f) for _, s, f in POD_STRINGS_FOR_THE_NODE],
                         ids=[i for i, _, _ in POD_STRINGS_FOR_THE_NODE])
async def test_pod_strings_bound_for_node_files_are_422_and_not_stored(http, spec, field):
    name = "web\n" if field == "metadata.name" else "p"
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": {"containers": [{"name": "a", "image": "busybox"}], **spec}}
    code, status = await http.post("/api/v1/namespaces/default/pods", pod)
    assert code == 422, status
    assert [c["field"] for c in status["details"]["causes"]] == [field]
    _, pods = await http.get("/api/v1/namespaces/default/pods")
    assert pods["items"] == []


async def test_a_body_under_the_limit_but_large_is_stored(http):
    big = "a" * (2 * 1024 * 1024)
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "large"},
            "spec": {"containers": [{"name": "c", "image": "busybox", "env": [{"name": "BIG", "value": big}]}]}}
    code, created = await http.post("/api/v1/namespaces/default/pods", body)
    assert code == 201, created if isinstance(created, str) else created.get("message")
    code, got = await http.get("/api/v1/namespaces/default/pods/large")
    assert code == 200 and got["spec"]["containers"][0]["env"][0]["value"] == big


async def test_etcds_own_size_limit_is_a_413_not_an_outage(tmp_path):
    """An etcd left at its default 1.5 MiB request limit refuses a 2 MiB object: the client
    gets a 413 saying so, and the server keeps working."""

    from cluster.etcd import ETCD_BINARY, EtcdProcess  # noqa: F401
    from tests.conftest import ApiServer, api_settings

    etcd = EtcdProcess()
    etcd.extra_args = ["--max-request-bytes", str(1536 * 1024)]
    with etcd:
        server = await ApiServer(api_settings(etcd)).start()
        try:
            async with server.session() as s:
                body = {"metadata": {"name": "large"},
                        "spec": {"containers": [{"name": "c", "image": "busybox",
                                                 "env": [{"name": "BIG", "value": "a" * (2 * 1024 * 1024)}]}]}}
                async with s.post("/api/v1/namespaces/default/pods", json=body) as r:
                    status = await r.json()
                    assert r.status == 413 and "too large" in status["message"]
                async with s.get("/readyz") as r:
                    assert r.status == 200
        finally:
            await server.stop()
