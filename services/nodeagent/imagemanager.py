"""Making sure a container's image is on the node before it is created: kubelet's image manager.

For each container start the executor asks `ImageManager.ensure`, which decides from the
container's `imagePullPolicy` and what the runtime's image service has (kubelet's
`EnsureImageExists`):

- `Never`: the image must be present, else ErrImageNeverPull
  (`Container image "x" is not present with pull policy of Never`);
- `IfNotPresent`: pulled only when absent; a present one is `already present on machine`;
- `Always`: pulled every time (a pull of an unchanged image only resolves its manifest, as
  every layer is in the store already).

A failed pull is ErrImagePull and starts a back-off per (pod uid, image), 10 s doubling to
5 min (kubelet's image back-off: flowcontrol.Backoff). A start inside the back-off pulls
nothing and fails ImagePullBackOff with `Back-off pulling image "x": ErrImagePull: <why>`,
the message `kubectl describe` shows on the waiting container. Events, in kubelet's words:
Pulling, Pulled (with the time it took and the image's size), Failed, BackOff,
ErrImageNeverPull.

Pulls of the same image with the same credentials at once are one pull. Credentials come from
the pod's imagePullSecrets (`registry.keyring_from_secrets`), matched by the puller.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from services.nodeagent import podevents
from services.nodeagent.cri import ImageService
from services.nodeagent.oci.image import Image, ImageError
from services.nodeagent.oci.registry import Credential

ALWAYS, IF_NOT_PRESENT, NEVER = "Always", "IfNotPresent", "Never"
ERR_IMAGE_PULL = "ErrImagePull"
IMAGE_PULL_BACK_OFF = "ImagePullBackOff"
ERR_IMAGE_NEVER_PULL = "ErrImageNeverPull"
INVALID_IMAGE_NAME = "InvalidImageName"


class ImageUnavailable(Exception):
    """The container cannot be created: `reason` is its waiting reason, the message its message."""

    def __init__(self, reason: str, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.retry_after = retry_after  # when the back-off ends, for a pull failure


def pull_policy(container: Mapping[str, Any]) -> str:
    """The container's policy; the API server defaults it, a missing one acts as IfNotPresent."""
    policy = container.get("imagePullPolicy")
    return policy if policy in (ALWAYS, IF_NOT_PRESENT, NEVER) else IF_NOT_PRESENT


def should_pull(policy: str, present: bool) -> bool:
    """kubelet's shouldPullImage."""
    return policy == ALWAYS or (policy == IF_NOT_PRESENT and not present)


@dataclass
class _Entry:
    duration: float
    last_update: float


class PullBackoff:
    """client-go's flowcontrol.Backoff as kubelet uses it for images: `next` after a failure
    starts at `initial` and doubles up to `cap`; an entry idle for twice `cap` starts over."""

    def __init__(self, initial: float = 10.0, cap: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.initial = initial
        self.cap = cap
        self.clock = clock
        self._entries: dict[str, _Entry] = {}

    def next(self, key: str) -> float:
        now = self.clock()
        entry = self._entries.get(key)
        if entry is None or now - entry.last_update > 2 * self.cap:
            entry = self._entries[key] = _Entry(self.initial, now)
        else:
            entry.duration = min(entry.duration * 2, self.cap)
            entry.last_update = now
        return entry.duration

    def remaining(self, key: str) -> float:
        """Seconds left of the key's back-off (IsInBackOffSinceUpdate when positive)."""
        entry = self._entries.get(key)
        if entry is None:
            return 0.0
        return max(0.0, entry.last_update + entry.duration - self.clock())

    def gc(self) -> None:
        now = self.clock()
        self._entries = {k: e for k, e in self._entries.items() if now - e.last_update <= 2 * self.cap}

    def forget_pods(self, keep: set[str]) -> None:
        self._entries = {k: e for k, e in self._entries.items() if k.partition("_")[0] in keep}


class ImageManager:
    def __init__(self, service: ImageService, *, tell: Callable[[Mapping[str, Any], podevents.PodEvent], None],
                 backoff: PullBackoff | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.service = service
        self.tell = tell
        self.backoff = backoff if backoff is not None else PullBackoff(clock=clock)
        self.clock = clock
        self._last_error: dict[str, str] = {}  # back-off key -> "ErrImagePull: <why>"
        self._pulls: dict[tuple[str, str], asyncio.Future[Image]] = {}

    async def ensure(self, pod: Mapping[str, Any], container: Mapping[str, Any], *,
                     keyring: Mapping[str, Credential] | None = None) -> Image:
        """The container's image, present on the node; raises ImageUnavailable."""
        name, image = str(container.get("name", "")), str(container.get("image") or "")
        policy = pull_policy(container)
        try:
            present = self.service.image_status(image)
        except ImageError as exc:
            self.tell(pod, podevents.image_inspect_failed(name, str(exc)))
            raise ImageUnavailable(INVALID_IMAGE_NAME, str(exc)) from exc
        if not should_pull(policy, present is not None):
            if present is not None:
                self.tell(pod, podevents.pulled(name, image))
                return present
            message = f'Container image "{image}" is not present with pull policy of Never'
            self.tell(pod, podevents.never_pull(name, message))
            raise ImageUnavailable(ERR_IMAGE_NEVER_PULL, message)
        return await self._pull(pod, name, image, keyring)

    async def _pull(self, pod: Mapping[str, Any], name: str, image: str,
                    keyring: Mapping[str, Credential] | None) -> Image:
        key = f"{(pod.get('metadata') or {}).get('uid', '')}_{image}"
        left = self.backoff.remaining(key)
        if left > 0:
            self.tell(pod, podevents.back_off_pulling(name, image))
            message = f'Back-off pulling image "{image}"'
            if key in self._last_error:
                message += f": {self._last_error[key]}"
            raise ImageUnavailable(IMAGE_PULL_BACK_OFF, message, retry_after=left)
        self._last_error.pop(key, None)
        self.tell(pod, podevents.pulling(name, image))
        started = self.clock()
        try:
            pulled, took = await self._shared_pull(image, keyring)
        except ImageError as exc:
            self.tell(pod, podevents.failed_pull(name, image, str(exc)))
            delay = self.backoff.next(key)
            self._last_error[key] = f"{ERR_IMAGE_PULL}: {exc}"
            raise ImageUnavailable(ERR_IMAGE_PULL, str(exc), retry_after=delay) from exc
        self.tell(pod, podevents.pulled_image(name, image, took=took, waited=self.clock() - started,
                                              size=pulled.size))
        self.backoff.gc()
        return pulled

    async def _shared_pull(self, image: str, keyring: Mapping[str, Credential] | None) -> tuple[Image, float]:
        """One pull per (image, credentials) at a time; those asking meanwhile wait for it.
        -> the image and how long the pull itself took."""
        credentials = repr(sorted((keyring or {}).items()))
        slot = (image, credentials)
        running = self._pulls.get(slot)
        if running is not None:
            started = self.clock()
            result = await asyncio.shield(running)
            return result, self.clock() - started
        future: asyncio.Future[Image] = asyncio.get_running_loop().create_future()
        self._pulls[slot] = future
        started = self.clock()
        try:
            result = await self.service.pull_image(image, keyring=keyring)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: a pull nobody else waited for is not "never retrieved"
            raise
        else:
            future.set_result(result)
            return result, self.clock() - started
        finally:
            self._pulls.pop(slot, None)

    def forget_pods(self, keep: set[str]) -> None:
        """Drop the back-offs and remembered errors of pods no longer on the node."""
        self.backoff.forget_pods(keep)
        self._last_error = {k: v for k, v in self._last_error.items() if k.partition("_")[0] in keep}
