"""What the node agent tells about a pod's containers, in kubelet's words (pure).

Each function returns a `PodEvent` for the agent's `EventRecorder`; container events carry
kubelet's fieldPath (`spec.containers{web}`), which `kubectl get events -o wide` shows as
the Subobject. Images are never pulled here (they are the node's own programs), so a
known image is always "already present on machine", as kubelet says for IfNotPresent.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubecore.client.events import NORMAL, WARNING


@dataclass(frozen=True)
class PodEvent:
    type: str
    reason: str
    message: str
    field_path: str | None = None


def container_path(name: str) -> str:
    return f"spec.containers{{{name}}}"


def pod_text(pod: Mapping[str, Any]) -> str:
    """kubelet's format.Pod: `web-1_default(<uid>)`."""
    meta = pod.get("metadata") or {}
    return f"{meta.get('name', '')}_{meta.get('namespace', '')}({meta.get('uid', '')})"


def pulled(name: str, image: str) -> PodEvent:
    return PodEvent(NORMAL, "Pulled", f'Container image "{image}" already present on machine',
                    container_path(name))


def created(name: str) -> PodEvent:
    return PodEvent(NORMAL, "Created", f"Created container: {name}", container_path(name))


def started(name: str) -> PodEvent:
    return PodEvent(NORMAL, "Started", f"Started container {name}", container_path(name))


def failed(name: str, image: str, reason: str, message: str) -> PodEvent:
    """A container that could not be created or started."""
    if reason == "ErrImagePull":
        return PodEvent(WARNING, "Failed", f'Failed to pull image "{image}": {message}',
                        container_path(name))
    return PodEvent(WARNING, "Failed", f"Error: {message}", container_path(name))


def invalid_env_names(message: str) -> PodEvent:
    """envFrom keys skipped because they are not variable names (`podenv.SkippedKeys.message`)."""
    return PodEvent(WARNING, "InvalidEnvironmentVariableNames", message)


def failed_create_sandbox(message: str) -> PodEvent:
    """The pod's sandbox (network namespace, pod files, network) could not be made."""
    return PodEvent(WARNING, "FailedCreatePodSandBox", f"Failed to create pod sandbox: {message}")


def stopping(name: str) -> PodEvent:
    return PodEvent(NORMAL, "Killing", f"Stopping container {name}", container_path(name))


def killing_unhealthy(name: str, why: str = "Unhealthy") -> PodEvent:
    """A container whose liveness (or, `why` "StartupFailed", startup) probe failed."""
    probe = "startup" if why == "StartupFailed" else "liveness"
    return PodEvent(NORMAL, "Killing", f"Container {name} failed {probe} probe, will be restarted",
                    container_path(name))


def killing(name: str, message: str) -> PodEvent:
    return PodEvent(NORMAL, "Killing", message, container_path(name))


def failed_post_start(name: str, message: str) -> PodEvent:
    return PodEvent(WARNING, "FailedPostStartHook", message, container_path(name))


def failed_pre_stop(name: str) -> PodEvent:
    """kubelet leaves the hook's output out of the Event, so no secret leaks through it."""
    return PodEvent(WARNING, "FailedPreStopHook", "PreStopHook failed", container_path(name))


def back_off(pod: Mapping[str, Any], name: str, image: str, failure_reason: str | None) -> PodEvent:
    """Waiting before the next attempt: to restart an exited container, or to create one
    whose image could not be found."""
    if failure_reason == "ErrImagePull":
        return PodEvent(WARNING, "BackOff", f'Back-off pulling image "{image}"', container_path(name))
    return PodEvent(WARNING, "BackOff",
                    f"Back-off restarting failed container {name} in pod {pod_text(pod)}",
                    container_path(name))


def unhealthy(name: str, probe: str, detail: str) -> PodEvent:
    """`probe` is "readiness" or "liveness"."""
    return PodEvent(WARNING, "Unhealthy", f"{probe.capitalize()} probe failed: {detail}",
                    container_path(name))


def failed_mount(volume: str, message: str) -> PodEvent:
    """kubelet's FailedMount: a volume could not be set up, so the containers wait."""
    return PodEvent(WARNING, "FailedMount", f'MountVolume.SetUp failed for volume "{volume}" : {message}')
