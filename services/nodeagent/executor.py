"""Carrying out a pod's plan: the thin side of kubelet's SyncPod.

`podsync.plan_pod` decides and spells every step out (`PodPlan.steps`); `PodExecutor.run` takes
the steps in order and does each through narrow interfaces: the container runtime
(`cri.ContainerRuntime`), the prober, the API writes of a pod (`PodWriter`) and the event
recorder (`EventSink`). It asks the planner nothing. After the actions, the `Report` step looks at
the runtime again and writes the pod's status back when it changed.

The executor's own state is the last start failure per (pod uid, container name): image and
executable problems are not runtime records, but they drive back-offs and the waiting reasons of
the status, as kubelet's image and container back-offs do.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from kubecore.api.errors import ApiError
from kubecore.api.types import Obj
from kubecore.client.rest import ApiUnavailable
from services.nodeagent import podenv, podevents, podsync
from services.nodeagent.cri import ContainerRuntime
from services.nodeagent.imagemanager import ERR_IMAGE_PULL, ImageManager, ImageUnavailable, PullBackoff
from services.nodeagent.oci.image import ImageError
from services.nodeagent.oci.registry import Credential, keyring_from_secrets
from services.nodeagent.podsync import (
    Backoff,
    CreateSandbox,
    DeletePodObject,
    ForgetGonePods,
    KillContainer,
    PodPlan,
    RemoveContainer,
    RemoveSandbox,
    Report,
    Requeue,
    SetUpVolumes,
    StartContainers,
    StartFailure,
    Step,
    StopPodContainers,
    StopSandbox,
    Tell,
)
from services.nodeagent.policygate import PolicyGate, PolicyGateError
from services.nodeagent.probes import ProbeTarget
from services.nodeagent.projected import VolumeError
from services.nodeagent.runtime import (
    ContainerConfig,
    ContainerInfo,
    Mount,
    RuntimeServiceError,
    SandboxCreateError,
    SandboxInfo,
)
from services.nodeagent.sources import ReferencedObjects, SourceError

log = logging.getLogger("nodeagent")


class Probes(Protocol):
    """The prober as the executor uses it (`probes.Prober`)."""

    @property
    def ready(self) -> Mapping[str, bool]: ...

    @property
    def started(self) -> Mapping[str, bool]:
        """Containers whose startup probe has succeeded."""
        ...

    def ensure(self, target: ProbeTarget) -> None: ...

    def forget(self, container_ids: set[str]) -> None: ...


class PodWriter(Protocol):
    """The two API writes of a pod's sync; both raise kubecore's ApiError."""

    async def delete_pod(self, name: str, namespace: str | None, *, uid: str) -> None:
        """Delete with grace 0, only the object of this uid."""
        ...

    async def patch_status(self, name: str, namespace: str | None, patch: Obj) -> None: ...


class VolumeSetUp(Protocol):
    """The node's pod volumes (`volumes.PodVolumes`)."""

    async def set_up(self, pod: Mapping[str, Any]) -> dict[str, str]:
        """Write the pod's volumes; -> volume name -> host directory. Raises VolumeError."""
        ...

    def keep_pods(self, uids: set[str]) -> None:
        """Forget and remove the volumes of every pod not in `uids`."""
        ...


class Hooks(Protocol):
    """Lifecycle handlers (`lifecycle.HookRunner`)."""

    async def run(self, pod: Mapping[str, Any], container: Mapping[str, Any], container_id: str, pod_ip: str,
                  handler: Mapping[str, Any], timeout: float) -> str | None:
        """None, or why the handler failed."""
        ...


class EventSink(Protocol):
    """`kubecore.client.events.EventRecorder`: queues an Event, never blocks, never raises."""

    def event(self, obj: Obj, event_type: str, reason: str, message: str, *,
              field_path: str | None = None) -> None: ...


class StartFailures:
    """The last failure to create or start each container, by (pod uid, container name)."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str], StartFailure] = {}

    def of_pod(self, uid: str) -> dict[str, StartFailure]:
        return {name: f for (u, name), f in self._by_key.items() if u == uid}

    def get(self, uid: str, name: str) -> StartFailure | None:
        return self._by_key.get((uid, name))

    def record(self, uid: str, name: str, reason: str, message: str, *, at: float) -> StartFailure:
        """One more failure in a row (its `count` says how many)."""
        before = self._by_key.get((uid, name))
        failure = StartFailure(reason, message, at, (before.count + 1) if before else 1)
        self._by_key[(uid, name)] = failure
        return failure

    def clear(self, uid: str, name: str) -> None:
        self._by_key.pop((uid, name), None)

    def drop_pod(self, uid: str) -> None:
        self._by_key = {k: v for k, v in self._by_key.items() if k[0] != uid}

    def keep_pods(self, uids: set[str]) -> None:
        self._by_key = {k: v for k, v in self._by_key.items() if k[0] in uids}

    def __len__(self) -> int:
        return len(self._by_key)


MIN_GRACE_SECONDS = 2  # kubelet's minimumGracePeriodInSeconds, after a preStop hook
POST_START_TIMEOUT = 300.0  # kubelet waits for postStart without a bound; here at most this


class PostStartHookError(RuntimeServiceError):
    """`at`: when the container was killed for it, so the status shows this as its last failure."""

    reason = "PostStartHookError"

    def __init__(self, message: str, *, at: float) -> None:
        super().__init__(message)
        self.at = at


def mount_paths(mounts: tuple[Mount, ...], dirs: Mapping[str, str], env: Mapping[str, str]) -> tuple[Mount, ...]:
    """Each mount's host path: its volume's directory, or the subPath in it (subPathExpr
    expanded against the container's environment), made as a directory when missing, as
    kubelet's makeMounts does; a subPath that leads out of its volume (through a symlink) is
    refused. A mount of a volume not set up is left out."""
    out = []
    for m in mounts:
        if m.volume not in dirs:
            continue
        base = dirs[m.volume]
        if not m.sub_path:
            out.append(replace(m, host_path=base))
            continue
        sub = podenv.expand(m.sub_path, env.get) if m.sub_path_expr else m.sub_path
        if os.path.isabs(sub) or ".." in sub.split("/"):
            raise podenv.ContainerConfigError(f"subPath {sub!r} must be a relative path within the volume")
        path = os.path.join(base, sub)
        if not os.path.lexists(path):
            os.makedirs(path, mode=0o755, exist_ok=True)
        real_base, real = os.path.realpath(base), os.path.realpath(path)
        if real != real_base and not real.startswith(real_base.rstrip("/") + "/"):
            raise podenv.ContainerConfigError(f"subpath {real!r} not within volume path {real_base!r}")
        out.append(replace(m, host_path=real))
    return tuple(out)


def _retry_after(exc: Exception, restart_delay: float) -> float:
    """When a failed start is tried again: a pull failure halfway through its back-off (so the
    pod shows ImagePullBackOff meanwhile, as after kubelet's resync) and once it ends; any other
    failure after the container's restart back-off."""
    if isinstance(exc, ImageUnavailable) and exc.retry_after is not None:
        return exc.retry_after / 2 if exc.reason == ERR_IMAGE_PULL else exc.retry_after
    return restart_delay


def observe(runtime: ContainerRuntime, key: str) -> tuple[list[SandboxInfo], list[ContainerInfo]]:
    """Every sandbox of a pod key (any uid, any state) and their containers."""
    sandboxes = [s for s in runtime.list_pod_sandboxes() if s.key == key]
    containers = [c for s in sandboxes for c in runtime.list_containers(s.id)]
    return sandboxes, containers


@dataclass
class _Sync:
    """What one run learns on the way: the sandbox it made, or why it could not."""

    plan: PodPlan
    sandbox_id: str | None = None
    error: Exception | None = None
    volume_dirs: dict[str, str] | None = None  # set up this sync: volume name -> host directory
    volumes_failed: bool = False

    @property
    def key(self) -> str:
        return self.plan.key


class PodExecutor:
    """Takes a plan's steps in order, through the runtime, the prober and the API."""

    def __init__(
        self,
        *,
        runtime: ContainerRuntime,
        probes: Probes,
        writer: PodWriter,
        events: EventSink,
        requeue: Callable[[str, float], None],
        bound_pod_uids: Callable[[], set[str]],
        node_ip: str,
        backoff: Backoff,
        failures: StartFailures | None = None,
        volumes: VolumeSetUp | None = None,
        service_env: Callable[[Mapping[str, Any]], Mapping[str, str]] | None = None,
        objects: ReferencedObjects | None = None,
        allocatable: Mapping[str, str] | None = None,
        hooks: Hooks | None = None,
        image_backoff: PullBackoff | None = None,
        on_status_written: Callable[[str, Obj], None] | None = None,
        policy_gate: PolicyGate | None = None,
    ) -> None:
        self.runtime = runtime
        self.probes = probes
        self.writer = writer
        self.events = events
        self.requeue = requeue
        self.bound_pod_uids = bound_pod_uids
        self.node_ip = node_ip
        self.backoff = backoff
        self.failures = failures if failures is not None else StartFailures()
        self.volumes = volumes
        self.service_env = service_env
        self.objects = objects
        self.allocatable = dict(allocatable or {})
        self.hooks = hooks
        self.images = ImageManager(runtime, tell=self._tell, backoff=image_backoff)
        self.on_status_written = on_status_written  # (pod key, the status now in the API)
        self.policy_gate = policy_gate  # a new sandbox's NetworkPolicy in place before its containers

    async def run(self, plan: PodPlan) -> None:
        sync = _Sync(plan)
        for step in plan.steps:
            await self._take(sync, step)

    async def _take(self, sync: _Sync, step: Step) -> None:
        match step:
            case StopPodContainers():
                await self._stop_pod_containers(sync, step)
            case RemoveSandbox():
                self.probes.forget(set(step.container_ids))
                await self.runtime.remove_pod_sandbox(step.sandbox_id)
                log.info("pod=%s sandbox %s removed", sync.key, step.sandbox_id[:12], extra={"key": sync.key})
            case StopSandbox():
                await self.runtime.stop_pod_sandbox(step.sandbox_id)
                log.info("pod=%s finished; sandbox %s stopped", sync.key, step.sandbox_id[:12],
                         extra={"key": sync.key})
            case ForgetGonePods():
                self.failures.keep_pods(self.bound_pod_uids())
                self.images.forget_pods(self.bound_pod_uids())
                if self.volumes is not None:
                    self.volumes.keep_pods(self.bound_pod_uids())
            case DeletePodObject():
                await self._delete_pod_object(sync, step)
            case KillContainer():
                await self._kill_container(sync, step)
            case RemoveContainer():
                self.probes.forget({step.container_id})
                await self.runtime.remove_container(step.container_id)
            case CreateSandbox():
                await self._create_sandbox(sync, step)
            case SetUpVolumes():
                await self._set_up_volumes(sync)
            case StartContainers():
                await self._start_containers(sync, step)
            case Tell():
                self._tell(sync.plan.pod, step.event)
            case Report():
                await self._report(sync, step)
            case Requeue():
                self.requeue(sync.key, step.seconds)

    # ----------------------------------------------------------------- the steps

    async def _stop_pod_containers(self, sync: _Sync, step: StopPodContainers) -> None:
        log.info("pod=%s stopping %d containers (grace %ds)", sync.key, len(step.containers), step.grace,
                 extra={"key": sync.key})
        for c in step.containers:
            self._tell(sync.plan.pod, podevents.stopping(c.name))
        await asyncio.gather(*(self._stop(sync, c.id, c.name, step.grace) for c in step.containers))

    async def _stop(self, sync: _Sync, container_id: str, name: str | None, grace: int) -> None:
        """kubelet's killContainer: the preStop hook first, within the grace period, then the TERM
        signal with what is left of it (at least 2 s), then KILL."""
        pod = sync.plan.pod
        spec = podenv.find_container(pod, name) if pod is not None and name is not None else None
        handler = ((spec or {}).get("lifecycle") or {}).get("preStop")
        if pod is not None and spec is not None and isinstance(handler, dict) and self.hooks is not None and grace > 0:
            began = time.monotonic()
            try:
                problem = await asyncio.wait_for(
                    self.hooks.run(pod, spec, container_id, self._container_ip(container_id), handler, grace),
                    grace)
            except TimeoutError:
                problem = f"PreStopHook timed out after {grace}s"
            if problem is not None:
                log.info("pod=%s container %s preStop: %s", sync.key, name, problem, extra={"key": sync.key})
                self._tell(pod, podevents.failed_pre_stop(name or ""))
            grace = max(int(grace - (time.monotonic() - began)), MIN_GRACE_SECONDS)
        await self.runtime.stop_container(container_id, timeout=grace)

    def _container_ip(self, container_id: str) -> str:
        try:
            sandbox_id = self.runtime.container_status(container_id).sandbox_id
        except RuntimeServiceError:
            return ""
        return next((s.ip for s in self.runtime.list_pod_sandboxes() if s.id == sandbox_id), "")

    async def _delete_pod_object(self, sync: _Sync, step: DeletePodObject) -> None:
        self.failures.drop_pod(step.uid)
        try:
            await self.writer.delete_pod(step.name, step.namespace, uid=step.uid)
            log.info("pod=%s deleted", sync.key, extra={"key": sync.key})
        except ApiError as exc:
            if exc.code not in (404, 409):
                raise

    async def _kill_container(self, sync: _Sync, step: KillContainer) -> None:
        log.info("pod=%s killing container %s: %s", sync.key, step.container_id[:12], step.why,
                 extra={"key": sync.key})
        if step.name is not None:
            self._tell(sync.plan.pod, podevents.killing_unhealthy(step.name, step.why))
        await self._stop(sync, step.container_id, step.name, step.grace)

    async def _create_sandbox(self, sync: _Sync, step: CreateSandbox) -> None:
        try:
            info = await self.runtime.run_pod_sandbox(
                step.pod_uid, step.namespace, step.name, hostname=step.hostname, subdomain=step.subdomain,
                port_mappings=step.port_mappings, labels=step.labels,
                share_process_namespace=step.share_process_namespace)
        except RuntimeServiceError as exc:
            self._tell(sync.plan.pod, podevents.failed_create_sandbox(str(exc)))
            sync.error = exc  # the status is still written; the sync fails after it
            return
        if self.policy_gate is not None and info.ip:
            try:
                await self.policy_gate.wait(step.namespace, step.name, step.pod_uid, info.ip)
            except PolicyGateError as exc:
                log.warning("pod=%s sandbox %s removed: %s", sync.key, info.id[:12], exc, extra={"key": sync.key})
                await self.runtime.stop_pod_sandbox(info.id)
                await self.runtime.remove_pod_sandbox(info.id)
                error = SandboxCreateError(f"network policy for pod {step.namespace}/{step.name} "
                                           f"not in place: {exc}")
                self._tell(sync.plan.pod, podevents.failed_create_sandbox(str(error)))
                sync.error = error
                return
        sync.sandbox_id = info.id

    async def _set_up_volumes(self, sync: _Sync) -> None:
        pod = sync.plan.pod
        if self.volumes is None or pod is None:
            return
        try:
            sync.volume_dirs = await self.volumes.set_up(pod)
        except (VolumeError, ApiUnavailable, OSError) as exc:
            sync.volumes_failed = True
            names = getattr(exc, "volume", None) or ", ".join(sorted(podsync.node_volume_names(pod)))
            log.warning("pod=%s volumes %s: %s", sync.key, names, exc, extra={"key": sync.key})
            self._tell(pod, podevents.failed_mount(names, str(exc)))
            self.requeue(sync.key, 2.0)

    async def _container_config(self, sync: _Sync, sandbox_id: str, config: ContainerConfig) -> ContainerConfig:
        """The container as the node runs it: its volumes resolved to their directories (a mount
        of a volume not set up is left out), its environment, command and args as kubelet makes
        them (`podenv`); raises podenv.ContainerConfigError."""
        dirs = sync.volume_dirs or {}
        pod = sync.plan.pod
        spec = podenv.find_container(pod, config.name) if pod is not None else None
        if pod is None or spec is None:
            return replace(config, mounts=mount_paths(config.mounts, dirs, config.env))
        namespace = str((pod.get("metadata") or {}).get("namespace") or "")
        configmaps, secrets = podenv.references(spec)
        sources = podenv.EnvSources()
        if self.objects is not None:
            try:
                sources = await self.objects.env_sources(namespace, configmaps, secrets)
            except SourceError as exc:
                raise podenv.ContainerConfigError(str(exc)) from exc
        resolved = podenv.container_env(
            pod, spec, service_env=self.service_env(pod) if self.service_env is not None else {}, sources=sources,
            addresses=self._addresses(sandbox_id), allocatable=self.allocatable)
        for skipped in resolved.skipped:
            self._tell(pod, podevents.invalid_env_names(skipped.message))
        return replace(config, mounts=mount_paths(config.mounts, dirs, resolved.env), env=resolved.env,
                       command=resolved.command, args=resolved.args, pod=pod, spec=spec)

    def _addresses(self, sandbox_id: str) -> podenv.PodAddresses:
        ip = next((s.ip for s in self.runtime.list_pod_sandboxes() if s.id == sandbox_id), "")
        return podenv.PodAddresses(pod_ips=(ip,) if ip else (), host_ips=(self.node_ip,) if self.node_ip else ())

    async def _start_containers(self, sync: _Sync, step: StartContainers) -> None:
        sandbox_id = step.sandbox_id or sync.sandbox_id
        if sync.error is not None or sandbox_id is None or sync.volumes_failed:
            return
        await asyncio.gather(*(self._start(sync, step.pod_uid, sandbox_id, config) for config in step.containers))

    async def _start(self, sync: _Sync, uid: str, sandbox_id: str, config: ContainerConfig) -> None:
        name, image = config.name, config.image
        try:
            config = await self._container_config(sync, sandbox_id, config)
            if config.pod is not None and config.spec is not None:
                await self.images.ensure(config.pod, config.spec, keyring=await self._pull_keyring(config.pod))
            info = await self.runtime.create_container(sandbox_id, config)
            self._tell(sync.plan.pod, podevents.created(name))
            await self.runtime.start_container(info.id)
            self._tell(sync.plan.pod, podevents.started(name))
            await self._post_start(sync, sandbox_id, info)
        except (ImageError, ImageUnavailable, RuntimeServiceError,
                podenv.ContainerConfigError) as exc:
            reason = getattr(exc, "reason", "RunContainerError")
            failure = self.failures.record(uid, name, reason, str(exc), at=getattr(exc, "at", None) or time.time())
            log.warning("pod=%s container %s: %s: %s", sync.key, name, reason, exc, extra={"key": sync.key})
            if not isinstance(exc, PostStartHookError):  # told as FailedPostStartHook already
                self._tell(sync.plan.pod, podevents.failed(name, image, reason, str(exc)))
            self.requeue(sync.key, _retry_after(exc, self.backoff.delay(failure.count - 1)) + 0.01)
            return
        self.failures.clear(uid, name)

    async def _pull_keyring(self, pod: Mapping[str, Any]) -> dict[str, Credential]:
        """The credentials of the pod's imagePullSecrets; those that cannot be read are told
        (FailedToRetrieveImagePullSecret) and the pull goes on without them, as kubelet's."""
        names = [str(ref.get("name")) for ref in (pod.get("spec") or {}).get("imagePullSecrets") or ()
                 if isinstance(ref, Mapping) and ref.get("name")]
        if not names or self.objects is None:
            return {}
        namespace = str((pod.get("metadata") or {}).get("namespace") or "")
        secrets, missing = [], []
        for name in names:
            try:
                secret = await self.objects.secret(namespace, name)
            except SourceError:
                secret = None
            if secret is None:
                missing.append(name)
            else:
                secrets.append(secret)
        if missing:
            self._tell(pod, podevents.pull_secrets_missing(missing))
        return keyring_from_secrets(secrets)

    async def _post_start(self, sync: _Sync, sandbox_id: str, info: ContainerInfo) -> None:
        """The postStart hook, before the container counts as started; when it fails the
        container is killed and the start failed (kubelet's PostStartHookError)."""
        pod = sync.plan.pod
        spec = podenv.find_container(pod, info.name) if pod is not None else None
        handler = ((spec or {}).get("lifecycle") or {}).get("postStart")
        if pod is None or spec is None or not isinstance(handler, dict) or self.hooks is None:
            return
        pod_ip = self._addresses(sandbox_id).pod_ips[0] if self._addresses(sandbox_id).pod_ips else ""
        problem = await self.hooks.run(pod, spec, info.id, pod_ip, handler, POST_START_TIMEOUT)
        if problem is None:
            return
        self._tell(pod, podevents.failed_post_start(info.name, problem))
        self._tell(pod, podevents.killing(info.name, "FailedPostStartHook"))
        stopped = await self.runtime.stop_container(info.id, timeout=podsync.grace_seconds(pod))
        raise PostStartHookError(problem, at=max(time.time(), stopped.finished_at or 0.0))

    async def _report(self, sync: _Sync, step: Report) -> None:
        pod = sync.plan.pod
        if pod is None:
            return
        sandboxes, containers = observe(self.runtime, sync.key)
        report = podsync.plan_report(sync.key, pod, sandboxes, containers, node_ip=self.node_ip,
                                     ready_probe=self.probes.ready, started_probe=self.probes.started,
                                     start_failures=self.failures.of_pod(step.pod_uid),
                                     backoff=self.backoff)
        self.probes.forget(set(report.forget_probes))
        for target in report.probe:
            self.probes.ensure(target)
        if report.status_patch is not None and await self._patch_status(pod, report.status_patch):
            if self.on_status_written is not None and report.status is not None:
                self.on_status_written(sync.key, report.status)
        if sync.error is not None:
            raise sync.error

    async def _patch_status(self, pod: Mapping[str, Any], patch: Obj) -> bool:
        """Write the patch; False when the pod is gone."""
        meta = pod.get("metadata") or {}
        try:
            await self.writer.patch_status(meta["name"], meta.get("namespace"), patch)
        except ApiError as exc:
            if exc.code != 404:
                raise
            return False
        return True

    def _tell(self, pod: Mapping[str, Any] | None, ev: podevents.PodEvent) -> None:
        if pod is None:
            return
        field_path = ev.field_path
        prefix = "spec.containers{"
        if field_path and field_path.startswith(prefix):  # an init container's events name it as one
            name = field_path[len(prefix):-1]
            if any(c.get("name") == name for c in podsync.spec_init_containers(pod)):
                field_path = f"spec.initContainers{{{name}}}"
        self.events.event(dict(pod), ev.type, ev.reason, ev.message, field_path=field_path)
