"""The served API under hypothesis: requests drawn from what the server publishes (the
operations and path parameters of its OpenAPI documents, the query parameters it reads, the
shapes of its kinds), with a fixed seed and a bounded number of cases.

Whatever a client sends: no 5xx, an answer within CASE_TIMEOUT (a watch: its headers), a
Status for every refusal, and a refused write changes nothing stored. Afterwards every
object in etcd is what the watch cache holds, and nothing else is in either.
"""
from __future__ import annotations

import asyncio
import copy
import json
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubecore.api import resources as R

pytestmark = pytest.mark.etcd

CASE_TIMEOUT = 10.0  # seconds a request may take before the server counts as hung
EXAMPLES = 250

BASE = {
    "services": {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "fz"},
                 "spec": {"selector": {"app": "fz"}, "ports": [{"port": 80, "targetPort": "http"}]}},
    "pods": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "fz", "labels": {"a": "b"}},
             "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}]}]}},
    "deployments": {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "fz"},
                    "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}},
                             "template": {"metadata": {"labels": {"a": "b"}},
                                          "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}},
    "endpointslices": {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                       "metadata": {"name": "fz"}, "addressType": "IPv4",
                       "endpoints": [{"addresses": ["10.0.0.1"]}], "ports": [{"port": 80}]},
    "replicasets": {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "fz"},
                    "spec": {"replicas": 0, "selector": {"matchLabels": {"a": "b"}},
                             "template": {"metadata": {"labels": {"a": "b"}},
                                          "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}},
    "daemonsets": {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "fz"},
                   "spec": {"selector": {"matchLabels": {"a": "b"}},
                            "updateStrategy": {"rollingUpdate": {"maxSurge": "10%", "maxUnavailable": 0}},
                            "template": {"metadata": {"labels": {"a": "b"}},
                                         "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}},
    "events": {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "fz"},
               "involvedObject": {"kind": "Pod", "name": "fz", "namespace": "default"},
               "reason": "Fuzzed", "message": "m", "type": "Normal"},
    "nodes": {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "fz"}},
    "namespaces": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fz"}},
}
KEYS = ["metadata", "spec", "status", "name", "namespace", "ports", "port", "selector",
        "containers", "labels", "annotations", "clusterIP", "type", "targetPort", "protocol",
        "image", "addressType", "endpoints", "replicas", "template", "matchLabels", "$patch",
        "apiVersion", "kind", "finalizers", "resourceVersion", "uid", "deletionTimestamp",
        "x\ny", "caf\u00e9", "", "ownerReferences", "managedFields", "nodeName"]
KEYS += ["updateStrategy", "rollingUpdate", "maxSurge", "maxUnavailable", "collisionCount"]
PATCH_TYPES = ["application/merge-patch+json", "application/json-patch+json",
               "application/strategic-merge-patch+json", "application/apply-patch+yaml"]
BODY_TYPES = ["application/json", "application/yaml", "text/plain", "application/cbor"]
NAMESPACES = ["default", "fz-ns", "kube-system", "missing"]
NAMES = ["fz", "fz1", "kubernetes", "default"]
# what the server reads besides the operations' own parameters, with values worth trying
QUERY_VALUES: dict[str, list[str]] = {
    "dryRun": ["All", "all", ""], "fieldManager": ["fuzz", "", "x" * 200],
    "fieldValidation": ["Strict", "Warn", "Ignore", "strict"], "force": ["true", "maybe"],
    "labelSelector": ["a=b", "a in (b,c)", "!a", "a b", "a" + " " * 300 + "!", "=="],
    "fieldSelector": ["metadata.name=fz", "spec.nodeName=", "a", "metadata.name==fz,x"],
    "resourceVersion": ["0", "1", "abc", "-1", "99999999999"],
    "resourceVersionMatch": ["NotOlderThan", "Exact", "Nope"], "limit": ["1", "0", "-1", "x"],
    "continue": ["", "abc", "eyJ2IjoxfQ", "W1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbXQ"],
    "timeoutSeconds": ["1", "-1", "x"], "watch": ["true", "1", "false", "maybe"],
    "allowWatchBookmarks": ["true"], "sendInitialEvents": ["true", "false"],
    "gracePeriodSeconds": ["0", "-5", "zz"], "propagationPolicy": ["Foreground", "Orphan", "Bad"],
    "orphanDependents": ["true", "maybe"],
}

scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12)
           | st.sampled_from(["", "x", "Bad_Name", "-", "a" * 300, "10.96.0.1", "None", "http"]))
keys = st.sampled_from(KEYS) | st.text(max_size=6)
values = st.recursive(scalars, lambda children: st.lists(children, max_size=3)
                      | st.dictionaries(keys, children, max_size=3), max_leaves=10)


def paths_in(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in `doc` a value can go: its members, and a new member of each object."""
    out = [prefix]
    if isinstance(doc, dict):
        out.append((*prefix, "+"))
        for k, v in doc.items():
            out.extend(paths_in(v, (*prefix, k)))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out.extend(paths_in(v, (*prefix, i)))
    return out


def put_at(doc: Any, path: tuple, value: Any, new_key: str) -> Any:
    if not path:
        return value
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    if path[-1] == "+":
        parent[new_key] = value
    else:
        parent[path[-1]] = value
    return doc


@st.composite
def mutated(draw: st.DrawFn, plural: str) -> Any:
    """A valid object of the kind with a few parts replaced or added."""
    doc = copy.deepcopy(BASE[plural])
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(paths_in(doc)))
        doc = put_at(doc, path, draw(values), draw(keys))
    return doc


def pointers(plural: str) -> list[str]:
    return ["/" + "/".join(str(p) for p in path if p != "+") for path in paths_in(BASE[plural])]


def json_patches(plural: str) -> st.SearchStrategy[Any]:
    pointer = st.sampled_from(pointers(plural)) | st.text(max_size=8)
    op = st.fixed_dictionaries(
        {"op": st.sampled_from(["add", "remove", "replace", "move", "copy", "test", "bogus"]),
         "path": pointer}, optional={"value": values, "from": pointer})
    return st.lists(op, max_size=4)


def nested(levels: int) -> dict:
    value: dict = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


LAUGHS = "".join(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}" if i else "lol"] * 9) + "]\n"
                 for i in range(7))


def hostile(base: dict) -> list[tuple[str, bytes]]:
    """Bodies that hurt servers before: control characters in field names, deep nesting,
    YAML aliases that expand to millions of nodes."""
    return [("application/json", json.dumps({**base, "x\ny": 1}).encode()),
            ("application/json", json.dumps({**base, "deep": nested(490)}).encode()),
            ("application/yaml", (yaml.safe_dump(base) + LAUGHS).encode()),
            ("application/merge-patch+json", json.dumps({"metadata": {"labels": {"a": "b"}},
                                                         "x\ny": 1}).encode())]


def operations(docs: list[dict]) -> list[tuple[str, str, tuple[str, ...]]]:
    """(method, path template, query parameter names) of every operation published."""
    ops = []
    for doc in docs:
        for template, item in doc["paths"].items():
            for method, op in item.items():
                if method == "parameters":
                    continue
                names = tuple(p["name"] for p in op.get("parameters", []) if p["in"] == "query")
                ops.append((method.upper(), template, names))
                if method == "get" and "{name}" not in template:  # the collection's DELETE
                    ops.append(("DELETE", template, names))
    return sorted(ops)


def weighted(draw: st.DrawFn, usual: st.SearchStrategy[Any], odd: st.SearchStrategy[Any],
             odds: int = 5) -> Any:
    """Mostly what a client would send, one time in `odds` something odd."""
    return draw(odd if draw(st.integers(0, odds - 1)) == 0 else usual)


def query_params(draw: st.DrawFn, published: tuple[str, ...]) -> dict[str, str]:
    if draw(st.integers(0, 2)) == 0:
        return {}
    names = sorted(set(published) | set(QUERY_VALUES))
    query = {}
    for name in draw(st.lists(st.sampled_from(names), max_size=3)):
        query[name] = weighted(draw, st.sampled_from(QUERY_VALUES.get(name, [""])),
                               st.text(max_size=10), odds=4)
    return query


def named(body: Any, name: str) -> Any:
    if isinstance(body, dict) and isinstance(body.get("metadata"), dict):
        body = {**body, "metadata": {**body["metadata"], "name": name}}
    return body


@st.composite
def requests(draw: st.DrawFn, ops: list[tuple[str, str, tuple[str, ...]]]) -> dict[str, Any]:
    method, template, published = draw(st.sampled_from(ops))
    text = st.text(max_size=8).map(lambda t: quote(t, safe=""))
    name = weighted(draw, st.sampled_from(NAMES), text)
    path = template.replace("{namespace}", weighted(draw, st.sampled_from(NAMESPACES), text)
                            ).replace("{name}", name)
    if draw(st.integers(0, 9)) == 0:  # now and then a subresource, or a path of its own
        path += draw(st.sampled_from(["/status", "/scale", "/binding", "/log", "/exec", "/x", "/.."]))
    plural = next((p for p in BASE if f"/{p}" in template), "pods")
    query = query_params(draw, published)
    fresh = draw(st.sampled_from(["fz1", "fz2", "fz3", "fz"]))  # a create's name
    ctype, body = "application/json", None
    if method == "PATCH":
        ctype = draw(st.sampled_from(PATCH_TYPES))
        body = draw(json_patches(plural)) if ctype.startswith("application/json-patch") \
            else weighted(draw, mutated(plural), values, odds=3)
    elif method in ("POST", "PUT"):
        ctype = weighted(draw, st.sampled_from(BODY_TYPES[:2]), st.sampled_from(BODY_TYPES))
        body = weighted(draw, mutated(plural), values, odds=3)
        body = named(body, fresh) if method == "POST" else body
    elif method == "DELETE" and draw(st.booleans()):
        body = draw(st.fixed_dictionaries({}, optional={
            "kind": st.just("DeleteOptions"), "gracePeriodSeconds": scalars,
            "propagationPolicy": st.sampled_from(["Background", "Bad"]) | scalars,
            "dryRun": st.just(["All"]) | values, "preconditions": values}))
    raw = None
    if body is not None:
        raw = (yaml.safe_dump(body).encode() if "yaml" in ctype
               else json.dumps(body).encode())
        roll = draw(st.integers(0, 19))
        if roll == 0:
            raw = draw(st.binary(max_size=40))
        elif roll < 4:
            ctype, raw = draw(st.sampled_from(hostile(named(BASE[plural], fresh))))
    return {"method": method, "path": path, "query": query, "ctype": ctype, "raw": raw}


def watching(req: dict[str, Any]) -> bool:
    return req["method"] == "GET" and req["query"].get("watch", "").lower() in ("true", "1", "yes")


async def send(session: aiohttp.ClientSession, req: dict[str, Any]) -> tuple[int, Any]:
    url = req["path"] + ("?" + urlencode(req["query"]) if req["query"] else "")
    headers = {"Content-Type": req["ctype"]} if req["raw"] is not None else {}
    async with session.request(req["method"], url, data=req["raw"], headers=headers) as r:
        if watching(req) and r.status == 200:
            return r.status, None  # a watch streams on: its headers arrived, that is the answer
        text = await r.text()
    try:
        return r.status, json.loads(text)
    except ValueError:
        return r.status, text


async def read_target(session: aiohttp.ClientSession, req: dict[str, Any]) -> tuple[int, Any]:
    """The object a write names (its path without query), as stored now."""
    async with session.get(req["path"]) as r:
        return r.status, (await r.json() if r.content_type == "application/json" else None)


def target_name(req: dict[str, Any]) -> str | None:
    if req["method"] == "POST" and req["raw"] is not None:
        try:
            body = json.loads(req["raw"]) if "json" in req["ctype"] else yaml.safe_load(req["raw"])
        except (ValueError, yaml.YAMLError):
            return None
        meta = body.get("metadata") if isinstance(body, dict) else None
        name = meta.get("name") if isinstance(meta, dict) else None
        return name if isinstance(name, str) and name and "/" not in name else None
    return None


def single_object(read: tuple[int, Any]) -> bool:
    code, obj = read
    return code == 200 and isinstance(obj, dict) and not str(obj.get("kind", "")).endswith("List")


async def going_away(session: aiohttp.ClientSession, obj: dict) -> bool:
    """Whether something else may change `obj` meanwhile: it is being deleted (its grace
    period, finalizers), or its namespace is (the namespace's content goes in the background)."""
    meta = obj.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return True
    if not meta.get("namespace"):
        return False
    async with session.get(f"/api/v1/namespaces/{meta['namespace']}") as r:
        ns = await r.json()
    return r.status != 200 or bool(ns["metadata"].get("deletionTimestamp"))


async def check(session: aiohttp.ClientSession, req: dict[str, Any], codes: list[int]) -> None:
    named_write = req["method"] in ("PUT", "PATCH", "DELETE")
    created = target_name(req)
    before = await read_target(session, req) if named_write else None
    existed = None
    if created:
        async with session.get(f"{req['path']}/{quote(created, safe='')}") as r:
            existed = r.status
    code, answer = await send(session, req)
    codes.append(code)
    assert code < 500, (req, answer)
    if code < 400:
        return
    assert isinstance(answer, dict) and answer.get("kind") == "Status", (req, answer)
    assert answer["code"] == code, (req, answer)
    if named_write and before is not None and single_object(before):
        after = await read_target(session, req)
        if after != before and not await going_away(session, before[1]):
            raise AssertionError(("a refused write changed the object", req, answer, after))
    if created and existed == 404:
        async with session.get(f"{req['path']}/{quote(created, safe='')}") as r:
            assert r.status == 404, (req, answer)


async def setup_objects(session: aiohttp.ClientSession) -> None:
    async with session.post("/api/v1/namespaces", json={"metadata": {"name": "fz-ns"}}) as r:
        assert r.status == 201
    for plural, obj in BASE.items():
        rt = R.lookup(plural)
        assert rt is not None
        prefix = f"/apis/{rt.group}/{rt.version}" if rt.group else "/api/v1"
        path = f"{prefix}/namespaces/default/{plural}" if rt.namespaced else f"{prefix}/{plural}"
        async with session.post(path, json=obj) as r:
            assert r.status == 201, await r.text()


async def published_documents(session: aiohttp.ClientSession) -> list[dict]:
    async with session.get("/openapi/v3") as r:
        root = await r.json()
    docs = []
    for entry in root["paths"].values():
        async with session.get(entry["serverRelativeURL"]) as r:
            docs.append(await r.json())
    return docs


async def cache_matches_etcd(state: Any) -> None:
    """Every object in etcd is the watch cache's, and the cache holds nothing else."""
    revision = await state.etcd.revision()
    for _ in range(100):
        if all(c.revision >= revision for c in state.caches.values()):
            break
        await asyncio.sleep(0.05)
    for rt in R.ALL:
        stored, _ = await state.storage.list(rt, None)
        in_etcd = {rt.key(o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in stored}
        cached = {k: o for k, (o, _) in state.caches[rt.plural].objects.items()}
        assert cached == in_etcd, rt.plural


async def test_requests_drawn_from_the_published_api(apiserver):
    loop = asyncio.get_running_loop()
    async with apiserver.session() as session:
        await setup_objects(session)
        ops = operations(await published_documents(session))
        assert {m for m, _, _ in ops} == {"GET", "POST", "PUT", "PATCH", "DELETE"}

        codes: list[int] = []

        @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                  suppress_health_check=list(HealthCheck))
        @given(req=requests(ops))
        def case(req: dict[str, Any]) -> None:
            # hypothesis runs in a thread; the server and the client stay on the test's loop
            asyncio.run_coroutine_threadsafe(check(session, req, codes), loop).result(CASE_TIMEOUT)

        await asyncio.to_thread(case)
        await cache_matches_etcd(apiserver.state)
    # the campaign reached past the first refusals: writes that were stored, and refusals
    assert sum(200 <= c < 300 for c in codes) > EXAMPLES // 10, sorted(codes)
    assert sum(400 <= c < 500 for c in codes) > EXAMPLES // 10, sorted(codes)


async def test_random_paths_and_queries_never_500(http):
    """Paths put together from pieces of the API's own, with odd queries and a body."""
    loop = asyncio.get_running_loop()
    parts = ["api", "apis", "v1", "namespaces", "default", "services", "pods", "status", "binding",
             "scale", "apps", "x", "..", "%00", "nodes", "log", "exec", "endpointslices", "watch",
             "%2F", "openapi", "v3", "discovery.k8s.io"]
    queries = st.dictionaries(st.sampled_from(sorted(QUERY_VALUES)), st.text(max_size=10), max_size=3)

    @settings(max_examples=150, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(segments=st.lists(st.sampled_from(parts), min_size=1, max_size=7), query=queries,
           method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]))
    def case(segments: list[str], query: dict[str, str], method: str) -> None:
        req = {"method": method, "path": "/" + "/".join(segments), "query": query,
               "ctype": "application/json", "raw": b'{"a":1}'}

        async def one() -> None:
            code, answer = await send(http.session, req)
            assert code < 500, (req, answer)
        asyncio.run_coroutine_threadsafe(one(), loop).result(CASE_TIMEOUT)

    await asyncio.to_thread(case)
