"""Request bodies are bounded as they are decoded: nesting (JSON and YAML), YAML aliases
(go-yaml's limits and messages), and what a JSON patch may do to an object."""
from __future__ import annotations

import pytest
import yaml

from kubecore.api import jsonwire, yamlwire
from kubecore.api.patch import PatchError, PatchTooLarge, json_patch

DEPTH = jsonwire.MAX_DEPTH


def nested(levels: int) -> dict:
    value: dict = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def laughs(levels: int) -> bytes:
    rows = ["l0: &l0 [" + ",".join(["lol"] * 9) + "]"]
    rows += [f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(rows).encode()


@pytest.mark.parametrize("raw,opener", [
    (b"[" * (DEPTH + 1) + b"]" * (DEPTH + 1), "["),
    (b'{"a":' * (DEPTH + 1) + b"1" + b"}" * (DEPTH + 1), "{"),
    (b"[" * 2000 + b"]" * 2000, "["),  # beyond orjson's own limit (1024)
    (b'{"a":' * 2000 + b"1" + b"}" * 2000, "{"),
], ids=["array", "object", "array-past-orjson", "object-past-orjson"])
def test_json_deeper_than_the_limit(raw, opener):
    with pytest.raises(jsonwire.TooDeep) as err:
        jsonwire.loads_request(raw)
    assert str(err.value) == f"invalid character '{opener}' exceeded max depth"


@pytest.mark.parametrize("raw", [
    b"[" * DEPTH + b"]" * DEPTH,
    b'{"s":"' + b"[" * 5000 + b'"}',  # brackets in a string do not nest
    b"[" + b"[]," * 5000 + b"[]]",  # many, side by side
], ids=["at-the-limit", "in-a-string", "wide"])
def test_json_within_the_limit(raw):
    jsonwire.loads_request(raw)


@pytest.mark.parametrize("doc,message", [
    (laughs(9), "yaml: document contains excessive aliasing"),
    (laughs(6), "yaml: document contains excessive aliasing"),
    (b"a: &a [*a]", "yaml: anchor 'a' value contains itself"),
    (b"a: &a {b: [*a]}", "yaml: anchor 'a' value contains itself"),
    (b"x: " + b"[" * (DEPTH + 1), f"yaml: exceeded max depth of {DEPTH}"),
    (b"- " * (DEPTH + 1) + b"x", f"yaml: exceeded max depth of {DEPTH}"),
    (b"x: " + b"{a: " * 5000, f"yaml: exceeded max depth of {DEPTH}"),
    (b"a: &a " + b"[" * 60 + b"]" * 60 + b"\nb: " + b"[" * 50 + b"*a" + b"]" * 50,
     f"yaml: exceeded max depth of {DEPTH}"),
], ids=["billion-laughs", "million-laughs", "self-alias", "nested-self-alias", "deep-flow",
        "deep-block", "deep-mapping", "deep-through-an-alias"])
def test_yaml_refused_before_it_expands(doc, message):
    with pytest.raises(yamlwire.YAMLLimitError) as err:
        yamlwire.loads(doc)
    assert str(err.value) == message


@pytest.mark.parametrize("doc,expected", [
    (laughs(3), 9 + 9 ** 2 + 9 ** 3),  # every level kept; 819 "lol"s are under go-yaml's thresholds
    (b"a: &a {x: 1}\nb: {<<: *a, y: 2}", None),
    (b"x: " + b"[" * (DEPTH - 1) + b"]" * (DEPTH - 1), None),
], ids=["few-laughs", "merge-key", "at-the-limit"])
def test_yaml_within_the_limits(doc, expected):
    value = yamlwire.loads(doc)
    assert value == yaml.safe_load(doc)
    if expected is not None:
        assert jsonwire.dumps(value).count(b"lol") == expected


@pytest.mark.parametrize("ops,error,text", [
    ([{"op": "copy", "from": "/spec", "path": f"/spec/c{i}"} for i in range(40)], PatchError,
     "Unable to complete the copy, the accumulated size increase of copy is"),
    ([{"op": "add", "path": "/spec/a" + "/a" * i * 29, "value": nested(30)} for i in range(4)],
     PatchError,
     f"the patched object would nest deeper than {DEPTH} levels"),
    ([{"op": "test", "path": "/spec", "value": {}}] * 10_001, PatchTooLarge,
     "The allowed maximum operations in a JSON patch is 10000, got 10001"),
], ids=["copy-doubling", "adds-ever-deeper", "too-many-operations"])
def test_json_patch_bounds(ops, error, text):
    target = {"spec": {"containers": [{"name": "c" * 200, "image": "busybox"}]}}
    with pytest.raises(error) as err:
        json_patch(target, ops)
    assert text in str(err.value)
    assert target == {"spec": {"containers": [{"name": "c" * 200, "image": "busybox"}]}}


def test_a_json_patch_within_the_bounds_applies():
    ops = [{"op": "copy", "from": "/spec", "path": "/copy"}, {"op": "add", "path": "/spec/a", "value": [1]},
           {"op": "move", "from": "/spec/a", "path": "/moved"}, {"op": "test", "path": "/moved", "value": [1]}]
    assert json_patch({"spec": {"x": 1}}, ops) == {"spec": {"x": 1}, "copy": {"x": 1}, "moved": [1]}
