"""The OpenAPI documents declare every templated path segment, as kube-apiserver's do."""
from __future__ import annotations

import json
import re

import pytest

from kubecore.api import resources as R
from services.apiserver.endpoints import openapi


def documents() -> list[tuple[str, dict]]:
    docs = [("v2", json.loads(openapi.v2()))]
    for path in json.loads(openapi.v3_root())["paths"]:
        doc = openapi.v3_lookup(path)
        assert doc is not None
        docs.append((path, json.loads(doc)))
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
    doc = json.loads(openapi.v3_lookup("api/v1") or b"{}")
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
