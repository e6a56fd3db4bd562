from __future__ import annotations

from services.apiserver.storage.allocator import RangeAllocator, SubnetRange, ip_allocator


def test_claim_keys_sort_numerically():
    alloc = RangeAllocator("x", 0, 70000)
    keys = [alloc.claim_key(v) for v in (9, 10, 255, 256, 65536)]
    assert keys == sorted(keys)
    assert [alloc.value_of(k) for k in keys] == [9, 10, 255, 256, 65536]


def test_ip_range_excludes_network_and_broadcast():
    r = ip_allocator("ips", "10.96.0.0/29", reserved_offsets=(1,))
    assert r.to_ip(r.alloc.first) == "10.96.0.1" and r.to_ip(r.alloc.last) == "10.96.0.6"
    assert r.contains("10.96.0.6") and not r.contains("10.96.0.7") and not r.contains("nonsense")
    assert r.alloc.reserved == frozenset({r.to_int("10.96.0.1")})


def test_subnet_range_maps_indexes_to_cidrs():
    s = SubnetRange("pods", "10.244.0.0/16", 24)
    assert s.alloc.first == 0 and s.alloc.last == 255
    assert s.to_cidr(3) == "10.244.3.0/24"
    assert s.index_of("10.244.3.0/24") == 3
    assert s.index_of("10.245.0.0/24") is None and s.index_of("10.244.0.0/25") is None
