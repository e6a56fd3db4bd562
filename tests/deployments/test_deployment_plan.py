"""The Deployment's pure decisions: template hash, surge arithmetic, rollout steps, status."""
from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from services.deployments import deployment_plan as plan
from services.deployments.deployment_plan import RSState

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
TEMPLATE = {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}}


def with_image(image):
    t = copy.deepcopy(TEMPLATE)
    t["spec"]["containers"][0]["image"] = image
    return t


# -- the hash -----------------------------------------------------------------------------

def test_fnv32a_matches_the_reference_vectors():
    assert plan.fnv32a(b"") == 0x811C9DC5
    assert plan.fnv32a(b"a") == 0xE40C292C
    assert plan.fnv32a(b"foobar") == 0xBF9CF968


def test_safe_encode_maps_digits_onto_the_alphabet():
    # '0' is byte 48: 48 % 27 = 21 -> '4'; '9' is 57: 57 % 27 = 3 -> 'f'
    assert plan.safe_encode("09") == "4f"


@pytest.mark.parametrize("a, b, same", [
    (TEMPLATE, copy.deepcopy(TEMPLATE), True),
    (TEMPLATE, with_image("nginx:1.26"), False),
    (TEMPLATE, {**TEMPLATE, "metadata": {"labels": {"app": "web", plan.HASH_LABEL: "x"}}}, True),
    (TEMPLATE, {**TEMPLATE, "metadata": {"labels": {"app": "web", "v": "2"}}}, False),
], ids=["equal", "image-changed", "hash-label-ignored", "label-added"])
def test_pod_template_hash(a, b, same):
    ha, hb = plan.pod_template_hash(a), plan.pod_template_hash(b)
    assert (ha == hb) is same
    assert plan.templates_equal(a, b) is same
    for h in (ha, hb):
        assert 1 <= len(h) <= 10 and set(h) <= set(plan.SAFE_ALPHABET)


def test_pod_template_hash_is_stable_and_moves_with_the_collision_count():
    first = plan.pod_template_hash(TEMPLATE)
    assert first == plan.pod_template_hash(copy.deepcopy(TEMPLATE))
    assert plan.pod_template_hash(TEMPLATE, 1) != first
    assert plan.pod_template_hash(TEMPLATE, 1) != plan.pod_template_hash(TEMPLATE, 2)


# -- surge and unavailable ------------------------------------------------------------------

@pytest.mark.parametrize("replicas, strategy, expected", [
    (3, None, (1, 0)),
    (10, None, (3, 2)),
    (4, {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}, (1, 1)),
    (1, None, (1, 0)),
    (3, {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}, (0, 1)),
    (10, {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "50%", "maxUnavailable": "35%"}},
     (5, 3)),
    (3, {"type": "Recreate"}, (0, 3)),
    (0, None, (0, 0)),
], ids=["3-defaults", "10-defaults-surge-up-unavailable-down", "absolute", "1-default",
        "both-zero-means-one-unavailable", "percentages", "recreate", "zero-replicas"])
def test_surge_and_unavailable(replicas, strategy, expected):
    assert plan.surge_and_unavailable(replicas, strategy) == expected


# -- rolling update ---------------------------------------------------------------------------

def rs(name, replicas, pods=None, available=None, order="2024-05-01T10:00:00Z"):
    return RSState(name, replicas, replicas if pods is None else pods,
                   replicas if available is None else available, order)


NEW0 = rs("new", 0, order="2024-05-01T11:00:00Z")


@pytest.mark.parametrize("replicas, surge, unavailable, new, olds, step", [
    (3, 1, 0, NEW0, [rs("old", 3)], {"new": 1}),
    (3, 1, 0, rs("new", 1, available=0), [rs("old", 3)], {}),
    (3, 1, 0, rs("new", 1), [rs("old", 3)], {"old": 2}),
    (3, 1, 0, rs("new", 1), [rs("old", 2, pods=3)], {}),
    (3, 1, 0, rs("new", 1), [rs("old", 2)], {"new": 2}),
    (4, 1, 1, NEW0, [rs("old", 4)], {"new": 1}),
    (4, 1, 1, rs("new", 1, available=0), [rs("old", 4)], {"old": 3}),
    (3, 1, 0, rs("new", 1), [rs("old", 3, available=1)], {"old": 2}),
    (3, 1, 0, rs("new", 2), [rs("old1", 1, order="2024-05-01T08:00:00Z"),
                             rs("old2", 1, order="2024-05-01T09:00:00Z")], {"old1": 0}),
    (3, 1, 0, rs("new", 5), [rs("old", 0)], {"new": 3}),
    (3, 1, 0, rs("new", 3), [rs("old", 0)], {}),
    (3, 0, 1, NEW0, [rs("old", 3)], {"old": 2}),
    (3, 0, 1, rs("new", 0), [rs("old", 2)], {"new": 1}),
], ids=["start-surges-one", "wait-new-pod-available", "new-available-scale-old-down",
        "old-pod-still-there-blocks-surge", "old-pod-gone-scale-new-up",
        "surge1-unavail1-start", "unavailable-budget-scales-old-down",
        "unhealthy-old-pods-go-first", "oldest-old-first", "new-above-replicas",
        "complete", "no-surge-scales-down-first", "no-surge-then-up"])
def test_rolling_update_step(replicas, surge, unavailable, new, olds, step):
    assert plan.rolling_update_step(replicas, surge, unavailable, new, olds) == step


def test_a_whole_rolling_update_never_breaks_its_bounds():
    """Drive steps to the end, pods turning available at once: at every point at most
    replicas + surge pods, at least replicas - unavailable available."""
    for replicas, surge, unavailable in [(3, 1, 0), (4, 1, 1), (10, 3, 2), (5, 0, 1), (2, 2, 0)]:
        new, old = rs("new", 0, order="b"), rs("old", replicas, order="a")
        for _ in range(100):
            step = plan.rolling_update_step(replicas, surge, unavailable, new, [old])
            if not step:
                break
            new = rs("new", step.get("new", new.replicas), order="b")
            old = rs("old", step.get("old", old.replicas), order="a")
            assert new.pods + old.pods <= replicas + surge
            assert new.available + old.available >= replicas - unavailable
        assert (new.replicas, old.replicas) == (replicas, 0)


# -- recreate and scaling -----------------------------------------------------------------------

@pytest.mark.parametrize("new, olds, old_pods, step", [
    (None, [rs("old", 3)], 3, {"old": 0}),
    (None, [rs("old", 0)], 2, {}),
    (None, [rs("old", 0)], 0, None),
    (rs("new", 0), [rs("old", 0)], 0, {"new": 3}),
    (rs("new", 3), [], 0, {}),
], ids=["old-down-first", "wait-for-old-pods", "create-new", "scale-new-up", "done"])
def test_recreate_step(new, olds, old_pods, step):
    assert plan.recreate_step(3, new, olds, old_pods) == step


@pytest.mark.parametrize("replicas, surge, new, olds, step", [
    (5, 2, rs("new", 3), [rs("old", 0)], {"new": 5}),
    (1, 1, rs("new", 5), [], {"new": 1}),
    (2, 1, rs("new", 0), [], {"new": 2}),
    (2, 1, None, [rs("a", 0, order="1"), rs("b", 0, order="2")], {"b": 2}),
    (3, 1, rs("new", 3), [rs("old", 1)], {"old": 0}),
    (10, 3, rs("new", 4, order="2"), [rs("old", 6, order="1")], {"old": 8, "new": 5}),
    (2, 1, rs("new", 4, order="2"), [rs("old", 6, order="1")], {"old": 2, "new": 1}),
], ids=["one-active-grows", "one-active-shrinks", "none-active-new-takes-all",
        "none-active-latest-old", "new-saturated-olds-to-zero", "proportional-up",
        "proportional-down"])
def test_scale_step(replicas, surge, new, olds, step):
    assert plan.scale_step(replicas, surge, new, olds) == step


@pytest.mark.parametrize("replicas, desired, scaling", [
    (3, [3, 3], False), (5, [3], True), (3, [None], False), (3, [], False),
], ids=["same", "changed", "no-annotation", "no-active"])
def test_is_scaling_event(replicas, desired, scaling):
    assert plan.is_scaling_event(replicas, desired) is scaling


# -- revisions, history ------------------------------------------------------------------------

def rs_obj(name, revision, replicas=0, pods=0, generation=1, observed=1):
    return {"metadata": {"name": name, "annotations": {plan.REVISION: str(revision)},
                         "generation": generation, "creationTimestamp": f"2024-05-01T0{revision}:00:00Z"},
            "spec": {"replicas": replicas}, "status": {"replicas": pods, "observedGeneration": observed}}


@pytest.mark.parametrize("olds, limit, deleted", [
    ([rs_obj("r1", 1), rs_obj("r2", 2), rs_obj("r3", 3)], 10, []),
    ([rs_obj("r3", 3), rs_obj("r1", 1), rs_obj("r2", 2)], 1, ["r1", "r2"]),
    ([rs_obj("r1", 1, replicas=1, pods=1), rs_obj("r2", 2), rs_obj("r3", 3)], 1, ["r2"]),
    ([rs_obj("r1", 1, pods=1), rs_obj("r2", 2, generation=2)], 0, []),
    ([rs_obj("r1", 1), rs_obj("r2", 2)], 0, ["r1", "r2"]),
], ids=["under-limit", "oldest-revisions-first", "busy-ones-kept", "unsettled-kept", "limit-zero"])
def test_history_to_delete(olds, limit, deleted):
    assert [r["metadata"]["name"] for r in plan.history_to_delete(olds, limit)] == deleted


def test_next_revision():
    assert plan.next_revision([]) == 1
    assert plan.next_revision([rs_obj("a", 2), rs_obj("b", 5)]) == 6


# -- the new ReplicaSet and the status ----------------------------------------------------------

DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment",
              "metadata": {"name": "web", "namespace": "default", "uid": "d-uid", "generation": 2},
              "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                       "template": TEMPLATE, "progressDeadlineSeconds": 600,
                       "strategy": {"type": "RollingUpdate",
                                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}}}


def test_new_replicaset_carries_the_hash_everywhere():
    h = plan.pod_template_hash(TEMPLATE)
    made = plan.new_replicaset(DEPLOYMENT, h, 1, 4, 1)
    assert made["metadata"]["name"] == f"web-{h}"
    assert made["spec"]["selector"] == {"matchLabels": {"app": "web", plan.HASH_LABEL: h}}
    assert made["spec"]["template"]["metadata"]["labels"] == {"app": "web", plan.HASH_LABEL: h}
    assert made["metadata"]["annotations"] == {plan.REVISION: "4", plan.DESIRED_REPLICAS: "3",
                                               plan.MAX_REPLICAS: "4"}
    assert made["metadata"]["ownerReferences"][0]["uid"] == "d-uid"
    assert DEPLOYMENT["spec"]["template"]["metadata"]["labels"] == {"app": "web"}  # not mutated


ANNOTATED = {**DEPLOYMENT, "metadata": {**DEPLOYMENT["metadata"], "annotations": {
    "kubernetes.io/change-cause": "kubectl set image web=nginx:2",
    "kubectl.kubernetes.io/last-applied-configuration": "{}", plan.REVISION: "3",
    "deprecated.deployment.rollback.to": "1", "team": "a"}}}


def test_new_replicaset_carries_the_deployment_s_annotations_but_kube_s_skipped_ones():
    made = plan.new_replicaset(ANNOTATED, "abc", 1, 4, 1)
    assert made["metadata"]["annotations"] == {
        "kubernetes.io/change-cause": "kubectl set image web=nginx:2", "team": "a",
        plan.REVISION: "4", plan.DESIRED_REPLICAS: "3", plan.MAX_REPLICAS: "4"}


@pytest.mark.parametrize("have,revision,missing", [
    ({plan.REVISION: "4", "kubernetes.io/change-cause": "kubectl set image web=nginx:2", "team": "a"}, 4, {}),
    ({plan.REVISION: "2"}, 4, {plan.REVISION: "4", "kubernetes.io/change-cause": "kubectl set image web=nginx:2",
                               "team": "a"}),
    ({plan.REVISION: "4", "kubernetes.io/change-cause": "old", "team": "a"}, 4,
     {"kubernetes.io/change-cause": "kubectl set image web=nginx:2"}),
], ids=["in-step", "reused-for-undo", "cause-changed"])
def test_the_new_replicaset_gains_the_revision_and_annotations_it_lacks(have, revision, missing):
    rs = {"metadata": {"name": "web-abc", "annotations": have}}
    assert plan.new_replicaset_annotations(ANNOTATED, rs, revision) == missing


def full_rs(name, replicas, ready, available):
    return {"metadata": {"name": name}, "spec": {"replicas": replicas},
            "status": {"replicas": replicas, "readyReplicas": ready, "availableReplicas": available}}


def conditions(status):
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


@pytest.mark.parametrize("new, olds, counts, conds", [
    (full_rs("web-new", 3, 3, 3), [],
     (3, 3, 3, 3, 0), {"Available": ("True", "MinimumReplicasAvailable"),
                       "Progressing": ("True", "NewReplicaSetAvailable")}),
    (full_rs("web-new", 3, 1, 1), [],
     (3, 3, 1, 1, 2), {"Available": ("False", "MinimumReplicasUnavailable"),
                       "Progressing": ("True", "ReplicaSetUpdated")}),
    (full_rs("web-new", 1, 0, 0), [full_rs("web-old", 3, 3, 3)],
     (4, 1, 3, 3, 1), {"Available": ("True", "MinimumReplicasAvailable"),
                       "Progressing": ("True", "ReplicaSetUpdated")}),
], ids=["complete", "pods-not-ready", "mid-rollout"])
def test_deployment_status(new, olds, counts, conds):
    status = plan.deployment_status(DEPLOYMENT, new, [new, *olds], NOW)
    assert (status["replicas"], status["updatedReplicas"], status["readyReplicas"],
            status["availableReplicas"], status["unavailableReplicas"]) == counts
    assert status["observedGeneration"] == 2
    assert conditions(status) == conds


def test_status_is_stable_once_written():
    """Recomputing from what was written changes nothing: no write loop on our own echo."""
    new = full_rs("web-new", 3, 1, 1)
    first = plan.deployment_status(DEPLOYMENT, new, [new], NOW)
    later = datetime(2024, 5, 1, 12, 1, 0, tzinfo=UTC)
    again = plan.deployment_status({**DEPLOYMENT, "status": first}, new, [new], later)
    assert again == first


def test_progress_deadline_exceeded():
    new = full_rs("web-new", 3, 1, 1)
    first = plan.deployment_status(DEPLOYMENT, new, [new], NOW)
    late = datetime(2024, 5, 1, 12, 11, 0, tzinfo=UTC)
    stalled = plan.deployment_status({**DEPLOYMENT, "status": first}, new, [new], late)
    assert conditions(stalled)["Progressing"] == ("False", "ProgressDeadlineExceeded")
