"""What a CronJob needs, decided from the CronJob and its Jobs as plain objects (kube 1.31's
cronjob_controllerv2.go syncCronJob and utils.go).

- `children`: the Jobs it controls against `status.active`: finished ones leave the list
  (SawCompletedJob) and move `lastSuccessfulTime`; a running one it did not list is reported
  (UnexpectedJob); listed ones the cache lacks are for the caller to look up (MissingJob).
- `schedule_of`: the parsed schedule in `timeZone` (the controller passes it as the cron
  parser's TZ= prefix, as kube's formatSchedule does), or the event saying why not.
- `most_recent_time`: the latest scheduled time not after now and not before the last
  scheduled (or creation) time and the starting deadline, with how many were missed (kube's
  approximation: over 100 is "too many").
- `decide`: start a Job for that time, or not: suspended, too late for the starting
  deadline (MissSchedule), already started (the Job's name is the time in minutes), Forbid
  with a Job still running (JobAlreadyActive); Replace deletes the running ones first.
- `history_to_delete`: finished Jobs beyond successful/failedJobsHistoryLimit, oldest first.
- `job_from_template`: the Job `<cronjob>-<minutes since the epoch>`, the scheduled time as an
  annotation in the CronJob's zone, controlled by the CronJob.
"""
from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo

from kubecore.api import batch as B
from kubecore.api import cron
from kubecore.api.types import Obj, nested
from services.jobs.job_plan import parse_time

NEXT_SCHEDULE_DELTA = 0.1  # kube's nextScheduleDelta: a little after, for clock skew
TOO_MANY_MISSED = 100
Event = tuple[str, str, str]


def rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _uid(obj: Obj) -> str:
    return str(nested(obj, "metadata", "uid") or "")


def _name(obj: Obj) -> str:
    return str(nested(obj, "metadata", "name") or "")


def job_reference(job: Obj) -> Obj:
    """The ObjectReference status.active lists."""
    meta = job.get("metadata") or {}
    return {"kind": "Job", "namespace": meta.get("namespace"), "name": meta.get("name"),
            "uid": meta.get("uid"), "apiVersion": "batch/v1",
            "resourceVersion": meta.get("resourceVersion")}


# --- the Jobs it has -------------------------------------------------------------------------

@dataclass
class Children:
    status: Obj
    events: list[Event] = field(default_factory=list)
    missing: list[Obj] = field(default_factory=list)  # active refs the cache does not have


def children(cj: Obj, jobs: Sequence[Obj]) -> Children:
    status = copy.deepcopy(cj.get("status") or {})
    out = Children(status)
    active: list[Obj] = list(status.get("active") or [])
    listed = {str(ref.get("uid")) for ref in active}
    for job in jobs:
        finished = B.finished_condition(job)
        if _uid(job) not in listed and finished is None:
            out.events.append(("Warning", "UnexpectedJob",
                               f"Saw a job that the controller did not create or forgot: {_name(job)}"))
        elif _uid(job) in listed and finished is not None:
            active = [r for r in active if str(r.get("uid")) != _uid(job)]
            out.events.append(("Normal", "SawCompletedJob",
                               f"Saw completed job: {_name(job)}, condition: {finished.get('type')}"))
        if finished is not None and finished.get("type") == B.COMPLETE:
            _later_success(status, nested(job, "status", "completionTime"))
    have = {_uid(j) for j in jobs}
    out.missing = [r for r in active if str(r.get("uid")) not in have]
    if active:
        status["active"] = active
    else:
        status.pop("active", None)
    return out


def _later_success(status: Obj, completed: object) -> None:
    when, last = parse_time(completed), parse_time(status.get("lastSuccessfulTime"))
    if when is not None and (last is None or when > last):
        status["lastSuccessfulTime"] = rfc3339(when)


# --- the schedule ----------------------------------------------------------------------------

def schedule_of(cj: Obj) -> tuple[cron.Schedule | None, Event | None]:
    spec = cj.get("spec") or {}
    schedule, zone_name = str(spec.get("schedule") or ""), spec.get("timeZone")
    zone: tzinfo = UTC
    if isinstance(zone_name, str):
        try:
            zone = cron.load_zone(zone_name)
        except cron.CronError as exc:
            return None, ("Warning", "UnknownTimeZone", f'invalid timeZone: "{zone_name}": {exc}')
    try:
        return cron.parse(schedule, zone), None
    except cron.CronError as exc:
        return None, ("Warning", "UnparseableSchedule", f'unparseable schedule: "{schedule}" : {exc}')


@dataclass(frozen=True)
class Recent:
    earliest: datetime
    most_recent: datetime | None
    missed: int


def most_recent_time(cj: Obj, now: datetime, schedule: cron.Schedule, *,
                     with_deadline: bool) -> Recent:
    """kube's mostRecentScheduleTime."""
    earliest = parse_time(nested(cj, "status", "lastScheduleTime")) or \
        parse_time(nested(cj, "metadata", "creationTimestamp")) or now
    deadline = nested(cj, "spec", "startingDeadlineSeconds")
    if with_deadline and isinstance(deadline, int):
        earliest = max(earliest, now - timedelta(seconds=deadline))
    t1 = schedule.next(earliest)
    t2 = schedule.next(t1)
    if now < t1:
        return Recent(earliest, None, 0)
    if now < t2:
        return Recent(earliest, t1, 0)
    between = round((t2 - t1).total_seconds())
    if between < 1:
        return Recent(earliest, None, 0)  # kube: an invalid schedule (a day that never comes)
    missed = int((now - t1).total_seconds()) // between + 1
    recent: datetime | None = None
    t = schedule.next(t1 + timedelta(seconds=(missed - 2) * between))
    while t <= now:
        recent = t
        t = schedule.next(t)
    return Recent(earliest, recent, missed)


def requeue_after(cj: Obj, now: datetime, schedule: cron.Schedule) -> float:
    """Seconds until the next scheduled time (kube's nextScheduleTimeDuration)."""
    recent = most_recent_time(cj, now, schedule, with_deadline=False)
    base = recent.most_recent or recent.earliest
    return (schedule.next(base) - now).total_seconds() + NEXT_SCHEDULE_DELTA


def job_name(cj: Obj, scheduled: datetime) -> str:
    return f"{_name(cj)}-{int(scheduled.timestamp()) // 60}"


def _go_rfc3339(t: datetime) -> str:
    text = t.isoformat(timespec="seconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def job_from_template(cj: Obj, scheduled: datetime, zone: tzinfo) -> Obj:
    template = nested(cj, "spec", "jobTemplate") or {}
    tmeta = template.get("metadata") or {}
    annotations = dict(tmeta.get("annotations") or {})
    annotations[B.CRONJOB_SCHEDULED_TIMESTAMP] = _go_rfc3339(scheduled.astimezone(zone))
    meta = cj["metadata"]
    job_meta: Obj = {"name": job_name(cj, scheduled), "namespace": meta.get("namespace"),
                     "annotations": annotations,
                     "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob",
                                          "name": meta["name"], "uid": meta["uid"],
                                          "controller": True, "blockOwnerDeletion": True}]}
    if tmeta.get("labels"):
        job_meta["labels"] = dict(tmeta["labels"])
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": job_meta,
            "spec": copy.deepcopy(template.get("spec") or {})}


# --- whether to start a Job now --------------------------------------------------------------

@dataclass
class Decision:
    create: Obj | None = None
    scheduled: datetime | None = None
    replace: list[Obj] = field(default_factory=list)  # active refs to delete first
    events: list[Event] = field(default_factory=list)
    requeue_after: float | None = None


def decide(cj: Obj, status: Obj, now: datetime, schedule: cron.Schedule) -> Decision:
    """syncCronJob from the schedule on, with `status` after `children`."""
    spec = cj.get("spec") or {}
    view = {**cj, "status": status}
    out = Decision()
    if spec.get("suspend") is True:
        return out
    recent = most_recent_time(view, now, schedule, with_deadline=True)
    if recent.missed > TOO_MANY_MISSED:
        out.events.append(("Warning", "TooManyMissedTimes", f"too many missed start times: "
                           f"{recent.missed}. Set or decrease .spec.startingDeadlineSeconds or "
                           "check clock skew"))
    out.requeue_after = requeue_after(view, now, schedule)
    scheduled = recent.most_recent
    if scheduled is None:
        return out
    deadline = spec.get("startingDeadlineSeconds")
    if isinstance(deadline, int) and scheduled + timedelta(seconds=deadline) < now:
        out.events.append(("Warning", "MissSchedule", "Missed scheduled time to start a job: "
                           + scheduled.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")))
        return out
    name = job_name(cj, scheduled)
    active: list[Obj] = list(status.get("active") or [])
    if any(r.get("name") == name for r in active) or \
            parse_time(status.get("lastScheduleTime")) == scheduled:
        return out
    policy = spec.get("concurrencyPolicy") or "Allow"
    if policy == "Forbid" and active:
        out.events.append(("Normal", "JobAlreadyActive", "Not starting job because prior "
                           "execution is running and concurrency policy is Forbid"))
        return out
    if policy == "Replace":
        out.replace = active
    out.create = job_from_template(cj, scheduled, schedule.zone)
    out.scheduled = scheduled
    return out


def started(cj: Obj, status: Obj, job: Obj, scheduled: datetime, schedule: cron.Schedule,
            now: datetime) -> tuple[Obj, float]:
    """The status once `job` started for `scheduled`, and when to look again."""
    out = copy.deepcopy(status)
    out["active"] = [*(out.get("active") or []), job_reference(job)]
    out["lastScheduleTime"] = rfc3339(scheduled)
    return out, requeue_after({**cj, "status": out}, now, schedule)


# --- history -----------------------------------------------------------------------------------

def history_to_delete(cj: Obj, jobs: Sequence[Obj]) -> list[Obj]:
    """Finished Jobs beyond the history limits, oldest start first (kube's byJobStartTime)."""
    spec = cj.get("spec") or {}
    out: list[Obj] = []
    for ctype, limit_name in ((B.COMPLETE, "successfulJobsHistoryLimit"), (B.FAILED, "failedJobsHistoryLimit")):
        limit = spec.get(limit_name)
        if not isinstance(limit, int):
            continue
        done = [j for j in jobs if (B.finished_condition(j) or {}).get("type") == ctype]
        done.sort(key=_start_order)
        out += done[:max(0, len(done) - limit)]
    return out


def _start_order(job: Obj) -> tuple[int, str, str]:
    start = nested(job, "status", "startTime")
    return (0, str(start), _name(job)) if start else (1, "", _name(job))
