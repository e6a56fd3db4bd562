"""A recording, in-memory API client: `kubecore.client.rest.ApiClient`'s verbs over a dict.

Controllers take an `ApiClient`; hand them a `FakeApiClient` instead and they (and their
informers) run against it unchanged: list and watch feed the informers, writes change the
stored objects and wake the watches. Every call is recorded, so a test asserts both the state
a controller left and the writes it made to get there (`fake.writes()`); `fail(...)` makes
the next matching call raise, and `meanwhile(...)` lets another client write just before it
is served (a heartbeat landing between a controller's read and its write), for the races.

What it does as the API server does, because controllers depend on it:
- resourceVersions: one counter for everything, set on each write; a write whose object (or
  patch, or delete precondition) names another resourceVersion or uid is a 409 Conflict;
- 404 NotFound and 409 AlreadyExists with the server's reasons and messages
  (`kubecore.api.errors`); defaulting and validation per kind (`ResourceType.default` and
  `.validate`: 422);
- a write to the main resource keeps the stored status, a status write keeps all but the status;
- generateName, uid, creationTimestamp, generation (bumped when the spec changes);
- DELETE: preconditions, propagation policies as the `orphan`/`foregroundDeletion` finalizers,
  an object with finalizers is only marked, and goes when an update removes the last one;
  a pod on a node is marked with a grace period (the node agent deletes it with grace 0);
- watch: ADDED/MODIFIED/DELETED after a resourceVersion (or the current objects first), with
  label and field selectors as the server applies them (an object leaving the selection is
  DELETED for that watch); `compact()` makes older versions a 410 Expired.

What it leaves out: server-side apply, dry run, paging, admission (cluster IP allocation,
namespace existence), BOOKMARK events and the watch cache's timing.
"""
from __future__ import annotations

import asyncio
import copy
import itertools
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubecore.api import propagation as P
from kubecore.api import resources as R
from kubecore.api.errors import ApiError, already_exists, bad_request, conflict, invalid, not_found
from kubecore.api.patch import json_patch, merge_patch, strategic_merge_patch
from kubecore.api.selectors import fields_match, labels_match, parse_field_selector, parse_label_selector
from kubecore.api.types import Obj
from kubecore.client.rest import Expired, PatchType, WatchEvent

WRITES = ("create", "replace", "update_status", "patch", "delete", "bind")
Key = tuple[str, str, str]  # (plural, namespace or "", name)


@dataclass(frozen=True)
class Call:
    """One call made to the fake, as the controller made it."""
    verb: str
    resource: str  # the plural: "pods"
    namespace: str | None = None
    name: str | None = None
    body: Any = None  # the object, patch or binding sent (a copy)
    options: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        """`patch pods/default/web-1 status`: short enough to assert whole sequences."""
        where = "/".join(p for p in (self.resource, self.namespace, self.name) if p)
        sub = self.options.get("subresource")
        return f"{self.verb} {where}" + (f" {sub}" if sub else "")


@dataclass
class _Rule:
    verb: str
    resource: str
    name: str | None
    times: int
    error: BaseException | None = None
    effect: Callable[[], Any] | None = None


@dataclass(frozen=True)
class _Change:
    revision: int
    resource: str
    type: str  # ADDED | MODIFIED | DELETED
    obj: Obj
    old: Obj | None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _meta(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        raise bad_request("metadata must be a JSON object")
    return meta


class FakeApiClient:
    """Stands in for `ApiClient` (same verbs, same signatures, same errors)."""

    base_url = "fake://apiserver"

    def __init__(self) -> None:
        self.objects: dict[Key, Obj] = {}
        self.calls: list[Call] = []
        self.revision = 0
        self.compacted = 0
        self._changes: list[_Change] = []
        self._rules: list[_Rule] = []
        self._wake = asyncio.Event()
        self._uids = itertools.count(1)
        self._names = itertools.count(1)

    # -- for tests ---------------------------------------------------------------------
    def preload(self, rt: R.ResourceType, *objs: Obj) -> list[Obj]:
        """Store objects as if created earlier, without recording calls."""
        return [self._create(rt, copy.deepcopy(o), None) for o in objs]

    def stored(self, rt: R.ResourceType, name: str, namespace: str | None = None) -> Obj | None:
        """The stored object (a copy), or None."""
        obj = self.objects.get(self._key(rt, namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    def fail(self, verb: str, rt: R.ResourceType, name: str | None = None, *,
             error: BaseException, times: int = 1) -> None:
        """The next `times` calls of `verb` on `rt` (and `name`, if given) raise `error`."""
        self._rules.append(_Rule(verb, rt.plural, name, times, error=error))

    def meanwhile(self, verb: str, rt: R.ResourceType, name: str | None, effect: Callable[[], Any],
                  *, times: int = 1) -> None:
        """Run `effect` just before the next `times` calls of `verb` on `rt`/`name` are served:
        what another client wrote between the controller's read and its write."""
        self._rules.append(_Rule(verb, rt.plural, name, times, effect=effect))

    def edit(self, rt: R.ResourceType, name: str, namespace: str | None,
             change: Callable[[Obj], None]) -> Obj:
        """Change a stored object in place of another client (a new version, a MODIFIED event;
        not recorded, not validated)."""
        old = self._existing(rt, namespace, name)
        new = copy.deepcopy(old)
        change(new)
        return self._store(rt, new, old)

    def remove(self, rt: R.ResourceType, name: str, namespace: str | None = None) -> None:
        """Delete a stored object at once, in place of another client (not recorded)."""
        self._remove(rt, copy.deepcopy(self._existing(rt, namespace, name)))

    def writes(self) -> list[str]:
        """The writes made so far, as `str(Call)`s, in order."""
        return [str(c) for c in self.calls if c.verb in WRITES]

    def compact(self) -> None:
        """Forget history: watches from a resourceVersion before now get 410 Expired (the
        watches running go on, as etcd's do)."""
        self.compacted = self.revision

    # -- the client's surface -------------------------------------------------------------
    async def close(self) -> None:
        pass

    async def __aenter__(self) -> FakeApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        raise NotImplementedError(f"FakeApiClient has no raw requests ({method} {path})")

    async def get(self, rt: R.ResourceType, name: str, namespace: str | None = None) -> Obj:
        self._called("get", rt, namespace, name)
        return copy.deepcopy(self._existing(rt, namespace, name))

    async def list(self, rt: R.ResourceType, namespace: str | None = None, *,
                   label_selector: str | None = None, field_selector: str | None = None,
                   resource_version: str | None = None) -> tuple[list[Obj], str]:
        self._called("list", rt, namespace, None, label_selector=label_selector,
                     field_selector=field_selector, resource_version=resource_version)
        selected = self._selector(rt, namespace, label_selector, field_selector)
        items = [copy.deepcopy(obj) for key, obj in sorted(self.objects.items())
                 if key[0] == rt.plural and selected(obj)]
        return items, str(self.revision)

    async def create(self, rt: R.ResourceType, obj: Obj, namespace: str | None = None) -> Obj:
        ns = namespace or (obj.get("metadata") or {}).get("namespace")
        if rt.namespaced and not ns:
            ns = "default"
        self._called("create", rt, ns, (obj.get("metadata") or {}).get("name"), body=obj)
        return copy.deepcopy(self._create(rt, copy.deepcopy(obj), ns))

    async def replace(self, rt: R.ResourceType, obj: Obj) -> Obj:
        meta = _meta(obj)
        self._called("replace", rt, meta.get("namespace"), meta.get("name"), body=obj)
        old = self._existing(rt, meta.get("namespace"), meta["name"])
        return copy.deepcopy(self._update(rt, copy.deepcopy(obj), old, status_only=False))

    async def update_status(self, rt: R.ResourceType, obj: Obj) -> Obj:
        meta = _meta(obj)
        self._called("update_status", rt, meta.get("namespace"), meta.get("name"), body=obj,
                     subresource="status")
        old = self._existing(rt, meta.get("namespace"), meta["name"])
        return copy.deepcopy(self._update(rt, copy.deepcopy(obj), old, status_only=True))

    async def patch(self, rt: R.ResourceType, name: str, patch: Any, namespace: str | None = None,
                    *, patch_type: PatchType = "merge", subresource: str | None = None,
                    field_manager: str | None = None) -> Obj:
        self._called("patch", rt, namespace, name, body=patch, patch_type=patch_type,
                     subresource=subresource)
        old = self._existing(rt, namespace, name)
        if subresource not in (None, "status"):
            raise NotImplementedError(f"FakeApiClient: patch of {rt.plural}/{subresource}")
        patched = _apply_patch(copy.deepcopy(old), patch, patch_type, rt.kind)
        return copy.deepcopy(self._update(rt, patched, old, status_only=subresource == "status"))

    async def delete(self, rt: R.ResourceType, name: str, namespace: str | None = None, *,
                     grace_period_seconds: int | None = None,
                     preconditions: Mapping[str, str] | None = None,
                     propagation_policy: str | None = None) -> Obj:
        self._called("delete", rt, namespace, name, grace_period_seconds=grace_period_seconds,
                     preconditions=dict(preconditions or {}), propagation_policy=propagation_policy)
        old = self._existing(rt, namespace, name)
        for field_name, wanted in (preconditions or {}).items():
            if old["metadata"].get(field_name) != wanted:
                raise conflict(rt.plural, name, f"Precondition failed: {field_name} in precondition: "
                               f"{wanted}, {field_name} in object meta: "
                               f"{old['metadata'].get(field_name)}", rt.group)
        return copy.deepcopy(self._delete(rt, copy.deepcopy(old), old, grace_period_seconds,
                                          propagation_policy))

    async def bind(self, pod_namespace: str, pod_name: str, node_name: str) -> Obj:
        binding = {"apiVersion": "v1", "kind": "Binding",
                   "metadata": {"name": pod_name, "namespace": pod_namespace},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": node_name}}
        self._called("bind", R.PODS, pod_namespace, pod_name, body=binding, subresource="binding")
        old = self._existing(R.PODS, pod_namespace, pod_name)
        if (old.get("spec") or {}).get("nodeName"):
            raise conflict("pods", pod_name, f"pod {pod_name} is already assigned to node "
                           f"\"{old['spec']['nodeName']}\"")
        pod = copy.deepcopy(old)
        pod.setdefault("spec", {})["nodeName"] = node_name
        self._store(R.PODS, pod, old)
        return {"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 201}

    async def watch(self, rt: R.ResourceType, namespace: str | None = None, *,
                    resource_version: str | None = None, label_selector: str | None = None,
                    field_selector: str | None = None, timeout_seconds: int | None = None,
                    allow_bookmarks: bool = True) -> AsyncGenerator[WatchEvent, None]:
        self._called("watch", rt, namespace, None, resource_version=resource_version,
                     label_selector=label_selector, field_selector=field_selector)
        selected = self._selector(rt, namespace, label_selector, field_selector)
        since = self._watch_start(resource_version)
        if since is None:  # no version: the current objects first, as ADDED
            since = self.revision
            for key, obj in sorted(self.objects.items()):
                if key[0] == rt.plural and selected(obj):
                    yield WatchEvent("ADDED", copy.deepcopy(obj))
        loop = asyncio.get_running_loop()
        deadline = None if timeout_seconds is None else loop.time() + timeout_seconds
        while True:
            wake = self._wake
            for change in self._changes_after(since):
                since = change.revision
                event = _as_seen(change, rt.plural, selected)
                if event is not None:
                    yield event
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return
            try:
                await asyncio.wait_for(wake.wait(), left)
            except TimeoutError:
                return

    # -- storage ---------------------------------------------------------------------------
    def _called(self, verb: str, rt: R.ResourceType, namespace: str | None, name: str | None,
                *, body: Any = None, **options: Any) -> None:
        self.calls.append(Call(verb, rt.plural, namespace if rt.namespaced else None, name,
                               copy.deepcopy(body),
                               {k: v for k, v in options.items() if v is not None and v != {}}))
        for rule in self._rules:
            if rule.times > 0 and rule.verb == verb and rule.resource == rt.plural \
                    and rule.name in (None, name):
                rule.times -= 1
                if rule.effect is not None:
                    rule.effect()
                if rule.error is not None:
                    raise rule.error

    def _key(self, rt: R.ResourceType, namespace: str | None, name: str) -> Key:
        return (rt.plural, (namespace or "default") if rt.namespaced else "", name)

    def _existing(self, rt: R.ResourceType, namespace: str | None, name: str) -> Obj:
        obj = self.objects.get(self._key(rt, namespace, name))
        if obj is None:
            raise not_found(rt.plural, name, rt.group)
        return obj

    def _create(self, rt: R.ResourceType, obj: Obj, namespace: str | None) -> Obj:
        meta = _meta(obj)
        if rt.namespaced:
            meta["namespace"] = namespace or meta.get("namespace") or "default"
        else:
            meta.pop("namespace", None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = f"{meta['generateName']}{next(self._names):05d}"
        name = meta.get("name") or ""
        if self._key(rt, meta.get("namespace"), name) in self.objects:
            raise already_exists(rt.plural, name, rt.group)
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        for server_owned in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(server_owned, None)
        meta["uid"] = f"00000000-0000-4000-8000-{next(self._uids):012d}"
        meta["creationTimestamp"] = _now()
        if "spec" in obj or rt.kind in ("Deployment", "ReplicaSet"):
            meta["generation"] = 1
        rt.default(obj)
        rt.prepare_create(obj)
        causes = R.metadata_causes(obj, rt) + rt.validate(obj, None)
        if causes:
            raise invalid(rt.kind, name, causes, rt.group)
        return self._store(rt, obj, None)

    def _update(self, rt: R.ResourceType, new: Obj, old: Obj, *, status_only: bool) -> Obj:
        meta, old_meta = _meta(new), old["metadata"]
        name = old_meta["name"]
        for precondition in ("uid", "resourceVersion"):
            if meta.get(precondition) and meta[precondition] != old_meta.get(precondition):
                raise conflict(rt.plural, name, "the object has been modified; please apply your "
                               "changes to the latest version and try again", rt.group)
        if status_only:
            result = copy.deepcopy(old)
            if "status" in new:
                result["status"] = new["status"]
            else:
                result.pop("status", None)
            return self._store(rt, result, old)
        if rt.has_status:
            new.pop("status", None)
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
        for owned in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                      "generation", "namespace", "name"):
            if owned in old_meta:
                meta[owned] = old_meta[owned]
            else:
                meta.pop(owned, None)
        new["apiVersion"], new["kind"] = rt.api_version, rt.kind
        rt.default(new)
        if "generation" in old_meta and new.get("spec") != old.get("spec"):
            meta["generation"] = old_meta["generation"] + 1
        causes = R.metadata_causes(new, rt) + rt.validate(new, old)
        if causes:
            raise invalid(rt.kind, name, causes, rt.group)
        if meta.get("deletionTimestamp") and not meta.get("finalizers") \
                and not meta.get("deletionGracePeriodSeconds"):
            return self._remove(rt, new)  # the last finalizer went: so does the object
        return self._store(rt, new, old)

    def _delete(self, rt: R.ResourceType, obj: Obj, old: Obj, grace: int | None,
                policy: str | None) -> Obj:
        meta = obj["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        wanted = {P.ORPHAN: P.ORPHAN_FINALIZER, P.FOREGROUND: P.FOREGROUND_FINALIZER}.get(policy or "")
        if wanted:
            finalizers = [f for f in finalizers if f not in P.GC_FINALIZERS] + [wanted]
            meta["finalizers"] = finalizers
        on_node = rt.graceful_delete and (obj.get("spec") or {}).get("nodeName")
        if on_node and grace != 0:
            if meta.get("deletionTimestamp"):
                return old  # its countdown runs already
            meta["deletionTimestamp"] = _now()
            meta["deletionGracePeriodSeconds"] = 30 if grace is None else grace
            return self._store(rt, obj, old)  # the node agent deletes it with grace 0
        if not finalizers:
            return self._remove(rt, obj)
        if meta.get("deletionTimestamp") and obj == old:
            return old
        meta.setdefault("deletionTimestamp", _now())
        meta["deletionGracePeriodSeconds"] = 0
        return self._store(rt, obj, old)

    def _store(self, rt: R.ResourceType, obj: Obj, old: Obj | None) -> Obj:
        self.revision += 1
        obj["metadata"]["resourceVersion"] = str(self.revision)
        meta = obj["metadata"]
        self.objects[self._key(rt, meta.get("namespace"), meta["name"])] = obj
        self._changed(_Change(self.revision, rt.plural, "ADDED" if old is None else "MODIFIED",
                              copy.deepcopy(obj), copy.deepcopy(old)))
        return obj

    def _remove(self, rt: R.ResourceType, obj: Obj) -> Obj:
        self.revision += 1
        meta = obj["metadata"]
        meta["resourceVersion"] = str(self.revision)
        del self.objects[self._key(rt, meta.get("namespace"), meta["name"])]
        self._changed(_Change(self.revision, rt.plural, "DELETED", copy.deepcopy(obj), None))
        return obj

    def _changed(self, change: _Change) -> None:
        self._changes.append(change)
        wake, self._wake = self._wake, asyncio.Event()
        wake.set()

    # -- watch helpers ----------------------------------------------------------------------
    def _watch_start(self, resource_version: str | None) -> int | None:
        if not resource_version or resource_version == "0":
            return None
        since = int(resource_version)
        if since < self.compacted:
            raise Expired(f"too old resource version: {since} ({self.compacted})")
        return since

    def _changes_after(self, since: int) -> list[_Change]:
        return [c for c in self._changes if c.revision > since]

    def _selector(self, rt: R.ResourceType, namespace: str | None, label_selector: str | None,
                  field_selector: str | None) -> Callable[[Obj], bool]:
        try:
            labels = parse_label_selector(label_selector)
            fields = parse_field_selector(field_selector, rt.field_getters, rt.plural)
        except ValueError as exc:
            raise bad_request(str(exc)) from None

        def selected(obj: Obj) -> bool:
            meta = obj.get("metadata") or {}
            if rt.namespaced and namespace and meta.get("namespace") != namespace:
                return False
            return labels_match(labels, meta.get("labels")) and fields_match(fields, obj, rt.field_getters)
        return selected


def _as_seen(change: _Change, resource: str, selected: Callable[[Obj], bool]) -> WatchEvent | None:
    """The event a watch with this selection gets for `change`, if any."""
    if change.resource != resource:
        return None
    obj = copy.deepcopy(change.obj)
    if change.type == "DELETED":
        return WatchEvent("DELETED", obj) if selected(change.obj) else None
    now_in = selected(change.obj)
    was_in = change.old is not None and selected(change.old)
    if now_in:
        return WatchEvent("MODIFIED" if was_in else "ADDED", obj)
    return WatchEvent("DELETED", obj) if was_in else None


def _apply_patch(obj: Obj, patch: Any, patch_type: str, kind: str) -> Obj:
    try:
        if patch_type == "merge":
            result = merge_patch(obj, patch)
        elif patch_type == "strategic":
            result = strategic_merge_patch(obj, patch, kind)
        elif patch_type == "json":
            result = json_patch(obj, patch)
        else:
            raise NotImplementedError(f"FakeApiClient: {patch_type} patches")
    except ValueError as exc:
        raise ApiError(422, "Invalid", str(exc)) from None
    if not isinstance(result, dict):
        raise bad_request("the patch did not leave an object")
    return result
