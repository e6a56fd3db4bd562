"""Compaction of etcd's history, as kube-apiserver schedules it (storage/etcd3/compact.go).

Every `interval` (--etcd-compaction-interval, 5 min) each API server tries a compare-and-swap
on the key `compact_rev_key`: if its version is still the one this server saw last, the server
writes the current revision there and compacts to the revision written one interval before.
With several API servers exactly one wins each round; the others learn the new version and
try again next round, so history is compacted every interval (between one and two intervals
when the server that won last dies), always keeping at least one interval of it for watches
to resume from.
"""
from __future__ import annotations

import asyncio
import logging

from services.apiserver.storage import etcd as E

log = logging.getLogger("apiserver")

COMPACT_REV_KEY = "compact_rev_key"


async def compact_once(etcd: E.Etcd, seen_version: int, last_revision: int) -> tuple[int, int]:
    """One round: -> (the key's version now known, the revision to compact to next round)."""
    result = await etcd.txn_alone(
        [E.version_is(COMPACT_REV_KEY, seen_version)],
        [E.put(COMPACT_REV_KEY, str(last_revision).encode())],
        [E.get(COMPACT_REV_KEY)])
    current = result.revision
    if not result.succeeded:
        kvs = result.responses[0].response_range.kvs if result.responses else []
        return (int(kvs[0].version) if kvs else 0), current
    if last_revision:  # nothing to compact in the first round (kube: "we don't compact on bootstrap")
        try:
            await etcd.compact(last_revision)
        except E.EtcdCompacted:
            pass  # an operator's compaction got there first: as good
        log.info("etcd: compacted to revision %d", last_revision)
    return seen_version + 1, current


async def run_compactor(etcd: E.Etcd, interval: float) -> None:
    """Rounds every `interval` seconds until cancelled; a failed round is logged and retried
    at the next."""
    seen, last = 0, 0
    while True:
        await asyncio.sleep(interval)
        try:
            seen, last = await compact_once(etcd, seen, last)
        except E.EtcdUnavailable as exc:
            log.warning("etcd compaction failed: %s", exc)
