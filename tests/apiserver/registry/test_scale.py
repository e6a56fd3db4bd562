"""The autoscaling/v1 Scale of any kind with spec.replicas and a selector, as kube's ScaleREST
writes it: status.selector is LabelSelectorAsSelector(...).String(), spec.replicas is left
out at 0 (omitempty), status.replicas never."""
from __future__ import annotations

import pytest

from services.apiserver.registry.subresources import scale_of, selector_string


@pytest.mark.parametrize("selector,text", [
    ({"matchLabels": {"app": "web"}}, "app=web"),
    ({"matchLabels": {"tier": "db", "app": "web"}}, "app=web,tier=db"),
    ({"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]}]}, "env in (dev,prod)"),
    ({"matchLabels": {"z": "1"}, "matchExpressions": [{"key": "a", "operator": "Exists"},
                                                      {"key": "m", "operator": "DoesNotExist"},
                                                      {"key": "b", "operator": "NotIn", "values": ["x"]}]},
     "a,b notin (x),!m,z=1"),
    ({}, ""),
    (None, ""),
], ids=["one-label", "labels-sorted", "in-values-sorted", "mixed-sorted-by-key", "empty", "none"])
def test_selector_string(selector, text):
    assert selector_string(selector) == text


def _workload(replicas: int | None, status_replicas: int | None = None) -> dict:
    spec: dict = {"selector": {"matchLabels": {"app": "web"}}}
    if replicas is not None:
        spec["replicas"] = replicas
    obj = {"metadata": {"name": "web", "namespace": "default", "uid": "u", "resourceVersion": "7",
                        "creationTimestamp": "2026-01-01T00:00:00Z", "labels": {"x": "y"}},
           "spec": spec}
    if status_replicas is not None:
        obj["status"] = {"replicas": status_replicas}
    return obj


@pytest.mark.parametrize("obj,spec,status", [
    (_workload(3, 2), {"replicas": 3}, {"replicas": 2, "selector": "app=web"}),
    (_workload(0, 0), {}, {"replicas": 0, "selector": "app=web"}),
    (_workload(None), {"replicas": 1}, {"replicas": 0, "selector": "app=web"}),
], ids=["scaled", "zero-omitted", "defaults"])
def test_scale_of(obj, spec, status):
    scale = scale_of(obj)
    assert list(scale) == ["kind", "apiVersion", "metadata", "spec", "status"]
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["metadata"] == {"name": "web", "namespace": "default", "uid": "u", "resourceVersion": "7",
                                 "creationTimestamp": "2026-01-01T00:00:00Z"}
    assert scale["spec"] == spec and scale["status"] == status
