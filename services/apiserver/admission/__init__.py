"""Admission: the plugins every write passes through after authorization (kube-apiserver's
admission chain). The registry calls `Chain.mutate` before a kind's strategy and
`Chain.validate` after it (`registry.interfaces.Admission`); each plugin sees the operation,
the object, the stored one and the user, and raises `ApiError` to refuse.

    noderestriction  kubelets write only their own Node and the pods bound to them
(RBAC's escalation check, which needs the authorizers, is `authz.escalation`.)"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from services.apiserver.registry.interfaces import AdmissionRequest


class Plugin(Protocol):
    """One admission plugin; a plugin with nothing to do in a phase returns at once."""

    async def mutate(self, req: AdmissionRequest) -> None: ...

    async def validate(self, req: AdmissionRequest) -> None: ...


class Chain:
    """The plugins in order: every mutate, then (after the strategy) every validate."""

    def __init__(self, plugins: Sequence[Plugin]) -> None:
        self.plugins = list(plugins)

    async def mutate(self, req: AdmissionRequest) -> None:
        for plugin in self.plugins:
            await plugin.mutate(req)

    async def validate(self, req: AdmissionRequest) -> None:
        for plugin in self.plugins:
            await plugin.validate(req)
