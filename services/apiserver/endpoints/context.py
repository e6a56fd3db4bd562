"""What the handlers of one API server process share: its settings, the generic registry
store, the storage and etcd client under it, the watch caches, the metrics, who may call
(the authenticator and authorizer, and the reviews that ask the authorizer) and the node
proxy. Built by `services.apiserver.app`;
the handlers read it, nothing here does work."""
from __future__ import annotations

from dataclasses import dataclass, field

from kubecore.api.types import Obj
from services.apiserver.authn import Authenticator
from services.apiserver.authz import Authorizer
from services.apiserver.authz.reviews import Reviewer
from services.apiserver.endpoints.metrics import ApiMetrics
from services.apiserver.endpoints.nodeproxy import NodeProxy
from services.apiserver.endpoints.requests import Target
from services.apiserver.registry.store import Store
from services.apiserver.settings import Settings
from services.apiserver.storage.etcd import Etcd
from services.apiserver.storage.store import Storage
from services.apiserver.storage.watchcache import WatchCache


@dataclass
class ApiState:
    settings: Settings
    etcd: Etcd
    storage: Storage
    registry: Store
    metrics: ApiMetrics
    authenticator: Authenticator
    authorizer: Authorizer
    reviewer: Reviewer
    caches: dict[str, WatchCache] = field(default_factory=dict)
    nodes: NodeProxy = field(default_factory=NodeProxy)


class WatchedCollection:
    """A watch's `WatchSource`: the collection of `t` in etcd, and the watch metrics."""

    def __init__(self, state: ApiState, t: Target) -> None:
        self.state, self.t = state, t
        self._watchers = state.metrics.watchers.labels(t.rt.plural)
        self._events = state.metrics.watch_events.labels(t.rt.plural)

    async def list_now(self) -> tuple[list[Obj], int]:
        return await self.state.storage.list(self.t.rt, self.t.namespace)

    async def revision_now(self) -> int:
        rev: int = await self.state.etcd.revision()
        return rev

    def opened(self) -> None:
        self._watchers.inc()

    def closed(self) -> None:
        self._watchers.dec()

    def sent(self, events: int) -> None:
        self._events.inc(events)
