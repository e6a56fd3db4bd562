"""What an attacker sends the API server gets a clear 4xx Status (or an answer within limits),
and leaves nothing broken behind: the object, its namespace, the server's other clients."""
from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from kubecore.api import resources as R
from kubecore.api.jsonwire import MAX_DEPTH

pytestmark = pytest.mark.etcd

PODS = "/api/v1/namespaces/default/pods"


def pod(name: str = "p", **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}


@pytest.fixture
async def session(apiserver):
    async with aiohttp.ClientSession(apiserver.url) as s:
        yield s


# --- a control character in an unknown field's name -----------------------------------------

async def test_unknown_field_with_a_newline_is_answered_with_a_quoted_warning(session):
    body = {**pod(), "x\ny": 1, "caf\u00e9": 2}
    async with session.post(PODS, json=body) as r:
        assert r.status == 201, await r.text()
        assert sorted(r.headers.getall("Warning")) == [
            '299 - "unknown field \\"caf\u00e9\\""', '299 - "unknown field \\"x\\\\ny\\""']
    # every later merge patch of the object carries the stored field along: answered too
    async with session.patch(f"{PODS}/p", json={"metadata": {"labels": {"a": "b"}}},
                             headers={"Content-Type": "application/merge-patch+json"}) as r:
        assert r.status == 200, await r.text()
        assert (await r.json())["metadata"]["labels"] == {"a": "b"}
    async with session.post(PODS + "?fieldValidation=Strict", json={**pod("q"), "x\ny": 1}) as r:
        assert r.status == 400
        assert (await r.json())["message"] == 'strict decoding error: unknown field "x\\ny"'


# --- nesting ------------------------------------------------------------------------------

def nested(levels: int) -> dict:
    """A value of `levels` nested objects."""
    value: dict = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def deep_pod(depth: int, name: str = "deep") -> dict:
    """A pod nested `depth` levels in all (the pod 1, spec 2, affinity 3, ...)."""
    return pod(name, affinity=nested(depth - 2))


async def wait_gone(http, path: str) -> None:
    for _ in range(100):
        if (await http.get(path))[0] == 404:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{path} is still there")


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 490, 5000], ids=["one-over", "490", "5000"])
async def test_a_body_nested_deeper_than_the_limit_is_400(http, depth):
    head = json.dumps(deep_pod(3))[:-len("{}}}")]  # ... "affinity": {
    raw = (head + '{"a":' * (depth - 3) + "{}" + "}" * (depth - 3) + "}}").encode()
    code, status = await http.post(PODS, raw=raw)
    assert code == 400, status
    assert status["message"] == ("couldn't get version/kind; json parse error: invalid "
                                 "character '{' exceeded max depth")
    assert (await http.get(f"{PODS}/deep"))[0] == 404


async def test_an_object_at_the_depth_limit_goes_through_every_write(http):
    assert (await http.post("/api/v1/namespaces", {"metadata": {"name": "deep"}}))[0] == 201
    path = "/api/v1/namespaces/deep/pods"
    code, created = await http.post(path, deep_pod(MAX_DEPTH))
    assert code == 201, created
    code, got = await http.put(f"{path}/deep", {**created, "metadata": {
        **created["metadata"], "labels": {"a": "b"}}})
    assert code == 200, got
    for ctype, patch in [("application/merge-patch+json", {"metadata": {"labels": {"c": "d"}}}),
                         ("application/strategic-merge-patch+json", {"metadata": {"labels": {"e": "f"}}}),
                         ("application/json-patch+json", [{"op": "add", "path": "/metadata/labels/g",
                                                           "value": "h"}])]:
        code, got = await http.patch(f"{path}/deep", patch, ctype)
        assert code == 200, (ctype, got)
    assert (await http.get(f"{path}?watch=0"))[0] == 200
    assert (await http.delete("/api/v1/namespaces/deep"))[0] == 200
    await wait_gone(http, "/api/v1/namespaces/deep")


async def test_an_object_stored_too_deep_before_the_limit_cannot_hold_its_namespace(apiserver, http):
    """Written straight into etcd, as a server without the limit stored it."""
    assert (await http.post("/api/v1/namespaces", {"metadata": {"name": "old"}}))[0] == 201
    obj = deep_pod(490)
    obj["metadata"].update(namespace="old", uid="0d7a3e8e-1f1c-4b6e-9c39-2d1b58b0a001",
                           creationTimestamp="2024-01-01T00:00:00Z")
    await apiserver.state.storage.create(R.PODS, obj)
    path = "/api/v1/namespaces/old/pods/deep"
    assert (await http.get(path))[0] == 200
    code, patched = await http.patch(path, {"metadata": {"labels": {"a": "b"}}},
                                     "application/merge-patch+json")
    assert code == 422 and "nests deeper than" in patched["message"], patched
    assert (await http.delete("/api/v1/namespaces/old"))[0] == 200
    await wait_gone(http, "/api/v1/namespaces/old")
    assert (await http.get(path))[0] == 404


# --- YAML aliases, and objects that grow once decoded --------------------------------------

def yaml_doc(text: str) -> bytes:
    return text.encode()


BILLION_LAUGHS = yaml_doc(
    "apiVersion: v1\nkind: Pod\nmetadata:\n  name: lol\nspec:\n  containers: [{name: c, image: busybox}]\n"
    "lols:\n" + "".join(
        f"  {c}: &{c} [{','.join([f'*{p}'] * 9) if p else ','.join(['lol'] * 9)}]\n"
        for p, c in zip(["", *"abcdefgh"], "abcdefghi", strict=True)))
# within go-yaml's alias ratio (97% of the decoded nodes), but 4 MB once expanded
WIDE_ALIASES = yaml_doc(
    "apiVersion: v1\nkind: Pod\nmetadata:\n  name: wide\nspec:\n  containers: [{name: c, image: busybox}]\n"
    "base: &base [" + ",".join(["x" * 100] * 1000) + "]\n"
    "copies: [" + ",".join(["*base"] * 40) + "]\n")


@pytest.mark.parametrize("doc,code,message", [
    (BILLION_LAUGHS, 400, "error converting YAML to JSON: yaml: document contains excessive aliasing"),
    (WIDE_ALIASES, 413, "the request body is larger than the limit of 3145728 bytes"),
    (yaml_doc("a: &a [*a]\n"), 400, "error converting YAML to JSON: yaml: anchor 'a' value contains itself"),
    (yaml_doc("x: " + "[" * (MAX_DEPTH + 1)), 400,
     f"error converting YAML to JSON: yaml: exceeded max depth of {MAX_DEPTH}"),
    (yaml_doc("x: &x " + "[" * 60 + "]" * 60 + "\ny: &y " + "[" * 50 + "*x" + "]" * 50 + "\n"), 400,
     f"error converting YAML to JSON: yaml: exceeded max depth of {MAX_DEPTH}"),
], ids=["billion-laughs", "wide-aliases", "self-alias", "deep", "deep-through-an-alias"])
async def test_yaml_is_bounded_before_it_expands(http, doc, code, message):
    for dry_run in ("?dryRun=All", ""):
        got, status = await http.post(PODS + dry_run, raw=doc, content_type="application/yaml")
        assert (got, status["message"]) == (code, message)
    code, lst = await http.get(PODS)
    assert lst["items"] == []


def copy_doubling(times: int) -> list:
    return [{"op": "copy", "from": "/spec", "path": f"/spec/copy{i}"} for i in range(times)]


def deeper_and_deeper(times: int) -> list:
    ops, path = [], "/spec/affinity"
    for _ in range(times):
        ops.append({"op": "add", "path": path, "value": nested(30)})
        path += "/a" * 29
    return ops


@pytest.mark.parametrize("ops,code,message", [
    (copy_doubling(18), 422, "Unable to complete the copy, the accumulated size increase of copy is"),
    (deeper_and_deeper(4), 422, f"the patched object would nest deeper than {MAX_DEPTH} levels"),
    ([{"op": "test", "path": "/kind", "value": "Pod"}] * 10_001, 413,
     "Request entity too large: The allowed maximum operations in a JSON patch is 10000, got 10001"),
], ids=["copy-doubling", "adds-ever-deeper", "too-many-operations"])
async def test_json_patches_are_bounded(http, ops, code, message):
    assert (await http.post(PODS, pod()))[0] == 201
    _, before = await http.get(f"{PODS}/p")
    got, status = await http.patch(f"{PODS}/p?dryRun=All", ops, "application/json-patch+json")
    assert got == code and message in status["message"], status
    assert (await http.get(f"{PODS}/p"))[1] == before
