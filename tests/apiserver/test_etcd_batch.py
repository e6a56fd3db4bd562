"""Group commit (etcd.TxnBatcher) against a real etcd: writes that arrive together go in one
etcd transaction, yet each keeps its own compares, branch and outcome."""
from __future__ import annotations

import asyncio
import json

import aiohttp

from services.apiserver.storage.etcd import Etcd, absent, get, mod_revision_is, put
from tests.conftest import ApiServer, api_settings

SVC = "/api/v1/namespaces/default/services"


async def test_concurrent_writes_share_transactions_but_not_outcomes(etcd):
    store = Etcd([etcd.endpoint])
    try:
        for i in range(0, 60, 6):  # every sixth key exists already: its create must fail
            await store.txn_alone([], [put(f"/t/k{i}", b"old")])
        results = await asyncio.gather(*(
            store.txn([absent(f"/t/k{i}")], [put(f"/t/k{i}", b"new")], [get(f"/t/k{i}")])
            for i in range(60)))
        for i, r in enumerate(results):
            if i % 6 == 0:
                assert not r.succeeded
                assert r.responses[0].response_range.kvs[0].value == b"old"  # its failure branch
            else:
                assert r.succeeded and r.revision > 0
        assert store.batcher.writes == 60
        assert store.batcher.transactions < 60  # grouped
        assert len({r.revision for r in results if r.succeeded}) < 50
        for i in range(60):
            kv, _ = await store.get(f"/t/k{i}")
            assert kv.value == (b"old" if i % 6 == 0 else b"new")
    finally:
        await store.close()


async def test_writes_to_one_key_never_share_a_transaction(etcd):
    """etcd refuses a transaction that writes a key twice; and two compares on one key in
    one transaction would both see the old state. So each goes in its own transaction."""
    store = Etcd([etcd.endpoint])
    try:
        creates = await asyncio.gather(*(
            store.txn([absent("/t/same")], [put("/t/same", str(i).encode())]) for i in range(20)))
        assert sum(r.succeeded for r in creates) == 1
        kv, _ = await store.get("/t/same")
        updates = await asyncio.gather(*(
            store.txn([mod_revision_is("/t/same", kv.mod_revision)], [put("/t/same", b"u%d" % i)])
            for i in range(20)))
        assert sum(r.succeeded for r in updates) == 1  # optimistic concurrency still holds
    finally:
        await store.close()


async def test_counter_hints_are_written_once_per_transaction(etcd):
    store = Etcd([etcd.endpoint])
    try:
        results = await asyncio.gather(*(
            store.txn([absent(f"/t/h{i}")], [put(f"/t/h{i}", b"x")], hints={"/t/counter": b"%d" % i})
            for i in range(40)))
        assert all(r.succeeded for r in results)
        kv, _ = await store.get("/t/counter")
        assert int(kv.value) in range(40)
    finally:
        await store.close()


async def test_a_batch_too_large_for_etcd_goes_one_by_one(etcd):
    """The test etcd takes requests up to 4 MiB: six 1.5 MB writes fit one by one, not
    together."""
    store = Etcd([etcd.endpoint])
    blob = b"x" * 1_500_000
    try:
        results = await asyncio.gather(*(
            store.txn([absent(f"/t/big{i}")], [put(f"/t/big{i}", blob)]) for i in range(6)))
        assert all(r.succeeded for r in results)
        for i in range(6):
            kv, _ = await store.get(f"/t/big{i}")
            assert len(kv.value) == len(blob)
    finally:
        await store.close()


async def test_services_created_together_share_versions(apiserver, http):
    async def create(i: int) -> dict:
        code, obj = await http.post(SVC, {"metadata": {"name": f"b{i}"},
                                          "spec": {"ports": [{"port": 80}]}})
        assert code == 201, obj
        return obj

    created = await asyncio.gather(*(create(i) for i in range(60)))
    versions = [c["metadata"]["resourceVersion"] for c in created]
    assert len(set(versions)) < len(versions)
    assert len({c["spec"]["clusterIP"] for c in created}) == 60


def stored_service(name: str) -> bytes:
    return json.dumps({"apiVersion": "v1", "kind": "Service",
                       "metadata": {"name": name, "namespace": "default", "uid": name},
                       "spec": {"ports": [{"port": 80}], "clusterIP": "None"}}).encode()


async def test_a_slow_watcher_is_cut_between_revisions(etcd):
    """60 writes submitted at once: two go alone, the other 58 share one revision. A
    watcher that can buffer 7 events overflows inside that revision; it must get none of
    it, so that resuming from the last version it saw brings all of it, once."""
    server = await ApiServer(api_settings(etcd, watcher_buffer=7)).start()
    store = Etcd([etcd.endpoint])
    timeout = aiohttp.ClientTimeout(total=30)
    try:
        cache = server.state.caches["services"]
        rv0 = str(cache.revision)
        seen: list[dict] = []
        async with server.session(timeout=timeout) as s:
            async with s.get(f"{SVC}?watch=true&resourceVersion={rv0}") as stream:
                assert stream.status == 200
                await asyncio.sleep(0.2)  # subscribed
                results = await asyncio.gather(*(
                    store.txn([], [put(f"/registry/services/default/w{i}", stored_service(f"w{i}"))])
                    for i in range(60)))
                async for line in stream.content:  # the server ends it: the buffer overflowed
                    if line.strip():
                        seen.append(json.loads(line))
            revisions = [r.revision for r in results]
            assert max(revisions.count(r) for r in revisions) > 7
            assert len(seen) < 60
            last = seen[-1]["object"]["metadata"]["resourceVersion"] if seen else rv0
            assert sum(1 for e in seen if e["object"]["metadata"]["resourceVersion"] == last) \
                == (revisions.count(int(last)) if seen else 0)  # whole revisions only
            async with s.get(f"{SVC}?watch=true&resourceVersion={last}&timeoutSeconds=2") as r:
                async for line in r.content:
                    if line.strip():
                        seen.append(json.loads(line))
        names = [e["object"]["metadata"]["name"] for e in seen]
        assert sorted(names) == sorted(f"w{i}" for i in range(60))
        assert all(e["type"] == "ADDED" for e in seen)
    finally:
        await store.close()
        await server.stop()


async def test_a_group_etcd_refuses_for_its_operation_count_goes_one_by_one(etcd):
    """etcd gives nested transactions only the operations their parent leaves of its 128:
    writes of 70 keys each cannot be grouped 64 at a time, but each is valid alone."""
    store = Etcd([etcd.endpoint])
    try:
        results = await asyncio.gather(*(
            store.txn([absent(f"/t/{i}/{j}") for j in range(70)],
                      [put(f"/t/{i}/{j}", b"x") for j in range(70)]) for i in range(20)))
        assert all(r.succeeded for r in results)
        kvs, _, _ = await store.get_prefix("/t/")
        assert len(kvs) == 20 * 70
    finally:
        await store.close()
