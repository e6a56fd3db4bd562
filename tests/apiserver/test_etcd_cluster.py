"""The API server runs against a 3-member etcd cluster and survives losing one member."""
from __future__ import annotations

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
