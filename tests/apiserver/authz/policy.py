"""RBAC objects for the authorizer tests: short builders, and the watch caches' view of an
in-memory storage, so objects written through the registry are what the authorizers read."""
from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping

from kubecore.api import resources as R
from kubecore.api.types import Obj
from services.apiserver.registry.strategy import prepare_create
from tests.apiserver.registry.fakes import FakeStorage

GROUP = "rbac.authorization.k8s.io"


def rule(verbs, groups=("",), resources=(), names=(), urls=()) -> Obj:
    out: Obj = {"verbs": list(verbs)}
    if urls:
        out["nonResourceURLs"] = list(urls)
    else:
        out["apiGroups"] = list(groups)
        out["resources"] = list(resources)
    if names:
        out["resourceNames"] = list(names)
    return out


def cluster_role(name: str, *rules: Obj) -> Obj:
    return {"metadata": {"name": name}, "rules": list(rules)}


def role(namespace: str, name: str, *rules: Obj) -> Obj:
    return {"metadata": {"name": name, "namespace": namespace}, "rules": list(rules)}


def user(name: str) -> Obj:
    return {"kind": "User", "apiGroup": GROUP, "name": name}


def group(name: str) -> Obj:
    return {"kind": "Group", "apiGroup": GROUP, "name": name}


def sa(name: str, namespace: str = "") -> Obj:
    out = {"kind": "ServiceAccount", "name": name}
    if namespace:
        out["namespace"] = namespace
    return out


def cluster_binding(name: str, role_name: str, *subjects: Obj) -> Obj:
    return {"metadata": {"name": name}, "subjects": list(subjects),
            "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role_name}}


def binding(namespace: str, name: str, role_kind: str, role_name: str, *subjects: Obj) -> Obj:
    return {"metadata": {"name": name, "namespace": namespace}, "subjects": list(subjects),
            "roleRef": {"apiGroup": GROUP, "kind": role_kind, "name": role_name}}


class StorageView:
    """What a watch cache of one kind holds, read from the storage as it is now."""

    def __init__(self, storage: FakeStorage, rt: R.ResourceType) -> None:
        self.storage, self.rt = storage, rt
        self.ready = asyncio.Event()
        self.ready.set()

    @property
    def objects(self) -> Mapping[str, tuple[Obj, int]]:
        prefix = self.rt.key_prefix()
        return {k: (o, int(o["metadata"]["resourceVersion"])) for k, o in self.storage.objects.items()
                if k.startswith(prefix)}

    @property
    def revision(self) -> int:
        return self.storage.revision

    def current(self, prefix: str) -> Iterator[tuple[Obj, int]]:
        return iter([e for k, e in self.objects.items() if k.startswith(prefix)])


def caches_over(storage: FakeStorage) -> dict[str, StorageView]:
    return {rt.plural: StorageView(storage, rt) for rt in R.ALL}


def stored(*objs: tuple[R.ResourceType, Obj]) -> FakeStorage:
    """A storage holding these objects, each as a create would have stored it."""
    storage = FakeStorage()
    for rt, obj in objs:
        ns = obj["metadata"].get("namespace")
        storage.objects[rt.key(ns, obj["metadata"]["name"])] = prepare_create(rt, obj, ns)
        storage.revision += 1
        storage.objects[rt.key(ns, obj["metadata"]["name"])]["metadata"]["resourceVersion"] = str(storage.revision)
    return storage
