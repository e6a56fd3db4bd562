"""The StatefulSet planner: one sync's pod creations, deletions and relabels, and the status,
as kube's updateStatefulSet decides them; pod identity; revisions and their history."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubecore.api import resources as R
from services.statefulset import identity as ident
from services.statefulset import plan as P
from services.statefulset import revisions as rv

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
A, B = "web-aaaa", "web-bbbb"
TEMPLATE_A = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}
TEMPLATE_B = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}
SAME = P.Revisions(A, A, TEMPLATE_A, TEMPLATE_A)
ROLL = P.Revisions(A, B, TEMPLATE_A, TEMPLATE_B)


def sts(replicas: int = 3, **spec: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "apps/v1", "kind": "StatefulSet",
                           "metadata": {"name": "web", "namespace": "default", "uid": "u1", "generation": 2},
                           "spec": {"replicas": replicas, "serviceName": "nginx",
                                    "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE_A,
                                    **spec}}
    R.STATEFULSETS.default(obj)
    return obj


def pod(ordinal: int, state: str = "ready", rev: str = A, *, name: str | None = None,
        ready_for: float = 3600) -> dict[str, Any]:
    """A pod the API server has: 'ready', 'pending' (created, not ready), 'terminating',
    'failed', 'succeeded'."""
    name = name or f"web-{ordinal}"
    meta: dict[str, Any] = {"name": name, "namespace": "default", "uid": f"p{ordinal}",
                            "labels": {"app": "web", ident.POD_NAME_LABEL: name,
                                       ident.REVISION_LABEL: rev}}
    status: dict[str, Any] = {"phase": "Pending"}
    if state in ("ready", "terminating"):
        since = (NOW - timedelta(seconds=ready_for)).strftime("%Y-%m-%dT%H:%M:%SZ")
        status = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True",
                                                      "lastTransitionTime": since}]}
    if state == "terminating":
        meta["deletionTimestamp"] = "2026-01-01T11:59:00Z"
    if state in ("failed", "succeeded"):
        status = {"phase": state.capitalize()}
    return {"metadata": meta, "spec": {}, "status": status}


def names(pods: list[dict[str, Any]]) -> list[str]:
    return [p["metadata"]["name"] for p in pods]


def summary(plan: P.Plan) -> tuple[list[str], list[str], list[str]]:
    return (names(plan.create), [f"{p['metadata']['name']}:{why}" for p, why in plan.delete],
            names(plan.relabel))


@pytest.mark.parametrize(("the_set", "pods", "revs", "wanted"), [
    (sts(), [], SAME, (["web-0"], [], [])),
    (sts(), [pod(0, "pending")], SAME, ([], [], [])),
    (sts(), [pod(0)], SAME, (["web-1"], [], [])),
    (sts(), [pod(0), pod(1)], SAME, (["web-2"], [], [])),
    (sts(), [pod(0), pod(1), pod(2)], SAME, ([], [], [])),
    (sts(podManagementPolicy="Parallel"), [], SAME, (["web-0", "web-1", "web-2"], [], [])),
    (sts(podManagementPolicy="Parallel"), [pod(1, "pending")], SAME, (["web-0", "web-2"], [], [])),
    (sts(ordinals={"start": 5}), [], SAME, (["web-5"], [], [])),
    (sts(ordinals={"start": 5}), [pod(5)], SAME, (["web-6"], [], [])),
    (sts(), [pod(1)], SAME, (["web-0"], [], [])),
    (sts(minReadySeconds=30), [pod(0, ready_for=10)], SAME, ([], [], [])),
    (sts(minReadySeconds=30), [pod(0, ready_for=60)], SAME, (["web-1"], [], [])),
], ids=["first-pod-only", "waits-for-ready", "next-after-ready", "third", "steady", "parallel-all",
        "parallel-fills-gaps", "start-ordinal", "start-ordinal-next", "recreates-lowest-first",
        "waits-for-min-ready", "available-after-min-ready"])
def test_scale_up(the_set: dict[str, Any], pods: list[dict[str, Any]], revs: P.Revisions,
                  wanted: tuple[list[str], list[str], list[str]]) -> None:
    assert summary(P.plan_sync(the_set, pods, revs, NOW)) == wanted


@pytest.mark.parametrize(("the_set", "pods", "wanted"), [
    (sts(1), [pod(0), pod(1), pod(2)], ([], ["web-2:scale down"], [])),
    (sts(1), [pod(0), pod(1), pod(2, "terminating")], ([], [], [])),
    (sts(1), [pod(0), pod(1)], ([], ["web-1:scale down"], [])),
    (sts(1), [pod(0, "pending"), pod(1), pod(2)], ([], [], [])),
    (sts(1), [pod(0), pod(1), pod(2, "pending")], ([], ["web-2:scale down"], [])),
    (sts(1), [pod(0), pod(1, "pending"), pod(2)], ([], ["web-2:scale down"], [])),
    (sts(1, podManagementPolicy="Parallel"), [pod(0), pod(1), pod(2)],
     ([], ["web-2:scale down", "web-1:scale down"], [])),
    (sts(0), [pod(0), pod(1)], ([], ["web-1:scale down"], [])),
    (sts(3, ordinals={"start": 1}), [pod(0), pod(1), pod(2)], (["web-3"], [], [])),
    (sts(3, ordinals={"start": 1}), [pod(0), pod(1), pod(2), pod(3)], ([], ["web-0:scale down"], [])),
    (sts(2, ordinals={"start": 1}), [pod(0), pod(1), pod(2), pod(3)], ([], ["web-3:scale down"], [])),
], ids=["highest-first", "one-at-a-time", "next-when-gone", "waits-for-replicas-ready",
        "unhealthy-first-goes", "blocked-by-unhealthy-below", "parallel-all-at-once", "to-zero",
        "start-moved-creates-first", "start-moved-then-drops-below", "outside-above-first"])
def test_scale_down(the_set: dict[str, Any], pods: list[dict[str, Any]],
                    wanted: tuple[list[str], list[str], list[str]]) -> None:
    assert summary(P.plan_sync(the_set, pods, SAME, NOW)) == wanted


@pytest.mark.parametrize(("the_set", "pods", "wanted"), [
    (sts(), [pod(0), pod(1), pod(2)], ([], ["web-2:update"], [])),
    (sts(), [pod(0), pod(1), pod(2, "pending", rev=B)], ([], [], [])),
    (sts(), [pod(0), pod(1), pod(2, rev=B)], ([], ["web-1:update"], [])),
    (sts(), [pod(0), pod(1, "terminating"), pod(2, rev=B)], ([], [], [])),
    (sts(), [pod(0), pod(2, rev=B)], (["web-1"], [], [])),
    (sts(), [pod(0), pod(1, rev=B), pod(2, rev=B)], ([], ["web-0:update"], [])),
    (sts(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}),
     [pod(0), pod(1), pod(2)], ([], ["web-2:update"], [])),
    (sts(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}),
     [pod(0), pod(1), pod(2, rev=B)], ([], [], [])),
    (sts(updateStrategy={"type": "OnDelete"}), [pod(0), pod(1), pod(2)], ([], [], [])),
    (sts(podManagementPolicy="Parallel"), [pod(0), pod(1), pod(2, "pending", rev=B)], ([], [], [])),
], ids=["highest-first", "waits-for-updated-ready", "next-down", "waits-for-terminating",
        "recreated-at-update", "lowest-last", "partition-updates-above", "partition-stops",
        "on-delete-leaves-pods", "parallel-still-one-at-a-time"])
def test_rolling_update(the_set: dict[str, Any], pods: list[dict[str, Any]],
                        wanted: tuple[list[str], list[str], list[str]]) -> None:
    assert summary(P.plan_sync(the_set, pods, ROLL, NOW)) == wanted


def test_recreated_pod_takes_the_revision_of_its_side_of_the_partition() -> None:
    the_set = sts(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}},
                  podManagementPolicy="Parallel")
    plan = P.plan_sync(the_set, [], ROLL, NOW)
    got = {p["metadata"]["name"]: (ident.revision_of(p), p["spec"]["containers"][0]["image"])
           for p in plan.create}
    assert got == {"web-0": (A, "nginx:1"), "web-1": (A, "nginx:1"), "web-2": (B, "nginx:2")}


def test_on_delete_recreates_at_the_update_revision() -> None:
    plan = P.plan_sync(sts(updateStrategy={"type": "OnDelete"}), [pod(0), pod(2)], ROLL, NOW)
    assert [(p["metadata"]["name"], ident.revision_of(p)) for p in plan.create] == [("web-1", B)]


@pytest.mark.parametrize(("pods", "wanted"), [
    ([pod(0, "failed"), pod(1)], ([], ["web-0:failed"], [])),
    ([pod(0, "succeeded")], ([], ["web-0:failed"], [])),
    ([pod(0), pod(1, "failed"), pod(2)], ([], ["web-1:failed"], [])),
], ids=["failed", "succeeded-too", "failed-in-the-middle"])
def test_finished_pods_are_replaced(pods: list[dict[str, Any]],
                                    wanted: tuple[list[str], list[str], list[str]]) -> None:
    assert summary(P.plan_sync(sts(), pods, SAME, NOW)) == wanted


def test_a_pod_without_its_identity_label_is_relabelled() -> None:
    bare = pod(1)
    del bare["metadata"]["labels"][ident.POD_NAME_LABEL]
    assert summary(P.plan_sync(sts(2), [pod(0), bare], SAME, NOW)) == ([], [], ["web-1"])


def test_a_set_being_deleted_only_reports() -> None:
    the_set = sts()
    the_set["metadata"]["deletionTimestamp"] = "2026-01-01T11:00:00Z"
    plan = P.plan_sync(the_set, [pod(0, "failed")], SAME, NOW)
    assert summary(plan) == ([], [], [])


@pytest.mark.parametrize(("pods", "revs", "wanted"), [
    ([], SAME, {"replicas": 0, "readyReplicas": 0, "currentReplicas": 0, "updatedReplicas": 0,
                "availableReplicas": 0, "currentRevision": A, "updateRevision": A}),
    ([pod(0), pod(1, "pending")], SAME,
     {"replicas": 2, "readyReplicas": 1, "currentReplicas": 2, "updatedReplicas": 2,
      "availableReplicas": 1, "currentRevision": A, "updateRevision": A}),
    ([pod(0), pod(1, rev=B), pod(2, rev=B)], ROLL,
     {"replicas": 3, "readyReplicas": 3, "currentReplicas": 0, "updatedReplicas": 2,
      "availableReplicas": 3, "currentRevision": A, "updateRevision": B}),
    ([pod(0, rev=B), pod(1, rev=B), pod(2, rev=B)], ROLL,
     {"replicas": 3, "readyReplicas": 3, "currentReplicas": 3, "updatedReplicas": 3,
      "availableReplicas": 3, "currentRevision": B, "updateRevision": B}),
    ([pod(0), pod(1), pod(2, "terminating")], SAME,
     {"replicas": 3, "readyReplicas": 3, "currentReplicas": 2, "updatedReplicas": 2,
      "availableReplicas": 3, "currentRevision": A, "updateRevision": A}),
], ids=["empty", "one-ready", "rolling-counts-current-after-deletion", "rollout-complete",
        "terminating-not-counted-by-revision"])
def test_status(pods: list[dict[str, Any]], revs: P.Revisions, wanted: dict[str, Any]) -> None:
    status = P.plan_sync(sts(), pods, revs, NOW).status
    assert status == {**wanted, "observedGeneration": 2, "collisionCount": 0}


def test_pod_identity() -> None:
    the_set = sts(volumeClaimTemplates=[{"metadata": {"name": "data"}, "spec": {}}])
    the_set["spec"]["template"] = {**TEMPLATE_A, "metadata": {"labels": {"app": "web"},
                                                              "annotations": {"a": "b"}}}
    made = ident.new_pod(the_set, the_set["spec"]["template"], 4, A)
    assert made["metadata"] == {
        "name": "web-4", "generateName": "web-", "namespace": "default",
        "labels": {"app": "web", ident.POD_NAME_LABEL: "web-4", ident.POD_INDEX_LABEL: "4",
                   ident.REVISION_LABEL: A},
        "annotations": {"a": "b"},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web",
                             "uid": "u1", "controller": True, "blockOwnerDeletion": True}]}
    assert made["spec"]["hostname"] == "web-4" and made["spec"]["subdomain"] == "nginx"
    assert made["spec"]["volumes"] == [{"name": "data", "persistentVolumeClaim": {"claimName": "data-web-4"}}]
    assert "volumes" not in the_set["spec"]["template"]["spec"]


@pytest.mark.parametrize(("name", "wanted"), [
    ("web-0", ("web", 0)), ("my-web-12", ("my-web", 12)), ("web", ("", -1)), ("web-x", ("", -1)),
    ("web-99999999999", ("web", -1)),
], ids=["simple", "dashes", "no-ordinal", "not-a-number", "beyond-int32"])
def test_parent_and_ordinal(name: str, wanted: tuple[str, int]) -> None:
    assert ident.parent_and_ordinal(name) == wanted


# --- revisions ------------------------------------------------------------------------------

def test_fnv32_and_safe_encoding_are_gos() -> None:
    assert rv.fnv32(b"") == 0x811C9DC5
    assert rv.fnv32(b"a") == 0x050C5D7E  # FNV-1, not FNV-1a (0xe40c292c)
    assert rv.safe_encode("0123456789") == "456789bcdf"


def test_revision_is_kubes_patch_of_the_template() -> None:
    the_set = sts()
    the_set["metadata"]["annotations"] = {"kubernetes.io/change-cause": "first"}
    rev = rv.new_revision(the_set, 1, 0)
    digest = rv.hash_revision(rev["data"], 0)
    assert rev["metadata"]["name"] == f"web-{digest}"
    assert rev["metadata"]["labels"] == {"app": "web", rv.HASH_LABEL: digest}
    assert rev["metadata"]["annotations"] == {"kubernetes.io/change-cause": "first"}
    template = the_set["spec"]["template"]
    assert rev["data"] == {"spec": {"template": {
        **template, "metadata": {**template["metadata"], "creationTimestamp": None}, "$patch": "replace"}}}
    assert json.dumps(rev["data"]) == json.dumps(rev["data"], sort_keys=True)  # Go's map order
    assert rv.template_of(rev) == the_set["spec"]["template"]
    assert rv.hash_revision(rev["data"], 1) != digest  # a collision moves the name
    other = sts(template=TEMPLATE_B)
    assert rv.new_revision(other, 1, 0)["metadata"]["name"] != rev["metadata"]["name"]


def _stored(the_set: dict[str, Any], number: int) -> dict[str, Any]:
    rev = rv.new_revision(the_set, number, 0)
    rev["metadata"]["creationTimestamp"] = f"2026-01-01T00:00:0{number}Z"
    return rev


def test_choose_revisions() -> None:
    a, b = sts(), sts(template=TEMPLATE_B)
    choice = rv.choose_revisions(a, [])
    assert choice.create and choice.current is None and choice.update["revision"] == 1
    ra = _stored(a, 1)
    choice = rv.choose_revisions({**a, "status": {"currentRevision": ra["metadata"]["name"]}}, [ra])
    assert not choice.create and choice.update is ra and choice.current is ra
    choice = rv.choose_revisions({**b, "status": {"currentRevision": ra["metadata"]["name"]}}, [ra])
    assert choice.create and choice.update["revision"] == 2 and choice.current is ra
    rb = _stored(b, 2)
    choice = rv.choose_revisions({**a, "status": {"currentRevision": rb["metadata"]["name"]}}, [ra, rb])
    assert choice.update is ra and choice.renumber_to == 3 and choice.current is rb  # a rollback


@pytest.mark.parametrize(("count", "live", "limit", "wanted"), [
    (5, {2, 5}, 10, []),
    (5, {5}, 2, [1, 2]),
    (5, {1, 5}, 1, [2, 3]),
    (3, {3}, 0, [1, 2]),
], ids=["under-limit", "oldest-first", "live-kept", "limit-zero"])
def test_history_to_delete(count: int, live: set[int], limit: int, wanted: list[int]) -> None:
    revs = [{"metadata": {"name": f"r{i}"}, "revision": i} for i in range(count, 0, -1)]
    got = rv.history_to_delete(revs, {f"r{i}" for i in live}, limit)
    assert [r["revision"] for r in got] == wanted
