from __future__ import annotations

import pytest

from kubecore.api.patch import PatchError, create_merge_patch, json_patch, merge_patch, strategic_merge_patch

SVC = {"metadata": {"name": "s", "labels": {"a": "1"}},
       "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080},
                          {"name": "https", "port": 443}], "selector": {"app": "x"}}}


def test_merge_patch_replaces_lists_and_deletes_nulls():
    out = merge_patch(SVC, {"metadata": {"labels": {"a": None, "b": "2"}}, "spec": {"ports": [{"port": 1}]}})
    assert out["metadata"]["labels"] == {"b": "2"}
    assert out["spec"]["ports"] == [{"port": 1}]
    assert SVC["metadata"]["labels"] == {"a": "1"}  # input untouched


def test_create_merge_patch_round_trips():
    new = {**SVC, "metadata": {"name": "s"}, "extra": True}
    assert merge_patch(SVC, create_merge_patch(SVC, new)) == new


def test_json_patch_and_its_errors():
    patched = json_patch(SVC, [{"op": "add", "path": "/metadata/labels/b", "value": "2"}])
    assert patched["metadata"]["labels"] == {"a": "1", "b": "2"}
    with pytest.raises(PatchError):
        json_patch(SVC, [{"op": "remove", "path": "/nope"}])
    with pytest.raises(PatchError):
        json_patch(SVC, {"op": "add"})


@pytest.mark.parametrize("patch,ports", [
    ({"spec": {"ports": [{"port": 80, "targetPort": 9090}]}},
     [{"name": "http", "port": 80, "targetPort": 9090}, {"name": "https", "port": 443}]),
    ({"spec": {"ports": [{"port": 8443, "name": "alt"}]}},
     [{"name": "http", "port": 80, "targetPort": 8080}, {"name": "https", "port": 443}, {"port": 8443, "name": "alt"}]),
    ({"spec": {"ports": [{"port": 443, "$patch": "delete"}]}},
     [{"name": "http", "port": 80, "targetPort": 8080}]),
    ({"spec": {"$setElementOrder/ports": [{"port": 443}, {"port": 80}]}},
     [{"name": "https", "port": 443}, {"name": "http", "port": 80, "targetPort": 8080}]),
    ({"spec": {"ports": [{"$patch": "replace"}, {"port": 1}]}}, [{"port": 1}]),
], ids=["merge-by-port", "append", "delete", "order", "replace"])
def test_strategic_merge_of_service_ports(patch, ports):
    assert strategic_merge_patch(SVC, patch, "Service")["spec"]["ports"] == ports


def test_strategic_merge_containers_by_name_and_env():
    pod = {"spec": {"containers": [{"name": "a", "image": "x", "env": [{"name": "K", "value": "1"}]},
                                   {"name": "b", "image": "y"}]}}
    out = strategic_merge_patch(pod, {"spec": {"containers": [
        {"name": "a", "env": [{"name": "K2", "value": "2"}]}]}}, "Pod")
    a = out["spec"]["containers"][0]
    assert a["image"] == "x" and [e["name"] for e in a["env"]] == ["K", "K2"]
    assert len(out["spec"]["containers"]) == 2


def test_strategic_retain_keys_and_primitive_delete():
    obj = {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}},
           "metadata": {"finalizers": ["a", "b"]}}
    out = strategic_merge_patch(obj, {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}},
                                      "metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}, "Deployment")
    assert out["spec"]["strategy"] == {"type": "Recreate"}
    assert out["metadata"]["finalizers"] == ["b"]


def test_strategic_merge_key_missing_is_an_error():
    with pytest.raises(PatchError):
        strategic_merge_patch(SVC, {"spec": {"ports": [{"name": "x"}]}}, "Service")
