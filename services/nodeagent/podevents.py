"""What the node agent tells about a pod's containers, in kubelet's words (pure).

Each function returns a `PodEvent` for the agent's `EventRecorder`; container events carry
kubelet's fieldPath (`spec.containers{web}`), which `kubectl get events -o wide` shows as
the Subobject. The image events are the image manager's (`imagemanager`).
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


def go_duration(seconds: float) -> str:
    """A duration as Go prints a time.Duration truncated to milliseconds: `830ms`, `1.394s`, `1m2.5s`."""
    ms = int(seconds * 1000)
    if ms == 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    minutes, rest_ms = divmod(ms, 60_000)
    secs = f"{rest_ms / 1000:.3f}".rstrip("0").rstrip(".") + "s"
    if not minutes:
        return secs
    hours, minutes = divmod(minutes, 60)
    return (f"{hours}h" if hours else "") + f"{minutes}m" + secs


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


# The waiting reasons of the image manager's failures (`imagemanager`).
IMAGE_REASONS = frozenset({"ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName"})


def failed(name: str, image: str, reason: str, message: str) -> PodEvent:
    """A container that could not be created or started: kubelet says `Error: <why>`, and for
    an image the error's name (the image manager told the details)."""
    return PodEvent(WARNING, "Failed", f"Error: {reason if reason in IMAGE_REASONS else message}",
                    container_path(name))


def pulling(name: str, image: str) -> PodEvent:
    return PodEvent(NORMAL, "Pulling", f'Pulling image "{image}"', container_path(name))


def pulled_image(name: str, image: str, *, took: float, waited: float, size: int) -> PodEvent:
    return PodEvent(NORMAL, "Pulled", f'Successfully pulled image "{image}" in {go_duration(took)} '
                    f"({go_duration(waited)} including waiting). Image size: {size} bytes.", container_path(name))


def failed_pull(name: str, image: str, message: str) -> PodEvent:
    return PodEvent(WARNING, "Failed", f'Failed to pull image "{image}": {message}', container_path(name))


def back_off_pulling(name: str, image: str) -> PodEvent:
    return PodEvent(NORMAL, "BackOff", f'Back-off pulling image "{image}"', container_path(name))


def never_pull(name: str, message: str) -> PodEvent:
    return PodEvent(WARNING, "ErrImageNeverPull", message, container_path(name))


def pull_secrets_missing(names: list[str]) -> PodEvent:
    return PodEvent(WARNING, "FailedToRetrieveImagePullSecret",
                    f"Unable to retrieve some image pull secrets ({', '.join(names)}); "
                    "attempting to pull the image may not succeed.")


def image_inspect_failed(name: str, message: str) -> PodEvent:
    """An image name that does not parse (kubelet's InspectFailed, reason InvalidImageName)."""
    return PodEvent(WARNING, "InspectFailed", message, container_path(name))


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


def back_off(pod: Mapping[str, Any], name: str) -> PodEvent:
    """Waiting before restarting an exited container (an image's back-off is the image manager's)."""
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
