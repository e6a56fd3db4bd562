"""Endpoints subsets repacked as kube's RepackSubsets: (subsets as written) -> canonical subsets."""
from __future__ import annotations

from typing import Any

import pytest

from kubecore.api.subsets import canonicalize_endpoints, repack_subsets

HTTP = {"name": "http", "port": 80, "protocol": "TCP"}
DNS = {"name": "dns", "port": 53, "protocol": "UDP"}


def ready(*ips: str, ports: tuple[dict[str, Any], ...] = (HTTP,)) -> dict[str, Any]:
    return {"addresses": [{"ip": ip} for ip in ips], "ports": list(ports)}


def not_ready(*ips: str, ports: tuple[dict[str, Any], ...] = (HTTP,)) -> dict[str, Any]:
    return {"notReadyAddresses": [{"ip": ip} for ip in ips], "ports": list(ports)}


CASES: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {
    "one per address merged": ([ready("10.0.0.2"), ready("10.0.0.1")], [ready("10.0.0.1", "10.0.0.2")]),
    "same address twice: once": ([ready("10.0.0.1"), ready("10.0.0.1")], [ready("10.0.0.1")]),
    "not ready trumps ready on a port": ([ready("10.0.0.1"), not_ready("10.0.0.1")], [not_ready("10.0.0.1")]),
    "ready and not ready side by side": (
        [ready("10.0.0.1"), not_ready("10.0.0.2")],
        [{"addresses": [{"ip": "10.0.0.1"}], "notReadyAddresses": [{"ip": "10.0.0.2"}], "ports": [HTTP]}]),
    "addresses sharing ports share a subset": (
        [ready("10.0.0.1", ports=(HTTP,)), ready("10.0.0.1", ports=(DNS,)), ready("10.0.0.2", ports=(DNS,))],
        [ready("10.0.0.1", "10.0.0.2", ports=(DNS,)), ready("10.0.0.1", ports=(HTTP,))]),
    "one address, several ports: one subset": (
        [ready("10.0.0.1", ports=(HTTP,)), ready("10.0.0.1", ports=(DNS,))],
        [ready("10.0.0.1", ports=(DNS, HTTP))]),
    "portless subset kept (headless)": ([ready("10.0.0.1", ports=())], [{"addresses": [{"ip": "10.0.0.1"}]}]),
    "subset without addresses dropped": ([{"ports": [HTTP]}], []),
    "IPs ordered as text, as kube": ([ready("10.0.0.9", "10.0.0.10")], [ready("10.0.0.10", "10.0.0.9")]),
    "same IP, two pods: both, by uid": (
        [{"addresses": [{"ip": "10.0.0.1", "targetRef": {"uid": "b"}},
                        {"ip": "10.0.0.1", "targetRef": {"uid": "a"}}], "ports": [HTTP]}],
        [{"addresses": [{"ip": "10.0.0.1", "targetRef": {"uid": "a"}},
                        {"ip": "10.0.0.1", "targetRef": {"uid": "b"}}], "ports": [HTTP]}]),
}


@pytest.mark.parametrize(("written", "stored"), CASES.values(), ids=CASES.keys())
def test_repack(written: list[dict[str, Any]], stored: list[dict[str, Any]]) -> None:
    assert repack_subsets(written) == stored
    assert repack_subsets(stored) == stored  # canonical stays canonical


def test_canonicalize_drops_empty_subsets() -> None:
    obj: dict[str, Any] = {"metadata": {"name": "x"}, "subsets": [{"ports": [HTTP]}]}
    canonicalize_endpoints(obj)
    assert obj == {"metadata": {"name": "x"}}
