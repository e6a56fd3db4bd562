"""The only module that talks to etcd (through aetcd).

It adds what aetcd leaves out and the API server needs: the revision of a
transaction (it becomes the object's resourceVersion), several endpoints for
an etcd cluster, and one error type for "etcd is not answering".
"""
from __future__ import annotations

import asyncio
from typing import Any, Iterable, Sequence

import aetcd
import grpc
from aetcd import rpc
from aetcd import transactions as tx
from aetcd import utils as aetcd_utils

Compare = tx.BaseCompare
Op = Any  # aetcd.transactions.Put | Get | Delete | Txn


class EtcdUnavailable(Exception):
    """etcd did not answer; the request may be retried."""


class EtcdTooLarge(Exception):
    """etcd refused a request over its size limit (--max-request-bytes)."""


class EtcdCompacted(Exception):
    """The revision asked for is older than etcd's last compaction. A watch learns the
    compaction revision; a range read does not (0)."""
    def __init__(self, compact_revision: int = 0) -> None:
        super().__init__("required revision has been compacted"
                         + (f" (now {compact_revision})" if compact_revision else ""))
        self.compact_revision = compact_revision


class EtcdFutureRevision(Exception):
    """A read asked for a revision etcd has not reached yet."""


def _target(endpoints: Sequence[str]) -> tuple[str, int]:
    """aetcd dials f"{host}:{port}"; gRPC's `ipv4:` scheme lists several addresses, so a
    multi-member cluster fits in the host part: "ipv4:a:2379,b:2379" + ":" + last port."""
    if len(endpoints) == 1:
        host, port = endpoints[0].rsplit(":", 1)
        return host, int(port)
    *first, last = endpoints
    last_host, last_port = last.rsplit(":", 1)
    return "ipv4:" + ",".join(list(first) + [last_host]), int(last_port)


class Etcd:
    def __init__(self, endpoints: Sequence[str], timeout: float = 10.0) -> None:
        cleaned = [e.removeprefix("http://") for e in endpoints]
        host, port = _target(cleaned)
        self.endpoints = cleaned
        self.timeout = timeout
        # gRPC's default 4 MiB receive limit would make a list of ~10,000 Services fail;
        # etcd's own client allows any size, so do the same.
        self.client = aetcd.Client(host=host, port=port, timeout=timeout,
                                   options={"grpc.max_receive_message_length": -1})

    async def close(self) -> None:
        await self.client.close()

    # -- reads --------------------------------------------------------------
    async def get(self, key: str) -> tuple[Any | None, int]:
        """(kv or None, store revision)."""
        resp = await self._range(key.encode())
        kv = resp.kvs[0] if resp.kvs else None
        return kv, resp.header.revision

    async def get_prefix(self, prefix: str, *, keys_only: bool = False,
                         limit: int = 0, start: str | None = None) -> tuple[list[Any], int, bool]:
        """(kvs, store revision, more) for keys under `prefix` (from `start`, if given)."""
        p = prefix.encode()
        range_end = aetcd_utils.prefix_range_end(p)
        resp = await self._range(start.encode() if start else p, range_end,
                                 keys_only=keys_only, limit=limit)
        return list(resp.kvs), resp.header.revision, bool(resp.more)

    async def get_prefix_page(self, prefix: str, start: str, *, limit: int = 0,
                              revision: int = 0) -> tuple[list[Any], int, bool, int]:
        """(kvs, revision read, more, count): keys under `prefix` from `start` on, at most
        `limit` (0: all), read at `revision` (0: now) so that the pages of one list are one
        snapshot. `count` is how many keys there are from `start` to the end of the prefix,
        however many came back."""
        resp = await self._range(start.encode(), aetcd_utils.prefix_range_end(prefix.encode()),
                                 limit=limit, revision=revision)
        # the header holds the newest revision even for an older read: report the one read
        return list(resp.kvs), revision or resp.header.revision, bool(resp.more), resp.count

    async def get_range(self, start: str, end: str, *, keys_only: bool = True,
                        limit: int = 0) -> list[Any]:
        resp = await self._range(start.encode(), end.encode(), keys_only=keys_only, limit=limit)
        return list(resp.kvs)

    async def revision(self) -> int:
        resp = await self._range(b"\0", limit=1, keys_only=True, count_only=True)
        return resp.header.revision

    async def _range(self, key: bytes, range_end: bytes | None = None, *, keys_only: bool = False,
                     limit: int = 0, count_only: bool = False, revision: int = 0) -> Any:
        try:
            await self.client.connect()
            req = rpc.RangeRequest(key=key, keys_only=keys_only, limit=limit,
                                   count_only=count_only, revision=revision)
            if range_end is not None:
                req.range_end = range_end
            return await self.client.kvstub.Range(req, timeout=self.timeout,
                                                  metadata=self.client.metadata)
        except rpc.AioRpcError as exc:
            # etcd answers OUT_OF_RANGE "mvcc: required revision has been compacted" (or "is a
            # future revision") for a `revision` it cannot read: not an outage, no retry helps.
            if exc.code() == grpc.StatusCode.OUT_OF_RANGE:
                if "compacted" in (exc.details() or ""):
                    raise EtcdCompacted() from exc
                if "future" in (exc.details() or ""):
                    raise EtcdFutureRevision(exc.details()) from exc
            raise EtcdUnavailable(str(exc)) from exc
        except (asyncio.TimeoutError, ConnectionError) as exc:
            raise EtcdUnavailable(str(exc)) from exc

    # -- writes -------------------------------------------------------------
    async def txn(self, compare: Iterable[Compare], success: Iterable[Op],
                  failure: Iterable[Op] = ()) -> Any:
        """One etcd transaction; returns the raw TxnResponse (succeeded, header.revision,
        responses)."""
        try:
            await self.client.connect()
            req = rpc.TxnRequest(
                compare=[c.build_message() for c in compare],
                success=self.client._ops_to_requests(list(success)),
                failure=self.client._ops_to_requests(list(failure)),
            )
            return await self.client.kvstub.Txn(req, timeout=self.timeout,
                                                metadata=self.client.metadata)
        except rpc.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED or "too large" in (exc.details() or ""):
                raise EtcdTooLarge(exc.details() or "request too large") from exc
            raise EtcdUnavailable(str(exc)) from exc
        except (asyncio.TimeoutError, ConnectionError) as exc:
            raise EtcdUnavailable(str(exc)) from exc

    async def compact(self, revision: int) -> None:
        try:
            await self.client.compact(revision, physical=True)
        except (rpc.AioRpcError, aetcd.exceptions.ClientError) as exc:
            raise EtcdUnavailable(str(exc)) from exc

    async def watch_prefix(self, prefix: str, start_revision: int) -> Any:
        """An aetcd Watch over `prefix` from `start_revision` with previous values."""
        try:
            return await self.client.watch_prefix(prefix.encode(), start_revision=start_revision,
                                                  prev_kv=True)
        except aetcd.exceptions.RevisionCompactedError as exc:
            raise EtcdCompacted(exc.compacted_revision) from exc
        except (rpc.AioRpcError, aetcd.exceptions.ClientError, asyncio.TimeoutError) as exc:
            raise EtcdUnavailable(str(exc)) from exc


# Compare/operation constructors, re-exported so callers need not import aetcd.
def absent(key: str) -> Compare:
    return tx.Version(key.encode()) == 0


def mod_revision_is(key: str, rev: int) -> Compare:
    return tx.Mod(key.encode()) == rev


def put(key: str, value: bytes) -> Op:
    return tx.Put(key.encode(), value)


def delete(key: str) -> Op:
    return tx.Delete(key.encode())


def get(key: str) -> Op:
    return tx.Get(key.encode())
