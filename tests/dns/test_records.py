"""The watch-side index: slim records, merged endpoints, reverse index, generations."""

from __future__ import annotations

import pytest

from services.dns.records import RecordIndex

from .conftest import endpoint_slice, service


def addresses(index: RecordIndex, namespace: str, name: str) -> list[str]:
    return [ep.address for ep in index.endpoints(namespace, name)]


def test_slices_of_one_service_are_merged_and_deduplicated() -> None:
    index = RecordIndex()
    index.upsert_service(service("ns", "web", "None", ("http", 80, "TCP")))
    index.upsert_endpointslice(
        endpoint_slice("ns", "web-b", "web", [("10.0.0.2", None, True), ("10.0.0.1", None, True)])
    )
    index.upsert_endpointslice(endpoint_slice("ns", "web-a", "web", [("10.0.0.1", None, True)]))
    assert addresses(index, "ns", "web") == ["10.0.0.1", "10.0.0.2"]

    index.delete_endpointslice("ns", "web-b")
    assert addresses(index, "ns", "web") == ["10.0.0.1"]
    assert index.names_for_ip("10.0.0.2") == ()


def test_slice_relabelled_to_another_service_moves() -> None:
    index = RecordIndex()
    index.upsert_service(service("ns", "a", "None"))
    index.upsert_service(service("ns", "b", "None"))
    index.upsert_endpointslice(endpoint_slice("ns", "s1", "a", [("10.0.0.1", None, True)]))
    index.upsert_endpointslice(endpoint_slice("ns", "s1", "b", [("10.0.0.1", None, True)]))
    assert addresses(index, "ns", "a") == []
    assert addresses(index, "ns", "b") == ["10.0.0.1"]
    assert index.names_for_ip("10.0.0.1") == ("10-0-0-1.b.ns.svc",)


def test_endpoints_before_their_service_appear_once_it_exists() -> None:
    index = RecordIndex()
    index.upsert_endpointslice(endpoint_slice("ns", "s1", "late", [("10.0.0.9", "h", True)]))
    assert addresses(index, "ns", "late") == []
    assert index.names_for_ip("10.0.0.9") == ()
    index.upsert_service(service("ns", "late", "None"))
    assert addresses(index, "ns", "late") == ["10.0.0.9"]
    assert index.names_for_ip("10.0.0.9") == ("h.late.ns.svc",)
    index.delete_service("ns", "late")
    assert index.names_for_ip("10.0.0.9") == ()


def test_reverse_index_tracks_cluster_ips_and_shared_addresses() -> None:
    index = RecordIndex()
    index.upsert_service(service("ns", "a", "10.96.0.1"))
    index.upsert_service(service("ns", "b", "None"))
    index.upsert_service(service("ns", "c", "None"))
    for svc in ("b", "c"):
        slice_ = endpoint_slice("ns", f"{svc}-1", svc, [("10.0.0.5", None, True)])
        index.upsert_endpointslice(slice_)
    assert index.names_for_ip("10.96.0.1") == ("a.ns.svc",)
    assert index.names_for_ip("10.0.0.5") == ("10-0-0-5.b.ns.svc", "10-0-0-5.c.ns.svc")
    index.delete_service("ns", "b")
    assert index.names_for_ip("10.0.0.5") == ("10-0-0-5.c.ns.svc",)


def test_ipv6_endpoints_and_normalised_addresses() -> None:
    index = RecordIndex()
    index.upsert_service(service("ns", "v6", "None"))
    index.upsert_endpointslice(
        endpoint_slice("ns", "v6-1", "v6", [("FD00:0:0::0001", None, True)], address_type="IPv6")
    )
    assert addresses(index, "ns", "v6") == ["fd00::1"]
    assert index.names_for_ip("fd00::1") == ("fd00--1.v6.ns.svc",)


def test_fqdn_slices_carry_no_addresses() -> None:
    index = RecordIndex()
    index.upsert_service(service("ns", "f", "None"))
    index.upsert_endpointslice(
        endpoint_slice("ns", "f-1", "f", [("example.org", None, True)], address_type="FQDN")
    )
    assert addresses(index, "ns", "f") == []


def test_missing_ready_condition_means_ready() -> None:
    index = RecordIndex()
    index.upsert_service(service("ns", "r", "None"))
    obj = endpoint_slice("ns", "r-1", "r", [("10.0.0.1", None, True)])
    del obj["endpoints"][0]["conditions"]
    index.upsert_endpointslice(obj)
    assert addresses(index, "ns", "r") == ["10.0.0.1"]


def test_namespaces_exist_while_they_hold_services() -> None:
    index = RecordIndex()
    index.upsert_service(service("ns", "a", "10.96.0.1"))
    index.upsert_service(service("ns", "a", "10.96.0.2"))  # an update is not a second service
    index.upsert_service(service("ns", "b", "10.96.0.3"))
    index.delete_service("ns", "a")
    assert index.has_namespace("ns")
    index.delete_service("ns", "b")
    assert not index.has_namespace("ns")
    index.delete_service("ns", "b")  # deleting twice is harmless
    assert not index.has_namespace("ns")


def test_every_change_bumps_the_generation() -> None:
    index = RecordIndex()
    seen = [index.generation]
    index.upsert_service(service("ns", "a", "10.96.0.1"))
    seen.append(index.generation)
    index.upsert_endpointslice(endpoint_slice("ns", "a-1", "a", [("10.0.0.1", None, True)]))
    seen.append(index.generation)
    index.mark_synced()
    seen.append(index.generation)
    index.delete_endpointslice("ns", "a-1")
    seen.append(index.generation)
    index.delete_service("ns", "a")
    seen.append(index.generation)
    assert seen == sorted(set(seen))


@pytest.mark.parametrize(
    "kind,event,obj,expected",
    [
        ("Service", "ADDED", service("ns", "x", "10.96.0.7"), ("10.96.0.7",)),
        ("Service", "MODIFIED", service("ns", "x", "10.96.0.8"), ("10.96.0.8",)),
        ("Service", "DELETED", service("ns", "x", "10.96.0.8"), None),
    ],
    ids=["added", "modified", "deleted"],
)
def test_apply_event(kind: str, event: str, obj: dict, expected: tuple[str, ...] | None) -> None:
    index = RecordIndex()
    index.upsert_service(service("ns", "x", "10.96.0.1"))
    index.apply_event(kind, event, obj)
    record = index.service("ns", "x")
    assert (record.cluster_ips if record else None) == expected


def test_apply_event_rejects_other_kinds() -> None:
    with pytest.raises(ValueError):
        RecordIndex().apply_event("Pod", "ADDED", {"metadata": {"name": "p"}})


async def test_wait_synced() -> None:
    import asyncio

    index = RecordIndex()
    waiter = asyncio.ensure_future(index.wait_synced())
    await asyncio.sleep(0)
    assert not waiter.done() and not index.synced
    index.mark_synced()
    await asyncio.wait_for(waiter, 1)
    assert index.synced


def test_changes_stamp_only_what_they_touch() -> None:
    from services.dns.records import (
        address_dependency,
        namespace_dependency,
        service_dependency,
    )

    index = RecordIndex()
    index.upsert_service(service("ns", "a", "10.96.0.1"))
    a, ns, ip = (
        service_dependency("ns", "a"), namespace_dependency("ns"), address_dependency("10.96.0.1")
    )
    before = {d: index.version(d) for d in (a, ns, ip)}
    assert all(before.values())

    index.upsert_service(service("ns", "b", "10.96.0.2"))  # the namespace existed already
    assert {d: index.version(d) for d in (a, ns, ip)} == before

    index.upsert_service(service("ns", "a", "10.96.0.3"))  # same namespace, new address
    assert index.version(a) > before[a] and index.version(ip) > before[ip]
    assert index.version(ns) == before[ns]
    assert index.version(address_dependency("10.96.0.3")) > before[a]


def test_stamps_of_gone_names_are_compacted_with_a_new_epoch() -> None:
    index = RecordIndex()
    index.mark_synced()
    epoch = index.epoch
    for i in range(3000):
        index.upsert_service(service("ns", f"s{i}", f"10.96.{i // 250}.{i % 250 + 1}"))
        index.delete_service("ns", f"s{i}")
    assert index.epoch > epoch  # everything cached was dropped at least once
    assert len(index._versions) < 3000
