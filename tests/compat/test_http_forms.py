"""The wire forms clients negotiate: aggregated discovery, Tables, metadata-only
objects, OpenAPI, field validation warnings. In-process server, plain HTTP."""
from __future__ import annotations

import json
import re

import pytest

SVC = "/api/v1/namespaces/default/services"
TABLE = ("application/json;as=Table;v=v1;g=meta.k8s.io,"
         "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json")
AGGREGATED = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
              "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json")


def service(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80}]}}


async def test_aggregated_discovery(http, apiserver):
    async with apiserver.session() as s:
        async with s.get("/api", headers={"Accept": AGGREGATED}) as r:
            assert r.headers["Content-Type"] == \
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
            core = await r.json(content_type=None)
        async with s.get("/apis", headers={"Accept": AGGREGATED}) as r:
            groups = await r.json(content_type=None)
    assert core["kind"] == "APIGroupDiscoveryList" and core["apiVersion"] == "apidiscovery.k8s.io/v2"
    assert [g["metadata"]["name"] for g in core["items"]] == [""]
    resources = {r["resource"]: r for r in core["items"][0]["versions"][0]["resources"]}
    svc = resources["services"]
    assert svc["shortNames"] == ["svc"] and svc["categories"] == ["all"]
    assert svc["scope"] == "Namespaced" and svc["responseKind"] == {"group": "", "version": "v1",
                                                                    "kind": "Service"}
    assert {"subresource": "status", "responseKind": svc["responseKind"],
            "verbs": ["get", "patch", "update"]} in svc["subresources"]
    assert resources["nodes"]["scope"] == "Cluster"
    assert "events" in resources
    names = {g["metadata"]["name"] for g in groups["items"]}
    assert {"apps", "discovery.k8s.io"} <= names and "" not in names

    code, legacy = await http.get("/api")
    assert code == 200 and legacy["kind"] == "APIVersions"


async def test_list_and_get_as_table(http):
    await http.post(SVC, service("web"))
    code, table = await http.get(SVC, headers={"Accept": TABLE})
    assert code == 200 and table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert [c["name"] for c in table["columnDefinitions"]][:5] == \
        ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)"]
    rows = {r["cells"][0]: r for r in table["rows"]}
    assert rows["web"]["cells"][4] == "80/TCP"
    assert rows["web"]["object"]["kind"] == "PartialObjectMetadata"
    assert "spec" not in rows["web"]["object"]
    assert int(table["metadata"]["resourceVersion"]) > 0

    code, full = await http.get(SVC + "?includeObject=Object", headers={"Accept": TABLE})
    assert {r["object"]["kind"] for r in full["rows"]} == {"Service"}
    code, bad = await http.get(SVC + "?includeObject=All", headers={"Accept": TABLE})
    assert code == 400

    code, one = await http.get(SVC + "/web", headers={"Accept": TABLE})
    assert code == 200 and one["kind"] == "Table" and len(one["rows"]) == 1
    code, beta = await http.get(SVC + "/web", headers={
        "Accept": "application/json;as=Table;v=v1beta1;g=meta.k8s.io"})
    assert beta["apiVersion"] == "meta.k8s.io/v1beta1"

    code, plain = await http.get(SVC + "/web", headers={"Accept": "application/json, */*"})
    assert plain["kind"] == "Service"


async def test_partial_object_metadata_list(http):
    await http.post(SVC, service("web"))
    code, lst = await http.get(SVC, headers={
        "Accept": "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"})
    assert code == 200 and lst["kind"] == "PartialObjectMetadataList"
    assert {i["metadata"]["name"] for i in lst["items"]} == {"kubernetes", "web"}
    assert all(set(i) == {"kind", "apiVersion", "metadata"} for i in lst["items"])


async def test_watch_as_table_sends_one_row_per_event(apiserver, http):
    async with apiserver.session() as s:
        async with s.get(SVC + "?watch=1&timeoutSeconds=3", headers={"Accept": TABLE}) as r:
            first = json.loads(await r.content.readline())
            await http.post(SVC, service("web"))
            second = json.loads(await r.content.readline())
    assert first["type"] == "ADDED" and first["object"]["kind"] == "Table"
    assert [row["cells"][0] for row in first["object"]["rows"]] == ["kubernetes"]
    assert second["type"] == "ADDED" and second["object"]["rows"][0]["cells"][0] == "web"


async def test_openapi_documents(http, apiserver):
    code, root = await http.get("/openapi/v3")
    assert code == 200
    url = root["paths"]["api/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/api/v1?hash=")
    code, doc = await http.get(url)
    patch = doc["paths"]["/api/v1/namespaces/{namespace}/services/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "", "version": "v1", "kind": "Service"}
    assert {"name": "fieldValidation", "in": "query"}.items() <= \
        next(p for p in patch["parameters"] if p["name"] == "fieldValidation").items()
    assert "application/strategic-merge-patch+json" not in patch["requestBody"]["content"]
    code, apps = await http.get(root["paths"]["apis/apps/v1"]["serverRelativeURL"])
    assert "/apis/apps/v1/namespaces/{namespace}/deployments/{name}" in apps["paths"]

    code, v2 = await http.get("/openapi/v2", headers={"Accept": "application/json"})
    assert code == 200 and v2["swagger"] == "2.0"


@pytest.mark.parametrize("accept,code,content_type", [
    ("application/com.github.proto-openapi.spec.v2@v1.0+protobuf", 200,
     "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"),
    ("application/com.github.proto-openapi.spec.v2.v1.0+protobuf", 200,
     "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"),
    ("application/json", 200, "application/json"),
    ("", 200, "application/json"),
    ("*/*", 200, "application/json"),
    ("text/html, application/com.github.proto-openapi.spec.v2.v1.0+protobuf;q=0.5", 200,
     "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"),
    ("application/json;q=0.1, application/com.github.proto-openapi.spec.v2.v1.0+protobuf", 200,
     "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"),
    ("text/html", 406, None),
], ids=["protobuf-deprecated", "protobuf", "json", "no-accept", "any", "skip-unknown",
        "by-quality", "not-acceptable"])
async def test_openapi_v2_forms_as_kube_openapi_negotiates_them(apiserver, accept, code, content_type):
    headers = {"Accept": accept} if accept else {}
    async with apiserver.session() as s:
        async with s.get("/openapi/v2", headers=headers, skip_auto_headers=["Accept"]) as r:
            body = await r.read()
            assert r.status == code
            assert r.headers.get("Vary") == "Accept"
            if code == 406:
                assert body == b""
                return
            assert r.headers["Content-Type"] == content_type
            etag = r.headers["Etag"]
            assert re.fullmatch(r'"[0-9A-F]{128}"', etag)
            assert body.startswith(b"\n\x032.0") if "protobuf" in content_type else json.loads(body)
        async with s.get("/openapi/v2", headers={**headers, "If-None-Match": etag},
                         skip_auto_headers=["Accept"]) as r:
            assert r.status == 304 and await r.read() == b""


async def test_openapi_v3_hash_redirects_and_caching(apiserver, http):
    code, root = await http.get("/openapi/v3")
    url = root["paths"]["apis/apps/v1"]["serverRelativeURL"]
    async with apiserver.session() as s:
        async with s.get(url) as r:
            assert r.status == 200 and r.headers["Cache-Control"] == "public, immutable"
            assert r.headers["Etag"] == '"' + url.split("hash=")[1] + '"'
        async with s.get("/openapi/v3/apis/apps/v1?hash=STALE", allow_redirects=False) as r:
            assert r.status == 301 and r.headers["Location"] == url
        async with s.get("/openapi/v3/apis/apps/v1") as r:
            assert r.status == 200 and "Cache-Control" not in r.headers
        async with s.get("/openapi/v3/apis/nope/v1") as r:
            assert r.status == 404 and await r.text() == "404 page not found\n"


async def test_field_validation_directives(apiserver, http):
    bad = service("web")
    bad["spec"]["bogusField"] = 1
    code, status = await http.post(SVC + "?fieldValidation=Strict", bad)
    assert code == 400 and status["message"] == 'strict decoding error: unknown field "spec.bogusField"'
    code, status = await http.post(SVC + "?fieldValidation=Sometimes", bad)
    assert code == 400 and "fieldValidation" in status["message"]
    async with apiserver.session() as s:
        async with s.post(SVC + "?fieldValidation=Warn", json=bad) as r:
            assert r.status == 201
            assert r.headers.getall("Warning") == ['299 - "unknown field \\"spec.bogusField\\""']
        bad["metadata"]["name"] = "web2"
        async with s.post(SVC + "?fieldValidation=Ignore", json=bad) as r:
            assert r.status == 201 and "Warning" not in r.headers
        # a strategic merge patch is checked on the patched object
        async with s.patch(SVC + "/web2?fieldValidation=Strict", data=json.dumps(
                {"spec": {"ports": [{"port": 80, "nodeprt": 1}]}}),
                headers={"Content-Type": "application/strategic-merge-patch+json"}) as r:
            body = await r.json()
            assert r.status == 400 and 'unknown field "spec.ports[0].nodeprt"' in body["message"]


async def test_events_are_listed_with_involved_object_selectors(http):
    ev = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "web.1"},
          "involvedObject": {"kind": "Service", "name": "web", "namespace": "default"},
          "reason": "Created", "message": "made", "type": "Normal"}
    code, _ = await http.post("/api/v1/namespaces/default/events", ev)
    assert code == 201
    code, lst = await http.get("/api/v1/namespaces/default/events?fieldSelector="
                               "involvedObject.name%3Dweb,involvedObject.kind%3DService")
    assert code == 200 and [e["metadata"]["name"] for e in lst["items"]] == ["web.1"]
    code, lst = await http.get("/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Dx")
    assert lst["items"] == []
