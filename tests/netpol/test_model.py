"""NetworkPolicy semantics as data, and the rules they render, without a kernel."""
from __future__ import annotations

import pytest

from services.netpol.model import Allow, PortMatch, pod_policies
from services.netpol.rules import allow_rules, render
from tests.netpol.test_datapath import NAMESPACES, PODS, WEB, pod, policy

ALL_PODS = [pod(n) for n in PODS]


def by_name(policies):
    return {pp.pod.name: pp for pp in pod_policies(ALL_PODS, NAMESPACES, policies, "node-a")}


def test_a_pod_no_policy_selects_is_not_isolated_and_policies_add_up():
    result = by_name([policy("one", {"podSelector": WEB, "ingress": [{"ports": [{"port": 80}]}]}),
                      policy("two", {"podSelector": WEB, "ingress": [{"ports": [{"port": 81}]}]})])
    assert set(result) == {"a-web"}
    assert result["a-web"].ingress == (Allow(None, (), (PortMatch("TCP", 80, 80),)),
                                       Allow(None, (), (PortMatch("TCP", 81, 81),)))
    assert result["a-web"].egress is None, "no Egress type: egress is not isolated"


@pytest.mark.parametrize(("spec", "ingress", "egress"), [
    ({"podSelector": {}}, True, False),
    ({"podSelector": {}, "egress": [{}]}, True, True),
    ({"podSelector": {}, "policyTypes": ["Egress"]}, False, True),
], ids=["default-ingress", "egress-rules-imply-egress", "egress-only"])
def test_policy_types_default_as_kube_says(spec, ingress, egress):
    pp = by_name([policy("p", spec)])["a-cli"]
    assert (pp.ingress is not None, pp.egress is not None) == (ingress, egress)


def test_egress_named_ports_resolve_on_each_destination_and_host_network_pods_are_left_out():
    pods = [*ALL_PODS, {**pod("a-cli"), "metadata": {"namespace": "a", "name": "host", "labels": {"app": "web"}},
                        "spec": {"nodeName": "node-a", "hostNetwork": True}}]
    spec = {"podSelector": {"matchLabels": {"app": "client"}}, "policyTypes": ["Egress"],
            "egress": [{"to": [{"podSelector": WEB}], "ports": [{"port": "http"}, {"port": "nope"}]}]}
    (pp,) = [p for p in pod_policies(pods, NAMESPACES, [policy("p", spec)], "node-a") if p.pod.name == "a-cli"]
    assert pp.egress == (Allow(("10.244.1.2",), (), (PortMatch("TCP", 8080, 8080),)),)


def test_rules_render_addresses_exceptions_ports_and_the_verdict():
    allow = Allow(("10.0.0.0/8",), ("10.1.0.0/16",), (PortMatch("TCP", 80, 90), PortMatch("UDP")))
    assert allow_rules(allow, "daddr", "accept") == [
        "ip daddr { 10.0.0.0/8 } ip daddr != { 10.1.0.0/16 } meta l4proto tcp th dport 80-90 accept",
        "ip daddr { 10.0.0.0/8 } ip daddr != { 10.1.0.0/16 } meta l4proto udp accept"]
    assert allow_rules(Allow(None, (), ()), "saddr", "return") == [], "a named port nobody has allows nothing"
    text = render(pod_policies(ALL_PODS, NAMESPACES, [policy("deny", {"podSelector": {}})], "node-a"))
    assert text.startswith("add table ip minicluster-netpol\ndelete table ip minicluster-netpol\n")
    assert "ip daddr vmap { " in text and "10.244.1.2 : jump ingress-" in text and text.count("\t\tdrop") == 2
    assert render([]).count("chain ") == 1, "nothing isolated: only the forward chain"
