"""Which nodes should run a daemon pod, and the pod a node gets (pure)."""
from __future__ import annotations

from typing import Any

import pytest

from services.daemonset import placement
from services.daemonset.plan import new_pod
from tests.daemonset.objects import daemonset, node


def _required(*terms: dict[str, Any]) -> dict[str, Any]:
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                             {"nodeSelectorTerms": list(terms)}}}


def _taint(key: str, effect: str, value: str = "") -> dict[str, Any]:
    return {"key": key, "value": value, "effect": effect}


CASES = [
    (daemonset(), node("a"), (True, True)),
    (daemonset(nodeSelector={"disk": "ssd"}), node("a"), (False, False)),
    (daemonset(nodeSelector={"disk": "ssd"}), node("a", labels={"disk": "ssd"}), (True, True)),
    (daemonset(nodeName="b"), node("a"), (False, False)),
    (daemonset(affinity=_required({"matchExpressions": [{"key": "zone", "operator": "In",
                                                          "values": ["z1"]}]})),
     node("a", labels={"zone": "z2"}), (False, False)),
    (daemonset(affinity=_required({"matchExpressions": [{"key": "zone", "operator": "In",
                                                          "values": ["z1"]}]},
                                  {"matchFields": [{"key": "metadata.name", "operator": "In",
                                                    "values": ["a"]}]})),
     node("a", labels={"zone": "z2"}), (True, True)),
    (daemonset(), node("a", taints=[_taint("dedicated", "NoSchedule", "gpu")]), (False, True)),
    (daemonset(), node("a", taints=[_taint("dedicated", "NoExecute", "gpu")]), (False, False)),
    (daemonset(), node("a", taints=[_taint("dedicated", "PreferNoSchedule")]), (True, True)),
    (daemonset(tolerations=[{"key": "dedicated", "operator": "Equal", "value": "gpu",
                             "effect": "NoSchedule"}]),
     node("a", taints=[_taint("dedicated", "NoSchedule", "gpu")]), (True, True)),
    (daemonset(), node("a", taints=[_taint("node.kubernetes.io/not-ready", "NoExecute")]), (True, True)),
    (daemonset(), node("a", taints=[_taint("node.kubernetes.io/unreachable", "NoExecute")]), (True, True)),
    (daemonset(), node("a", taints=[_taint("node.kubernetes.io/not-ready", "NoSchedule")]),
     (False, True)),
    (daemonset(), node("a", taints=[_taint("node.kubernetes.io/disk-pressure", "NoSchedule")]),
     (True, True)),
    (daemonset(), node("a", unschedulable=True,
                       taints=[_taint("node.kubernetes.io/unschedulable", "NoSchedule")]), (True, True)),
    (daemonset(), node("a", taints=[_taint("node.kubernetes.io/network-unavailable", "NoSchedule")]),
     (False, True)),
    (daemonset(hostNetwork=True),
     node("a", taints=[_taint("node.kubernetes.io/network-unavailable", "NoSchedule")]), (True, True)),
]
IDS = ["plain", "selector-mismatch", "selector-match", "other-node-name", "affinity-mismatch",
       "affinity-any-term", "untolerated-no-schedule-keeps-running", "untolerated-no-execute",
       "prefer-no-schedule", "tolerated", "not-ready-no-execute", "unreachable-no-execute",
       "not-ready-no-schedule", "disk-pressure", "cordoned", "network-unavailable",
       "network-unavailable-host-network"]


@pytest.mark.parametrize(("ds", "the_node", "wanted"), CASES, ids=IDS)
def test_should_run(ds: dict[str, Any], the_node: dict[str, Any], wanted: tuple[bool, bool]) -> None:
    assert placement.should_run(ds, the_node) == wanted


def test_pod_names_its_node_and_tolerates_node_problems() -> None:
    ds = daemonset(tolerations=[{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                 "effect": "NoExecute", "tolerationSeconds": 300},
                                {"key": "dedicated", "operator": "Exists"}],
                   affinity={"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                       {"weight": 1, "preference": {"matchExpressions": []}}]}})
    pod = new_pod(ds, "node-2", "h1")
    assert pod["metadata"]["generateName"] == "agent-"
    assert pod["metadata"]["labels"] == {"app": "agent", "controller-revision-hash": "h1",
                                         "pod-template-generation": "1"}
    assert pod["metadata"]["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "DaemonSet",
                                                   "name": "agent", "uid": "ds-uid", "controller": True,
                                                   "blockOwnerDeletion": True}]
    assert pod["spec"]["tolerations"] == [
        # the same toleration (key, operator, value, effect) with a limit: replaced in place,
        # so a daemon pod is never evicted from a node that is not ready
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
        {"key": "dedicated", "operator": "Exists"},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
        {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
    ]
    affinity = pod["spec"]["affinity"]["nodeAffinity"]
    assert affinity["requiredDuringSchedulingIgnoredDuringExecution"] == {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-2"]}]}]}
    assert "preferredDuringSchedulingIgnoredDuringExecution" in affinity
    assert placement.target_node(pod) == "node-2"
    assert ds["spec"]["template"]["spec"]["affinity"]["nodeAffinity"].keys() == {
        "preferredDuringSchedulingIgnoredDuringExecution"}  # the DaemonSet is not changed


@pytest.mark.parametrize(("spec", "wanted"), [
    ({"nodeName": "n1", "affinity": {}}, "n1"),
    ({"affinity": placement.node_affinity_for(None, "n2")}, "n2"),
    ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In",
                                                "values": ["a", "b"]}]}]}}}}, None),
    ({}, None),
], ids=["bound", "affinity", "two-names", "nothing"])
def test_target_node(spec: dict[str, Any], wanted: str | None) -> None:
    assert placement.target_node({"spec": spec}) == wanted
