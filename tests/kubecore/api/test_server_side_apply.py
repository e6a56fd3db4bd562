"""Server-side apply, simplified: field sets and removal of fields a manager stops applying."""
from __future__ import annotations

import pytest

from kubecore.api.patch import field_set, server_side_apply


def test_field_set_of_a_service():
    applied = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "web", "labels": {"app": "web"}, "finalizers": ["a"]},
               "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}]}}
    assert field_set(applied, "Service") == {
        "f:metadata": {"f:labels": {"f:app": {}}, "f:finalizers": {'v:"a"': {}}},
        "f:spec": {"f:selector": {"f:app": {}},
                   "f:ports": {'k:{"port":80}': {".": {}, "f:name": {}, "f:port": {}}}},
    }


def stored(ports, selector=None, labels=None):
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "labels": labels or {}},
            "spec": {"clusterIP": "10.96.0.4", "selector": selector or {"app": "web"},
                     "ports": [{"port": p, "protocol": "TCP", "targetPort": p} for p in ports]}}


def applied(ports, selector=None, labels=None):
    meta = {"name": "web"}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta,
            "spec": {"selector": selector or {"app": "web"}, "ports": [{"port": p} for p in ports]}}


@pytest.mark.parametrize("before,after,want_ports,want_selector,want_labels", [
    # the manager changes a port: the old one goes, server defaults of the kept one stay
    ([80], [81], [81], {"app": "web"}, {}),
    ([80, 90], [80], [80], {"app": "web"}, {}),
    ([80], [80], [80], {"app": "web"}, {}),
], ids=["port-changed", "port-dropped", "same"])
def test_apply_removes_what_the_manager_stopped_applying(before, after, want_ports, want_selector,
                                                          want_labels):
    first = applied(before)
    current = stored(before)
    result = server_side_apply(current, applied(after), field_set(first, "Service"), "Service")
    assert [p["port"] for p in result["spec"]["ports"]] == want_ports
    assert result["spec"]["selector"] == want_selector
    assert result["spec"]["clusterIP"] == "10.96.0.4"
    kept = [p for p in result["spec"]["ports"] if p["port"] in before]
    assert all(p["protocol"] == "TCP" for p in kept)


def test_fields_set_by_others_survive_and_dropped_map_keys_go():
    first = applied([80], selector={"app": "web", "tier": "x"}, labels={"team": "a"})
    current = stored([80], selector={"app": "web", "tier": "x"}, labels={"team": "a", "other": "b"})
    result = server_side_apply(current, applied([80]), field_set(first, "Service"), "Service")
    assert result["spec"]["selector"] == {"app": "web"}
    assert result["metadata"]["labels"] == {"other": "b"}
    assert result["metadata"]["name"] == "web"


def test_first_apply_to_an_existing_object_only_merges():
    current = stored([80, 90])
    result = server_side_apply(current, applied([100]), None, "Service")
    assert [p["port"] for p in result["spec"]["ports"]] == [80, 90, 100]
