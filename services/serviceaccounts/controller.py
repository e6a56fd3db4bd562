"""The ServiceAccount and root CA controllers: informers on namespaces, ServiceAccounts and
the kube-root-ca.crt ConfigMaps, one queue of namespace names, one worker that applies
`plan` for a namespace.

A namespace is looked at when it appears or changes, when a ServiceAccount in it is deleted
(the `default` one comes back), and when its kube-root-ca.crt changes or goes (it is put
back as it was): kube's two controllers, whose keys are both namespaces.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.api.types import Obj
from kubecore.client.rest import ApiClient
from kubecore.controller.health import HealthServer
from kubecore.controller.leaderelection import LeaderElector
from kubecore.controller.run import WorkerPool, run_controller
from kubecore.informer.factory import SharedInformerFactory
from kubecore.informer.workqueue import WorkQueue
from services.serviceaccounts.plan import ROOT_CA_CONFIGMAP, active, missing_service_accounts, root_ca_configmap

log = logging.getLogger("serviceaccounts")


def _namespace_of(obj: Obj) -> str | None:
    ns = (obj.get("metadata") or {}).get("namespace")
    return ns if isinstance(ns, str) and ns else None


class ServiceAccountsController:
    def __init__(self, client: ApiClient, *, root_ca: str, factory: SharedInformerFactory | None = None,
                 workers: int = 2, registry: CollectorRegistry | None = None) -> None:
        self.client = client
        self.root_ca = root_ca
        self.factory = factory or SharedInformerFactory(client)
        self.workers = workers
        self.registry = registry or CollectorRegistry()
        self.queue = WorkQueue("serviceaccounts")
        self.created = Counter("serviceaccounts_created", "ServiceAccounts created.", registry=self.registry)
        self.published = Counter("root_ca_cert_publisher_writes", "kube-root-ca.crt ConfigMaps written.",
                                 registry=self.registry)
        self.sync_seconds = Histogram("serviceaccounts_sync_duration_seconds",
                                      "Time to sync one namespace.", registry=self.registry)
        self.namespaces = self.factory.informer(R.NAMESPACES)
        self.accounts = self.factory.informer(R.SERVICEACCOUNTS)
        self.configmaps = self.factory.informer(R.CONFIGMAPS, field_selector=f"metadata.name={ROOT_CA_CONFIGMAP}")
        self.namespaces.add_handlers(on_add=self._namespace_changed,
                                     on_update=lambda old, new: self._namespace_changed(new))
        self.accounts.add_handlers(on_delete=self._in_namespace_changed)
        self.configmaps.add_handlers(on_update=lambda old, new: self._in_namespace_changed(new),
                                     on_delete=self._in_namespace_changed)

    # -- handlers: only enqueue ---------------------------------------------------------
    def _namespace_changed(self, ns: Obj) -> None:
        name = (ns.get("metadata") or {}).get("name")
        if name:
            self.queue.add(name)

    def _in_namespace_changed(self, obj: Obj) -> None:
        ns = _namespace_of(obj)
        if ns is not None:
            self.queue.add(ns)

    # -- the worker ---------------------------------------------------------------------
    async def reconcile(self, namespace: str) -> None:
        started = time.perf_counter()
        try:
            ns = self.namespaces.store.get(namespace)
            await self._ensure_service_accounts(namespace, ns)
            await self._publish_root_ca(namespace, ns)
        finally:
            self.sync_seconds.observe(time.perf_counter() - started)

    async def _ensure_service_accounts(self, namespace: str, ns: Obj | None) -> None:
        existing = {(sa.get("metadata") or {}).get("name", "") for sa in self.accounts.store.list()
                    if _namespace_of(sa) == namespace}
        for sa in missing_service_accounts(ns, existing):
            if await self._create(R.SERVICEACCOUNTS, sa, namespace):
                self.created.inc()
                log.info("created ServiceAccount %s", sa["metadata"]["name"], extra={"key": namespace})

    async def _publish_root_ca(self, namespace: str, ns: Obj | None) -> None:
        current = self.configmaps.store.get_object(ROOT_CA_CONFIGMAP, namespace)
        write = root_ca_configmap(ns, current, self.root_ca)
        if write is None:
            return
        if write.create:
            if not await self._create(R.CONFIGMAPS, write.obj, namespace):
                return
        else:
            await self.client.replace(R.CONFIGMAPS, write.obj)  # CAS: a conflict is retried
        self.published.inc()
        log.info("published %s", ROOT_CA_CONFIGMAP, extra={"key": namespace})

    async def _create(self, rt: R.ResourceType, obj: Obj, namespace: str) -> bool:
        """Create; an object already there, or a namespace on its way out, is not an error."""
        try:
            await self.client.create(rt, obj, namespace)
        except ApiError as exc:
            if exc.code == 409 or (exc.code in (403, 404) and self._leaving(namespace)):
                return False
            raise
        return True

    def _leaving(self, namespace: str) -> bool:
        return not active(self.namespaces.store.get(namespace))

    # -- running ------------------------------------------------------------------------
    def pools(self) -> list[WorkerPool]:
        return [WorkerPool(self.queue, self.reconcile, self.workers)]

    async def run(self, *, health_host: str = "127.0.0.1", health_port: int | None = None,
                  stop: Any = None, handle_signals: bool = True,
                  on_ready: Callable[[HealthServer | None], None] | None = None,
                  elector: LeaderElector | None = None) -> None:
        await run_controller(name="serviceaccounts", informers=self.factory, pools=self.pools(),
                             registry=self.registry, health_host=health_host,
                             health_port=health_port, stop=stop, handle_signals=handle_signals,
                             on_ready=on_ready, elector=elector)
