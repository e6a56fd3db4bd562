"""Group commit past a stalled transaction (`TxnBatcher.stalled_after`), with a fake etcd
behind the batcher's one narrow interface (send an encoded TxnRequest, get a TxnResponse)."""
from __future__ import annotations

import asyncio

from aetcd import rpc

from services.apiserver.storage import etcdwire as wire
from services.apiserver.storage.groupcommit import TxnBatcher


class FakeEtcd:
    """Answers every transaction at once, except those while `hold` is set: they wait for
    `release`. Records each request decoded, in the order sent."""

    def __init__(self) -> None:
        self.sent: list[rpc.TxnRequest] = []
        self.hold = False
        self.release = asyncio.Event()
        self.revision = 0

    async def send(self, request: bytes) -> rpc.TxnResponse:
        req = rpc.TxnRequest.FromString(request)
        self.sent.append(req)
        if self.hold:
            await self.release.wait()
        self.revision += 1
        nested = [rpc.ResponseOp(response_txn=rpc.TxnResponse(succeeded=True))
                  for op in req.success if op.HasField("request_txn")]
        return rpc.TxnResponse(succeeded=True, header=rpc.ResponseHeader(revision=self.revision),
                               responses=nested)


async def sent(etcd: FakeEtcd, n: int) -> None:
    """Until `n` transactions have reached the fake etcd."""
    for _ in range(100):
        if len(etcd.sent) >= n:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"{len(etcd.sent)} sent, not {n}")


def write(key: str) -> tuple[bytes, frozenset[bytes]]:
    k = key.encode()
    return wire.txn([wire.absent(k)], [wire.put(k, b"v")]), frozenset([k])


def puts(req: rpc.TxnRequest) -> dict[bytes, bytes]:
    """The top-level puts of a sent transaction (the hints) and of its nested ones."""
    out = {op.request_put.key: op.request_put.value for op in req.success if op.HasField("request_put")}
    for op in req.success:
        if op.HasField("request_txn"):
            out.update(puts(op.request_txn))
    return out


async def test_writes_go_past_a_transaction_with_no_answer():
    etcd = FakeEtcd()
    batcher = TxnBatcher(etcd.send, stalled_after=0.05)
    etcd.hold = True
    stuck = asyncio.create_task(batcher.submit(*write("/a"), {}))
    await sent(etcd, 1)
    etcd.hold = False
    later = asyncio.create_task(batcher.submit(*write("/b"), {}))
    await asyncio.sleep(0.01)
    assert len(etcd.sent) == 1 and not later.done()  # within stalled_after it waits its turn
    result = await asyncio.wait_for(later, 1)
    assert result.succeeded and not stuck.done()
    assert batcher.stalls == 1
    etcd.release.set()
    assert (await stuck).succeeded


async def test_no_more_than_max_stalled_groups_go_past():
    etcd = FakeEtcd()
    etcd.hold = True
    batcher = TxnBatcher(etcd.send, stalled_after=0.02, max_stalled=2)
    writes = [asyncio.create_task(batcher.submit(*write("/k0"), {}))]
    await sent(etcd, 1)
    for i in range(1, 6):
        writes.append(asyncio.create_task(batcher.submit(*write(f"/k{i}"), {})))
        await asyncio.sleep(0.05)
    assert len(etcd.sent) == 3  # the first and two more, each once the one before stalled
    etcd.hold = False
    etcd.release.set()
    results = await asyncio.wait_for(asyncio.gather(*writes), 1)
    assert all(r.succeeded for r in results)
    assert sum(len([op for op in r.success if op.HasField("request_txn")]) or 1 for r in etcd.sent) == 6


async def test_one_group_with_counter_hints_in_flight_at_a_time():
    """Hints are unconditional puts: two groups carrying them at once could land in either
    order and move a counter back. A group that goes past a stalled one leaves its hints to
    the next group sent when the stalled one has its answer."""
    etcd = FakeEtcd()
    batcher = TxnBatcher(etcd.send, stalled_after=0.02)
    etcd.hold = True
    stuck = asyncio.create_task(batcher.submit(*write("/a"), {b"/counter": b"1"}))
    await sent(etcd, 1)
    etcd.hold = False
    past = await asyncio.wait_for(batcher.submit(*write("/b"), {b"/counter": b"2"}), 1)
    assert past.succeeded
    assert puts(etcd.sent[0])[b"/counter"] == b"1"
    assert b"/counter" not in puts(etcd.sent[1])  # held back
    etcd.release.set()
    await stuck
    await batcher.submit(*write("/c"), {})
    assert puts(etcd.sent[2])[b"/counter"] == b"2"  # the held hint, carried by the next group
    await batcher.submit(*write("/d"), {})
    assert b"/counter" not in puts(etcd.sent[3])  # and only once
