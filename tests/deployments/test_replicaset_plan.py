"""The ReplicaSet's pure decisions: how many, which go first, what the status says."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kubecore.api.selectors import selector_from_label_selector
from services.deployments import controller_refs as own
from services.deployments import replicaset_plan as plan
from services.deployments.expectations import Expectations

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def pod(name, *, node=None, phase="Pending", ready=None, ready_since="2024-05-01T11:00:00Z",
        created="2024-05-01T10:00:00Z", restarts=0, labels=None, deleting=False, owner=None):
    status = {"phase": phase}
    if ready is not None:
        status["conditions"] = [{"type": "Ready", "status": "True" if ready else "False",
                                 "lastTransitionTime": ready_since}]
    if restarts:
        status["containerStatuses"] = [{"name": "c", "restartCount": restarts}]
    meta = {"name": name, "namespace": "default", "uid": f"uid-{name}",
            "creationTimestamp": created, "labels": labels if labels is not None else {"app": "web"}}
    if deleting:
        meta["deletionTimestamp"] = "2024-05-01T12:00:30Z"
    if owner:
        meta["ownerReferences"] = [owner]
    spec = {"nodeName": node} if node else {}
    return {"metadata": meta, "spec": spec, "status": status}


@pytest.mark.parametrize("pods, count, deleted", [
    ([pod("bound", node="n1"), pod("unbound")], 1, ["unbound"]),
    ([pod("running", node="n", phase="Running"), pod("pending", node="n")], 1, ["pending"]),
    ([pod("ready", node="n", phase="Running", ready=True),
      pod("unready", node="n", phase="Running", ready=False)], 1, ["unready"]),
    ([pod("long", node="n", phase="Running", ready=True, ready_since="2024-05-01T09:00:00Z"),
      pod("short", node="n", phase="Running", ready=True, ready_since="2024-05-01T11:59:00Z")],
     1, ["short"]),
    ([pod("calm", node="n", phase="Running", ready=True),
      pod("crashy", node="n", phase="Running", ready=True, restarts=4)], 1, ["crashy"]),
    ([pod("old", created="2024-05-01T08:00:00Z"), pod("new", created="2024-05-01T09:00:00Z")],
     1, ["new"]),
    ([pod("r", node="n", phase="Running", ready=True), pod("u"),
      pod("p", node="n")], 2, ["u", "p"]),
    ([pod("a"), pod("b")], 0, []),
], ids=["unscheduled-first", "pending-before-running", "not-ready-before-ready",
        "ready-shorter-first", "more-restarts-first", "newest-first", "two-of-three", "none"])
def test_pods_to_delete(pods, count, deleted):
    assert [p["metadata"]["name"] for p in plan.pods_to_delete(pods, count)] == deleted


@pytest.mark.parametrize("wanted, active, diff", [
    (3, 0, 3), (3, 3, 0), (1, 5, -4), (2000, 0, plan.BURST_REPLICAS), (0, 900, -plan.BURST_REPLICAS),
], ids=["create", "steady", "delete", "burst-capped-up", "burst-capped-down"])
def test_replica_diff(wanted, active, diff):
    assert plan.replica_diff(wanted, active) == diff


@pytest.mark.parametrize("count, batches", [
    (0, []), (1, [1]), (3, [1, 2]), (10, [1, 2, 4, 3]), (16, [1, 2, 4, 8, 1]),
], ids=["none", "one", "three", "ten", "sixteen"])
def test_slow_start_batches(count, batches):
    assert plan.slow_start_batches(count) == batches


@pytest.mark.parametrize("the_pod, active", [
    (pod("p"), True), (pod("p", deleting=True), False), (pod("p", phase="Succeeded"), False),
    (pod("p", phase="Failed"), False),
], ids=["pending", "deleting-counts-as-gone", "succeeded", "failed"])
def test_is_pod_active(the_pod, active):
    assert plan.is_pod_active(the_pod) is active


def rs(replicas=3, min_ready=0, generation=4):
    return {"metadata": {"name": "web-abc", "namespace": "default", "uid": "rs-uid",
                         "generation": generation},
            "spec": {"replicas": replicas, "minReadySeconds": min_ready,
                     "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web", "tier": "fe"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
            "status": {"replicas": 0}}


@pytest.mark.parametrize("pods, min_ready, expected", [
    ([], 0, {"replicas": 0, "fullyLabeledReplicas": 0, "readyReplicas": 0, "availableReplicas": 0}),
    ([pod("a", ready=True, labels={"app": "web", "tier": "fe"}), pod("b", ready=False),
      pod("c")], 0,
     {"replicas": 3, "fullyLabeledReplicas": 1, "readyReplicas": 1, "availableReplicas": 1}),
    ([pod("a", ready=True, ready_since="2024-05-01T11:59:50Z"),
      pod("b", ready=True, ready_since="2024-05-01T11:58:00Z")], 30,
     {"replicas": 2, "fullyLabeledReplicas": 0, "readyReplicas": 2, "availableReplicas": 1}),
], ids=["empty", "mixed", "min-ready-seconds"])
def test_replicaset_status(pods, min_ready, expected):
    status = plan.replicaset_status(rs(min_ready=min_ready), pods, NOW)
    assert status == {**expected, "observedGeneration": 4}


def test_seconds_until_available():
    p = pod("a", ready=True, ready_since="2024-05-01T11:59:50Z")
    assert plan.seconds_until_available(p, 30, NOW) == pytest.approx(20)
    assert plan.seconds_until_available(p, 5, NOW) is None


def test_new_pod_is_owned_and_named_by_the_server():
    made = plan.new_pod(rs())
    assert made["metadata"]["generateName"] == "web-abc-"
    assert made["metadata"]["labels"] == {"app": "web", "tier": "fe"}
    assert made["metadata"]["ownerReferences"] == [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc", "uid": "rs-uid",
         "controller": True, "blockOwnerDeletion": True}]
    assert made["spec"] == {"containers": [{"name": "c", "image": "nginx"}]}


OWNER = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web-abc",
                                                                     "uid": "rs-uid"}}
MINE = {"kind": "ReplicaSet", "name": "web-abc", "uid": "rs-uid", "controller": True}
THEIRS = {"kind": "ReplicaSet", "name": "other", "uid": "other-uid", "controller": True}


@pytest.mark.parametrize("candidate, outcome", [
    (pod("orphan"), "adopt"),
    (pod("orphan-other-labels", labels={"app": "db"}), "ignore"),
    (pod("orphan-deleting", deleting=True), "ignore"),
    (pod("mine", owner=MINE), "owned"),
    (pod("mine-relabelled", owner=MINE, labels={"app": "db"}), "release"),
    (pod("theirs", owner=THEIRS), "ignore"),
], ids=["adopt-orphan", "orphan-not-matching", "orphan-deleting", "keep-own",
        "release-unmatched", "never-someone-elses"])
def test_claim(candidate, outcome):
    got = own.claim(OWNER, [candidate], selector_from_label_selector({"matchLabels": {"app": "web"}}))
    found = ("adopt" if got.adopt else "owned" if got.owned else "release" if got.release
             else "ignore")
    assert found == outcome
    if outcome == "adopt":
        assert got.owned == got.adopt == [candidate]


def test_adoption_patch_adds_the_controller_reference():
    patch = own.adoption_patch({**OWNER, "metadata": {"name": "web-abc", "uid": "rs-uid"}},
                               pod("p", owner={"kind": "X", "name": "x", "uid": "x"}))
    assert patch["metadata"]["ownerReferences"][-1] == {
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc", "uid": "rs-uid",
        "controller": True, "blockOwnerDeletion": True}
    assert len(patch["metadata"]["ownerReferences"]) == 2


def test_expectations_hold_a_burst_until_the_informer_has_seen_it():
    clock = [0.0]
    exp = Expectations(ttl=300, clock=lambda: clock[0])
    assert exp.satisfied("default/web")
    exp.expect_creations("default/web", 2)
    assert not exp.satisfied("default/web")
    exp.creation_observed("default/web")
    assert not exp.satisfied("default/web")
    exp.creation_observed("default/web")
    assert exp.satisfied("default/web")
    exp.expect_deletions("default/web", ["default/a", "default/b"])
    exp.deletion_observed("default/web", "default/a")
    exp.deletion_observed("default/web", "default/a")  # twice: still one to go
    assert exp.pending("default/web") == (0, 1) and not exp.satisfied("default/web")
    clock[0] = 301  # a lost event must not block the owner for ever
    assert exp.satisfied("default/web")
