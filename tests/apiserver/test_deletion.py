"""What a DELETE does to an object (services.apiserver.registry.deletion), as tables: options read and
refused, the finalizers each policy leaves, pods' grace periods."""
from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest
from multidict import MultiDict

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from services.apiserver.registry.deletion import (
    Outcome,
    finalizers_after_delete,
    mark_for_deletion,
    read_options,
    released,
)

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
STAMP = "2024-05-01T12:00:00Z"


@pytest.mark.parametrize("query, body, expected", [
    ({}, None, {}),
    ({"propagationPolicy": "Foreground"}, None, {"propagationPolicy": "Foreground"}),
    ({"orphanDependents": "true", "gracePeriodSeconds": "5"}, None,
     {"orphanDependents": True, "gracePeriodSeconds": 5}),
    ({"orphanDependents": "F"}, None, {"orphanDependents": False}),
    ({"propagationPolicy": ""}, None, {}),
    # a body wins over the query, wholly
    ({"propagationPolicy": "Foreground"}, {"kind": "DeleteOptions", "propagationPolicy": "Orphan"},
     {"kind": "DeleteOptions", "propagationPolicy": "Orphan"}),
    ({"gracePeriodSeconds": "zz"}, {"a": 1}, {"a": 1}),
    ({}, {"propagationPolicy": None, "preconditions": {"uid": "u"}}, {"preconditions": {"uid": "u"}}),
], ids=["nothing", "query-policy", "query-orphan-true", "query-orphan-F", "query-empty-policy",
        "body-wins", "body-ignores-query", "body-nulls"])
def test_options_read(query, body, expected):
    assert read_options(MultiDict(query), body) == expected


@pytest.mark.parametrize("query, body, code, message", [
    ({"propagationPolicy": "Bogus"}, None, 422,
     'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "Bogus": '
     'supported values: "Foreground", "Background", "Orphan", "nil"'),
    ({}, {"propagationPolicy": "Orphan", "orphanDependents": False}, 422,
     'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Invalid value: "Orphan": '
     "orphanDependents and deletionPropagation cannot be both set"),
    ({"dryRun": "Some"}, None, 422,
     'DeleteOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: []string{"Some"}: '
     'supported values: "All"'),
    ({"orphanDependents": "maybe"}, None, 400,
     'strconv.ParseBool: parsing "maybe": invalid syntax'),
    ({"gracePeriodSeconds": "zz"}, None, 400,
     'invalid value for gracePeriodSeconds: "zz" is not an integer'),
    ({}, {"propagationPolicy": 3}, 400,
     "json: cannot unmarshal int into Go struct field DeleteOptions.propagationPolicy"),
], ids=["unknown-policy", "both-set", "dry-run", "orphan-not-bool", "grace-not-int",
        "policy-not-string"])
def test_options_refused(query, body, code, message):
    with pytest.raises(ApiError) as exc:
        read_options(MultiDict(query), body)
    assert (exc.value.code, exc.value.message) == (code, message)
    if code == 422:
        assert exc.value.details == {"group": "meta.k8s.io", "kind": "DeleteOptions"}


@pytest.mark.parametrize("finalizers, opts, expected", [
    ([], {}, []),
    ([], {"propagationPolicy": "Background"}, []),
    ([], {"propagationPolicy": "Orphan"}, ["orphan"]),
    ([], {"propagationPolicy": "Foreground"}, ["foregroundDeletion"]),
    ([], {"orphanDependents": True}, ["orphan"]),
    (["orphan"], {"orphanDependents": False}, []),
    (["example.com/x"], {"propagationPolicy": "Foreground"}, ["example.com/x", "foregroundDeletion"]),
    # no policy asked: the GC finalizer the object has stays
    (["orphan"], {}, ["orphan"]),
    (["foregroundDeletion"], {}, ["foregroundDeletion"]),
    # a policy asked replaces the one the object has
    (["orphan", "example.com/x"], {"propagationPolicy": "Foreground"},
     ["example.com/x", "foregroundDeletion"]),
    (["foregroundDeletion"], {"propagationPolicy": "Background"}, []),
], ids=["default", "background", "orphan", "foreground", "orphanDependents-true",
        "orphanDependents-false-drops", "others-kept", "kept-orphan", "kept-foreground",
        "switch-to-foreground", "switch-to-background"])
def test_finalizers_after_delete(finalizers, opts, expected):
    assert finalizers_after_delete(finalizers, opts) == expected


@pytest.mark.parametrize(("rt", "opts", "expected"), [
    (R.JOBS, {}, ["orphan"]),
    (R.JOBS, {"propagationPolicy": "Background"}, []),
    (R.CRONJOBS, {}, []),
    (R.DEPLOYMENTS, {}, []),
], ids=["job-orphans-by-default", "job-background-asked", "cronjob", "deployment"])
def test_the_kinds_default_policy(rt, opts, expected):
    """batch/v1 Jobs keep their pods when a DELETE names no policy (kube's job strategy);
    kubectl names Background itself."""
    obj = {"metadata": {"name": "x", "namespace": "default", "uid": "u"}}
    mark_for_deletion(rt, obj, opts, datetime(2026, 1, 1, tzinfo=UTC))
    assert obj["metadata"].get("finalizers", []) == expected


def deployment(**meta) -> dict:
    return {"metadata": {"name": "web", "namespace": "default", "generation": 3, **meta},
            "spec": {}}


def pod(node: str | None = "node-a", grace: int | None = 30, **meta) -> dict:
    spec: dict = {"containers": [{"name": "c", "image": "x"}]}
    if node:
        spec["nodeName"] = node
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    return {"metadata": {"name": "p", "namespace": "default", "generation": 1, **meta},
            "spec": spec}


@pytest.mark.parametrize("rt, obj, opts, outcome, meta", [
    (R.DEPLOYMENTS, deployment(), {}, Outcome.DELETE, None),
    (R.DEPLOYMENTS, deployment(), {"propagationPolicy": "Orphan"}, Outcome.MARKED,
     {"finalizers": ["orphan"], "deletionTimestamp": STAMP, "deletionGracePeriodSeconds": 0,
      "generation": 4}),
    (R.DEPLOYMENTS, deployment(), {"propagationPolicy": "Foreground"}, Outcome.MARKED,
     {"finalizers": ["foregroundDeletion"], "deletionTimestamp": STAMP,
      "deletionGracePeriodSeconds": 0, "generation": 4}),
    # marked before: the earlier timestamp and generation stay, the policy may change
    (R.DEPLOYMENTS, deployment(finalizers=["orphan"], deletionTimestamp="2024-05-01T11:00:00Z",
                               deletionGracePeriodSeconds=0),
     {"propagationPolicy": "Foreground"}, Outcome.MARKED,
     {"finalizers": ["foregroundDeletion"], "deletionTimestamp": "2024-05-01T11:00:00Z",
      "deletionGracePeriodSeconds": 0, "generation": 3}),
    (R.DEPLOYMENTS, deployment(finalizers=["orphan"], deletionTimestamp="2024-05-01T11:00:00Z",
                               deletionGracePeriodSeconds=0),
     {"propagationPolicy": "Background"}, Outcome.DELETE, None),
    # pods: a bound pod counts down, finalizers added alongside
    (R.PODS, pod(), {"propagationPolicy": "Foreground"}, Outcome.MARKED,
     {"finalizers": ["foregroundDeletion"], "deletionTimestamp": "2024-05-01T12:00:30Z",
      "deletionGracePeriodSeconds": 30, "generation": 2}),
    (R.PODS, pod(node=None), {}, Outcome.DELETE, None),
    # an unbound pod with a finalizer waits for it, with a grace period of 0
    (R.PODS, pod(node=None), {"propagationPolicy": "Orphan"}, Outcome.MARKED,
     {"finalizers": ["orphan"], "deletionTimestamp": STAMP, "deletionGracePeriodSeconds": 0,
      "generation": 2}),
    # the node's confirmation (grace 0) ends a countdown, unless finalizers hold the pod
    (R.PODS, pod(deletionTimestamp="2024-05-01T12:00:20Z", deletionGracePeriodSeconds=30),
     {"gracePeriodSeconds": 0}, Outcome.DELETE, None),
    (R.PODS, pod(deletionTimestamp="2024-05-01T12:00:20Z", deletionGracePeriodSeconds=30,
                 finalizers=["example.com/x"]),
     {"gracePeriodSeconds": 0}, Outcome.MARKED,
     {"finalizers": ["example.com/x"], "deletionTimestamp": "2024-05-01T11:59:50Z",
      "deletionGracePeriodSeconds": 0}),
    # a countdown running: a longer grace period or a policy changes nothing
    (R.PODS, pod(deletionTimestamp="2024-05-01T12:00:20Z", deletionGracePeriodSeconds=30),
     {"propagationPolicy": "Orphan"}, Outcome.UNCHANGED, None),
], ids=["background-deletes", "orphan-marks", "foreground-marks", "switch-policy",
        "switch-to-background-deletes", "pod-bound-foreground", "pod-unbound",
        "pod-unbound-orphan", "pod-confirmed", "pod-confirmed-held", "pod-pending"])
def test_mark_for_deletion(rt, obj, opts, outcome, meta):
    before = copy.deepcopy(obj)
    assert mark_for_deletion(rt, obj, opts, NOW) is outcome
    if meta is not None:
        wanted = {**before["metadata"], **meta}
        assert obj["metadata"] == wanted
    if outcome is Outcome.UNCHANGED:
        assert obj == before


@pytest.mark.parametrize("rt, meta, expected", [
    (R.DEPLOYMENTS, {"deletionTimestamp": STAMP}, True),
    (R.DEPLOYMENTS, {"deletionTimestamp": STAMP, "finalizers": ["orphan"]}, False),
    (R.DEPLOYMENTS, {}, False),
    (R.PODS, {"deletionTimestamp": STAMP, "deletionGracePeriodSeconds": 0}, True),
    (R.PODS, {"deletionTimestamp": STAMP, "deletionGracePeriodSeconds": 30}, False),
], ids=["marked-free", "held", "not-marked", "pod-done", "pod-counting-down"])
def test_released(rt, meta, expected):
    assert released(rt, {"metadata": meta}) is expected
