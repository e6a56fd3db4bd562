"""The ConfigMaps and Secrets the pods of this node read (kubelet's configmap/secret managers).

Containers read them through `env`/`envFrom` when they start, volumes on every resync of their
pod (VOLUME_RESYNC_SECONDS). kubelet's default manager (the TTL cache strategy) fetches each
object with a GET and keeps it for a while, so several pods and containers using the same object
within that time cost one request; the same here, with a short TTL, so a change reaches the
pods within a resync plus the TTL while the API load stays one GET per object per TTL. Only
objects of pods bound to this node are ever asked for, and the Node authorizer allows exactly
those.

A 404 is an answer (None: "not found", which optional references accept); any other failure is
raised as `SourceError`, for the caller to report as a container or volume that waits.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Protocol

from kubecore.api.errors import ApiError
from kubecore.api.resources import CONFIGMAPS, SECRETS, ResourceType
from kubecore.api.types import Obj
from kubecore.client.rest import ApiUnavailable
from services.nodeagent.podenv import EnvSources

DEFAULT_TTL = 5.0


class SourceError(Exception):
    """A referenced object could not be read (other than: it does not exist)."""


class ObjectGetter(Protocol):
    async def get(self, rt: ResourceType, name: str, namespace: str | None = None) -> Obj: ...


class ReferencedObjects:
    """GETs of ConfigMaps and Secrets, each kept `ttl` seconds."""

    def __init__(self, client: ObjectGetter, *, ttl: float = DEFAULT_TTL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[tuple[str, str, str], tuple[float, Obj | None]] = {}

    async def get(self, rt: ResourceType, namespace: str, name: str) -> Obj | None:
        now = self.clock()
        key = (rt.plural, namespace, name)
        cached = self._cache.get(key)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        try:
            obj: Obj | None = await self.client.get(rt, name, namespace)
        except ApiError as exc:
            if exc.code != 404:
                raise SourceError(f'{rt.singular} "{name}": {exc}') from exc
            obj = None
        except ApiUnavailable as exc:
            raise SourceError(f'{rt.singular} "{name}": {exc}') from exc
        self._cache = {k: v for k, v in self._cache.items() if now - v[0] < self.ttl}
        self._cache[key] = (now, obj)
        return obj

    async def configmap(self, namespace: str, name: str) -> Obj | None:
        return await self.get(CONFIGMAPS, namespace, name)

    async def secret(self, namespace: str, name: str) -> Obj | None:
        return await self.get(SECRETS, namespace, name)

    async def env_sources(self, namespace: str, configmaps: Iterable[str], secrets: Iterable[str]) -> EnvSources:
        return EnvSources(configmaps={n: await self.configmap(namespace, n) for n in sorted(configmaps)},
                          secrets={n: await self.secret(namespace, n) for n in sorted(secrets)})
