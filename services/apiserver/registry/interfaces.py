"""What the registry needs from the layers around it, as narrow Protocols: the object storage
(`storage.store.Storage` over etcd in the server; an in-memory fake in the tests), a watch
cache's current objects (`storage.watchcache.WatchCache`), and the admission chain the layer
above plugs in (`admission/`); and who a request comes from (`UserInfo`), which every write
carries down to admission."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from kubecore.api.resources import ResourceType
from kubecore.api.types import Obj

Mutation = Callable[[Obj], Awaitable[Obj | None]]
Precondition = Callable[[Obj], None]


class ObjectStorage(Protocol):
    """Objects by kind, namespace and name; every write is atomic against the stored version."""

    async def get(self, rt: ResourceType, namespace: str | None, name: str) -> Obj: ...

    async def list(self, rt: ResourceType, namespace: str | None) -> tuple[list[Obj], int]: ...

    async def create(self, rt: ResourceType, obj: Obj) -> Obj: ...

    async def update(self, rt: ResourceType, namespace: str | None, name: str,
                     mutate: Mutation) -> tuple[Obj, bool]:
        """Read-modify-write: `mutate` gets the stored object and returns the new one, or None
        for "no change"; -> (the object, whether it was written). 404 if there is none."""
        ...

    async def delete(self, rt: ResourceType, namespace: str | None, name: str,
                     precondition: Precondition | None = None) -> Obj:
        """Delete if `precondition` (which raises to refuse) accepts the stored object."""
        ...


class CachedObjects(Protocol):
    """A watch cache's view of one kind: its current objects by etcd key."""

    @property
    def objects(self) -> Mapping[str, tuple[Obj, int]]: ...

    @property
    def ready(self) -> asyncio.Event: ...

    def current(self, prefix: str) -> Iterator[tuple[Obj, int]]: ...


@dataclass(frozen=True, slots=True)
class UserInfo:
    """Who a request comes from, as authentication found it (k8s.io/apiserver's `user.Info`):
    the user name, its uid, its groups and extra attributes (a ServiceAccount token's pod)."""

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def extra_value(self, key: str) -> tuple[str, ...]:
        return next((values for k, values in self.extra if k == key), ())


NODE_USER_PREFIX = "system:node:"
NODES_GROUP = "system:nodes"


def node_identity(user: UserInfo) -> str | None:
    """The node a kubelet's user is (`system:node:<name>` in `system:nodes`): its name, ""
    when the name is missing, None for a user that is no node (kube's NodeIdentity). The
    Node authorizer and the NodeRestriction admission plugin both go by it."""
    if not user.name.startswith(NODE_USER_PREFIX) or NODES_GROUP not in user.groups:
        return None
    return user.name[len(NODE_USER_PREFIX):]


# The API server acting on its own (emptying namespaces, sweepers, bootstrap objects): the
# name and groups kube-apiserver gives its loopback client.
SERVER_USER = UserInfo("system:apiserver", groups=("system:authenticated", "system:masters"))

Operation = Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]


@dataclass(slots=True)
class AdmissionRequest:
    """One write as admission sees it (k8s.io/apiserver's `admission.Attributes`). `obj` is the
    object being written (None on DELETE); a mutating plugin changes it in place. `old` is the
    stored object (None on CREATE)."""

    operation: Operation
    rt: ResourceType
    namespace: str | None
    name: str
    subresource: str | None
    obj: Obj | None
    old: Obj | None
    user: UserInfo
    dry_run: bool


class Admission(Protocol):
    """The admission chain: `mutate` runs before the kind's strategy (defaults, validation),
    `validate` after it, on the object about to be stored; either raises `ApiError` to refuse."""

    async def mutate(self, req: AdmissionRequest) -> None: ...

    async def validate(self, req: AdmissionRequest) -> None: ...


class NoAdmission:
    """Admits everything unchanged."""

    async def mutate(self, req: AdmissionRequest) -> None:
        return None

    async def validate(self, req: AdmissionRequest) -> None:
        return None
