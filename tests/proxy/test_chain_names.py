"""Chain names must equal kube-proxy's for the same service ports.

Every pair below was printed by a real kube-proxy, not computed by us:
- the seed article's `iptables -t nat -L` listings of a kind cluster
  (kube-dns, kubernetes and `default/mysvc` with its three endpoints);
- an `iptables-save` of a kind cluster's kube-dns endpoints;
- kube-proxy's own proxier_test.go expectations (ns1/svc1, ns4/svc4).
"""
from __future__ import annotations

import pytest

from services.proxy.rules import endpoint_chain_name, service_chain_name


@pytest.mark.parametrize(
    ("service_port", "protocol", "chain"),
    [
        ("kube-system/kube-dns:dns", "UDP", "KUBE-SVC-TCOU7JCQXEZGVUNU"),
        ("kube-system/kube-dns:dns-tcp", "TCP", "KUBE-SVC-ERIFXISQEP7F7OF4"),
        ("kube-system/kube-dns:metrics", "TCP", "KUBE-SVC-JD5MR3NA4I4DYORP"),
        ("default/kubernetes:https", "TCP", "KUBE-SVC-NPX46M4PTMTKRN6Y"),
        ("default/mysvc", "TCP", "KUBE-SVC-BM6F4AVTDKG47F3K"),
        ("ns1/svc1:p80", "TCP", "KUBE-SVC-XPGD46QRK7WJZT7O"),
        ("ns4/svc4:p80", "TCP", "KUBE-SVC-4SW47YFZTEDKD3PK"),
    ],
    ids=["kube-dns-udp", "kube-dns-tcp", "kube-dns-metrics", "kubernetes-https", "article-mysvc",
         "proxier-test-svc1", "proxier-test-svc4"],
)
def test_service_chain_name_matches_kube_proxy(service_port: str, protocol: str, chain: str) -> None:
    assert service_chain_name(service_port, protocol) == chain


@pytest.mark.parametrize(
    ("service_port", "protocol", "endpoint", "chain"),
    [
        ("default/mysvc", "TCP", "10.244.1.2:8080", "KUBE-SEP-CMSFOBEB7HHZOTBZ"),
        ("default/mysvc", "TCP", "10.244.2.2:8080", "KUBE-SEP-VVWLMARALSB3FCZF"),
        ("default/mysvc", "TCP", "10.244.2.3:8080", "KUBE-SEP-XGAC3VXZG7B73WCD"),
        ("kube-system/kube-dns:dns", "UDP", "10.244.0.5:53", "KUBE-SEP-LPGSDLJ3FDW46N4W"),
        ("kube-system/kube-dns:dns", "UDP", "10.244.0.6:53", "KUBE-SEP-IRMT6RY5EEEBXDAY"),
        ("ns1/svc1:p80", "TCP", "10.180.0.1:80", "KUBE-SEP-SXIVWICOYRO3J4NJ"),
        ("ns4/svc4:p80", "TCP", "10.180.0.4:80", "KUBE-SEP-UKSFD7AGPMPPLUHC"),
        ("ns4/svc4:p80", "TCP", "10.180.0.5:80", "KUBE-SEP-C6EBXVWJJZMIWKLZ"),
    ],
    ids=["mysvc-1", "mysvc-2", "mysvc-3", "kube-dns-1", "kube-dns-2", "svc1", "svc4-1", "svc4-2"],
)
def test_endpoint_chain_name_matches_kube_proxy(
    service_port: str, protocol: str, endpoint: str, chain: str
) -> None:
    assert endpoint_chain_name(service_port, protocol, endpoint) == chain


def test_chain_names_fit_iptables_limit() -> None:
    """iptables chain names are at most 28 characters, whatever the service name length."""
    name = "a-very-long-namespace-name-indeed/and-an-even-longer-service-name:with-a-port-name"
    assert len(service_chain_name(name, "TCP")) == 25
    assert len(endpoint_chain_name(name, "TCP", "10.244.255.255:65535")) == 25
