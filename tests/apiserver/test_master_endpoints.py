"""Two real API servers over one real etcd list themselves in the kubernetes Service (kube's
lease endpoint reconciler): a server killed with SIGKILL leaves the list when its master lease
runs out, one stopped with SIGTERM leaves at once; and etcd's history is compacted on the
schedule kube-apiserver keeps, by one server per round."""
from __future__ import annotations

import asyncio
import signal
import time

import pytest

from cluster.procs import free_port
from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.client.rest import ApiClient
from services.apiserver.storage.compactor import COMPACT_REV_KEY, compact_once
from services.apiserver.storage.etcd import Etcd, EtcdCompacted, put
from tests.conftest import ApiServerProcess

pytestmark = pytest.mark.etcd

A, B = "10.250.77.1", "10.250.77.2"


def server(etcd, host: str, port: int, advertise: str, ttl: int, tmp_path) -> ApiServerProcess:
    return ApiServerProcess([etcd.endpoint], port=port, host=host, log_path=tmp_path / f"{host}.log",
                            extra=["--advertise-address", advertise, "--endpoint-reconciler-interval", "0.3",
                                   "--master-lease-ttl", str(ttl)])


async def listed(client: ApiClient) -> tuple[list[str], list[str]]:
    eps = await client.get(R.ENDPOINTS, "kubernetes", "default")
    slice_ = await client.get(R.ENDPOINTSLICES, "kubernetes", "default")
    return ([a["ip"] for s in eps.get("subsets") or [] for a in s.get("addresses") or []],
            [a for e in slice_.get("endpoints") or [] for a in e["addresses"]])


async def wait_listed(client: ApiClient, want: list[str], timeout: float) -> float:
    began = time.monotonic()
    while True:
        try:
            got = await listed(client)
        except ApiError:  # not written yet
            got = ([], [])
        if got == (want, want):
            return time.monotonic() - began
        if time.monotonic() - began > timeout:
            raise AssertionError(f"kubernetes endpoints {got}, want {want}")
        await asyncio.sleep(0.1)


async def test_servers_join_and_leave_the_kubernetes_service(etcd, tmp_path):
    port = free_port()
    a = server(etcd, "127.0.0.1", port, A, 2, tmp_path).start()
    b = server(etcd, "127.0.0.2", port, B, 2, tmp_path).start()
    try:
        async with ApiClient(a.config, timeout=10) as client:
            await wait_listed(client, [A, B], timeout=10)
            eps = await client.get(R.ENDPOINTS, "kubernetes", "default")
            assert eps["subsets"][0]["ports"] == [{"name": "https", "port": port, "protocol": "TCP"}]
            b.kill(signal.SIGKILL)  # no goodbye: its lease runs out (2 s), then a reconcile
            gone = await wait_listed(client, [A], timeout=10)
            assert gone > 0.5, "left before its lease could have run out"
            # back, with a long lease: a clean stop must take it out at once, not at expiry
            b = server(etcd, "127.0.0.2", port, B, 60, tmp_path).start()
            await wait_listed(client, [A, B], timeout=10)
            b.kill(signal.SIGTERM)
            assert await wait_listed(client, [A], timeout=10) < 5
    finally:
        b.stop()
        a.stop()


async def test_compaction_rounds_are_shared_by_servers(etcd):
    one, two = Etcd([etcd.endpoint]), Etcd([etcd.endpoint])
    try:
        seen1, rev1 = await compact_once(one, 0, 0)  # first round: writes the mark, compacts nothing
        assert seen1 == 1
        seen2, rev2 = await compact_once(two, 0, 0)  # the other server loses: learns the version
        assert seen2 == 1
        for i in range(5):
            await one.txn([], [put(f"/k{i}", b"v")])
        seen1, rev1b = await compact_once(one, seen1, rev1)  # compacts to the revision of its last round
        assert seen1 == 2
        with pytest.raises(EtcdCompacted):
            await one.compact(rev1)
        kv, _ = await one.get(COMPACT_REV_KEY)
        assert int(kv.value) == rev1 and kv.version == 2
        seen2, _ = await compact_once(two, seen2, rev2)  # the other is behind: no compaction, catches up
        assert seen2 == 2
    finally:
        await one.close()
        await two.close()
