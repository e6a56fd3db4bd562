"""The kubernetes Service's endpoints as kube-apiserver's lease reconciler keeps them, over
an in-memory storage and leases (the real etcd and two real API servers:
tests/apiserver/test_master_endpoints.py)."""
from __future__ import annotations

from kubecore.api import resources as R
from services.apiserver.registry.endpointreconciler import LeaseEndpointReconciler, publishable
from services.apiserver.registry.strategy import prepare_create
from tests.apiserver.registry.fakes import FakeStorage


class FakeLeases:
    def __init__(self, *ips: str) -> None:
        self.ips = set(ips)
        self.updated: list[str] = []

    async def update(self, ip: str) -> None:
        self.updated.append(ip)
        self.ips.add(ip)

    async def list(self) -> list[str]:
        return list(self.ips)

    async def remove(self, ip: str) -> None:
        self.ips.discard(ip)


def reconciler(storage: FakeStorage, leases: FakeLeases, ip: str = "10.0.0.2") -> LeaseEndpointReconciler:
    return LeaseEndpointReconciler(storage, leases, ip=ip, port=6443, prepare=prepare_create)


async def endpoints_and_slice(storage: FakeStorage):
    return (await storage.get(R.ENDPOINTS, "default", "kubernetes"),
            await storage.get(R.ENDPOINTSLICES, "default", "kubernetes"))


async def test_lists_every_live_server_sorted_as_strings_with_kubes_labels():
    storage, leases = FakeStorage(), FakeLeases("10.0.0.10", "10.0.0.9")
    await reconciler(storage, leases).reconcile()
    assert leases.updated == ["10.0.0.2"]
    eps, slice_ = await endpoints_and_slice(storage)
    ips = ["10.0.0.10", "10.0.0.2", "10.0.0.9"]  # kube's sets.List: string order
    assert eps["metadata"]["labels"] == {"endpointslice.kubernetes.io/skip-mirror": "true"}
    assert eps["subsets"] == [{"addresses": [{"ip": ip} for ip in ips],
                               "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]}]
    assert slice_["metadata"]["labels"] == {"kubernetes.io/service-name": "kubernetes"}
    assert slice_["addressType"] == "IPv4"
    assert slice_["endpoints"] == [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips]
    assert slice_["ports"] == [{"name": "https", "port": 6443, "protocol": "TCP"}]


async def test_unchanged_endpoints_are_not_written_again():
    storage, leases = FakeStorage(), FakeLeases("10.0.0.1")
    r = reconciler(storage, leases)
    await r.reconcile()
    writes = len(storage.writes)
    await r.reconcile()
    assert len(storage.writes) == writes


async def test_a_server_gone_leaves_and_a_stray_slice_is_deleted():
    storage, leases = FakeStorage(), FakeLeases("10.0.0.1")
    r = reconciler(storage, leases)
    await r.reconcile()
    await storage.create(R.ENDPOINTSLICES, prepare_create(R.ENDPOINTSLICES, {
        "metadata": {"name": "kubernetes-stale", "labels": {"kubernetes.io/service-name": "kubernetes"}},
        "addressType": "IPv4", "endpoints": [], "ports": []}, "default"))
    await storage.create(R.ENDPOINTSLICES, prepare_create(R.ENDPOINTSLICES, {
        "metadata": {"name": "web-abc", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4", "endpoints": [], "ports": []}, "default"))
    leases.ips.discard("10.0.0.1")  # its lease ran out
    await r.reconcile()
    eps, slice_ = await endpoints_and_slice(storage)
    assert [a["ip"] for a in eps["subsets"][0]["addresses"]] == ["10.0.0.2"]
    assert [e["addresses"] for e in slice_["endpoints"]] == [["10.0.0.2"]]
    names = {o["metadata"]["name"] for o in (await storage.list(R.ENDPOINTSLICES, "default"))[0]}
    assert names == {"kubernetes", "web-abc"}  # another Service's slice is none of its business


async def test_remove_takes_the_server_out_and_stops_reconciling():
    storage, leases = FakeStorage(), FakeLeases("10.0.0.1")
    r = reconciler(storage, leases)
    await r.reconcile()
    await r.remove()
    eps, _ = await endpoints_and_slice(storage)
    assert [a["ip"] for a in eps["subsets"][0]["addresses"]] == ["10.0.0.1"]
    await r.reconcile()
    assert "10.0.0.2" not in leases.ips


async def test_no_lease_listed_leaves_the_endpoints_alone():
    storage, leases = FakeStorage(), FakeLeases()
    r = reconciler(storage, leases)
    await r.reconcile()  # lists its own
    await r.remove()  # the last one: the listing is empty, and taken as a fault of the listing
    eps, slice_ = await endpoints_and_slice(storage)
    assert [a["ip"] for a in eps["subsets"][0]["addresses"]] == ["10.0.0.2"]
    assert [e["addresses"] for e in slice_["endpoints"]] == [["10.0.0.2"]]


async def test_labels_and_ports_edited_by_hand_are_put_back():
    storage, leases = FakeStorage(), FakeLeases()
    r = reconciler(storage, leases)
    await r.reconcile()

    async def tamper(obj):
        obj["metadata"]["labels"] = {"x": "y"}
        obj["subsets"][0]["ports"] = [{"name": "https", "port": 1, "protocol": "TCP"}]
        return obj

    await storage.update(R.ENDPOINTS, "default", "kubernetes", tamper)
    await r.reconcile()
    eps, _ = await endpoints_and_slice(storage)
    assert eps["metadata"]["labels"] == {"endpointslice.kubernetes.io/skip-mirror": "true"}
    assert eps["subsets"][0]["ports"][0]["port"] == 6443


def test_only_addresses_an_endpoint_may_have_are_published():
    assert publishable("10.250.0.1") is None
    for bad in ("127.0.0.1", "0.0.0.0", "169.254.1.1", "apiserver"):
        assert publishable(bad) is not None
