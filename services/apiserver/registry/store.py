"""The generic registry store: the one place that says what create, update, patch and delete
do for every kind (kube-apiserver's `registry/generic/registry/store.go`), over `Storage`.

- create: the request's field validation, the kind's strategy (`strategy.prepare_create`),
  the namespace open for new content, then one etcd create; a dry run stops before etcd.
- update and patch: inside `Storage.update`'s retry loop, the resourceVersion precondition,
  the patch (JSON, merge, strategic merge, or server-side apply), `strategy.prepare_update`;
  an apply to a missing object creates it. An update that removes the last finalizer of an
  object marked for deletion deletes it (`finish_if_released`).
- delete: `deletion.mark_for_deletion` decides (finalizers, graceful deletion of pods,
  propagation policy), this store writes the mark or deletes; a namespace is handed to
  `namespaces.Namespaces`, which empties it in the background.

Callers give plain values (kind, namespace, name, body, options): the HTTP layer above
parses requests, this layer knows no request.
"""
from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from kubecore.api import resources as R
from kubecore.api.errors import ApiError, Cause, bad_request, invalid
from kubecore.api.jsonwire import MAX_DEPTH
from kubecore.api.types import Obj
from services.apiserver.registry import deletion
from services.apiserver.registry.interfaces import (
    Admission,
    AdmissionRequest,
    CachedObjects,
    NoAdmission,
    ObjectStorage,
    Operation,
    UserInfo,
)
from services.apiserver.registry.namespaces import Namespaces
from services.apiserver.registry.preconditions import check_resource_version, delete_preconditions
from services.apiserver.registry.strategy import (
    apply_configuration,
    apply_patch,
    prepare_create,
    prepare_update,
    record_apply,
)
from services.apiserver.registry.validation import FieldValidation, body_resource_version

JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
Mutation = Callable[[Obj], Awaitable[Obj]]


class _DeleteNow(Exception):
    """Raised inside a delete's update: the object goes now, not marked."""


class _NoLongerReleased(Exception):
    """The stored object is not the released one any more (re-created, a finalizer back)."""


class Store:
    def __init__(self, storage: ObjectStorage, caches: Mapping[str, CachedObjects],
                 admission: Admission | None = None) -> None:
        self.storage = storage
        self.admission: Admission = admission or NoAdmission()
        self.namespaces = Namespaces(storage, caches, self)

    def _request(self, operation: Operation, rt: R.ResourceType, namespace: str | None,
                 name: str, *, obj: Obj | None, old: Obj | None, user: UserInfo,
                 dry_run: bool, status_only: bool = False) -> AdmissionRequest:
        return AdmissionRequest(operation, rt, namespace, name, "status" if status_only else None,
                                obj, old, user, dry_run)

    # -- create ------------------------------------------------------------------------------
    async def create(self, rt: R.ResourceType, body: Obj, namespace: str | None, *,
                     fields: FieldValidation, dry_run: bool, user: UserInfo) -> Obj:
        fields.check(rt, body)
        meta = body.get("metadata")
        name = str(meta.get("name") or "") if isinstance(meta, dict) else ""
        req = self._request("CREATE", rt, namespace, name, obj=body, old=None, user=user,
                            dry_run=dry_run)
        await self.admission.mutate(req)
        obj = prepare_create(rt, body, namespace)
        if rt.namespaced and not obj["metadata"].get("namespace"):
            raise bad_request("a namespace is required to create this object")
        return await self._store_new(rt, obj, req)

    async def _store_new(self, rt: R.ResourceType, obj: Obj, req: AdmissionRequest) -> Obj:
        req.obj, req.name = obj, obj["metadata"]["name"]
        await self.admission.validate(req)
        if rt.namespaced:
            await self.namespaces.ensure_open(obj["metadata"]["namespace"])
        if req.dry_run:
            return obj
        return await self.storage.create(rt, obj)

    # -- update, patch -----------------------------------------------------------------------
    async def update(self, rt: R.ResourceType, namespace: str | None, name: str, body: Obj, *,
                     status_only: bool, fields: FieldValidation, dry_run: bool,
                     user: UserInfo) -> Obj:
        """PUT: `body` replaces the stored object (or, for /status, its status)."""
        fields.check(rt, body)
        wanted_rv = body_resource_version(body)

        async def mutate(current: Obj) -> Obj:
            check_resource_version(rt, wanted_rv, current)
            req = self._request("UPDATE", rt, namespace, name, obj=copy.deepcopy(body),
                                old=current, user=user, dry_run=dry_run, status_only=status_only)
            await self.admission.mutate(req)
            req.obj = prepare_update(rt, req.obj or {}, current, status_only=status_only)
            await self.admission.validate(req)
            return req.obj

        return await self._write(rt, namespace, name, mutate, dry_run)

    async def patch(self, rt: R.ResourceType, namespace: str | None, name: str, patch: Any,
                    ctype: str, *, status_only: bool, manager: str | None,
                    fields: FieldValidation, dry_run: bool,
                    user: UserInfo) -> tuple[Obj, bool]:
        """PATCH of any type; -> (the object, whether a server-side apply created it)."""
        apply = ctype == APPLY_PATCH
        if apply:
            if not manager:
                raise bad_request("PATCH apply requests need the fieldManager parameter")
            if not isinstance(patch, dict):
                raise bad_request("an apply patch must be a YAML or JSON object")
            fields.check(rt, patch)
        wanted_rv = body_resource_version(patch) if ctype != JSON_PATCH else None

        async def mutate(current: Obj) -> Obj:
            check_resource_version(rt, wanted_rv, current)
            if apply:
                new = apply_configuration(rt, current, patch, manager or "")
            else:
                new = apply_patch(rt, current, patch, ctype)
            if not apply and ctype != JSON_PATCH:
                fields.check(rt, new)
            req = self._request("UPDATE", rt, namespace, name, obj=new, old=current, user=user,
                                dry_run=dry_run, status_only=status_only)
            await self.admission.mutate(req)
            req.obj = prepare_update(rt, req.obj or {}, current, status_only=status_only)
            await self.admission.validate(req)
            return req.obj

        try:
            return await self._write(rt, namespace, name, mutate, dry_run), False
        except ApiError as exc:
            if not (apply and exc.code == 404 and exc.reason == "NotFound" and not status_only):
                raise
        return await self._apply_create(rt, namespace, name, patch, manager or "", dry_run,
                                        user), True

    async def _apply_create(self, rt: R.ResourceType, namespace: str | None, name: str,
                            applied: Obj, manager: str, dry_run: bool, user: UserInfo) -> Obj:
        """A server-side apply to an object that does not exist creates it."""
        body = copy.deepcopy(applied)
        body.setdefault("metadata", {}).setdefault("name", name)
        req = self._request("CREATE", rt, namespace, name, obj=body, old=None, user=user,
                            dry_run=dry_run)
        await self.admission.mutate(req)
        obj = prepare_create(rt, body, namespace)
        record_apply(rt, obj, manager, applied)
        return await self._store_new(rt, obj, req)

    async def _write(self, rt: R.ResourceType, namespace: str | None, name: str,
                     mutate: Mutation, dry_run: bool) -> Obj:
        async def bounded(current: Obj) -> Obj:
            try:
                return await mutate(current)
            except RecursionError:
                # only an object stored before bodies were bounded nests this deep
                raise invalid(rt.kind, name, [Cause("", f"the stored object nests deeper than "
                                                        f"{MAX_DEPTH} levels: it can be read "
                                                        "and deleted, not changed")],
                              rt.group) from None

        if dry_run:
            return await bounded(await self.storage.get(rt, namespace, name))
        obj, _ = await self.storage.update(rt, namespace, name, bounded)
        return await self.finish_if_released(rt, namespace, obj)

    async def finish_if_released(self, rt: R.ResourceType, namespace: str | None, obj: Obj) -> Obj:
        """An object marked for deletion goes once its finalizers are gone: the same object
        (uid), still released, when the delete reaches etcd. Whoever changed it meanwhile went
        through here too, and finishes it if it is released then."""
        if not deletion.released(rt, obj):
            return obj
        uid = obj["metadata"].get("uid")

        def still_released(current: Obj) -> None:
            if current["metadata"].get("uid") != uid or not deletion.released(rt, current):
                raise _NoLongerReleased

        try:
            return await self.storage.delete(rt, namespace, obj["metadata"]["name"], still_released)
        except _NoLongerReleased:
            return obj
        except ApiError as exc:
            if exc.code != 404:
                raise
        return obj

    # -- delete ------------------------------------------------------------------------------
    async def delete(self, rt: R.ResourceType, namespace: str | None, name: str, opts: Obj, *,
                     user: UserInfo) -> Obj:
        """DELETE of one object with checked DeleteOptions; a dry run reads it only."""
        if deletion.dry_run(opts):
            current = await self.storage.get(rt, namespace, name)
            await self.admission.validate(self._request("DELETE", rt, namespace, name, obj=None,
                                                        old=current, user=user, dry_run=True))
            return current
        return await self.delete_one(rt, namespace, name, opts, user=user)

    async def delete_one(self, rt: R.ResourceType, namespace: str | None, name: str,
                         opts: Obj, *, user: UserInfo | None = None) -> Obj:
        """Mark the object (finalizers, a grace period) or delete it now; -> what is left
        (marked) or what was deleted. Without a `user` it is the server's own delete
        (emptying a namespace) and admission is not asked."""
        check = delete_preconditions(rt, opts)
        if user is not None:
            check = await self._admitted_delete(rt, namespace, name, check, user)
        if rt is R.NAMESPACES:
            return await self.namespaces.terminate(name, check)

        async def mark(current: Obj) -> Obj | None:
            check(current)
            outcome = deletion.mark_for_deletion(rt, current, opts, datetime.now(UTC))
            if outcome is deletion.Outcome.DELETE:
                raise _DeleteNow()
            return current if outcome is deletion.Outcome.MARKED else None

        try:
            obj, _ = await self.storage.update(rt, namespace, name, mark)
            return obj
        except _DeleteNow:
            return await self.storage.delete(rt, namespace, name, check)

    async def _admitted_delete(self, rt: R.ResourceType, namespace: str | None, name: str,
                               check: Callable[[Obj], None], user: UserInfo) -> Callable[[Obj], None]:
        """Admission's verdict on the stored object, and the delete's precondition extended so
        it deletes that same object (uid) only: a re-created one was not judged."""
        if isinstance(self.admission, NoAdmission):
            return check
        current = await self.storage.get(rt, namespace, name)
        await self.admission.validate(self._request("DELETE", rt, namespace, name, obj=None,
                                                    old=current, user=user, dry_run=False))
        uid = current["metadata"].get("uid")

        def same_object(obj: Obj) -> None:
            check(obj)
            if obj["metadata"].get("uid") != uid:
                raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {rt.plural} '
                               f'"{name}": the object was re-created while being deleted')
        return same_object

    async def delete_collection(self, rt: R.ResourceType, namespace: str | None,
                                match: Callable[[Obj], bool], opts: Obj, *,
                                user: UserInfo) -> list[Obj]:
        """DELETE of every object in the collection that `match`es; -> those deleted or marked
        (a dry run: those it would delete, as `delete` reads them, and deletes nothing)."""
        objs, _ = await self.storage.list(rt, namespace)
        if deletion.dry_run(opts):
            return [o for o in objs if match(o)]
        deleted = []
        for o in objs:
            if not match(o):
                continue
            meta = o["metadata"]
            try:
                deleted.append(await self.delete_one(rt, meta.get("namespace"), meta["name"], opts,
                                                     user=user))
            except ApiError as exc:
                if exc.code != 404:
                    raise
        return deleted
