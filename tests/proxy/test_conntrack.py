"""Planning of UDP conntrack deletions between two snapshots."""
from __future__ import annotations

from services.proxy.conntrack import UdpFlowFilter, stale_udp_flows
from services.proxy.model import Snapshot, build_snapshot
from tests.proxy.objects import endpoint, endpoint_slice, port, service, slice_port


def _dns(*ips: str, node_port: int | None = None, protocol: str = "UDP") -> Snapshot:
    svc = service("dns", "10.96.0.10", [port(53, name="dns", protocol=protocol, node_port=node_port)],
                  type_="NodePort" if node_port else "ClusterIP")
    eps = endpoint_slice("dns", [endpoint(ip) for ip in ips], [slice_port(53, name="dns", protocol=protocol)])
    return build_snapshot([svc], [eps], node_name="node-a")


def test_removed_udp_endpoint_flows_are_deleted() -> None:
    flows = stale_udp_flows(_dns("10.244.0.5", "10.244.0.6", node_port=30053), _dns("10.244.0.6", node_port=30053))
    assert flows == [
        UdpFlowFilter(orig_port_dst=30053, dst_nat="10.244.0.5"),
        UdpFlowFilter(orig_dst="10.96.0.10", dst_nat="10.244.0.5"),
    ]
    assert flows[1].conntrack_args() == ["-D", "-p", "udp", "--orig-dst", "10.96.0.10", "--dst-nat", "10.244.0.5"]


def test_deleted_service_flows_are_deleted() -> None:
    assert stale_udp_flows(_dns("10.244.0.5"), Snapshot(())) == [
        UdpFlowFilter(orig_dst="10.96.0.10", dst_nat="10.244.0.5")
    ]


def test_first_endpoints_clear_flows_to_the_cluster_ip() -> None:
    assert stale_udp_flows(_dns(), _dns("10.244.0.5")) == [UdpFlowFilter(orig_dst="10.96.0.10")]
    assert stale_udp_flows(Snapshot(()), _dns("10.244.0.5")) == [UdpFlowFilter(orig_dst="10.96.0.10")]


def test_nothing_for_tcp_or_unchanged_udp() -> None:
    assert stale_udp_flows(_dns("10.244.0.5", protocol="TCP"), _dns(protocol="TCP")) == []
    assert stale_udp_flows(_dns("10.244.0.5"), _dns("10.244.0.5", "10.244.0.6")) == []


def test_external_and_load_balancer_ips_are_cleared_too() -> None:
    from tests.proxy.objects import external

    def lb(*ips: str) -> Snapshot:
        svc = external(service("dns", "10.96.0.10", [port(53, name="dns", protocol="UDP")], type_="LoadBalancer"),
                       external_ips=["192.0.2.10"], lb_ips=["10.250.0.200"])
        eps = endpoint_slice("dns", [endpoint(ip) for ip in ips], [slice_port(53, name="dns", protocol="UDP")])
        return build_snapshot([svc], [eps], node_name="node-a")

    assert stale_udp_flows(lb("10.244.0.5", "10.244.0.6"), lb("10.244.0.6")) == [
        UdpFlowFilter(orig_dst="10.250.0.200", dst_nat="10.244.0.5"),
        UdpFlowFilter(orig_dst="10.96.0.10", dst_nat="10.244.0.5"),
        UdpFlowFilter(orig_dst="192.0.2.10", dst_nat="10.244.0.5"),
    ]
    assert stale_udp_flows(lb(), lb("10.244.0.5")) == [
        UdpFlowFilter(orig_dst="10.250.0.200"), UdpFlowFilter(orig_dst="10.96.0.10"),
        UdpFlowFilter(orig_dst="192.0.2.10")]
