"""What to do for one pod, and what its status says: kubelet's syncPod as pure functions.

`plan_pod` compares the pod (as the API server has it) with what the runtime reports for it and
returns the steps to take; `pod_status` renders the status the API should hold. Neither does
any I/O, so both are table-tested; the agent's worker carries the steps out and writes the
status back only when it differs.

Rules (kubelet's, simplified):
- sandboxes are keyed by pod uid: one READY sandbox of the pod's uid is kept, everything else of
  that pod key (older uids, half-created or dead sandboxes) is removed, which also releases
  their IPs; a pod without a ready sandbox gets a new one;
- a container that is missing is started; one that exited is restarted as restartPolicy says
  (Always; OnFailure when it failed; Never), after a back-off of base * 2**restarts, capped;
- a pod with a deletionTimestamp is stopped (SIGTERM, SIGKILL after its grace period), its
  sandbox removed, and then the API object deleted with grace 0;
- a pod that reached Succeeded or Failed is stopped and stays so (its sandbox stopped, which
  frees its IP, but the records kept for its status).
"""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubecore.api.types import Obj
from services.nodeagent import images
from services.nodeagent.runtime import (
    CONTAINER_CREATED,
    CONTAINER_EXITED,
    CONTAINER_RUNNING,
    SANDBOX_READY,
    ContainerInfo,
    SandboxInfo,
)

TERMINAL_PHASES = ("Succeeded", "Failed")
DEFAULT_GRACE_SECONDS = 30


@dataclass(frozen=True)
class Backoff:
    """Restart delay: base * 2**restarts, at most `cap` (kubelet: 10 s doubling to 5 min)."""

    base: float = 10.0
    cap: float = 300.0

    def delay(self, restarts: int) -> float:
        return min(self.base * (2 ** min(restarts, 30)), self.cap)


@dataclass(frozen=True)
class StartFailure:
    """A container that could not be created or started (image, executable, ...)."""

    reason: str
    message: str
    at: float
    count: int = 1


@dataclass
class PodPlan:
    remove_sandboxes: list[str] = field(default_factory=list)
    create_sandbox: bool = False
    kill_pod: bool = False  # stop the containers with the pod's grace period, remove the sandboxes
    stop_sandboxes: list[str] = field(default_factory=list)  # terminal pods: stop, keep records
    delete_api_object: bool = False
    kill_containers: list[tuple[str, str]] = field(default_factory=list)  # (container id, why)
    remove_containers: list[str] = field(default_factory=list)
    start: list[tuple[str, int]] = field(default_factory=list)  # (container name, attempt)
    backoff: list[str] = field(default_factory=list)  # containers waiting out a back-off
    requeue_after: float | None = None

    def _wait(self, seconds: float) -> None:
        seconds = max(seconds, 0.0)
        self.requeue_after = seconds if self.requeue_after is None else min(self.requeue_after, seconds)

    @property
    def idle(self) -> bool:
        return not (self.remove_sandboxes or self.create_sandbox or self.kill_pod or self.stop_sandboxes
                    or self.delete_api_object or self.kill_containers or self.remove_containers or self.start)


# --------------------------------------------------------------------------- pod facts


def pod_uid(pod: Mapping[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("uid") or "")


def grace_seconds(pod: Mapping[str, Any]) -> int:
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    value = meta.get("deletionGracePeriodSeconds")
    if value is None:
        value = spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS)
    return max(int(value), 0)


def restart_policy(pod: Mapping[str, Any]) -> str:
    return str((pod.get("spec") or {}).get("restartPolicy") or "Always")


def spec_containers(pod: Mapping[str, Any]) -> list[Obj]:
    return list((pod.get("spec") or {}).get("containers") or [])


def should_restart(policy: str, exit_code: int | None) -> bool:
    if policy == "Always":
        return True
    if policy == "OnFailure":
        return exit_code != 0  # an unknown exit (seen only after an agent restart) counts as failed
    return False


def by_name(containers: Sequence[ContainerInfo]) -> dict[str, list[ContainerInfo]]:
    """Containers per name, oldest attempt first."""
    out: dict[str, list[ContainerInfo]] = {}
    for c in sorted(containers, key=lambda c: (c.attempt, c.created_at)):
        out.setdefault(c.name, []).append(c)
    return out


def current_sandbox(pod: Mapping[str, Any], sandboxes: Sequence[SandboxInfo]) -> SandboxInfo | None:
    """The newest READY sandbox of this pod's uid."""
    uid = pod_uid(pod)
    ready = [s for s in sandboxes if s.pod_uid == uid and s.state == SANDBOX_READY]
    return max(ready, key=lambda s: s.created_at) if ready else None


def latest_sandbox(pod: Mapping[str, Any], sandboxes: Sequence[SandboxInfo]) -> SandboxInfo | None:
    """The newest sandbox of this pod's uid, whatever its state (a terminal pod's is stopped)."""
    uid = pod_uid(pod)
    mine = [s for s in sandboxes if s.pod_uid == uid]
    return max(mine, key=lambda s: s.created_at) if mine else None


# --------------------------------------------------------------------------- the planner


def plan_pod(
    pod: Mapping[str, Any] | None,
    sandboxes: Sequence[SandboxInfo],
    containers: Sequence[ContainerInfo],
    *,
    now: float,
    backoff: Backoff,
    liveness_failed: frozenset[str] = frozenset(),
    start_failures: Mapping[str, StartFailure] | None = None,
) -> PodPlan:
    """The steps that bring what runs for one pod key to what the pod asks for.

    `sandboxes`/`containers` are everything the runtime has under this pod key (any uid);
    `liveness_failed` holds ids of containers whose liveness probe failed; `start_failures`
    the last creation failure per container name."""
    plan = PodPlan()
    if pod is None:  # gone from the API (force-deleted, or deleted while the agent was down)
        plan.remove_sandboxes = [s.id for s in sandboxes]
        return plan
    uid = pod_uid(pod)
    plan.remove_sandboxes = [s.id for s in sandboxes if s.pod_uid != uid]
    mine = [s for s in sandboxes if s.pod_uid == uid]
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        plan.kill_pod = True
        plan.remove_sandboxes += [s.id for s in mine]
        plan.delete_api_object = True
        return plan
    if ((pod.get("status") or {}).get("phase")) in TERMINAL_PHASES:
        plan.stop_sandboxes = [s.id for s in mine if s.state == SANDBOX_READY or s.network_ready]
        return plan

    sandbox = current_sandbox(pod, sandboxes)
    plan.remove_sandboxes += [s.id for s in mine if sandbox is None or s.id != sandbox.id]
    own_ids = {s.id for s in mine}
    history = by_name([c for c in containers
                       if c.sandbox_id in own_ids and (sandbox is None or c.sandbox_id != sandbox.id)])
    live = by_name([c for c in containers if sandbox is not None and c.sandbox_id == sandbox.id])
    if sandbox is None:
        plan.create_sandbox = True
    policy = restart_policy(pod)
    failures = start_failures or {}

    finished = 0
    for spec in spec_containers(pod):
        name = spec["name"]
        attempts = live.get(name, [])
        earlier = history.get(name, [])
        latest = attempts[-1] if attempts else None
        # Keep the latest attempt and the one before (the status's lastState); drop the rest.
        plan.remove_containers += [c.id for c in attempts[:-2]]
        if latest is not None and latest.state == CONTAINER_RUNNING:
            if latest.id in liveness_failed:
                plan.kill_containers.append((latest.id, "Unhealthy"))
            continue
        if latest is not None and latest.state == CONTAINER_CREATED:
            # Created but never started (a crash in between): replace it with the same attempt.
            plan.remove_containers.append(latest.id)
            plan.start.append((name, latest.attempt))
            continue
        if latest is not None and latest.state == CONTAINER_EXITED:
            if not should_restart(policy, latest.exit_code):
                finished += 1
                continue
            due = (latest.finished_at or now) + backoff.delay(latest.attempt)
            if now < due:
                plan._wait(due - now)
                plan.backoff.append(name)
                continue
            plan.start.append((name, latest.attempt + 1))
            continue
        # Never ran in this sandbox: continue the attempt count of an earlier sandbox.
        failure = failures.get(name)
        if failure is not None:
            due = failure.at + backoff.delay(failure.count - 1)
            if now < due:
                plan._wait(due - now)
                plan.backoff.append(name)
                continue
        plan.start.append((name, earlier[-1].attempt + 1 if earlier else 0))
    if finished and finished == len(spec_containers(pod)):
        plan.start = []  # every container is done for good: the pod is terminal
    return plan


# --------------------------------------------------------------------------- status


def rfc3339(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def container_id(c: ContainerInfo) -> str:
    return f"minicluster://{c.id}"


def image_id(image: str) -> str:
    return f"minicluster://{images.repository(image)}"


def _terminated(c: ContainerInfo) -> Obj:
    out: Obj = {"exitCode": c.exit_code if c.exit_code is not None else 137 if c.reason == "Unknown" else 0,
                "reason": c.reason or "Completed", "startedAt": rfc3339(c.started_at),
                "finishedAt": rfc3339(c.finished_at), "containerID": container_id(c)}
    if c.message:
        out["message"] = c.message
    return {"terminated": {k: v for k, v in out.items() if v is not None}}


def container_status(
    pod: Mapping[str, Any],
    spec: Mapping[str, Any],
    attempts: Sequence[ContainerInfo],
    *,
    ready_probe: Mapping[str, bool],
    failure: StartFailure | None,
    backoff: Backoff,
    now: float,
    pod_running: bool,
) -> Obj:
    name, image = spec["name"], spec.get("image", "")
    latest = attempts[-1] if attempts else None
    previous = attempts[-2] if len(attempts) > 1 else None
    status: Obj = {"name": name, "image": image, "imageID": "", "ready": False, "started": False,
                   "restartCount": latest.attempt if latest else 0, "state": {}, "lastState": {}}
    if latest is None or latest.state == CONTAINER_CREATED:
        if failure is not None:
            status["state"] = {"waiting": {"reason": failure.reason, "message": failure.message}}
        else:
            status["state"] = {"waiting": {"reason": "ContainerCreating"}}
        if latest is not None and latest.attempt > 0 and previous is not None:
            status["lastState"] = _terminated(previous)
        return status
    status["imageID"] = image_id(latest.image)
    status["containerID"] = container_id(latest)
    if latest.state == CONTAINER_RUNNING and pod_running:
        status["state"] = {"running": {"startedAt": rfc3339(latest.started_at)}}
        status["started"] = True
        has_probe = bool(spec.get("readinessProbe"))
        status["ready"] = bool(ready_probe.get(latest.id, False)) if has_probe else True
        if previous is not None:
            status["lastState"] = _terminated(previous)
        return status
    if latest.state == CONTAINER_EXITED and pod_running and should_restart(restart_policy(pod), latest.exit_code):
        delay = backoff.delay(latest.attempt)
        if failure is not None and failure.at >= (latest.finished_at or 0):
            waiting = {"reason": failure.reason, "message": failure.message}
        else:
            waiting = {"reason": "CrashLoopBackOff",
                       "message": f"back-off {delay:g}s restarting failed container={name} "
                                  f"pod={(pod.get('metadata') or {}).get('name')}"}
        status["state"] = {"waiting": waiting}
        status["lastState"] = _terminated(latest)
        return status
    status["state"] = _terminated(latest)
    if previous is not None:
        status["lastState"] = _terminated(previous)
    return status


def pod_phase(policy: str, statuses: Sequence[Mapping[str, Any]], previous: str | None) -> str:
    """kubelet's getPhase for pods without init containers."""
    if previous in TERMINAL_PHASES:
        return previous
    waiting = running = stopped = succeeded = 0
    for s in statuses:
        state = s.get("state") or {}
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            succeeded += state["terminated"].get("exitCode") == 0
        elif (s.get("lastState") or {}).get("terminated"):
            stopped += 1  # waiting to be restarted
        else:
            waiting += 1
    if not statuses or waiting:
        return "Pending"
    if running:
        return "Running"
    if policy == "Always":
        return "Running"
    if policy == "OnFailure":
        return "Succeeded" if succeeded == stopped else "Running"
    return "Succeeded" if succeeded == stopped else "Failed"


def _conditions(previous: Sequence[Mapping[str, Any]], wanted: Mapping[str, bool], now_iso: str,
                reasons: Mapping[str, str]) -> list[Obj]:
    old = {c.get("type"): c for c in previous}
    out = []
    for ctype, ok in wanted.items():
        status = "True" if ok else "False"
        before = old.get(ctype) or {}
        cond: Obj = {"type": ctype, "status": status,
                     "lastTransitionTime": before.get("lastTransitionTime") if before.get("status") == status
                     and before.get("lastTransitionTime") else now_iso}
        if not ok and ctype in reasons:
            cond["reason"] = reasons[ctype]
        out.append(cond)
    return out


def pod_status(
    pod: Mapping[str, Any],
    sandboxes: Sequence[SandboxInfo],
    containers: Sequence[ContainerInfo],
    *,
    node_ip: str,
    ready_probe: Mapping[str, bool],
    start_failures: Mapping[str, StartFailure],
    backoff: Backoff,
    now: float | None = None,
) -> Obj:
    """The status the API should hold for `pod`, from what runs (deterministic: timestamps come
    from the runtime records and the previous status, except for new transitions)."""
    now = time.time() if now is None else now
    now_iso = rfc3339(now) or ""
    old: Mapping[str, Any] = pod.get("status") or {}
    terminal_before = old.get("phase") if old.get("phase") in TERMINAL_PHASES else None
    sandbox = current_sandbox(pod, sandboxes) or latest_sandbox(pod, sandboxes)
    running_sandbox = sandbox is not None and sandbox.state == SANDBOX_READY and not terminal_before
    attempts = by_name([c for c in containers if sandbox is not None and c.sandbox_id == sandbox.id])
    statuses = [
        container_status(pod, spec, attempts.get(spec["name"], []), ready_probe=ready_probe,
                         failure=start_failures.get(spec["name"]), backoff=backoff, now=now,
                         pod_running=running_sandbox)
        for spec in spec_containers(pod)
    ]
    phase = pod_phase(restart_policy(pod), statuses, terminal_before)
    all_ready = bool(statuses) and all(s["ready"] for s in statuses) and phase == "Running"
    not_ready = [s["name"] for s in statuses if not s["ready"]]
    status: Obj = {
        "phase": phase,
        "hostIP": node_ip,
        "hostIPs": [{"ip": node_ip}],
        "startTime": old.get("startTime") or rfc3339(sandbox.created_at if sandbox else now),
        "conditions": _conditions(
            old.get("conditions") or [],
            {"PodScheduled": True, "Initialized": True, "ContainersReady": all_ready, "Ready": all_ready},
            now_iso,
            {"ContainersReady": "ContainersNotReady", "Ready": "ContainersNotReady"},
        ),
        "containerStatuses": statuses,
        "qosClass": old.get("qosClass") or "BestEffort",
    }
    if not_ready and not all_ready:
        msg = f"containers with unready status: [{' '.join(not_ready)}]"
        for cond in status["conditions"]:
            if cond["type"] in ("ContainersReady", "Ready"):
                cond["message"] = msg
    ip = sandbox.ip if sandbox is not None and sandbox.state == SANDBOX_READY else ""
    if not ip and phase in TERMINAL_PHASES:
        ip = old.get("podIP") or ""  # a finished pod keeps the address it had
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    return status


MANAGED_STATUS_KEYS = ("phase", "hostIP", "hostIPs", "startTime", "conditions", "containerStatuses",
                       "qosClass", "podIP", "podIPs")


def status_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> Obj | None:
    """A merge patch turning `old` status into `new` on the keys the agent manages; None when equal."""
    patch: Obj = {}
    for key in MANAGED_STATUS_KEYS:
        if key in new:
            if old.get(key) != new[key]:
                patch[key] = new[key]
        elif key in old:
            patch[key] = None
    return patch or None
