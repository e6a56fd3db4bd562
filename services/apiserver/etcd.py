"""The only module that talks to etcd (through aetcd).

It adds what aetcd leaves out and the API server needs: the revision of a
transaction (it becomes the object's resourceVersion), several endpoints for
an etcd cluster, and one error type for "etcd is not answering".
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable, Sequence

import aetcd
import grpc
from aetcd import rpc
from aetcd import utils as aetcd_utils

from services.apiserver import etcdwire as wire

log = logging.getLogger("apiserver.etcd")
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
                 max_in_flight: int = 2) -> None:
        cleaned = [e.removeprefix("http://") for e in endpoints]
        host, port = _target(cleaned)
        self.endpoints = cleaned
        self.timeout = timeout
        # gRPC's default 4 MiB receive limit would make a list of ~10,000 Services fail;
        # etcd's own client allows any size, so do the same.
        self.client = aetcd.Client(host=host, port=port, timeout=timeout,
                                   options={"grpc.max_receive_message_length": -1})
        self.batcher = TxnBatcher(self._send_txn, max_in_flight=max_in_flight)
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
        except (asyncio.TimeoutError, ConnectionError) as exc:
            raise EtcdUnavailable(str(exc)) from exc

    # -- writes -------------------------------------------------------------
    async def txn(self, compare: Iterable[Compare], success: Iterable[Op],
                  failure: Iterable[Op] = (), *, hints: dict[str, bytes] | None = None) -> TxnResult:
        """One transaction, with its own compares and branches, committed together with
        the other writes waiting at that moment (see `TxnBatcher`). `hints` are puts of
        keys whose latest value is all that matters (allocation counters): writes in one
        batch share one put of each."""
        compare, success, failure = list(compare), list(success), list(failure)
        keys = frozenset(item.key for item in (*compare, *success, *failure))
        hint_bytes = {k.encode(): v for k, v in (hints or {}).items()}
        return await self.batcher.submit(wire.txn(compare, success, failure), keys, hint_bytes)

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
        except (asyncio.TimeoutError, ConnectionError) as exc:
            raise EtcdUnavailable(str(exc)) from exc

    async def compact(self, revision: int) -> None:
        try:
            await self.client.compact(revision, physical=True)
        except (rpc.AioRpcError, aetcd.exceptions.ClientError) as exc:
            raise EtcdUnavailable(str(exc)) from exc

    async def watch_prefix(self, prefix: str, start_revision: int) -> "PrefixWatch":
        """A watch over `prefix` from `start_revision`, with previous values, on a gRPC
        stream of its own. EtcdCompacted when etcd no longer has `start_revision`."""
        p = prefix.encode()
        create = rpc.WatchCreateRequest(key=p, range_end=aetcd_utils.prefix_range_end(p),
                                        start_revision=start_revision, prev_kv=True)
        try:
            await self.client.connect()
            call = rpc.WatchStub(self.client.channel).Watch(metadata=self.client.metadata)
            watch = PrefixWatch(call)
            try:
                await call.write(rpc.WatchRequest(create_request=create))
                first = await asyncio.wait_for(watch.next_response(), self.timeout)
            except BaseException:
                watch.cancel()
                raise
        except rpc.AioRpcError as exc:
            raise EtcdUnavailable(str(exc)) from exc
        except asyncio.TimeoutError as exc:
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

    def __aiter__(self) -> "PrefixWatch":
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


@dataclass(slots=True)
class TxnResult:
    succeeded: bool
    revision: int  # the store revision after the transaction (the writes' mod revision)
    responses: list[Any]  # ResponseOps of the branch that ran


@dataclass(slots=True, eq=False)
class _Waiting:
    request: bytes  # an encoded TxnRequest
    keys: frozenset[bytes] | None  # the keys it reads or writes (None: goes alone)
    hints: dict[bytes, bytes]
    future: asyncio.Future


class TxnBatcher:
    """Group commit: transactions that arrive while earlier ones are on their way to etcd
    are sent together as one etcd transaction, each as a nested transaction with its own
    compares and branches (etcd >= 3.3). etcd evaluates every nested compare against the
    state before the whole transaction, so nested transactions over disjoint keys behave
    exactly as if run one after the other; transactions that share a key go in different
    batches, in arrival order. One etcd transaction then carries many writes: one gRPC call
    and one raft entry instead of many, on both sides.

    Nothing waits for a batch to fill: a transaction is sent at once while fewer than
    `max_in_flight` are outstanding, so a lone writer sees no added latency. The writes of
    one batch share one revision (one resourceVersion), as writes in one etcd transaction
    always do.
    """

    def __init__(self, send: Callable[[bytes], Awaitable[Any]], *, max_in_flight: int = 2,
                 max_batch: int = 64) -> None:
        self._send = send
        self.max_in_flight = max_in_flight
        # etcd allows 128 operations per transaction (--max-txn-ops) and gives a nested
        # transaction what its parent leaves: 64 writes per group leave each 64 of its own
        # (a group etcd refuses anyway goes one by one, see `_run`)
        self.max_batch = min(max_batch, 120)
        self._waiting: deque[_Waiting] = deque()
        self._in_flight = 0
        self._tasks: set[asyncio.Task] = set()
        self.transactions = 0  # etcd transactions sent
        self.writes = 0  # transactions submitted (so writes / transactions = mean batch)

    async def submit(self, request: bytes, keys: frozenset[bytes] | None,
                     hints: dict[bytes, bytes]) -> TxnResult:
        future = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(request, keys, hints, future))
        self._pump()
        return await future

    def _pump(self) -> None:
        while self._waiting and self._in_flight < self.max_in_flight:
            batch = self._take_batch()
            self._in_flight += 1
            task = asyncio.create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _take_batch(self) -> list[_Waiting]:
        first = self._waiting.popleft()
        if first.keys is None:
            return [first]
        batch, used = [first], set(first.keys)
        skipped: list[_Waiting] = []
        blocked: set[bytes] = set()
        while self._waiting and len(batch) < self.max_batch:
            w = self._waiting.popleft()
            if w.keys is None or not w.keys.isdisjoint(used) or not w.keys.isdisjoint(blocked):
                skipped.append(w)  # keeps its place ahead of later writes to its keys
                blocked |= w.keys or set()
                if w.keys is None:
                    break
                continue
            batch.append(w)
            used |= w.keys
        self._waiting.extendleft(reversed(skipped))
        return batch

    async def _run(self, batch: list[_Waiting]) -> None:
        try:
            if len(batch) == 1:
                await self._run_alone(batch[0])
            else:
                try:
                    await self._run_together(batch)
                except (EtcdTooLarge, EtcdRejected) as exc:
                    # too big together (etcd's --max-request-bytes) or refused: each on its own
                    log.debug("a batch of %d went one by one: %s", len(batch), exc)
                    await asyncio.gather(*(self._run_alone(w) for w in batch))
        except Exception as exc:
            for w in batch:
                if not w.future.done():
                    w.future.set_exception(exc)
        finally:
            self._in_flight -= 1
            self._pump()

    async def _run_alone(self, w: _Waiting) -> None:
        req = w.request
        if w.hints:
            req += wire.success_ops(wire.put_wire(k, v) for k, v in w.hints.items())
        try:
            resp = await self._send(req)
        except Exception as exc:
            if not w.future.done():
                w.future.set_exception(exc)
            return
        self.transactions += 1
        self.writes += 1
        if not w.future.done():
            w.future.set_result(TxnResult(resp.succeeded, resp.header.revision, list(resp.responses)))

    async def _run_together(self, batch: list[_Waiting]) -> None:
        hints: dict[bytes, bytes] = {}
        for w in batch:
            hints.update(w.hints)
        written = set().union(*(w.keys for w in batch if w.keys))
        ops = [wire.nested(w.request) for w in batch]
        ops += [wire.put_wire(k, v) for k, v in hints.items() if k not in written]
        resp = await self._send(wire.success_ops(ops))
        self.transactions += 1
        self.writes += len(batch)
        revision = resp.header.revision
        for w, r in zip(batch, resp.responses):
            if not w.future.done():
                nested = r.response_txn
                w.future.set_result(TxnResult(nested.succeeded, revision, list(nested.responses)))


# Compares and operations of one key, for `Etcd.txn`.
def absent(key: str) -> Compare:
    return wire.absent(key.encode())


def mod_revision_is(key: str, rev: int) -> Compare:
    return wire.mod_revision_is(key.encode(), rev)


def put(key: str, value: bytes) -> Op:
    return wire.put(key.encode(), value)


def delete(key: str) -> Op:
    return wire.delete(key.encode())


def get(key: str) -> Op:
    return wire.get(key.encode())
