"""Per-client in-flight limits: which requests count as what, and the counting."""
from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request

from services.apiserver.endpoints.limits import InFlight, Kind, request_kind


@pytest.mark.parametrize("method,url,sub,kind", [
    ("GET", "/api/v1/pods", None, Kind.READ_ONLY),
    ("GET", "/api/v1/pods?watch=true", None, Kind.LONG_RUNNING),
    ("GET", "/api/v1/pods?watch=1", None, Kind.LONG_RUNNING),
    ("GET", "/api/v1/pods?watch=false", None, Kind.READ_ONLY),
    ("GET", "/api/v1/namespaces/a/pods/p/log?follow=true", "log", Kind.LONG_RUNNING),
    ("POST", "/api/v1/namespaces/a/pods/p/exec", "exec", Kind.LONG_RUNNING),
    ("POST", "/api/v1/namespaces/a/pods", None, Kind.MUTATING),
    ("PATCH", "/api/v1/namespaces/a/pods/p", None, Kind.MUTATING),
    ("DELETE", "/api/v1/namespaces/a/pods?watch=true", None, Kind.MUTATING),
    ("PUT", "/api/v1/namespaces/a/pods/p/status", "status", Kind.MUTATING),
    ("HEAD", "/version", None, Kind.READ_ONLY),
], ids=["list", "watch", "watch-1", "watch-false", "log", "exec", "create", "patch",
        "delete-collection", "status", "head"])
def test_request_kinds(method, url, sub, kind):
    assert request_kind(make_mocked_request(method, url), sub) is kind


def test_each_client_and_kind_counts_apart_up_to_its_limit():
    flight = InFlight({Kind.READ_ONLY: 2, Kind.MUTATING: 1, Kind.LONG_RUNNING: 0})
    assert flight.acquire("a", Kind.READ_ONLY) and flight.acquire("a", Kind.READ_ONLY)
    assert not flight.acquire("a", Kind.READ_ONLY)
    assert flight.acquire("b", Kind.READ_ONLY)  # another client
    assert flight.acquire("a", Kind.MUTATING) and not flight.acquire("a", Kind.MUTATING)
    assert all(flight.acquire("a", Kind.LONG_RUNNING) for _ in range(1000))  # 0: no limit
    flight.release("a", Kind.READ_ONLY)
    assert flight.acquire("a", Kind.READ_ONLY)
    for _ in range(2):
        flight.release("a", Kind.READ_ONLY)
    flight.release("b", Kind.READ_ONLY)
    flight.release("a", Kind.MUTATING)
    for _ in range(1000):
        flight.release("a", Kind.LONG_RUNNING)
    assert not flight.counts  # nothing left behind for clients that are gone
