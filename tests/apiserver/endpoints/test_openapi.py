"""The OpenAPI documents declare every templated path segment, as kube-apiserver's do."""
from __future__ import annotations

import json
import re

import pytest
import yaml

from kubecore.api import protowire
from kubecore.api import resources as R
from services.apiserver.endpoints import openapi


def documents() -> list[tuple[str, dict]]:
    docs = [("v2", json.loads(openapi.v2()))]
    for path in json.loads(openapi.v3_root())["paths"]:
        found = openapi.v3_lookup(path)
        assert found is not None
        docs.append((path, json.loads(found[0])))
    return docs


@pytest.mark.parametrize("name,doc", documents(), ids=[n for n, _ in documents()])
def test_every_path_template_is_declared_as_a_required_path_parameter(name, doc):
    assert doc["paths"]
    for path, item in doc["paths"].items():
        templated = set(re.findall(r"{(\w+)}", path))
        declared = {p["name"] for p in item.get("parameters", []) if p["in"] == "path"}
        assert declared == templated, path
        for p in item.get("parameters", []):
            assert p["required"] is True
            assert (p["schema"]["type"] if name != "v2" else p["type"]) == "string"


def test_the_pod_path_reads_as_in_kube_apiserver_s_v3_document():
    found = openapi.v3_lookup("api/v1")
    assert found is not None
    doc = json.loads(found[0])
    params = doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["parameters"]
    assert params == [
        {"name": "name", "in": "path", "required": True, "description": "name of the Pod",
         "schema": {"type": "string", "uniqueItems": True}},
        {"name": "namespace", "in": "path", "required": True,
         "description": "object name and auth scope, such as for teams and projects",
         "schema": {"type": "string", "uniqueItems": True}},
    ]
    assert "parameters" not in doc["paths"]["/api/v1/nodes"]
    assert [p["name"] for p in doc["paths"]["/api/v1/nodes/{name}"]["parameters"]] == ["name"]
    assert R.NODES.namespaced is False


def _message(data: bytes) -> dict[int, list]:
    """A protobuf message's fields by number (bytes for length-delimited, ints for varints)."""
    out: dict[int, list] = {}
    for number, _, value in protowire.fields(data):
        out.setdefault(number, []).append(value)
    return out


def _named(data: bytes) -> tuple[str, bytes]:
    entry = _message(data)
    return entry[1][0].decode(), entry[2][0]


def _v2_operations() -> dict[tuple[str, int], bytes]:
    """(path, PathItem field number) -> Operation bytes, read back from the protobuf."""
    doc = _message(openapi.v2_protobuf())
    ops = {}
    for named in _message(doc[8][0])[2]:
        path, item = _named(named)
        for number, values in _message(item).items():
            if number in (2, 3, 4, 5, 8):
                ops[path, number] = values[0]
    return ops


def test_v2_protobuf_is_the_json_document_in_gnostic_s_message():
    doc = _message(openapi.v2_protobuf())
    assert doc[1] == [b"2.0"]
    info = _message(doc[2][0])
    assert info[1] == [b"Kubernetes"] and info[2][0].decode() == json.loads(openapi.v2())["info"]["version"]
    paths = [_named(p)[0] for p in _message(doc[8][0])[2]]
    assert paths == sorted(json.loads(openapi.v2())["paths"])


@pytest.mark.parametrize("rt", R.ALL, ids=[rt.plural for rt in R.ALL])
def test_v2_protobuf_patch_operation_offers_field_validation_for_the_kind(rt):
    """What kubectl <= 1.28 looks for (cli-runtime's supportsQueryParam): the PATCH
    operation whose x-kubernetes-group-version-kind is the kind, with a query parameter
    named fieldValidation."""
    item_path = next(p for p in json.loads(openapi.v2())["paths"]
                     if p.endswith(f"/{rt.plural}/{{name}}") and rt.version in p
                     and (rt.group in p if rt.group else p.startswith("/api/")))
    op = _message(_v2_operations()[item_path, 8])
    extensions = dict(_named(e) for e in op[13])
    gvk = yaml.safe_load(_message(extensions["x-kubernetes-group-version-kind"])[2][0].decode())
    assert gvk == {"group": rt.group, "version": rt.version, "kind": rt.kind}
    assert yaml.safe_load(_message(extensions["x-kubernetes-action"])[2][0].decode()) == "patch"
    query = []
    for item in op[8]:
        non_body = _message(_message(_message(item)[1][0])[2][0])
        if 3 in non_body:
            sub = _message(non_body[3][0])
            query.append((sub[4][0].decode(), sub[2][0].decode()))
    assert ("fieldValidation", "query") in query


@pytest.mark.parametrize("accept,wanted", [
    ("", "application/json"),
    ("*/*", "application/json"),
    ("application/json", "application/json"),
    ("application/com.github.proto-openapi.spec.v2@v1.0+protobuf", openapi.V2_PROTOBUF),
    ("application/com.github.proto-openapi.spec.v2.v1.0+protobuf", openapi.V2_PROTOBUF),
    ("application/*", "application/json"),
    ("*/*;q=0.5, application/com.github.proto-openapi.spec.v2.v1.0+protobuf", openapi.V2_PROTOBUF),
    ("application/json;q=0, text/html", "application/json"),
    ("text/html", None),
    ("application/yaml", None),
], ids=["none", "any", "json", "protobuf-deprecated", "protobuf", "application-any",
        "concrete-before-wildcard", "zero-q-still-listed", "html", "yaml"])
def test_v2_negotiation_follows_kube_openapi(accept, wanted):
    found = openapi.v2_negotiate(accept)
    assert (found[1] if found else None) == wanted
