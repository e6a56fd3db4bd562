"""The API server runs against a 3-member etcd cluster and survives losing one member."""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal

import pytest

from cluster.etcd import EtcdCluster
from tests.conftest import ApiServer, api_settings

pytestmark = pytest.mark.etcd  # starts its own three-member etcd cluster

SVC = "/api/v1/namespaces/default/services"


@pytest.fixture
def etcd3():
    with EtcdCluster(3) as c:
        yield c


async def test_three_member_cluster_and_failover(etcd3):
    server = await ApiServer(api_settings(None, etcd_endpoints=etcd3.endpoints)).start()
    try:
        async with server.session() as s:
            async with s.post(SVC, json={"metadata": {"name": "a"}, "spec": {"ports": [{"port": 80}]}}) as r:
                assert r.status == 201
            etcd3.members[0].stop()  # the endpoint the client dialled first
            created = None
            for _ in range(50):
                async with s.post(SVC, json={"metadata": {"name": "b"}, "spec": {"ports": [{"port": 80}]}}) as r:
                    if r.status in (201, 409):
                        created = r.status
                        break
                    assert r.status == 503, await r.text()
            assert created in (201, 409)
            async with s.get(SVC) as r:
                names = {i["metadata"]["name"] for i in (await r.json())["items"]}
            assert {"a", "b"} <= names
    finally:
        await server.stop()


async def test_writes_go_on_past_one_caught_by_the_dead_leader(etcd3):
    """A write that reaches a follower just after the leader died is forwarded to the dead
    leader and waits out etcd's request timeout (7 s). Writes sent after it go past it to the
    new leader and are answered first, instead of queueing behind it. (Writes sent before
    the follower sees the leader gone are caught too; those sent during the election are
    refused at once.)"""
    from cluster.etcdops import statuses
    from services.apiserver.storage.etcd import Etcd, EtcdUnavailable, absent, put

    leader = next(i for i, st in enumerate(await statuses(etcd3.endpoints)) if st.leader)
    follower = etcd3.endpoints[(leader + 1) % 3]
    store = Etcd([follower])
    try:
        await store.txn([absent("/t/before")], [put("/t/before", b"x")])
        os.kill(etcd3.members[leader].pid or 0, signal.SIGKILL)
        caught = asyncio.create_task(store.txn([absent("/t/caught")], [put("/t/caught", b"x")]))
        later: list[asyncio.Task] = []
        answered = None
        for i in range(60):  # a write every 0.1 s, whatever became of the last (an open loop)
            await asyncio.sleep(0.1)
            later.append(asyncio.create_task(store.txn([absent(f"/t/after{i}")], [put(f"/t/after{i}", b"x")])))
            answered = next((t for t in later if t.done() and not t.exception()), None)
            if answered is not None:
                break
        assert answered is not None and answered.result().succeeded
        assert not caught.done()  # still waiting for etcd's answer
        assert store.batcher.stalls >= 1
        for t in later:
            with contextlib.suppress(EtcdUnavailable):
                await t
        with contextlib.suppress(EtcdUnavailable):
            await caught  # etcd's timeout (or a late success, if the new leader had it)
    finally:
        await store.close()
