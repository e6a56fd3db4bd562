"""Nothing a client sends produces a 500 or changes what is stored when it is refused."""
from __future__ import annotations

import json
import os
import random

import pytest

from kubecore.api import resources as R

SEED_VALUES = [None, True, 0, -1, 65536, 1.5, "", "x", "Bad_Name", "-", "a" * 300, [], {}, [1, "a"],
               {"a": None}, {"name": {"nested": 1}}]


def random_value(rng: random.Random, depth: int = 0):
    if depth > 3 or rng.random() < 0.4:
        return rng.choice(SEED_VALUES)
    if rng.random() < 0.5:
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    keys = ["metadata", "spec", "status", "name", "ports", "port", "selector", "containers", "labels",
            "clusterIP", "type", "targetPort", "protocol", "image", "addressType", "endpoints",
            "replicas", "template", "matchLabels", "$patch", "apiVersion", "kind", "finalizers"]
    return {rng.choice(keys): random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def mutate(rng: random.Random, obj):
    """A valid-looking object with one part replaced by something random."""
    doc = json.loads(json.dumps(obj))
    target = doc
    path = []
    while isinstance(target, dict) and target and rng.random() < 0.7:
        key = rng.choice(list(target))
        path.append(key)
        if not isinstance(target[key], (dict, list)) or rng.random() < 0.3:
            target[key] = random_value(rng)
            return doc
        target = target[key] if isinstance(target[key], dict) else target
        if isinstance(target, list):
            break
    doc[rng.choice(["metadata", "spec", "status", "extra"])] = random_value(rng)
    return doc


BASE = {
    "services": {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "fz"},
                 "spec": {"selector": {"app": "fz"}, "ports": [{"port": 80, "targetPort": "http"}]}},
    "pods": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "fz", "labels": {"a": "b"}},
             "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}]}]}},
    "deployments": {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "fz"},
                    "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}},
                             "template": {"metadata": {"labels": {"a": "b"}},
                                          "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}},
    "endpointslices": {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "fz"},
                       "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"]}],
                       "ports": [{"port": 80}]},
}
PATCH_TYPES = ["application/merge-patch+json", "application/json-patch+json",
               "application/strategic-merge-patch+json", "application/apply-patch+yaml"]


def collection(plural: str) -> str:
    rt = R.lookup(plural)
    assert rt is not None
    prefix = f"/apis/{rt.group}/{rt.version}" if rt.group else "/api/v1"
    return f"{prefix}/namespaces/default/{plural}"


@pytest.mark.parametrize("plural", sorted(BASE))
async def test_random_bodies_never_500_and_refusals_store_nothing(http, plural):
    rng = random.Random(f"fuzz-{plural}-{os.environ.get('FUZZ_SEED', '0')}")
    path = collection(plural)
    code, created = await http.post(path, BASE[plural])
    assert code == 201, created
    for i in range(150):
        body = mutate(rng, BASE[plural]) if rng.random() < 0.7 else random_value(rng)
        if isinstance(body, dict) and isinstance(body.get("metadata"), dict):
            body["metadata"]["name"] = f"fz{i}"
        code, answer = await http.post(path, body)
        assert code < 500, (body, answer)
        if code != 201:
            assert answer["kind"] == "Status"
            assert (await http.get(f"{path}/fz{i}"))[0] == 404
        _, before = await http.get(f"{path}/fz")
        ctype = rng.choice(PATCH_TYPES)
        patch = random_value(rng) if rng.random() < 0.5 else mutate(rng, BASE[plural])
        code, answer = await http.patch(f"{path}/fz?fieldManager=fuzz", patch, ctype)
        assert code < 500, (ctype, patch, answer)
        if code >= 400:
            _, after = await http.get(f"{path}/fz")
            assert after == before
        code, answer = await http.put(f"{path}/fz", mutate(rng, BASE[plural]))
        assert code < 500, answer


async def test_random_paths_and_queries_never_500(http):
    rng = random.Random(f"paths-{os.environ.get('FUZZ_SEED', '0')}")
    parts = ["api", "apis", "v1", "namespaces", "default", "services", "pods", "status", "binding",
             "scale", "apps", "x", "..", "%00", "nodes", "log", "exec", "endpointslices"]
    queries = ["watch=maybe", "resourceVersion=abc", "labelSelector=%3D%3D", "fieldSelector=a",
               "timeoutSeconds=-1", "limit=x", "gracePeriodSeconds=zz", "dryRun=All", ""]
    for _ in range(300):
        path = "/" + "/".join(rng.choice(parts) for _ in range(rng.randint(1, 7)))
        q = rng.choice(queries)
        method = rng.choice(["GET", "POST", "PUT", "PATCH", "DELETE"])
        url = f"{path}?{q}" if q else path
        if "watch" in q and method == "GET":
            url += "&timeoutSeconds=1"
        code, answer = await http.req(method, url, raw=b'{"a":1}', content_type="application/json")
        assert code < 500, (method, url, answer)
