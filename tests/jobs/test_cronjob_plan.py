"""The CronJob controller's decisions (services.jobs.cronjob_plan) as tables: scheduled
times and missed starts, the starting deadline, concurrency policies, Job names and
templates, history limits, the active list."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubecore.api import resources as R
from services.apiserver.registry.strategy import prepare_create
from services.jobs import cronjob_plan as P

CREATED = datetime(2026, 1, 1, 10, 0, 0, tzinfo=UTC)


def make_cj(status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    body = {"metadata": {"name": "hello"},
            "spec": {"schedule": "*/5 * * * *",
                     "jobTemplate": {"metadata": {"labels": {"app": "hello"}},
                                     "spec": {"template": {"spec": {
                                         "containers": [{"name": "c", "image": "busybox"}],
                                         "restartPolicy": "OnFailure"}}}}, **spec}}
    cj = prepare_create(R.CRONJOBS, body, "default")
    cj["metadata"]["creationTimestamp"] = P.rfc3339(CREATED)
    cj["status"] = status or {}
    return cj


def at(minutes: float) -> datetime:
    return CREATED + timedelta(minutes=minutes)


def decide(cj: dict[str, Any], now: datetime) -> P.Decision:
    schedule, problem = P.schedule_of(cj)
    assert schedule is not None, problem
    return P.decide(cj, cj["status"], now, schedule)


def job(name: str, uid: str, condition: str | None = None, start: float = 0,
        completed: float | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"startTime": P.rfc3339(at(start))}
    if condition:
        status["conditions"] = [{"type": condition, "status": "True"}]
    if completed is not None:
        status["completionTime"] = P.rfc3339(at(completed))
    return {"metadata": {"name": name, "namespace": "default", "uid": uid}, "status": status}


@pytest.mark.parametrize(("now", "last", "scheduled", "requeue"), [
    (at(3), None, None, 120.1),
    (at(5), None, at(5), 300.1),
    (at(7), None, at(5), 180.1),
    (at(7), at(5), None, 180.1),
    (at(23), None, at(20), 120.1),
], ids=["before-first", "on-time", "late", "already-started", "missed-several-runs-latest"])
def test_when_to_start(now: datetime, last: datetime | None, scheduled: datetime | None, requeue: float) -> None:
    cj = make_cj({"lastScheduleTime": P.rfc3339(last)} if last else {})
    d = decide(cj, now)
    assert d.scheduled == scheduled
    assert d.requeue_after == pytest.approx(requeue)
    if scheduled is not None:
        assert d.create is not None and d.create["metadata"]["name"] == P.job_name(cj, scheduled)


def test_the_job_made_for_a_time() -> None:
    cj = make_cj(timeZone="Europe/Berlin")
    d = decide(cj, at(5))
    assert d.create is not None and d.scheduled == at(5)
    meta = d.create["metadata"]
    assert meta["name"] == f"hello-{int(at(5).timestamp()) // 60}"
    assert meta["labels"] == {"app": "hello"}
    assert meta["annotations"] == {"batch.kubernetes.io/cronjob-scheduled-timestamp": "2026-01-01T11:05:00+01:00"}
    assert meta["ownerReferences"] == [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "hello",
                                        "uid": cj["metadata"]["uid"], "controller": True,
                                        "blockOwnerDeletion": True}]
    assert d.create["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"


def test_a_time_zone_moves_the_schedule() -> None:
    cj = make_cj(schedule="0 11 * * *", timeZone="Europe/Berlin")  # 10:00 UTC
    assert decide(cj, at(1)).scheduled is None  # created at 10:00:00 UTC exactly: next is tomorrow
    assert decide(cj, at(24 * 60 + 1)).scheduled == at(24 * 60)


@pytest.mark.parametrize(("deadline", "now", "starts", "event"), [
    (None, at(5) + timedelta(seconds=50), True, None),
    (60, at(5) + timedelta(seconds=50), True, None),
    # kube looks for times only within the deadline: a start missed by more is skipped silently
    (30, at(5) + timedelta(seconds=50), False, None),
], ids=["no-deadline", "within", "too-late"])
def test_starting_deadline(deadline: int | None, now: datetime, starts: bool, event: str | None) -> None:
    cj = make_cj(**({"startingDeadlineSeconds": deadline} if deadline is not None else {}))
    d = decide(cj, now)
    assert (d.create is not None) is starts
    assert [e[1] for e in d.events] == ([event] if event else [])


def test_too_many_missed_starts_are_reported() -> None:
    cj = make_cj(schedule="* * * * *")
    d = decide(cj, at(200))
    assert d.events[0][:2] == ("Warning", "TooManyMissedTimes")
    assert d.scheduled == at(200)


RUNNING = {"active": [{"kind": "Job", "name": "hello-1", "uid": "u1", "namespace": "default",
                       "apiVersion": "batch/v1"}]}


@pytest.mark.parametrize(("policy", "creates", "replaced", "event"), [
    ("Allow", True, 0, None), ("Forbid", False, 0, "JobAlreadyActive"), ("Replace", True, 1, None),
], ids=["allow", "forbid", "replace"])
def test_concurrency_policies(policy: str, creates: bool, replaced: int, event: str | None) -> None:
    d = decide(make_cj(dict(RUNNING), concurrencyPolicy=policy), at(5))
    assert (d.create is not None, len(d.replace)) == (creates, replaced)
    assert [e[1] for e in d.events] == ([event] if event else [])


def test_suspended_starts_nothing() -> None:
    d = decide(make_cj(suspend=True), at(5))
    assert d.create is None and d.requeue_after is None


def test_started_lists_the_job_and_the_time() -> None:
    cj = make_cj()
    schedule, _ = P.schedule_of(cj)
    assert schedule is not None
    new = {"metadata": {"name": "hello-x", "namespace": "default", "uid": "u9", "resourceVersion": "42"}}
    status, requeue = P.started(cj, {}, new, at(5), schedule, at(5))
    assert status == {"active": [{"kind": "Job", "namespace": "default", "name": "hello-x", "uid": "u9",
                                  "apiVersion": "batch/v1", "resourceVersion": "42"}],
                      "lastScheduleTime": "2026-01-01T10:05:00Z"}
    assert requeue == pytest.approx(300.1)


def test_children_update_the_active_list() -> None:
    cj = make_cj({"active": [{"name": "done", "uid": "u1"}, {"name": "gone", "uid": "u2"},
                             {"name": "running", "uid": "u3"}]})
    kids = P.children(cj, [job("done", "u1", "Complete", completed=3), job("running", "u3"),
                           job("manual", "u4")])
    assert [r["name"] for r in kids.status["active"]] == ["gone", "running"]
    assert [r["name"] for r in kids.missing] == ["gone"]
    assert kids.status["lastSuccessfulTime"] == P.rfc3339(at(3))
    assert [e[1] for e in kids.events] == ["SawCompletedJob", "UnexpectedJob"]
    assert kids.events[0][2] == "Saw completed job: done, condition: Complete"


@pytest.mark.parametrize(("schedule", "zone", "reason"), [
    ("*/5 * * * *", "Mars/Olympus", "UnknownTimeZone"),
    ("not a schedule", None, "UnparseableSchedule"),
], ids=["zone", "schedule"])
def test_a_schedule_that_cannot_run(schedule: str, zone: str | None, reason: str) -> None:
    cj = make_cj()
    cj["spec"]["schedule"] = schedule
    if zone:
        cj["spec"]["timeZone"] = zone
    parsed, problem = P.schedule_of(cj)
    assert parsed is None and problem is not None and problem[1] == reason


def test_history_limits_delete_the_oldest_finished() -> None:
    cj = make_cj(successfulJobsHistoryLimit=2, failedJobsHistoryLimit=0)
    jobs = [job("s1", "1", "Complete", start=1), job("s3", "3", "Complete", start=3),
            job("s2", "2", "Complete", start=2), job("f1", "4", "Failed", start=4), job("r", "5")]
    assert [j["metadata"]["name"] for j in P.history_to_delete(cj, jobs)] == ["s1", "f1"]
