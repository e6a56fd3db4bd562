"""The only module that talks to etcd (through aetcd's gRPC channel and stubs).

It adds what aetcd leaves out and the API server needs: the revision of a
transaction (it becomes the object's resourceVersion), several endpoints for
an etcd cluster, one error type for "etcd is not answering", writes grouped
into shared transactions (`groupcommit`) and encoded by hand (`etcdwire`), and
watches that deliver whole revisions.
"""
from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

import aetcd
import grpc
from aetcd import rpc
from aetcd import utils as aetcd_utils

from services.apiserver.storage import etcdwire as wire
from services.apiserver.storage.groupcommit import TxnBatcher, TxnResult

Compare = wire.Compare
Op = wire.Op


class EtcdUnavailable(Exception):
    """etcd did not answer; the request may be retried."""


class EtcdTooLarge(Exception):
    """etcd refused a request over its size limit (--max-request-bytes)."""


class EtcdRejected(Exception):
    """etcd refused a transaction as malformed (e.g. a key written twice)."""


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
    def __init__(self, endpoints: Sequence[str], timeout: float = 10.0,
                 max_in_flight: int = 1, keepalive: tuple[float, float] = (30.0, 10.0)) -> None:
        cleaned = [e.removeprefix("http://") for e in endpoints]
        host, port = _target(cleaned)
        self.endpoints = cleaned
        self.timeout = timeout
        every, answer_within = keepalive
        self.client = aetcd.Client(host=host, port=port, timeout=timeout, options={
            # gRPC's default 4 MiB receive limit would make a list of ~10,000 Services fail;
            # etcd's own client allows any size, so do the same.
            "grpc.max_receive_message_length": -1,
            # A path that goes silent without closing (a NAT entry dropped, a machine gone)
            # would hold the watch streams for ever: ping after `every` seconds without data
            # and give the connection up when a ping goes unanswered (etcd's clientv3 as
            # kube-apiserver configures it: 30 s / 10 s). gRPC core times a ping out by
            # ping_timeout_ms (keepalive_timeout_ms alone left the connection open: the
            # test in tests/apiserver/test_etcd_keepalive.py). Pings only while calls are
            # open (the watches always are), as many as a quiet watch needs: etcd's server
            # accepts one every 5 s or slower.
            "grpc.keepalive_time_ms": int(every * 1000),
            "grpc.keepalive_timeout_ms": int(answer_within * 1000),
            "grpc.http2.ping_timeout_ms": int(answer_within * 1000),
            "grpc.http2.max_pings_without_data": 0,
        })
        self.batcher = TxnBatcher(self._send_txn, max_in_flight=max_in_flight,
                                  alone_after=(EtcdTooLarge, EtcdRejected))
        self._txn_channel: Any = None
        self._txn_call: Any = None

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
        except (TimeoutError, ConnectionError) as exc:
            raise EtcdUnavailable(str(exc)) from exc

    # -- writes -------------------------------------------------------------
    async def txn(self, compare: Iterable[Compare], success: Iterable[Op],
                  failure: Iterable[Op] = (), *, hints: dict[str, bytes] | None = None) -> TxnResult:
        """One transaction, with its own compares and branches, committed together with
        the other writes waiting at that moment (see `TxnBatcher`). `hints` are puts of
        keys whose latest value is all that matters (allocation counters): writes in one
        batch share one put of each."""
        compares, successes, failures = list(compare), list(success), list(failure)
        keys = frozenset([c.key for c in compares] + [o.key for o in (*successes, *failures)])
        hint_bytes = {k.encode(): v for k, v in (hints or {}).items()}
        return await self.batcher.submit(wire.txn(compares, successes, failures), keys, hint_bytes)

    async def txn_alone(self, compare: Iterable[Compare], success: Iterable[Op],
                        failure: Iterable[Op] = ()) -> TxnResult:
        """One etcd transaction on its own, never grouped (the benchmark's raw figure)."""
        resp = await self._send_txn(wire.txn(compare, success, failure))
        return TxnResult(resp.succeeded, resp.header.revision, list(resp.responses))

    async def _send_txn(self, request: bytes) -> Any:
        """Send an encoded TxnRequest (see `etcdwire`); the answer decoded."""
        try:
            await self.client.connect()
            if self._txn_channel is not self.client.channel:
                self._txn_channel = self.client.channel
                self._txn_call = self.client.channel.unary_unary(
                    "/etcdserverpb.KV/Txn", request_serializer=None,
                    response_deserializer=rpc.TxnResponse.FromString)
            return await self._txn_call(request, timeout=self.timeout, metadata=self.client.metadata)
        except rpc.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED or "too large" in (exc.details() or ""):
                raise EtcdTooLarge(exc.details() or "request too large") from exc
            if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise EtcdRejected(exc.details() or "invalid transaction") from exc
            raise EtcdUnavailable(str(exc)) from exc
        except (TimeoutError, ConnectionError) as exc:
            raise EtcdUnavailable(str(exc)) from exc

    async def grant_lease(self, ttl: int) -> int:
        """A new etcd lease of `ttl` seconds (its id): keys put with it go when it expires."""
        try:
            lease = await self.client.lease(ttl)
        except (rpc.AioRpcError, aetcd.exceptions.ClientError) as exc:
            raise EtcdUnavailable(str(exc)) from exc
        return int(lease.id)

    async def compact(self, revision: int) -> None:
        """Drop the history before `revision`; EtcdCompacted if it is gone already."""
        try:
            await self.client.compact(revision, physical=True)
        except (rpc.AioRpcError, aetcd.exceptions.ClientError) as exc:
            if "compacted" in str(exc):
                raise EtcdCompacted() from exc
            raise EtcdUnavailable(str(exc)) from exc

    async def watch_prefix(self, prefix: str, start_revision: int) -> PrefixWatch:
        """A watch over `prefix` from `start_revision`, with previous values, on a gRPC
        stream of its own. EtcdCompacted when etcd no longer has `start_revision`."""
        p = prefix.encode()
        create = rpc.WatchCreateRequest(key=p, range_end=aetcd_utils.prefix_range_end(p),
                                        start_revision=start_revision, prev_kv=True)
        try:
            await self.client.connect()
            # kube-apiserver's WithRequireLeader: a member cut off from its cluster ends the
            # stream (no leader) rather than leaving the watch open and silent
            metadata = (*(self.client.metadata or ()), ("hasleader", "true"))
            call = rpc.WatchStub(self.client.channel).Watch(metadata=metadata)
            watch = PrefixWatch(call)
            try:
                await call.write(rpc.WatchRequest(create_request=create))
                first = await asyncio.wait_for(watch.next_response(), self.timeout)
            except BaseException:
                watch.cancel()
                raise
        except rpc.AioRpcError as exc:
            raise EtcdUnavailable(str(exc)) from exc
        except TimeoutError as exc:
            raise EtcdUnavailable("etcd did not answer the watch request") from exc
        watch.pending = first
        return watch


class PrefixWatch:
    """The events of one etcd watch, a WatchResponse at a time: all events of one revision
    come in one response (etcd does not split them unless asked to fragment), so whoever
    applies a response applies whole revisions. Used instead of aetcd's watcher, which
    hands events over one by one through a queue and a callback each."""

    def __init__(self, call: Any) -> None:
        self._call = call
        self.pending: Any = None

    async def next_response(self) -> Any:
        resp = await self._call.read()
        if resp is grpc.aio.EOF:
            raise EtcdUnavailable("etcd ended the watch stream")
        if resp.compact_revision:
            self.cancel()
            raise EtcdCompacted(resp.compact_revision)
        if resp.canceled:
            raise EtcdUnavailable(f"etcd cancelled the watch: {resp.cancel_reason or 'no reason given'}")
        return resp

    def __aiter__(self) -> PrefixWatch:
        return self

    async def __anext__(self) -> Any:
        """The next non-empty list of events (mvccpb.Event messages)."""
        while True:
            if self.pending is not None:
                resp, self.pending = self.pending, None
            else:
                try:
                    resp = await self.next_response()
                except rpc.AioRpcError as exc:
                    raise EtcdUnavailable(str(exc)) from exc
            if resp.events:
                return resp.events

    def cancel(self) -> None:
        self._call.cancel()


# Compares and operations of one key, for `Etcd.txn`.
def absent(key: str) -> Compare:
    return wire.absent(key.encode())


def mod_revision_is(key: str, rev: int) -> Compare:
    return wire.mod_revision_is(key.encode(), rev)


def version_is(key: str, version: int) -> Compare:
    return wire.version_is(key.encode(), version)


def put(key: str, value: bytes, lease: int = 0) -> Op:
    return wire.put(key.encode(), value, lease)


def delete(key: str) -> Op:
    return wire.delete(key.encode())


def get(key: str) -> Op:
    return wire.get(key.encode())
