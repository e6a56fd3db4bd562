"""The Job controller's decisions (services.jobs.job_plan) as tables: pods created and
deleted, counting through the tracking finalizer, backoff, deadlines, the conditions kube
1.31 writes, Indexed Jobs, suspension and the TTL."""
from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubecore.api import resources as R
from services.apiserver.registry.strategy import prepare_create
from services.jobs import job_plan as P

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
FIN = "batch.kubernetes.io/job-tracking"


def stamp(seconds_ago: float) -> str:
    return P.rfc3339(NOW - timedelta(seconds=seconds_ago))


def make_job(status: dict[str, Any] | None = None, restart: str = "Never", **spec: Any) -> dict[str, Any]:
    body = {"metadata": {"name": "pi"},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}],
                                           "restartPolicy": restart}}, **spec}}
    job = prepare_create(R.JOBS, body, "default")
    job["status"] = status if status is not None else {"startTime": stamp(30)}
    return job


def pod(name: str, phase: str = "Running", *, tracked: bool = True, finished: float = 20,
        deleting: bool = False, index: int | None = None, ready: bool = False, restarts: int = 0) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default", "uid": f"uid-{name}",
                            "creationTimestamp": stamp(60)}
    if tracked:
        meta["finalizers"] = [FIN]
    if deleting:
        meta["deletionTimestamp"] = stamp(finished)
    if index is not None:
        meta["annotations"] = {"batch.kubernetes.io/job-completion-index": str(index)}
    state: dict[str, Any] = {"running": {}}
    if phase in ("Succeeded", "Failed"):
        state = {"terminated": {"exitCode": 0 if phase == "Succeeded" else 1, "finishedAt": stamp(finished)}}
    status = {"phase": phase, "containerStatuses": [{"name": "c", "state": state, "restartCount": restarts}],
              "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    return {"metadata": meta, "spec": {"nodeName": "node-1"}, "status": status}


def settled(job: dict[str, Any], plan: P.JobPlan) -> dict[str, Any]:
    """The status after a sync whose finalizer removals all went through."""
    status, _ = P.settle(job, plan.status, {p["metadata"]["uid"] for p in plan.finalize}, plan.indexes, NOW)
    return status


def counts(status: dict[str, Any]) -> tuple[int, int, int]:
    return status.get("active", 0), status.get("succeeded", 0), status.get("failed", 0)


def conditions(status: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(c["type"], c["status"], c.get("reason", "")) for c in status.get("conditions") or []]


# --- how many pods ---------------------------------------------------------------------------

@pytest.mark.parametrize(("spec", "pods", "created", "deleted"), [
    ({}, [], 1, 0),
    ({"completions": 10, "parallelism": 3}, [], 3, 0),
    ({"completions": 10, "parallelism": 3}, [pod("a"), pod("b")], 1, 0),
    ({"completions": 4, "parallelism": 3}, [pod("a"), pod("s1", "Succeeded"), pod("s2", "Succeeded")], 1, 0),
    ({"completions": 5, "parallelism": 5}, [pod(f"r{i}") for i in range(3)]
     + [pod(f"s{i}", "Succeeded") for i in range(3)], 0, 1),
    ({"completions": 10, "parallelism": 1}, [pod("a"), pod("b")], 0, 1),
    ({"parallelism": 3}, [], 3, 0),
    ({"parallelism": 3}, [pod("a"), pod("s", "Succeeded")], 0, 0),
    ({"completions": 1000, "parallelism": 600}, [], 500, 0),
], ids=["default-one", "parallelism", "fill-up", "not-beyond-completions", "too-many-running",
        "parallelism-lowered", "work-queue", "work-queue-one-done", "burst-capped"])
def test_pods_wanted(spec: dict[str, Any], pods: list[dict[str, Any]], created: int, deleted: int) -> None:
    plan = P.plan_sync(make_job(**spec), pods, NOW)
    assert (len(plan.create), len(plan.delete)) == (created, deleted)


def test_a_new_job_gets_its_start_time_and_counters() -> None:
    plan = P.plan_sync(make_job(status={}), [], NOW)
    assert plan.status["startTime"] == P.rfc3339(NOW)
    assert (plan.status["active"], plan.status["ready"], plan.status["terminating"]) == (1, 0, 0)


# --- counting through the finalizer ------------------------------------------------------------

def test_finished_pods_are_counted_once_through_uncounted() -> None:
    job = make_job(completions=3, parallelism=3)
    pods = [pod("s", "Succeeded"), pod("f", "Failed"), pod("r", ready=True)]
    plan = P.plan_sync(job, pods, NOW)
    assert plan.flush
    assert plan.status["uncountedTerminatedPods"] == {"succeeded": ["uid-s"], "failed": ["uid-f"]}
    assert sorted(p["metadata"]["name"] for p in plan.finalize) == ["f", "s"]
    after = settled(job, plan)
    assert after["uncountedTerminatedPods"] == {}
    assert (after["succeeded"], after["failed"], after["ready"]) == (1, 1, 1)
    # next sync: finalizers are off, nothing counts twice
    job["status"] = after
    untracked = [pod("s", "Succeeded", tracked=False), pod("f", "Failed", tracked=False), pod("r")]
    again = P.plan_sync(job, untracked, NOW)
    assert not again.flush and not again.finalize
    assert counts(settled(job, again))[1:] == (1, 1)


def test_a_finalizer_not_removed_stays_uncounted() -> None:
    job = make_job(completions=2, parallelism=2)
    plan = P.plan_sync(job, [pod("s", "Succeeded"), pod("t", "Succeeded")], NOW)
    status, _ = P.settle(job, plan.status, {"uid-s"}, plan.indexes, NOW)
    assert status["succeeded"] == 1 and status["uncountedTerminatedPods"] == {"succeeded": ["uid-t"]}
    assert not any(c["type"] == "Complete" for c in status.get("conditions") or [])


def test_a_deleted_pod_counts_as_failed_unless_replacements_wait_for_failed() -> None:
    job = make_job(completions=2, parallelism=2)
    plan = P.plan_sync(job, [pod("d", deleting=True)], NOW)
    assert plan.status["uncountedTerminatedPods"] == {"failed": ["uid-d"]}
    assert len(plan.create) == 2  # TerminatingOrFailed: replaced at once
    waiting = make_job(completions=2, parallelism=2, podReplacementPolicy="Failed")
    plan = P.plan_sync(waiting, [pod("d", deleting=True)], NOW)
    assert not plan.flush and len(plan.create) == 1


# --- failure: backoff, backoffLimit, deadline -------------------------------------------------

@pytest.mark.parametrize(("failures", "last_failed_ago", "wait"), [
    (1, 0, 10), (1, 4, 6), (2, 0, 20), (3, 5, 35), (1, 11, 0), (8, 0, 600),
], ids=["first", "partly-waited", "second", "third", "waited-out", "capped"])
def test_backoff_before_a_replacement(failures: int, last_failed_ago: float, wait: float) -> None:
    job = make_job(backoffLimit=10)
    pods = [pod(f"f{i}", "Failed", tracked=False, finished=last_failed_ago + failures - 1 - i)
            for i in range(failures)]
    plan = P.plan_sync(job, pods, NOW)
    assert P.backoff_remaining(pods, job, NOW) == pytest.approx(wait)
    assert len(plan.create) == (0 if wait else 1)
    if wait:
        assert plan.requeue_after == pytest.approx(wait)


def test_a_success_resets_the_backoff() -> None:
    job = make_job(completions=3, backoffLimit=10)
    pods = [pod("f1", "Failed", tracked=False, finished=30), pod("s", "Succeeded", tracked=False, finished=20)]
    assert P.backoff_remaining(pods, job, NOW) == 0


def test_passing_the_backoff_limit_fails_the_job_in_two_steps() -> None:
    job = make_job(backoffLimit=1, status={"startTime": stamp(60), "failed": 1})
    pods = [pod("f1", "Failed", tracked=False, finished=40), pod("f2", "Failed"), pod("r")]
    plan = P.plan_sync(job, pods, NOW)
    assert conditions(plan.status) == [("FailureTarget", "True", "BackoffLimitExceeded")]
    assert [p["metadata"]["name"] for p in plan.delete] == ["r"] and not plan.create
    # the running pod counts as failed at once: its finalizer comes off with the failed one's
    assert sorted(p["metadata"]["name"] for p in plan.finalize) == ["f2", "r"]
    after, events = P.settle(job, plan.status, {"uid-f2", "uid-r"}, {}, NOW)
    assert not events and after["terminating"] == 1  # Failed waits for the pod to be gone
    job["status"] = after
    terminating = [pod("f1", "Failed", tracked=False), pod("f2", "Failed", tracked=False),
                   pod("r", tracked=False, deleting=True)]
    after, events = P.settle(job, P.plan_sync(job, terminating, NOW).status, set(), {}, NOW)
    assert not events
    job["status"] = after
    gone = terminating[:2]
    after, events = P.settle(job, P.plan_sync(job, gone, NOW).status, set(), {}, NOW)
    assert conditions(after) == [("FailureTarget", "True", "BackoffLimitExceeded"),
                                 ("Failed", "True", "BackoffLimitExceeded")]
    assert after["conditions"][1]["message"] == "Job has reached the specified backoff limit"
    assert events == [("Warning", "BackoffLimitExceeded", "Job has reached the specified backoff limit")]
    assert counts(after) == (0, 0, 3) and "completionTime" not in after


@pytest.mark.parametrize(("limit", "restarts", "fails"), [(6, 5, False), (6, 6, True), (0, 1, True), (0, 0, False)],
                         ids=["below", "at-limit", "zero-limit-one-restart", "zero-limit-no-restart"])
def test_on_failure_counts_container_restarts(limit: int, restarts: int, fails: bool) -> None:
    job = make_job(restart="OnFailure", backoffLimit=limit)
    plan = P.plan_sync(job, [pod("r", restarts=restarts)], NOW)
    assert bool(conditions(plan.status)) is fails


def test_active_deadline() -> None:
    job = make_job(activeDeadlineSeconds=60, status={"startTime": stamp(30)})
    plan = P.plan_sync(job, [pod("r")], NOW)
    assert not conditions(plan.status) and plan.requeue_after == pytest.approx(30)
    job["status"] = {"startTime": stamp(61)}
    plan = P.plan_sync(job, [pod("r")], NOW)
    assert conditions(plan.status) == [("FailureTarget", "True", "DeadlineExceeded")]
    assert plan.status["conditions"][0]["message"] == "Job was active longer than specified deadline"
    assert [p["metadata"]["name"] for p in plan.delete] == ["r"]


# --- success --------------------------------------------------------------------------------

def test_completion_writes_success_criteria_then_complete() -> None:
    job = make_job(completions=2, parallelism=2)
    pods = [pod("a", "Succeeded"), pod("b", "Succeeded")]
    plan = P.plan_sync(job, pods, NOW)
    assert conditions(plan.status) == [("SuccessCriteriaMet", "True", "CompletionsReached")]
    after, events = P.settle(job, plan.status, {"uid-a", "uid-b"}, {}, NOW)
    assert conditions(after) == [("SuccessCriteriaMet", "True", "CompletionsReached"),
                                 ("Complete", "True", "CompletionsReached")]
    assert after["conditions"][1]["message"] == "Reached expected number of succeeded pods"
    assert after["completionTime"] == P.rfc3339(NOW) and counts(after) == (0, 2, 0)
    assert events == [("Normal", "Completed", "Job completed")]
    job["status"] = after
    assert not P.plan_sync(job, [pod("a", "Succeeded", tracked=False)], NOW).create


def test_a_work_queue_job_completes_when_one_succeeded_and_none_run() -> None:
    job = make_job(parallelism=2)
    assert not conditions(P.plan_sync(job, [pod("s", "Succeeded"), pod("r")], NOW).status)
    assert conditions(P.plan_sync(job, [pod("s", "Succeeded"), pod("f", "Failed")], NOW).status) == [
        ("SuccessCriteriaMet", "True", "CompletionsReached")]


# --- Indexed ------------------------------------------------------------------------------------

def test_indexed_jobs_start_the_lowest_pending_indexes() -> None:
    job = make_job(completions=5, parallelism=3, completionMode="Indexed",
                   status={"startTime": stamp(30), "completedIndexes": "0"})
    pods = [pod("i1", index=1), pod("i2", "Succeeded", index=2), pod("dup", index=1)]
    plan = P.plan_sync(job, pods, NOW)
    assert plan.create == [3, 4]
    assert [p["metadata"]["name"] for p in plan.delete] == ["dup"]
    after = settled(job, plan)
    assert after["completedIndexes"] == "0,2" and after["succeeded"] == 1


def test_an_indexed_job_completes_when_every_index_succeeded() -> None:
    job = make_job(completions=3, parallelism=3, completionMode="Indexed",
                   status={"startTime": stamp(30), "completedIndexes": "0-1", "succeeded": 2})
    plan = P.plan_sync(job, [pod("i2", "Succeeded", index=2)], NOW)
    after, events = P.settle(job, plan.status, {"uid-i2"}, plan.indexes, NOW)
    assert after["completedIndexes"] == "0-2" and after["succeeded"] == 3
    assert [c[0] for c in conditions(after)] == ["SuccessCriteriaMet", "Complete"]


@pytest.mark.parametrize(("indexes", "text"), [([], ""), ([0], "0"), ([0, 1, 2], "0-2"),
                                               ([5, 0, 1, 3], "0-1,3,5"), ([2, 3, 7, 8, 9], "2-3,7-9")],
                         ids=["none", "one", "run", "mixed", "two-runs"])
def test_completed_indexes_text(indexes: list[int], text: str) -> None:
    assert P.format_indexes(indexes) == text
    assert P.parse_indexes(text) == set(indexes)


def test_an_indexed_pod() -> None:
    job = make_job(completions=3, completionMode="Indexed")
    new = P.new_pod(job, 2)
    meta = new["metadata"]
    assert meta["generateName"] == "pi-2-" and meta["finalizers"] == [FIN]
    assert meta["labels"]["batch.kubernetes.io/job-completion-index"] == "2"
    assert meta["annotations"]["batch.kubernetes.io/job-completion-index"] == "2"
    assert meta["ownerReferences"][0] | {} == {"apiVersion": "batch/v1", "kind": "Job", "name": "pi",
                                               "uid": job["metadata"]["uid"], "controller": True,
                                               "blockOwnerDeletion": True}
    assert new["spec"]["hostname"] == "pi-2"
    assert new["spec"]["containers"][0]["env"][0]["name"] == "JOB_COMPLETION_INDEX"
    plain = P.new_pod(job | {"spec": {**job["spec"], "completionMode": "NonIndexed"}}, None)
    assert plain["metadata"]["generateName"] == "pi-" and "hostname" not in plain["spec"]


# --- suspend ------------------------------------------------------------------------------------

def test_suspending_and_resuming() -> None:
    job = make_job(suspend=True, completions=2, parallelism=2)
    plan = P.plan_sync(job, [pod("a"), pod("b")], NOW)
    assert len(plan.delete) == 2 and not plan.create
    assert conditions(plan.status) == [("Suspended", "True", "JobSuspended")]
    assert plan.events == [("Normal", "Suspended", "Job suspended")]
    job["status"] = settled(job, plan)
    job["spec"]["suspend"] = False
    later = NOW + timedelta(minutes=5)
    plan = P.plan_sync(job, [], later)
    assert conditions(plan.status) == [("Suspended", "False", "JobResumed")]
    assert plan.status["startTime"] == P.rfc3339(later) and len(plan.create) == 2


def test_a_job_created_suspended_has_no_start_time() -> None:
    plan = P.plan_sync(make_job(status={}, suspend=True), [], NOW)
    assert "startTime" not in plan.status and not plan.create


# --- ttlSecondsAfterFinished -----------------------------------------------------------------

@pytest.mark.parametrize(("ttl", "conds", "expires"), [
    (None, [("Complete", "True")], None),
    (100, [], None),
    (100, [("SuccessCriteriaMet", "True"), ("Complete", "True")], NOW + timedelta(seconds=100)),
    (0, [("FailureTarget", "True"), ("Failed", "True")], NOW),
], ids=["no-ttl", "not-finished", "complete", "failed-zero"])
def test_ttl_expiry(ttl: int | None, conds: list[tuple[str, str]], expires: datetime | None) -> None:
    job = make_job(**({"ttlSecondsAfterFinished": ttl} if ttl is not None else {}))
    job["status"] = {"conditions": [{"type": t, "status": s, "lastTransitionTime": P.rfc3339(NOW)}
                                    for t, s in conds]}
    assert P.expire_time(copy.deepcopy(job)) == expires


def test_a_pod_whose_finalizer_is_off_is_not_counted_again_from_a_stale_cache() -> None:
    job = make_job(completions=3, parallelism=3, status={"startTime": stamp(30), "succeeded": 1,
                                                         "uncountedTerminatedPods": {}})
    stale = [pod("s", "Succeeded"), pod("r"), pod("q")]  # "s" was counted; the cache lags
    assert P.plan_sync(job, stale, NOW).status["uncountedTerminatedPods"] == {"succeeded": ["uid-s"]}
    plan = P.plan_sync(job, stale, NOW, finalizing=frozenset({"uid-s"}))
    assert not plan.flush and not plan.finalize
    assert settled(job, plan)["succeeded"] == 1
