"""The scheduler's pure decisions: which node, and why not the others."""
from __future__ import annotations

import pytest

from services.scheduler import plan


def node(name, ready=True, labels=None, unschedulable=False, taints=None, ready_condition=True):
    conditions = [{"type": "Ready", "status": "True" if ready else "False"}] if ready_condition else []
    spec = {}
    if unschedulable:
        spec["unschedulable"] = True
    if taints:
        spec["taints"] = taints
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": spec,
            "status": {"conditions": conditions}}


def pod(node_selector=None, tolerations=None, affinity=None, **spec):
    s = {"containers": [{"name": "c", "image": "i"}], **spec}
    if node_selector:
        s["nodeSelector"] = node_selector
    if tolerations:
        s["tolerations"] = tolerations
    if affinity:
        s["affinity"] = affinity
    return {"metadata": {"name": "p", "namespace": "default"}, "spec": s, "status": {"phase": "Pending"}}


def required(*terms):
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                             {"nodeSelectorTerms": list(terms)}}}


NOT_READY_TAINT = {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}

CASES = [
    # (pod, nodes, counts, chosen, reasons)
    (pod(), [node("a"), node("b")], {}, "a", {}),
    (pod(), [node("a"), node("b")], {"a": 2, "b": 1}, "b", {}),
    (pod(), [node("b"), node("a")], {"a": 1, "b": 1}, "a", {}),
    (pod(), [node("a", ready=False), node("b")], {"b": 10}, "b", {plan.NOT_READY: 1}),
    (pod(), [node("a", ready_condition=False)], {}, None, {plan.NOT_READY: 1}),
    (pod(), [node("a", unschedulable=True), node("b", ready=False)], {}, None,
     {plan.UNSCHEDULABLE: 1, plan.NOT_READY: 1}),
    (pod(node_selector={"disk": "ssd"}), [node("a"), node("b", labels={"disk": "ssd"})],
     {"b": 5}, "b", {plan.SELECTOR_MISMATCH: 1}),
    (pod(node_selector={"disk": "ssd"}), [node("a", labels={"disk": "hdd"}), node("b", ready=False)],
     {}, None, {plan.SELECTOR_MISMATCH: 1, plan.NOT_READY: 1}),
    (pod(), [node("a", taints=[NOT_READY_TAINT]), node("b")], {"b": 3}, "b",
     {"node(s) had untolerated taint {node.kubernetes.io/not-ready: }": 1}),
    (pod(tolerations=[{"key": "node.kubernetes.io/not-ready", "operator": "Exists"}]),
     [node("a", taints=[NOT_READY_TAINT])], {}, "a", {}),
    (pod(tolerations=[{"operator": "Exists"}]),
     [node("a", taints=[{"key": "x", "value": "y", "effect": "NoExecute"}])], {}, "a", {}),
    (pod(), [node("a", taints=[{"key": "x", "effect": "PreferNoSchedule"}])], {}, "a", {}),
    (pod(tolerations=[{"key": "x", "value": "other", "effect": "NoSchedule"}]),
     [node("a", taints=[{"key": "x", "value": "y", "effect": "NoSchedule"}])], {}, None,
     {"node(s) had untolerated taint {x: y}": 1}),
    (pod(affinity=required({"matchExpressions": [{"key": "zone", "operator": "In",
                                                  "values": ["z1", "z2"]}]})),
     [node("a", labels={"zone": "z3"}), node("b", labels={"zone": "z2"})], {}, "b",
     {plan.SELECTOR_MISMATCH: 1}),
    (pod(affinity=required({"matchExpressions": [{"key": "cpus", "operator": "Gt", "values": ["4"]}]},
                           {"matchFields": [{"key": "metadata.name", "operator": "In",
                                             "values": ["a"]}]})),
     [node("a", labels={"cpus": "2"}), node("b", labels={"cpus": "4"}),
      node("c", labels={"cpus": "8"})], {"a": 1, "c": 0}, "c", {plan.SELECTOR_MISMATCH: 1}),
    (pod(), [], {}, None, {}),
    (pod(tolerations=[{"key": "node.kubernetes.io/unschedulable", "operator": "Exists",
                       "effect": "NoSchedule"}]),
     [node("a", unschedulable=True)], {}, "a", {}),
    (pod(tolerations=[{"key": "node.kubernetes.io/unschedulable", "operator": "Exists",
                       "effect": "NoExecute"}]),
     [node("a", unschedulable=True)], {}, None, {plan.UNSCHEDULABLE: 1}),
    (pod(affinity=required({"matchFields": [{"key": "metadata.name", "operator": "In",
                                             "values": ["b"]}]})),
     [node("a"), node("b"), node("c")], {"b": 9}, "b", {plan.SELECTOR_MISMATCH: 2}),
]
IDS = ["empty-tie-by-name", "fewest-pods", "tie-smallest-name", "not-ready-skipped",
       "no-ready-condition", "unschedulable-and-not-ready", "node-selector",
       "selector-and-not-ready", "untolerated-taint", "tolerated-taint", "tolerate-everything",
       "prefer-no-schedule-ignored", "wrong-toleration-value", "affinity-in",
       "affinity-gt-or-fields", "no-nodes", "unschedulable-tolerated",
       "unschedulable-wrong-effect", "daemon-pod-names-its-node"]


@pytest.mark.parametrize("the_pod, nodes, counts, chosen, reasons", CASES, ids=IDS)
def test_choose_node(the_pod, nodes, counts, chosen, reasons):
    got, why = plan.choose_node(the_pod, nodes, counts)
    assert (got["metadata"]["name"] if got else None) == chosen
    assert why == reasons


@pytest.mark.parametrize("total, reasons, message", [
    (2, {plan.SELECTOR_MISMATCH: 1, plan.NOT_READY: 1},
     "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
     "1 node(s) were not ready."),
    (3, {plan.NOT_READY: 3}, "0/3 nodes are available: 3 node(s) were not ready."),
    (0, {}, "no nodes available to schedule pods"),
], ids=["two-reasons-sorted", "one-reason", "no-nodes"])
def test_unschedulable_message(total, reasons, message):
    assert plan.unschedulable_message(total, reasons) == message


@pytest.mark.parametrize("the_pod, wanted", [
    (pod(), True),
    (pod(schedulerName="default-scheduler"), True),
    (pod(schedulerName="other"), False),
    (pod(nodeName="a"), False),
    ({**pod(), "metadata": {"name": "p", "deletionTimestamp": "2024-01-01T00:00:00Z"}}, False),
    ({**pod(), "status": {"phase": "Failed"}}, False),
], ids=["unset-scheduler", "default-scheduler", "other-scheduler", "bound", "deleting", "finished"])
def test_pod_needs_scheduling(the_pod, wanted):
    assert plan.pod_needs_scheduling(the_pod) is wanted


@pytest.mark.parametrize("conditions, message, update", [
    ([], "m", True),
    ([{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "m"}], "m",
     False),
    ([{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "old"}],
     "m", True),
], ids=["none-yet", "echo-of-own-write", "message-changed"])
def test_condition_written_only_when_it_changes(conditions, message, update):
    assert plan.needs_condition_update({"status": {"conditions": conditions}}, message) is update


@pytest.mark.parametrize("last, message, now, report", [
    (None, "0/1 nodes are available", 0.0, True),
    (("0/1 nodes are available", 0.0), "0/1 nodes are available", 59.0, False),
    (("0/1 nodes are available", 0.0), "0/1 nodes are available", 60.0, True),
    (("0/1 nodes are available", 0.0), "0/2 nodes are available", 1.0, True),
], ids=["first", "same-soon", "same-later", "changed"])
def test_failed_scheduling_events_are_spaced(last, message, now, report):
    assert plan.failure_worth_an_event(last, message, now, 60.0) is report
