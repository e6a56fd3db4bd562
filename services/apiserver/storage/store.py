"""Objects in etcd: create, get, list, update, delete with Kubernetes semantics.

Values are the object's JSON without `metadata.resourceVersion`; the
resourceVersion a client sees is the etcd mod revision of the key. Every write
is one etcd transaction guarded by the key's state (absent for create, the
read mod revision for update/delete), with the resource's range claims in the
same transaction (see `allocator`).
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from kubecore.api import jsonwire
from kubecore.api.errors import ApiError, Cause, already_exists, conflict, invalid, not_found, unavailable
from kubecore.api.resources import ResourceType
from kubecore.api.types import Obj
from services.apiserver.storage import etcd as E
from services.apiserver.storage import paging
from services.apiserver.storage.allocations import NoAllocations, Plan
from services.apiserver.storage.allocator import RangeFull

Mutation = Callable[[Obj], Awaitable[Obj | None]]
MAX_ATTEMPTS = 64


def encode(obj: Obj) -> bytes:
    meta = obj.get("metadata") or {}
    if "resourceVersion" in meta:
        obj = {**obj, "metadata": {k: v for k, v in meta.items() if k != "resourceVersion"}}
    return jsonwire.dumps(obj)


def decode(value: bytes, mod_revision: int) -> Obj:
    obj = jsonwire.loads_stored(value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(mod_revision)
    return obj


class Storage:
    def __init__(self, etcd: E.Etcd, allocations: dict[str, Any] | None = None) -> None:
        self.etcd = etcd
        self.allocations = allocations or {}
        self._none = NoAllocations()

    def _alloc(self, rt: ResourceType) -> Any:
        return self.allocations.get(rt.plural, self._none)

    async def _call(self, coro: Awaitable[Any]) -> Any:
        try:
            return await coro
        except E.EtcdUnavailable as exc:
            raise unavailable(f"etcd is not answering: {exc}") from exc
        except E.EtcdTooLarge as exc:
            raise ApiError(413, "RequestEntityTooLarge",
                           f"the object is too large to store: etcd refused it ({exc})") from exc

    # -- reads ----------------------------------------------------------------
    async def get(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        kv, _ = await self._call(self.etcd.get(rt.key(namespace, name)))
        if kv is None:
            raise not_found(rt.plural, name, rt.group)
        return decode(kv.value, kv.mod_revision)

    async def list(self, rt: ResourceType, namespace: str | None) -> tuple[list[Obj], int]:
        kvs, rev, _ = await self._call(self.etcd.get_prefix(rt.key_prefix(namespace)))
        return [decode(kv.value, kv.mod_revision) for kv in kvs], rev

    async def list_page(self, rt: ResourceType, namespace: str | None, *, limit: int = 0,
                        token: str | None = None, revision: int = 0,
                        match: Callable[[Obj], bool] | None = None) -> paging.Page:
        """A list as kube-apiserver's etcd3 store reads it: in key order, at most `limit`
        objects that `match` (0: all), from a continue `token` or else at `revision` (0: now).
        Every read of a page is at the first read's revision, so pages are one snapshot.
        A filtered page that comes up short is topped up from etcd with reads of twice the
        size (at most MAX_LIMIT keys each) until it is full or the keys run out, so that a
        selective label selector does not hand the client a run of empty pages."""
        prefix = rt.key_prefix(namespace)
        start, cont = prefix, None
        if token:
            cont = paging.decode(token)
            start, revision = prefix + cont.start, max(cont.revision, 0)
        items: list[Obj] = []
        batch, last_key = limit, b""
        while True:
            try:
                kvs, revision, more, count = await self._call(self.etcd.get_prefix_page(
                    prefix, start, limit=batch, revision=revision))
            except E.EtcdCompacted as exc:
                raise paging.expired(cont) from exc
            except E.EtcdFutureRevision as exc:
                raise paging.too_large(revision, await self._call(self.etcd.revision())) from exc
            for kv in kvs:
                if limit and len(items) >= limit:
                    more = True
                    break
                last_key = kv.key
                obj = decode(kv.value, kv.mod_revision)
                if match is None or match(obj):
                    items.append(obj)
            if not more or not limit or len(items) >= limit or not kvs:
                break
            if batch < paging.MAX_LIMIT:
                batch = min(batch * 2, paging.MAX_LIMIT)
            start = last_key.decode() + "\0"
        if not (more and last_key):
            return paging.Page(items, revision)
        next_start = last_key.decode()[len(prefix):] + "\0"
        # etcd counted the keys from this page's start on; with a selector that overcounts,
        # so kube-apiserver gives no count then, and neither do we
        remaining = count - len(items) if match is None else None
        return paging.Page(items, revision, paging.encode(next_start, revision), remaining)

    # -- writes ---------------------------------------------------------------
    async def create(self, rt: ResourceType, obj: Obj) -> Obj:
        meta = obj["metadata"]
        ns, name = meta.get("namespace"), meta["name"]
        key = rt.key(ns, name)
        owner = f"{ns}/{name}" if ns else name
        for _ in range(MAX_ATTEMPTS):
            plan = await self._call(self._alloc(rt).on_create(obj, rt.kind, name))
            compares, ops, hints = plan.etcd_ops(owner)
            resp = await self._call(self.etcd.txn(
                [E.absent(key), *compares], [E.put(key, encode(obj)), *ops], [E.get(key)],
                hints=hints))
            if resp.succeeded:
                obj["metadata"]["resourceVersion"] = str(resp.revision)
                return obj
            if resp.responses and resp.responses[0].response_range.kvs:
                raise already_exists(rt.plural, name, rt.group)
            await self._resolve_lost_claims(plan, rt, name)
            plan.undo()  # the next attempt picks again, from the object as it came
        raise conflict(rt.plural, name, "too many concurrent allocations, try again", rt.group)

    async def _resolve_lost_claims(self, plan: Plan, rt: ResourceType, name: str) -> None:
        """A claim compare failed: a value asked for by the user is a 422; a value we picked
        means someone else was faster, so move past it and let the caller retry."""
        for claim in plan.claims:
            taken = await self._call(claim.allocator.taken(self.etcd, [claim.value]))
            if not taken:
                continue
            if not claim.picked:
                what = "IP" if "clusterIP" in claim.field else "port" if "Port" in claim.field else "range"
                raise invalid(rt.kind, name, [Cause(
                    claim.field, f'Invalid value: "{claim.shown}": provided {what} is already allocated')])
            try:
                await self._call(claim.allocator.skip_taken(self.etcd, claim.value))
            except RangeFull as exc:
                what = claim.field.split(".")[-1].split("[")[0]
                raise invalid(rt.kind, name, [Cause(claim.field, f"Internal error: failed to allocate "
                                                    f"a {what}: range is full")]) from exc

    async def update(self, rt: ResourceType, namespace: str | None, name: str,
                     mutate: Mutation) -> tuple[Obj, bool]:
        """Read-modify-write until it sticks. `mutate` gets the current object and returns
        the new one, or None for "no change". Returns (object, written)."""
        key = rt.key(namespace, name)
        owner = f"{namespace}/{name}" if namespace else name
        for _ in range(MAX_ATTEMPTS):
            kv, _ = await self._call(self.etcd.get(key))
            if kv is None:
                raise not_found(rt.plural, name, rt.group)
            current = decode(kv.value, kv.mod_revision)
            # the mutation's own copy, decoded again rather than deep-copied: faster, and
            # no recursion, so an object stored nested too deep (before bodies were
            # bounded) can still be marked, finalized and deleted
            new = await mutate(decode(kv.value, kv.mod_revision))
            if new is None:
                return current, False
            plan = await self._call(self._alloc(rt).on_update(new, current, rt.kind, name))
            data = encode(new)
            if data == encode(current):
                return current, False
            compares, ops, hints = plan.etcd_ops(owner)
            resp = await self._call(self.etcd.txn(
                [E.mod_revision_is(key, kv.mod_revision), *compares], [E.put(key, data), *ops],
                [E.get(key)], hints=hints))
            if resp.succeeded:
                new.setdefault("metadata", {})["resourceVersion"] = str(resp.revision)
                return new, True
            latest = resp.responses[0].response_range.kvs if resp.responses else []
            if latest and latest[0].mod_revision == kv.mod_revision:
                await self._resolve_lost_claims(plan, rt, name)
        raise conflict(rt.plural, name, "the object is being modified too often, try again", rt.group)

    async def delete(self, rt: ResourceType, namespace: str | None, name: str,
                     precondition: Callable[[Obj], None] | None = None) -> Obj:
        key = rt.key(namespace, name)
        for _ in range(MAX_ATTEMPTS):
            kv, _ = await self._call(self.etcd.get(key))
            if kv is None:
                raise not_found(rt.plural, name, rt.group)
            current = decode(kv.value, kv.mod_revision)
            if precondition is not None:
                precondition(current)
            plan = self._alloc(rt).on_delete(current)
            _, ops, _ = plan.etcd_ops("")
            resp = await self._call(self.etcd.txn(
                [E.mod_revision_is(key, kv.mod_revision)], [E.delete(key), *ops]))
            if resp.succeeded:
                current["metadata"]["resourceVersion"] = str(resp.revision)
                return current
        raise conflict(rt.plural, name, "the object is being modified too often, try again", rt.group)


__all__ = ["Storage", "encode", "decode", "ApiError"]
