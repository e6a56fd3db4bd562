"""What a Job needs, decided from the Job and its pods as plain objects (kube 1.31's
job_controller.go syncJob, manageJob and trackJobStatusAndRemoveFinalizers).

- Pods are counted through the `batch.kubernetes.io/job-tracking` finalizer: a finished pod
  still holding it is not counted yet. Its uid goes to `status.uncountedTerminatedPods` first
  (one status write), then the finalizer comes off the pod, then the uid moves to
  `succeeded`/`failed` (`settle`). A crash between the steps loses and doubles nothing.
- A pod failed when its phase is Failed, or (podReplacementPolicy TerminatingOrFailed) when it
  is being deleted before it succeeded. With restartPolicy OnFailure the containers' restarts
  count toward backoffLimit instead.
- Failure (backoffLimit passed, activeDeadlineSeconds run out) first writes FailureTarget and
  deletes the active pods; Failed follows, with the same reason and message, once no pod is
  terminating and none is uncounted. Success writes SuccessCriteriaMet (CompletionsReached),
  then Complete with completionTime the same way.
- Pods are created up to parallelism, never beyond the completions left; a failure delays the
  next pod by 10s doubling per consecutive failure up to 10 minutes (kube's pod failure
  backoff), measured from the last failed pod's finish time.
- Indexed Jobs: each pod carries its completion index (annotation, label, hostname
  `<job>-<index>`, JOB_COMPLETION_INDEX); the lowest indexes not succeeded and not running
  are started; `status.completedIndexes` lists the succeeded ones as intervals ("0-2,5").
- Suspended: active pods are deleted, Suspended=True (JobSuspended); resuming sets it False
  (JobResumed) and restarts the clock (`startTime`).
"""
from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from kubecore.api import batch as B
from kubecore.api.types import Obj, nested

MAX_CREATE_DELETE_PER_SYNC = 500
DEFAULT_BACKOFF = 10.0
MAX_BACKOFF = 600.0
REASON_BACKOFF = "BackoffLimitExceeded"
MESSAGE_BACKOFF = "Job has reached the specified backoff limit"
REASON_DEADLINE = "DeadlineExceeded"
MESSAGE_DEADLINE = "Job was active longer than specified deadline"
REASON_COMPLETIONS = "CompletionsReached"
MESSAGE_COMPLETIONS = "Reached expected number of succeeded pods"


def rfc3339(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


# --- pods --------------------------------------------------------------------------------

def _uid(pod: Obj) -> str:
    return str(nested(pod, "metadata", "uid") or "")


def _phase(pod: Obj) -> str:
    return str(nested(pod, "status", "phase") or "")


def tracked(pod: Obj) -> bool:
    return B.TRACKING_FINALIZER in (nested(pod, "metadata", "finalizers") or [])


def only_replace_failed(job: Obj) -> bool:
    return bool(nested(job, "spec", "podReplacementPolicy") == "Failed")


def is_failed(pod: Obj, job: Obj) -> bool:
    """kube's isPodFailed: Failed, or deleted before it succeeded (unless replacements wait
    for Failed)."""
    if _phase(pod) == "Failed":
        return True
    if only_replace_failed(job):
        return False
    return bool(nested(pod, "metadata", "deletionTimestamp")) and _phase(pod) != "Succeeded"


def is_active(pod: Obj) -> bool:
    return _phase(pod) not in ("Succeeded", "Failed") and not nested(pod, "metadata", "deletionTimestamp")


def is_terminating(pod: Obj) -> bool:
    return bool(nested(pod, "metadata", "deletionTimestamp")) and _phase(pod) not in ("Succeeded", "Failed")


def is_ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in nested(pod, "status", "conditions") or [] if isinstance(c, dict))


def completion_index(pod: Obj) -> int | None:
    value = (nested(pod, "metadata", "annotations") or {}).get(B.COMPLETION_INDEX)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def finish_time(pod: Obj) -> datetime | None:
    """When the pod finished: its last container's finishedAt, else when it was deleted."""
    times = [parse_time(nested(s, "state", "terminated", "finishedAt"))
             for s in (nested(pod, "status", "containerStatuses") or []) if isinstance(s, dict)]
    known = [t for t in times if t is not None]
    if known:
        return max(known)
    return parse_time(nested(pod, "metadata", "deletionTimestamp"))


def restarts(pods: Iterable[Obj]) -> int:
    """Container restarts of the pods still pending or running (restartPolicy OnFailure)."""
    total = 0
    for pod in pods:
        if _phase(pod) in ("Pending", "Running"):
            for key in ("initContainerStatuses", "containerStatuses"):
                for s in nested(pod, "status", key) or []:
                    total += int(s.get("restartCount") or 0) if isinstance(s, dict) else 0
    return total


# --- completed indexes ----------------------------------------------------------------------

def parse_indexes(text: object) -> set[int]:
    out: set[int] = set()
    if not isinstance(text, str):
        return out
    for part in text.split(","):
        low, _, high = part.partition("-")
        if low.isdigit() and (not high or high.isdigit()):
            out.update(range(int(low), int(high or low) + 1))
    return out


def format_indexes(indexes: Iterable[int]) -> str:
    """"0-2,5": intervals in order, as kube writes status.completedIndexes."""
    parts: list[str] = []
    run: list[int] = []
    for i in sorted(set(indexes)):
        if run and i == run[-1] + 1:
            run.append(i)
            continue
        if run:
            parts.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
        run = [i]
    if run:
        parts.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ",".join(parts)


# --- the plan ----------------------------------------------------------------------------

@dataclass
class JobPlan:
    """What one sync does, in order: delete, create, write `flush` (the new uncounted pods)
    if any, take the finalizer off `finalize`, then write `settle(status, finalized)`."""
    status: Obj
    flush: bool = False
    finalize: list[Obj] = field(default_factory=list)
    create: list[int | None] = field(default_factory=list)
    delete: list[Obj] = field(default_factory=list)
    requeue_after: float | None = None
    events: list[tuple[str, str, str]] = field(default_factory=list)
    # uid -> completion index of the succeeded pods among `finalize` (Indexed Jobs)
    indexes: dict[str, int] = field(default_factory=dict)


def condition(cond_type: str, status: str, reason: str, message: str, now: datetime) -> Obj:
    stamp = rfc3339(now)
    return {"type": cond_type, "status": status, "lastProbeTime": stamp,
            "lastTransitionTime": stamp, "reason": reason, "message": message}


def ensure_condition(status: Obj, cond_type: str, value: str, reason: str, message: str,
                     now: datetime) -> bool:
    """kube's ensureJobConditionStatus: update the condition of that type if it differs, add
    it if absent and not False; True when something changed."""
    conds: list[Obj] = status.setdefault("conditions", [])
    for i, c in enumerate(conds):
        if c.get("type") == cond_type:
            if (c.get("status"), c.get("reason"), c.get("message")) != (value, reason, message):
                conds[i] = condition(cond_type, value, reason, message, now)
                return True
            return False
    if value != "False":
        conds.append(condition(cond_type, value, reason, message, now))
        return True
    if not conds:
        status.pop("conditions")
    return False


def _status_condition(status: Obj, cond_type: str) -> Obj | None:
    for c in status.get("conditions") or []:
        if c.get("type") == cond_type and c.get("status") == "True":
            return dict(c)
    return None


@dataclass
class _Pods:
    """The Job's pods sorted by what the sync does with them."""
    active: list[Obj]
    terminating: int
    new_succeeded: list[Obj]
    new_failed: list[Obj]
    still_tracked: list[Obj]  # uncounted already, finalizer still on


def _sort_pods(job: Obj, pods: Sequence[Obj], uncounted: Obj, finishing: bool,
               finalizing: frozenset[str]) -> _Pods:
    known = set(uncounted.get("succeeded") or []) | set(uncounted.get("failed") or [])
    out = _Pods([p for p in pods if is_active(p)], sum(1 for p in pods if is_terminating(p)),
                [], [], [])
    for pod in pods:
        if not tracked(pod) or _uid(pod) in finalizing:
            continue
        if _uid(pod) in known:
            out.still_tracked.append(pod)
        elif _phase(pod) == "Succeeded":
            out.new_succeeded.append(pod)
        elif is_failed(pod, job) or finishing:
            out.new_failed.append(pod)
    return out


def backoff_remaining(pods: Sequence[Obj], job: Obj, now: datetime,
                      base: float = DEFAULT_BACKOFF, cap: float = MAX_BACKOFF) -> float:
    """Seconds until the next pod may start: consecutive failures since the last success,
    base * 2^(n-1) up to `cap`, from the last failure's finish time."""
    finished = [(finish_time(p) or now, _phase(p) == "Succeeded") for p in pods
                if _phase(p) == "Succeeded" or is_failed(p, job)]
    finished.sort(key=lambda x: x[0])
    failures, last_failure = 0, None
    for when, succeeded in finished:
        if succeeded:
            failures, last_failure = 0, None
        else:
            failures, last_failure = failures + 1, when
    if failures == 0 or last_failure is None:
        return 0.0
    delay = base
    for _ in range(1, failures):
        delay *= 2
        if delay >= cap:
            delay = cap
            break
    return max(0.0, delay - (now - last_failure).total_seconds())


def _succeeded_indexes(job: Obj, status: Obj, pods: Iterable[Obj]) -> set[int]:
    completions = B.int_field(job, "spec", "completions")
    out = parse_indexes(status.get("completedIndexes"))
    for pod in pods:
        ix = completion_index(pod)
        if _phase(pod) == "Succeeded" and ix is not None and ix < completions:
            out.add(ix)
    return out


def _want_active(job: Obj, succeeded: int, done_indexes: set[int], active: int) -> int:
    spec = job.get("spec") or {}
    parallelism = B.int_field(spec, "parallelism", default=1)
    completions = spec.get("completions")
    if not isinstance(completions, int):
        return active if succeeded > 0 else parallelism
    left = completions - (len(done_indexes) if B.is_indexed(job) else succeeded)
    return max(0, min(left, parallelism))


def _deletion_order(pods: Sequence[Obj]) -> list[Obj]:
    """The least useful first: unscheduled, not running, not ready, newest."""
    return sorted(pods, key=lambda p: (bool(nested(p, "spec", "nodeName")), _phase(p) == "Running",
                                       is_ready(p), str(nested(p, "metadata", "creationTimestamp") or "")),
                  reverse=False)


@dataclass
class _Ctx:
    job: Obj
    pods: Sequence[Obj]
    now: datetime
    status: Obj
    sorted: _Pods
    succeeded: int
    failed: int
    done_indexes: set[int]
    base_backoff: float
    plan: JobPlan = field(init=False)

    def __post_init__(self) -> None:
        self.plan = JobPlan(status=self.status)


def _failure(ctx: _Ctx) -> tuple[str, str] | None:
    spec = ctx.job.get("spec") or {}
    limit = B.int_field(spec, "backoffLimit", default=6)
    on_failure = nested(spec, "template", "spec", "restartPolicy") == "OnFailure"
    if ctx.failed > limit:
        return REASON_BACKOFF, MESSAGE_BACKOFF
    if on_failure:
        n = restarts(ctx.sorted.active)
        if (n > 0 if limit == 0 else n >= limit):
            return REASON_BACKOFF, MESSAGE_BACKOFF
    deadline = spec.get("activeDeadlineSeconds")
    start = parse_time(ctx.status.get("startTime"))
    if isinstance(deadline, int) and start is not None and spec.get("suspend") is not True:
        left = deadline - (ctx.now - start).total_seconds()
        if left <= 0:
            return REASON_DEADLINE, MESSAGE_DEADLINE
        ctx.plan.requeue_after = left
    return None


def _complete(ctx: _Ctx) -> bool:
    completions = nested(ctx.job, "spec", "completions")
    if not isinstance(completions, int):
        return ctx.succeeded > 0 and not ctx.sorted.active
    if B.is_indexed(ctx.job):
        return len(ctx.done_indexes) >= completions
    return ctx.succeeded >= completions


def _manage(ctx: _Ctx) -> None:
    """Create or delete pods toward the wanted number of active pods."""
    active = ctx.sorted.active
    want = _want_active(ctx.job, ctx.succeeded, ctx.done_indexes, len(active))
    extra = _indexed_extras(ctx) if B.is_indexed(ctx.job) else []
    keep = [p for p in active if p not in extra]
    excess = max(0, len(keep) - want)
    ctx.plan.delete = extra + _deletion_order(keep)[:excess][:MAX_CREATE_DELETE_PER_SYNC]
    occupied = len(keep) - excess + (ctx.sorted.terminating if only_replace_failed(ctx.job) else 0)
    if occupied >= want:
        return
    wait = backoff_remaining(ctx.pods, ctx.job, ctx.now, ctx.base_backoff)
    if wait > 0:
        ctx.plan.requeue_after = min(wait, ctx.plan.requeue_after or wait)
        return
    count = min(want - occupied, MAX_CREATE_DELETE_PER_SYNC)
    if B.is_indexed(ctx.job):
        running = {completion_index(p) for p in keep}
        completions = B.int_field(ctx.job, "spec", "completions")
        pending = [i for i in range(completions) if i not in ctx.done_indexes and i not in running]
        ctx.plan.create = list(pending[:count])
    else:
        ctx.plan.create = [None] * count


def _indexed_extras(ctx: _Ctx) -> list[Obj]:
    """Active pods of an Indexed Job with no index, one out of range, one already succeeded,
    or a second pod for the same index."""
    completions = B.int_field(ctx.job, "spec", "completions")
    seen: set[int] = set()
    extras = []
    for pod in sorted(ctx.sorted.active, key=lambda p: str(nested(p, "metadata", "creationTimestamp") or "")):
        ix = completion_index(pod)
        if ix is None or ix >= completions or ix in ctx.done_indexes or ix in seen:
            extras.append(pod)
        else:
            seen.add(ix)
    return extras


def _suspend(ctx: _Ctx) -> None:
    status = ctx.status
    if nested(ctx.job, "spec", "suspend") is True:
        ctx.plan.delete = list(ctx.sorted.active)
        if ensure_condition(status, B.SUSPENDED, "True", "JobSuspended", "Job suspended", ctx.now):
            ctx.plan.events.append(("Normal", "Suspended", "Job suspended"))
        return
    if ensure_condition(status, B.SUSPENDED, "False", "JobResumed", "Job resumed", ctx.now):
        ctx.plan.events.append(("Normal", "Resumed", "Job resumed"))
        status["startTime"] = rfc3339(ctx.now)


def _track(ctx: _Ctx) -> None:
    """New finished pods into uncountedTerminatedPods; every counted-to-be pod loses its
    finalizer."""
    s = ctx.sorted
    uncounted = ctx.status.setdefault("uncountedTerminatedPods", {})
    if s.new_succeeded or s.new_failed:
        ctx.plan.flush = True
    completions = B.int_field(ctx.job, "spec", "completions")
    for pod in s.new_succeeded:
        ix = completion_index(pod)
        if B.is_indexed(ctx.job) and (ix is None or ix >= completions):
            continue  # finalized, never counted
        uncounted.setdefault("succeeded", []).append(_uid(pod))
        if ix is not None:
            ctx.plan.indexes[_uid(pod)] = ix
    for pod in s.new_failed:
        uncounted.setdefault("failed", []).append(_uid(pod))
    ctx.plan.finalize = [*s.still_tracked, *s.new_succeeded, *s.new_failed]
    for pod in s.still_tracked:
        ix = completion_index(pod)
        if ix is not None and _uid(pod) in (uncounted.get("succeeded") or []):
            ctx.plan.indexes[_uid(pod)] = ix


def plan_sync(job: Obj, pods: Sequence[Obj], now: datetime, *,
              base_backoff: float = DEFAULT_BACKOFF,
              finalizing: frozenset[str] = frozenset()) -> JobPlan:
    """The sync of `job` given the pods it controls. `finalizing`: uids of pods whose
    finalizer the controller took off (and counted) but the cache still shows on them
    (kube's finalizer expectations): they are not counted again."""
    status = copy.deepcopy(job.get("status") or {})
    finished = B.is_finished(job)
    target = _status_condition(status, B.FAILURE_TARGET) or _status_condition(status, B.SUCCESS_CRITERIA_MET)
    finishing = finished or target is not None
    uncounted = status.get("uncountedTerminatedPods") or {}
    sorted_pods = _sort_pods(job, pods, uncounted, finishing and _status_condition(
        status, B.SUCCESS_CRITERIA_MET) is None, finalizing)
    succeeded = B.int_field(status, "succeeded") + len(uncounted.get("succeeded") or []) + \
        len(sorted_pods.new_succeeded)
    failed = B.int_field(status, "failed") + len(uncounted.get("failed") or []) + len(sorted_pods.new_failed)
    ctx = _Ctx(job, pods, now, status, sorted_pods, succeeded, failed,
               _succeeded_indexes(job, status, pods), base_backoff)
    if not finished:
        _decide(ctx, target)
    if target is None and _status_condition(status, B.FAILURE_TARGET) is not None:
        # failing from this sync on: the pods still running count as failed now
        ctx.sorted = _sort_pods(job, pods, uncounted, True, finalizing)
    _track(ctx)
    _counters(ctx)
    return ctx.plan


def _decide(ctx: _Ctx, target: Obj | None) -> None:
    if target is None and nested(ctx.job, "spec", "suspend") is not True and not ctx.status.get("startTime"):
        ctx.status["startTime"] = rfc3339(ctx.now)
    if target is None:
        failure = _failure(ctx)
        if failure is not None:
            ensure_condition(ctx.status, B.FAILURE_TARGET, "True", *failure, ctx.now)
            target = _status_condition(ctx.status, B.FAILURE_TARGET)
        elif _complete(ctx):
            ensure_condition(ctx.status, B.SUCCESS_CRITERIA_MET, "True", REASON_COMPLETIONS,
                             MESSAGE_COMPLETIONS, ctx.now)
            target = _status_condition(ctx.status, B.SUCCESS_CRITERIA_MET)
    if target is not None:
        ctx.plan.delete = list(ctx.sorted.active)
        ctx.plan.requeue_after = None
        return
    _suspend(ctx)
    if nested(ctx.job, "spec", "suspend") is not True:
        _manage(ctx)


def _counters(ctx: _Ctx) -> None:
    deleted = {_uid(p) for p in ctx.plan.delete}
    active = [p for p in ctx.sorted.active if _uid(p) not in deleted]
    ctx.status["active"] = len(active) + len(ctx.plan.create)
    ctx.status["ready"] = sum(1 for p in active if is_ready(p))
    ctx.status["terminating"] = ctx.sorted.terminating + len(ctx.plan.delete)
    ctx.status.setdefault("uncountedTerminatedPods", {})


def settle(job: Obj, status: Obj, finalized: Iterable[str], indexes: dict[str, int],
           now: datetime) -> tuple[Obj, list[tuple[str, str, str]]]:
    """The status once the finalizers of `finalized` are off: their uids move from
    uncountedTerminatedPods to the counters (and completedIndexes); a FailureTarget or
    SuccessCriteriaMet becomes Failed or Complete when nothing is uncounted or terminating."""
    out = copy.deepcopy(status)
    done = set(finalized)
    uncounted = out.setdefault("uncountedTerminatedPods", {})
    done_indexes = parse_indexes(out.get("completedIndexes"))
    for key in ("succeeded", "failed"):
        uids = list(uncounted.get(key) or [])
        moved = [u for u in uids if u in done]
        if key == "succeeded" and B.is_indexed(job):
            new = {indexes[u] for u in moved if u in indexes} - done_indexes
            done_indexes |= new
            out[key] = B.int_field(out, key) + len(new)
        else:
            out[key] = B.int_field(out, key) + len(moved)
        left = [u for u in uids if u not in done]
        if left:
            uncounted[key] = left
        else:
            uncounted.pop(key, None)
    if B.is_indexed(job):
        out["completedIndexes"] = format_indexes(done_indexes)
    for key in ("succeeded", "failed"):
        if not out.get(key):
            out.pop(key, None)
    return out, _finish(out, now)


def _finish(status: Obj, now: datetime) -> list[tuple[str, str, str]]:
    if _status_condition(status, B.COMPLETE) or _status_condition(status, B.FAILED):
        return []
    if (status.get("uncountedTerminatedPods") or {}) or B.int_field(status, "terminating") > 0:
        return []
    failure = _status_condition(status, B.FAILURE_TARGET)
    if failure is not None:
        reason, message = str(failure.get("reason") or ""), str(failure.get("message") or "")
        ensure_condition(status, B.FAILED, "True", reason, message, now)
        return [("Warning", reason, message)]
    success = _status_condition(status, B.SUCCESS_CRITERIA_MET)
    if success is not None and B.int_field(status, "active") == 0:
        ensure_condition(status, B.COMPLETE, "True", str(success.get("reason") or ""),
                         str(success.get("message") or ""), now)
        status["completionTime"] = rfc3339(now)
        return [("Normal", "Completed", "Job completed")]
    return []


# --- new pods ------------------------------------------------------------------------------

def new_pod(job: Obj, index: int | None) -> Obj:
    """A pod from the Job's template, controlled by the Job, tracked by its finalizer; an
    Indexed Job's pod carries its index."""
    meta = job["metadata"]
    template = (job.get("spec") or {}).get("template") or {}
    tmeta = template.get("metadata") or {}
    name = str(meta["name"])
    prefix = f"{name}-" if index is None else f"{name}-{index}-"
    labels = dict(tmeta.get("labels") or {})
    annotations = dict(tmeta.get("annotations") or {})
    spec = copy.deepcopy(template.get("spec") or {})
    if index is not None:
        labels[B.COMPLETION_INDEX] = str(index)
        annotations[B.COMPLETION_INDEX] = str(index)
        spec.setdefault("hostname", f"{name}-{index}")
        _add_index_env(spec)
    pod_meta: Obj = {"generateName": prefix[:58], "namespace": meta.get("namespace"),
                     "labels": labels, "finalizers": [B.TRACKING_FINALIZER],
                     "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": name,
                                          "uid": meta["uid"], "controller": True,
                                          "blockOwnerDeletion": True}]}
    if annotations:
        pod_meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": spec}


def _add_index_env(spec: Obj) -> None:
    """JOB_COMPLETION_INDEX from the annotation, in every container (kube's
    addCompletionIndexEnvVariables)."""
    ref = {"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
        "fieldPath": f"metadata.annotations['{B.COMPLETION_INDEX}']"}}}
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or []:
            env = c.setdefault("env", [])
            if not any(e.get("name") == "JOB_COMPLETION_INDEX" for e in env):
                env.append(copy.deepcopy(ref))


# --- ttlSecondsAfterFinished -------------------------------------------------------------------

def expire_time(job: Obj) -> datetime | None:
    """When the ttl-after-finished controller deletes a finished Job: the Complete or Failed
    condition's transition time plus ttlSecondsAfterFinished; None if it never does."""
    ttl = nested(job, "spec", "ttlSecondsAfterFinished")
    cond = B.finished_condition(job)
    if not isinstance(ttl, int) or isinstance(ttl, bool) or cond is None:
        return None
    finished = parse_time(cond.get("lastTransitionTime"))
    if finished is None:
        return None
    return finished + timedelta(seconds=ttl)
