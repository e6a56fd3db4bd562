"""One Service's rules out of the whole ruleset (the proxy's /debug/rules), in both modes."""
from __future__ import annotations

from services.proxy.debug import iptables_rules, nftables_rules
from services.proxy.model import build_snapshot
from services.proxy.nftables import NftSettings, render_service_port
from services.proxy.rules import NodeSettings, render
from tests.proxy.objects import endpoint, endpoint_slice, external, port, service, slice_port

SERVICES = [
    external(service("web", "10.96.0.10", [port(80, name="http", node_port=30080)], type_="LoadBalancer"),
             lb_ips=["10.0.0.100"]),
    service("web2", "10.96.0.11", [port(80, name="http")]),
    service("web", "10.96.0.12", [port(80)], namespace="other"),
]
SLICES = [
    endpoint_slice("web", [endpoint("10.244.1.2")], [slice_port(8080, name="http")]),
    endpoint_slice("web2", [endpoint("10.244.1.3")], [slice_port(8080, name="http")]),
    endpoint_slice("web", [endpoint("10.244.1.4")], [slice_port(80)], namespace="other"),
]


def test_iptables_rules_of_one_service_and_not_of_its_namesakes():
    snapshot = build_snapshot(SERVICES, SLICES, node_name="node-a")
    ruleset = render(snapshot, NodeSettings("node-a", "10.244.0.0/16"))
    shown = iptables_rules({t.name: dict(t.chains) for t in ruleset.tables()}, ["default/web:http"])
    lines = shown.splitlines()
    assert lines[0] == "*nat"
    assert any("KUBE-SERVICES" in line and "10.96.0.10/32" in line for line in lines)
    assert any(line.startswith("-A KUBE-EXT-") and line.endswith("-j KUBE-MARK-MASQ") for line in lines)
    assert sum(line.startswith("-A KUBE-EXT-") for line in lines) == 2, "the whole chain, comment or not"
    assert "--to-destination 10.244.1.2:8080" in shown and "--dport 30080" in shown
    for other in ("10.96.0.11", "10.96.0.12", "10.244.1.3", "10.244.1.4"):
        assert other not in shown
    assert iptables_rules({t.name: dict(t.chains) for t in ruleset.tables()}, []) == ""


def test_nftables_rules_print_the_chains_and_elements():
    (sp,) = [p for p in build_snapshot(SERVICES, SLICES, node_name="node-a").service_ports
             if str(p.name) == "default/web:http"]
    shown = nftables_rules(render_service_port(sp, NftSettings("node-a", "10.244.0.0/16")))
    assert shown.startswith("table ip kube-proxy {\n\tchain service-")
    assert "\t\tmeta l4proto tcp dnat to 10.244.1.2:8080\n" in shown
    assert "element ip kube-proxy service-ips { 10.0.0.100 . tcp . 80 : goto external-" in shown
    assert "element ip kube-proxy service-nodeports { tcp . 30080 : goto external-" in shown
