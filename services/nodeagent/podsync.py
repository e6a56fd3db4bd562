"""What to do for one pod, and what its status says: kubelet's syncPod as pure functions.

`plan_pod` compares the pod (as the API server has it) with what the runtime reports for it and
returns a `PodPlan`: the decisions (kubelet's podActions) and the same spelled out as `steps`
that carry every detail the executor (`executor.py`) needs, so it never asks back. After the
steps, `plan_report` looks at the runtime again: which probes to keep and the status patch
(`pod_status` renders the status the API should hold; it is written only when it differs).
Nothing here does I/O, so all of it is table-tested.

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
from services.nodeagent import podevents, volumefiles
from services.nodeagent.cni import PortMapping
from services.nodeagent.oci import reference
from services.nodeagent.oci.image import ImageError
from services.nodeagent.probes import ProbeTarget
from services.nodeagent.runtime import (
    CONTAINER_CREATED,
    CONTAINER_EXITED,
    CONTAINER_RUNNING,
    SANDBOX_READY,
    ContainerConfig,
    ContainerInfo,
    Mount,
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
        factor: float = 2 ** min(restarts, 30)  # int ** int is typed Any (a negative power is a float)
        return min(self.base * factor, self.cap)


@dataclass(frozen=True)
class StartFailure:
    """A container that could not be created or started (image, executable, ...)."""

    reason: str
    message: str
    at: float
    count: int = 1


# --------------------------------------------------------------------------- the steps of a plan
# What the executor does, in order, one record per step: everything it needs is in the record,
# so carrying a plan out asks nothing more of this module (kubelet: podActions, which SyncPod
# carries out).


@dataclass(frozen=True)
class ContainerRef:
    id: str
    name: str


@dataclass(frozen=True)
class StopPodContainers:
    """The pod is being deleted: SIGTERM its running containers together, SIGKILL after `grace`."""

    containers: tuple[ContainerRef, ...]
    grace: int


@dataclass(frozen=True)
class RemoveSandbox:
    """Remove a sandbox (and with it its containers, whose probes go too)."""

    sandbox_id: str
    container_ids: frozenset[str]


@dataclass(frozen=True)
class StopSandbox:
    """A terminal pod's sandbox: stopped (its IP freed), its records kept for the status."""

    sandbox_id: str


@dataclass(frozen=True)
class ForgetGonePods:
    """The pod is gone from the API: forget the start failures of every pod no longer bound here."""


@dataclass(frozen=True)
class DeletePodObject:
    """Everything of a deleted pod is gone: delete its API object with grace 0 (uid precondition)."""

    uid: str
    name: str
    namespace: str | None


@dataclass(frozen=True)
class KillContainer:
    """Stop one running container (its liveness probe failed); restartPolicy brings it back."""

    container_id: str
    name: str | None
    why: str
    grace: int


@dataclass(frozen=True)
class RemoveContainer:
    container_id: str


@dataclass(frozen=True)
class CreateSandbox:
    """RunPodSandbox's arguments."""

    pod_uid: str
    namespace: str
    name: str
    hostname: str | None
    subdomain: str | None
    port_mappings: tuple[PortMapping, ...]
    labels: Mapping[str, str]
    share_process_namespace: bool = False


@dataclass(frozen=True)
class SetUpVolumes:
    """Write the pod's projected volumes (a fresh token when due, the CA, the namespace) before
    its containers start, and on every sync after (kubelet remounts them to refresh tokens)."""

    pod_uid: str


@dataclass(frozen=True)
class StartContainers:
    """Create and start these containers together, in `sandbox_id` (None: the sandbox this sync
    creates; skipped when that failed)."""

    pod_uid: str
    sandbox_id: str | None
    containers: tuple[ContainerConfig, ...]


@dataclass(frozen=True)
class Tell:
    """An Event about the pod (a container waiting out its back-off)."""

    event: podevents.PodEvent


@dataclass(frozen=True)
class Report:
    """Look at the runtime again, keep the probes of what runs, write the status back
    (`plan_report`); then fail the sync if the sandbox could not be made."""

    pod_uid: str


@dataclass(frozen=True)
class Requeue:
    """Sync the pod again after `seconds` (when a back-off ends)."""

    seconds: float


Step = (StopPodContainers | RemoveSandbox | StopSandbox | ForgetGonePods | DeletePodObject | KillContainer
        | RemoveContainer | CreateSandbox | SetUpVolumes | StartContainers | Tell | Report | Requeue)
# How often a pod with projected volumes is synced even when nothing changes, so its token is
# renewed in time (kubelet's volume manager looks at mounted volumes about every minute).
VOLUME_RESYNC_SECONDS = 60.0


@dataclass
class PodPlan:
    """What to do for one pod key. The first fields are the decisions (compared, and read by
    tests); `steps` is the same plan spelled out for the executor, with the pod's details it needs.
    """

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
    # Spelled out by `plan_pod` from the decisions above; derived, so left out of equality.
    key: str = field(default="", compare=False)
    pod: Mapping[str, Any] | None = field(default=None, compare=False)
    steps: tuple[Step, ...] = field(default=(), compare=False)

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


def spec_init_containers(pod: Mapping[str, Any]) -> list[Obj]:
    return [c for c in (pod.get("spec") or {}).get("initContainers") or [] if isinstance(c, dict)]


def init_restart_policy(policy: str) -> str:
    """An init container runs to completion: under Always it is restarted only when it failed."""
    return "OnFailure" if policy == "Always" else policy


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
    key: str = "",
    startup_failed: frozenset[str] = frozenset(),
) -> PodPlan:
    """The steps that bring what runs for one pod key to what the pod asks for.

    `sandboxes`/`containers` are everything the runtime has under this pod key (any uid);
    `liveness_failed` holds ids of containers whose liveness probe failed (`startup_failed`: whose
    startup probe did; either gets the container killed); `start_failures`
    the last creation failure per container name."""
    failures = start_failures or {}
    if pod is None:  # gone from the API (force-deleted, or deleted while the agent was down)
        plan = PodPlan(remove_sandboxes=[s.id for s in sandboxes])
    elif (pod.get("metadata") or {}).get("deletionTimestamp"):
        plan = _plan_deleted(pod, sandboxes)
    elif ((pod.get("status") or {}).get("phase")) in TERMINAL_PHASES:
        plan = _plan_terminal(pod, sandboxes)
    else:
        plan = _plan_live(pod, sandboxes, containers, now=now, backoff=backoff,
                          liveness_failed=liveness_failed | startup_failed, failures=failures)
        plan.kill_containers = [(cid, "StartupFailed" if cid in startup_failed else why)
                                for cid, why in plan.kill_containers]
    plan.key, plan.pod = key, pod
    plan.steps = plan_steps(plan, pod, sandboxes, containers)
    return plan


def _plan_deleted(pod: Mapping[str, Any], sandboxes: Sequence[SandboxInfo]) -> PodPlan:
    """Stop everything, remove every sandbox of the key, then the API object."""
    uid = pod_uid(pod)
    others = [s.id for s in sandboxes if s.pod_uid != uid]
    mine = [s.id for s in sandboxes if s.pod_uid == uid]
    return PodPlan(kill_pod=True, remove_sandboxes=others + mine, delete_api_object=True)


def _plan_terminal(pod: Mapping[str, Any], sandboxes: Sequence[SandboxInfo]) -> PodPlan:
    """Done for good: older pods' sandboxes go, this pod's are stopped but kept."""
    uid = pod_uid(pod)
    return PodPlan(remove_sandboxes=[s.id for s in sandboxes if s.pod_uid != uid],
                   stop_sandboxes=[s.id for s in sandboxes
                                   if s.pod_uid == uid and (s.state == SANDBOX_READY or s.network_ready)])


def _plan_live(
    pod: Mapping[str, Any],
    sandboxes: Sequence[SandboxInfo],
    containers: Sequence[ContainerInfo],
    *,
    now: float,
    backoff: Backoff,
    liveness_failed: frozenset[str],
    failures: Mapping[str, StartFailure],
) -> PodPlan:
    """One ready sandbox of this uid, and each container running, restarted or waiting."""
    uid = pod_uid(pod)
    mine = [s for s in sandboxes if s.pod_uid == uid]
    sandbox = current_sandbox(pod, sandboxes)
    current_id = sandbox.id if sandbox is not None else None
    plan = PodPlan(remove_sandboxes=[s.id for s in sandboxes if s.pod_uid != uid]
                   + [s.id for s in mine if s.id != current_id],
                   create_sandbox=sandbox is None)
    own_ids = {s.id for s in mine}
    history = by_name([c for c in containers if c.sandbox_id in own_ids and c.sandbox_id != current_id])
    live = by_name([c for c in containers if current_id is not None and c.sandbox_id == current_id])
    policy = restart_policy(pod)
    if not _plan_init(plan, spec_init_containers(pod), live, history, policy=policy, now=now, backoff=backoff,
                      failures=failures):
        return plan  # the app containers wait for the init containers
    specs = spec_containers(pod)
    finished = 0
    for spec in specs:
        name = spec["name"]
        finished += _plan_container(plan, name, live.get(name, []), history.get(name, []), policy=policy, now=now,
                                    backoff=backoff, liveness_failed=liveness_failed, failure=failures.get(name))
    if finished and finished == len(specs):
        plan.start = []  # every container is done for good: the pod is terminal
    return plan


def _plan_init(
    plan: PodPlan,
    specs: Sequence[Mapping[str, Any]],
    live: Mapping[str, list[ContainerInfo]],
    history: Mapping[str, list[ContainerInfo]],
    *,
    policy: str,
    now: float,
    backoff: Backoff,
    failures: Mapping[str, StartFailure],
) -> bool:
    """The init containers, one at a time in order, each to completion (kubelet's
    computeInitContainerActions); True when all have succeeded in this sandbox. A failed one is
    restarted after its back-off, unless restartPolicy is Never: then nothing more starts and
    the pod's phase is Failed."""
    for spec in specs:
        name = spec["name"]
        attempts = live.get(name, [])
        latest = attempts[-1] if attempts else None
        if latest is not None and latest.state == CONTAINER_EXITED and latest.exit_code == 0:
            continue
        _plan_container(plan, name, attempts, history.get(name, []), policy=init_restart_policy(policy), now=now,
                        backoff=backoff, liveness_failed=frozenset(), failure=failures.get(name))
        return False
    return True


def _plan_container(
    plan: PodPlan,
    name: str,
    attempts: Sequence[ContainerInfo],
    earlier: Sequence[ContainerInfo],
    *,
    policy: str,
    now: float,
    backoff: Backoff,
    liveness_failed: frozenset[str],
    failure: StartFailure | None,
) -> bool:
    """Add what one container needs to `plan`; True when it is done for good (not restarted).

    `attempts` are its containers in the current sandbox, `earlier` those of older sandboxes."""
    latest = attempts[-1] if attempts else None
    # Keep the latest attempt and the one before (the status's lastState); drop the rest.
    plan.remove_containers += [c.id for c in attempts[:-2]]
    if latest is not None and latest.state == CONTAINER_RUNNING:
        if latest.id in liveness_failed:
            plan.kill_containers.append((latest.id, "Unhealthy"))
        return False
    if latest is not None and latest.state == CONTAINER_CREATED:
        # Created but never started (a crash in between): replace it with the same attempt.
        plan.remove_containers.append(latest.id)
        plan.start.append((name, latest.attempt))
        return False
    if latest is not None and latest.state == CONTAINER_EXITED:
        return _plan_exited(plan, latest, policy=policy, now=now, backoff=backoff)
    # Never ran in this sandbox: continue the attempt count of an earlier sandbox.
    # An image failure's back-off is the image manager's (it tells its own events): each sync
    # asks it again (kubelet).
    if (failure is not None and failure.reason not in podevents.IMAGE_REASONS
            and _backing_off(plan, name, failure.at + backoff.delay(failure.count - 1), now)):
        return False
    plan.start.append((name, earlier[-1].attempt + 1 if earlier else 0))
    return False


def _plan_exited(plan: PodPlan, latest: ContainerInfo, *, policy: str, now: float, backoff: Backoff) -> bool:
    if not should_restart(policy, latest.exit_code):
        return True
    due = (latest.finished_at or now) + backoff.delay(latest.attempt)
    if not _backing_off(plan, latest.name, due, now):
        plan.start.append((latest.name, latest.attempt + 1))
    return False


def _backing_off(plan: PodPlan, name: str, due: float, now: float) -> bool:
    """Before `due`, the container waits: the plan comes back then."""
    if now >= due:
        return False
    plan._wait(due - now)
    plan.backoff.append(name)
    return True


def plan_steps(
    plan: PodPlan,
    pod: Mapping[str, Any] | None,
    sandboxes: Sequence[SandboxInfo],
    containers: Sequence[ContainerInfo],
) -> tuple[Step, ...]:
    """The decisions of `plan` as the executor's steps, in the order it takes them."""
    steps: list[Step] = []
    if plan.kill_pod and pod is not None:
        running = tuple(ContainerRef(c.id, c.name) for c in containers if c.state == CONTAINER_RUNNING)
        if running:
            steps.append(StopPodContainers(running, grace_seconds(pod)))
    steps += [RemoveSandbox(sid, frozenset(c.id for c in containers if c.sandbox_id == sid))
              for sid in plan.remove_sandboxes]
    steps += [StopSandbox(sid) for sid in plan.stop_sandboxes]
    if pod is None:
        return (*steps, ForgetGonePods())
    meta = pod.get("metadata") or {}
    if plan.delete_api_object:
        return (*steps, DeletePodObject(pod_uid(pod), meta["name"], meta.get("namespace")))
    return (*steps, *_live_steps(plan, pod, sandboxes, containers))


def _live_steps(
    plan: PodPlan,
    pod: Mapping[str, Any],
    sandboxes: Sequence[SandboxInfo],
    containers: Sequence[ContainerInfo],
) -> list[Step]:
    names = {c.id: c.name for c in containers}
    grace = grace_seconds(pod)
    steps: list[Step] = [KillContainer(cid, names.get(cid), why, grace) for cid, why in plan.kill_containers]
    steps += [RemoveContainer(cid) for cid in plan.remove_containers]
    if plan.create_sandbox:
        steps.append(sandbox_request(pod))
    sandbox = current_sandbox(pod, sandboxes)
    has_sandbox = plan.create_sandbox or sandbox is not None
    volumes = has_node_volumes(pod) and has_sandbox
    if volumes:
        steps.append(SetUpVolumes(pod_uid(pod)))
    if plan.start and has_sandbox:
        steps.append(_start_step(plan, pod, None if plan.create_sandbox or sandbox is None else sandbox.id))
    steps += [Tell(podevents.back_off(pod, name)) for name in plan.backoff]
    steps.append(Report(pod_uid(pod)))
    requeue = _requeue_after(plan, volumes and has_written_volumes(pod))
    if requeue is not None:
        steps.append(Requeue(requeue))
    return steps


def _start_step(plan: PodPlan, pod: Mapping[str, Any], sandbox_id: str | None) -> StartContainers:
    specs = {c["name"]: c for c in [*spec_init_containers(pod), *spec_containers(pod)]}
    volumes = node_volume_names(pod)
    return StartContainers(pod_uid(pod), sandbox_id, tuple(container_config(specs[name], attempt, volumes)
                                                           for name, attempt in plan.start))


def _requeue_after(plan: PodPlan, volumes: bool) -> float | None:
    """When the pod comes back: a back-off's end, and at least every VOLUME_RESYNC_SECONDS
    for a pod whose token must stay fresh."""
    requeue = plan.requeue_after + 0.01 if plan.requeue_after is not None else None
    if volumes:
        requeue = min(requeue or VOLUME_RESYNC_SECONDS, VOLUME_RESYNC_SECONDS)
    return requeue


def sandbox_request(pod: Mapping[str, Any]) -> CreateSandbox:
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    return CreateSandbox(pod_uid(pod), meta.get("namespace", "default"), meta["name"],
                         hostname=spec.get("hostname"), subdomain=spec.get("subdomain"),
                         port_mappings=tuple(port_mappings(pod)), labels=meta.get("labels") or {},
                         share_process_namespace=spec.get("shareProcessNamespace") is True)


def node_volume_names(pod: Mapping[str, Any]) -> frozenset[str]:
    """The pod's volumes this node makes (`volumefiles.NODE_KINDS`); mounts of other kinds of
    volumes are not made."""
    return frozenset(v.name for v in volumefiles.node_volumes(pod))


def has_node_volumes(pod: Mapping[str, Any]) -> bool:
    return bool(node_volume_names(pod))


def has_written_volumes(pod: Mapping[str, Any]) -> bool:
    """Volumes whose files show objects or the pod itself, so are rewritten on every resync."""
    return any(v.kind in volumefiles.WRITTEN_KINDS for v in volumefiles.node_volumes(pod))


def container_config(spec: Mapping[str, Any], attempt: int, volumes: frozenset[str] = frozenset()) -> ContainerConfig:
    env = {e["name"]: str(e.get("value", "")) for e in spec.get("env") or [] if e.get("name") and "value" in e}
    mounts = tuple(Mount(m["mountPath"], read_only=bool(m.get("readOnly")), volume=m["name"],
                         sub_path=str(m.get("subPath") or m.get("subPathExpr") or ""),
                         sub_path_expr="subPathExpr" in m and not m.get("subPath"))
                   for m in spec.get("volumeMounts") or []
                   if isinstance(m, dict) and m.get("name") in volumes and isinstance(m.get("mountPath"), str))
    return ContainerConfig(name=spec["name"], image=spec.get("image", ""), command=spec.get("command"),
                           args=spec.get("args"), env=env, working_dir=spec.get("workingDir"), attempt=attempt,
                           mounts=mounts, stdin=spec.get("stdin") is True, stdin_once=spec.get("stdinOnce") is True,
                           tty=spec.get("tty") is True)


def port_mappings(pod: Mapping[str, Any]) -> list[PortMapping]:
    out = []
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("hostPort"):
                out.append(PortMapping(host_port=int(p["hostPort"]), container_port=int(p["containerPort"]),
                                       protocol=str(p.get("protocol", "TCP")).lower(), host_ip=p.get("hostIP", "")))
    return out


# --------------------------------------------------------------------------- after the steps


@dataclass(frozen=True)
class StatusReport:
    """What follows a sync, from a fresh look at the runtime: probes to drop (containers that no
    longer run) and to keep (running containers of the current sandbox), and the status patch
    (None when the API already holds that status)."""

    forget_probes: frozenset[str]
    probe: tuple[ProbeTarget, ...]
    status_patch: Obj | None
    status: Obj | None = None  # the whole status the patch leads to


def plan_report(
    key: str,
    pod: Mapping[str, Any],
    sandboxes: Sequence[SandboxInfo],
    containers: Sequence[ContainerInfo],
    *,
    node_ip: str,
    ready_probe: Mapping[str, bool],
    start_failures: Mapping[str, StartFailure],
    backoff: Backoff,
    now: float | None = None,
    started_probe: Mapping[str, bool] | None = None,
) -> StatusReport:
    running = {c.id for c in containers if c.state == CONTAINER_RUNNING}
    sandbox = current_sandbox(pod, sandboxes)
    specs = {c["name"]: c for c in spec_containers(pod)}
    probe = () if sandbox is None else tuple(
        ProbeTarget(key, specs[c.name], c.id, sandbox.ip) for c in containers
        if c.id in running and c.sandbox_id == sandbox.id and c.name in specs)
    new = pod_status(pod, sandboxes, containers, node_ip=node_ip, ready_probe=ready_probe,
                     start_failures=start_failures, backoff=backoff, now=now, started_probe=started_probe)
    return StatusReport(forget_probes=frozenset({c.id for c in containers} - running), probe=probe,
                        status_patch=status_patch(pod.get("status") or {}, new), status=new)


# --------------------------------------------------------------------------- status


def rfc3339(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def container_id(c: ContainerInfo) -> str:
    return f"minicluster://{c.id}"


def image_id(c: ContainerInfo) -> str:
    """The imageID of a container's status: the image's repo digest (`docker.io/library/nginx@sha256:...`)
    as containerd reports it; a host process (`--container-runtime process`) runs no image."""
    return c.image_id or f"minicluster://{c.image}"


def status_image(spec_image: str, c: ContainerInfo) -> str:
    """The image of a container's status: the normalized name when the image came from a store."""
    if not c.image_id:
        return spec_image
    try:
        return reference.normalize(spec_image)
    except ImageError:
        return spec_image


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
    policy: str | None = None,
    waiting_reason: str = "ContainerCreating",
    started_probe: Mapping[str, bool] | None = None,
) -> Obj:
    """One entry of containerStatuses (or initContainerStatuses: `policy` is then the init
    containers' and `waiting_reason` PodInitializing, as for the app containers of a pod with
    init containers)."""
    name, image = spec["name"], spec.get("image", "")
    latest = attempts[-1] if attempts else None
    previous = attempts[-2] if len(attempts) > 1 else None
    status: Obj = {"name": name, "image": image, "imageID": "", "ready": False, "started": False,
                   "restartCount": latest.attempt if latest else 0, "state": {}, "lastState": {}}
    if latest is None or latest.state == CONTAINER_CREATED:
        return _not_started(status, latest, previous, failure, waiting_reason)
    status["imageID"] = image_id(latest)
    status["image"] = status_image(image, latest)
    status["containerID"] = container_id(latest)
    if latest.state == CONTAINER_RUNNING and pod_running:
        return _running(status, spec, latest, previous, ready_probe, started_probe or {})
    if latest.state == CONTAINER_EXITED and pod_running and should_restart(policy or restart_policy(pod),
                                                                           latest.exit_code):
        status["state"] = {"waiting": _restart_wait(pod, name, latest, failure, backoff)}
        status["lastState"] = _terminated(latest)
        return status
    status["state"] = _terminated(latest)
    if previous is not None:
        status["lastState"] = _terminated(previous)
    return status


def _not_started(status: Obj, latest: ContainerInfo | None, previous: ContainerInfo | None,
                 failure: StartFailure | None, waiting_reason: str) -> Obj:
    """Waiting to be created (or failing to be)."""
    if failure is not None:
        status["state"] = {"waiting": {"reason": failure.reason, "message": failure.message}}
    else:
        status["state"] = {"waiting": {"reason": waiting_reason}}
    if latest is not None and latest.attempt > 0 and previous is not None:
        status["lastState"] = _terminated(previous)
    return status


def _running(status: Obj, spec: Mapping[str, Any], latest: ContainerInfo, previous: ContainerInfo | None,
             ready_probe: Mapping[str, bool], started_probe: Mapping[str, bool]) -> Obj:
    """Started once its startup probe (if any) succeeded; ready only then, and once its
    readiness probe (if any) says so."""
    status["state"] = {"running": {"startedAt": rfc3339(latest.started_at)}}
    status["started"] = bool(started_probe.get(latest.id, False)) if spec.get("startupProbe") else True
    has_probe = bool(spec.get("readinessProbe"))
    status["ready"] = status["started"] and (bool(ready_probe.get(latest.id, False)) if has_probe else True)
    if previous is not None:
        status["lastState"] = _terminated(previous)
    return status


def _restart_wait(pod: Mapping[str, Any], name: str, latest: ContainerInfo, failure: StartFailure | None,
                  backoff: Backoff) -> Obj:
    """Why an exited container that will restart is waiting: its last start failure, or the back-off."""
    if failure is not None and failure.at >= (latest.finished_at or 0):
        return {"reason": failure.reason, "message": failure.message}
    delay = backoff.delay(latest.attempt)
    return {"reason": "CrashLoopBackOff",
            "message": f"back-off {delay:g}s restarting failed container={name} "
                       f"pod={(pod.get('metadata') or {}).get('name')}"}


def any_app_started(statuses: Sequence[Mapping[str, Any]]) -> bool:
    """HasAnyRegularContainerStarted: a container running or terminated."""
    return any("running" in (s.get("state") or {}) or "terminated" in (s.get("state") or {}) for s in statuses)


def _init_progress(init_statuses: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    """getPhase's count of init containers (pending, failed)."""
    pending = failed = 0
    for s in init_statuses:
        state, last = s.get("state") or {}, (s.get("lastState") or {}).get("terminated")
        if "terminated" in state:
            failed += state["terminated"].get("exitCode") != 0
        elif "waiting" in state and last:
            failed += last.get("exitCode") != 0
        else:
            pending += 1
    return pending, failed


def pod_phase(policy: str, statuses: Sequence[Mapping[str, Any]], previous: str | None,
              init_statuses: Sequence[Mapping[str, Any]] = ()) -> str:
    """kubelet's getPhase: an init container that failed under restartPolicy Never fails the
    pod; one still to run (or running) keeps it Pending, as does a container still waiting."""
    if previous in TERMINAL_PHASES:
        return previous
    pending_init, failed_init = _init_progress(init_statuses)
    if failed_init and policy == "Never":
        return "Failed"
    if pending_init and not any_app_started(statuses):
        return "Pending"
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
    started_probe: Mapping[str, bool] | None = None,
) -> Obj:
    """The status the API should hold for `pod`, from what runs (deterministic: timestamps come
    from the runtime records and the previous status, except for new transitions)."""
    now = time.time() if now is None else now
    old: Mapping[str, Any] = pod.get("status") or {}
    terminal_before = old.get("phase") if old.get("phase") in TERMINAL_PHASES else None
    sandbox = current_sandbox(pod, sandboxes) or latest_sandbox(pod, sandboxes)
    running_sandbox = sandbox is not None and sandbox.state == SANDBOX_READY and not terminal_before
    attempts = by_name([c for c in containers if sandbox is not None and c.sandbox_id == sandbox.id])
    init_specs = spec_init_containers(pod)
    waiting_reason = "PodInitializing" if init_specs else "ContainerCreating"
    init_statuses = [
        _init_status(container_status(pod, spec, attempts.get(spec["name"], []), ready_probe={},
                                      failure=start_failures.get(spec["name"]), backoff=backoff, now=now,
                                      pod_running=running_sandbox, policy=init_restart_policy(restart_policy(pod)),
                                      waiting_reason=waiting_reason))
        for spec in init_specs
    ]
    statuses = [
        container_status(pod, spec, attempts.get(spec["name"], []), ready_probe=ready_probe,
                         failure=start_failures.get(spec["name"]), backoff=backoff, now=now,
                         pod_running=running_sandbox, waiting_reason=waiting_reason, started_probe=started_probe)
        for spec in spec_containers(pod)
    ]
    phase = pod_phase(restart_policy(pod), statuses, terminal_before, init_statuses)
    status: Obj = {
        "phase": phase,
        "hostIP": node_ip,
        "hostIPs": [{"ip": node_ip}],
        "startTime": old.get("startTime") or rfc3339(sandbox.created_at if sandbox else now),
        "conditions": _pod_conditions(old.get("conditions") or [], statuses, phase, rfc3339(now) or "",
                                      init_statuses),
        "containerStatuses": statuses,
        "qosClass": old.get("qosClass") or "BestEffort",
    }
    if init_statuses:
        status["initContainerStatuses"] = init_statuses
    ip = _pod_ip(sandbox, phase, old)
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    return status


def _init_status(status: Obj) -> Obj:
    """An init container is ready once it has succeeded; `started` only while it runs."""
    terminated = (status.get("state") or {}).get("terminated")
    status["ready"] = isinstance(terminated, dict) and terminated.get("exitCode") == 0
    status["started"] = "running" in (status.get("state") or {})
    return status


def _pod_conditions(previous: Sequence[Mapping[str, Any]], statuses: Sequence[Mapping[str, Any]], phase: str,
                    now_iso: str, init_statuses: Sequence[Mapping[str, Any]] = ()) -> list[Obj]:
    """PodScheduled, Initialized, ContainersReady and Ready; Initialized says which init
    containers have not succeeded (unless an app container started already), the last two which
    containers are not ready."""
    all_ready = bool(statuses) and all(s["ready"] for s in statuses) and phase == "Running"
    not_ready = [s["name"] for s in statuses if not s["ready"]]
    incomplete = [s["name"] for s in init_statuses if not s["ready"]]
    initialized = not incomplete or any_app_started(statuses) or phase == "Succeeded"
    conditions = _conditions(
        previous,
        {"PodScheduled": True, "Initialized": initialized, "ContainersReady": all_ready, "Ready": all_ready},
        now_iso,
        {"Initialized": "ContainersNotInitialized", "ContainersReady": "ContainersNotReady",
         "Ready": "ContainersNotReady"},
    )
    messages = {"Initialized": f"containers with incomplete status: [{' '.join(incomplete)}]",
                "ContainersReady": f"containers with unready status: [{' '.join(not_ready)}]",
                "Ready": f"containers with unready status: [{' '.join(not_ready)}]"}
    for cond in conditions:
        if cond["status"] == "False" and cond["type"] in messages and (incomplete or cond["type"] != "Initialized") \
                and (not_ready or cond["type"] == "Initialized"):
            cond["message"] = messages[cond["type"]]
    return conditions


def _pod_ip(sandbox: SandboxInfo | None, phase: str, old: Mapping[str, Any]) -> str:
    ip = sandbox.ip if sandbox is not None and sandbox.state == SANDBOX_READY else ""
    if not ip and phase in TERMINAL_PHASES:
        ip = old.get("podIP") or ""  # a finished pod keeps the address it had
    return str(ip)


MANAGED_STATUS_KEYS = ("phase", "hostIP", "hostIPs", "startTime", "conditions", "containerStatuses",
                       "initContainerStatuses", "qosClass", "podIP", "podIPs")


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
