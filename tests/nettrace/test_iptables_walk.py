"""Packets walked through the rules this project's proxy renders, as `iptables-save` prints them
on a node (built-in chains with their policies, the proxy's jumps, its chains)."""
from __future__ import annotations

import pytest

from kubecore.nettrace.iptables import Packet, ParseError, parse_rule, parse_save, walk
from tests.nettrace.world import saved
from tests.proxy.cases import ARTICLE_MYSVC, NO_ENDPOINTS, NODE_PORT


def pod_to(dst: str, port: int, src: str = "10.244.1.7", protocol: str = "tcp") -> Packet:
    return Packet(src=src, dst=dst, protocol=protocol, dport=port, in_iface="veth1234",
                  local=frozenset({"172.18.0.3", "10.244.1.1"}))


def test_a_pod_to_the_seed_service_reaches_each_endpoint_with_a_third_of_the_chance():
    tables = parse_save(saved(ARTICLE_MYSVC))
    paths = walk(tables["nat"], "PREROUTING", pod_to("10.96.62.22", 8080))
    assert [(p.nat, round(p.probability, 4)) for p in paths] == [
        ("DNAT 10.244.1.2:8080", 0.3333), ("DNAT 10.244.2.2:8080", 0.3333), ("DNAT 10.244.2.3:8080", 0.3333)]
    first = paths[0]
    assert [(h.rule.chain, h.rule.index) for h in first.matched] == [
        ("PREROUTING", 1), ("KUBE-SERVICES", 1), ("KUBE-SVC-BM6F4AVTDKG47F3K", 2), ("KUBE-SEP-CMSFOBEB7HHZOTBZ", 2)]
    assert first.packet.dst == "10.244.1.2" and first.packet.dport == 8080
    assert first.packet.mark == 0  # from inside the cluster CIDR: no masquerade mark
    assert first.matched[2].probability == pytest.approx(1 / 3, abs=1e-9)
    assert first.matched[0].rule.packets == 0 and first.matched[1].rule.packets == 3


def test_from_outside_the_cluster_cidr_the_packet_is_marked_and_masqueraded():
    tables = parse_save(saved(ARTICLE_MYSVC))
    paths = walk(tables["nat"], "PREROUTING", pod_to("10.96.62.22", 8080, src="172.18.0.1"))
    assert {p.packet.mark for p in paths} == {0x4000}
    post = walk(tables["nat"], "POSTROUTING", paths[0].packet)
    assert len(post) == 1 and post[0].nat == "MASQUERADE"
    assert post[0].matched[-1].rule.comment == "kubernetes service traffic requiring SNAT"


def test_a_pod_reaching_itself_through_the_service_is_masqueraded_hairpin():
    tables = parse_save(saved(ARTICLE_MYSVC))
    paths = walk(tables["nat"], "PREROUTING", pod_to("10.96.62.22", 8080, src="10.244.2.2"))
    own = next(p for p in paths if p.nat == "DNAT 10.244.2.2:8080")
    assert own.packet.mark == 0x4000 and all(p.packet.mark == 0 for p in paths if p is not own)


def test_without_endpoints_nothing_is_dnated_and_the_filter_table_rejects():
    tables = parse_save(saved(NO_ENDPOINTS))
    nat = walk(tables["nat"], "PREROUTING", pod_to("10.96.0.50", 80))
    assert len(nat) == 1 and nat[0].nat == "" and nat[0].verdict == "ACCEPT"
    filt = walk(tables["filter"], "FORWARD", nat[0].packet)
    assert filt[0].verdict == "REJECT"
    assert filt[0].matched[-1].rule.comment == "default/empty:http has no endpoints"


def test_a_port_the_service_does_not_have_passes_untouched():
    tables = parse_save(saved(ARTICLE_MYSVC))
    (path,) = walk(tables["nat"], "PREROUTING", pod_to("10.96.62.22", 9999))
    assert path.nat == "" and path.packet.dst == "10.96.62.22"


def test_node_port_on_a_node_address_goes_through_kube_nodeports():
    tables = parse_save(saved(NODE_PORT))
    paths = walk(tables["nat"], "PREROUTING", pod_to("172.18.0.3", 30080, src="172.18.0.1"))
    assert sorted(p.nat for p in paths) == ["DNAT 10.244.1.5:8080", "DNAT 10.244.2.6:8080"]
    assert all(p.packet.mark == 0x4000 for p in paths)
    assert any(h.rule.chain == "KUBE-NODEPORTS" for h in paths[0].matched)


def test_rules_outside_what_the_walker_knows_are_reported_not_guessed():
    extra = {"nat": ["[0:0] -A PREROUTING -m owner --uid-owner 0 -j DROP"]}
    tables = parse_save(saved(ARTICLE_MYSVC, extra=extra))
    paths = walk(tables["nat"], "PREROUTING", pod_to("10.96.62.22", 8080))
    assert all(p.unknown and p.unknown[0].text == "-A PREROUTING -m owner --uid-owner 0 -j DROP" for p in paths)
    assert all(p.nat.startswith("DNAT") for p in paths)


@pytest.mark.parametrize("line, chain, target, args", [
    ('-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \\"cbr0\\" id: \\"x\\"" -m multiport '
     '--dports 8080 -j CNI-DN-1', "CNI-HOSTPORT-DNAT", "CNI-DN-1", {}),
    ("-A POSTROUTING -s 10.244.1.0/24 ! -d 10.244.0.0/16 -j MASQUERADE --random-fully", "POSTROUTING",
     "MASQUERADE", {"--random-fully": ""}),
    ("-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000", "KUBE-MARK-MASQ", "MARK", {"--set-xmark": "0x4000/0x4000"}),
], ids=["portmap-multiport", "cni-masquerade", "set-xmark"])
def test_rule_shapes_of_the_cni_plugins_and_iptables_nft(line, chain, target, args):
    rule = parse_rule(line)
    assert (rule.chain, rule.target, dict(rule.target_args), rule.unknown) == (chain, target, args, ())


def test_multiport_and_set_xmark_are_evaluated():
    text = "\n".join([
        "*nat", ":PREROUTING ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]", ":MARKIT - [0:0]",
        "-A PREROUTING -p tcp -m multiport --dports 80,8000:8100 -j MARKIT",
        "-A MARKIT -j MARK --set-xmark 0x4000/0x4000",
        "-A POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE", "COMMIT"])
    tables = parse_save(text)
    (marked,) = walk(tables["nat"], "PREROUTING", pod_to("10.0.0.1", 8080))
    assert marked.packet.mark == 0x4000
    (post,) = walk(tables["nat"], "POSTROUTING", marked.packet)
    assert post.nat == "MASQUERADE"
    (other,) = walk(tables["nat"], "PREROUTING", pod_to("10.0.0.1", 9000))
    assert other.packet.mark == 0


def test_bad_save_output_is_a_parse_error():
    with pytest.raises(ParseError):
        parse_save("-A X -j ACCEPT\nCOMMIT")  # a rule outside a table
    tables = parse_save('*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -m comment --comment "open -j X\nCOMMIT')
    with pytest.raises(ParseError):  # chains are parsed when a walk reaches them
        walk(tables["nat"], "PREROUTING", pod_to("10.0.0.1", 80))


def _state(spec: dict, *eps, type_: str = "ClusterIP"):
    from tests.proxy.cases import ClusterState
    from tests.proxy.objects import endpoint_slice, port, service, slice_port

    svc = service("web", "10.96.0.70", [port(80, name="http", target_port=8080, node_port=30070)], type_=type_)
    svc["spec"].update(spec)
    return ClusterState("policy", [svc], [endpoint_slice("web", list(eps), [slice_port(8080, name="http")])])


def test_client_ip_affinity_the_first_connection_is_placed_at_random_and_remembered():
    from tests.proxy.objects import endpoint

    state = _state({"sessionAffinity": "ClientIP"}, endpoint("10.244.1.5", node="kind-worker"),
                   endpoint("10.244.2.6", node="kind-worker2"))
    paths = walk(parse_save(saved(state))["nat"], "PREROUTING", pod_to("10.96.0.70", 80))
    assert sorted(p.nat for p in paths) == ["DNAT 10.244.1.5:8080", "DNAT 10.244.2.6:8080"]
    # the affinity checks are met (nothing remembered yet for a first connection), not skipped
    assert not paths[0].unknown
    rchecks = [h for h in paths[0].hits if "--rcheck" in h.rule.text]
    assert len(rchecks) == 2 and not any(h.matched for h in rchecks)
    assert any("--set" in h.rule.text and h.matched for h in paths[0].hits)


def test_external_traffic_policy_local_only_the_local_endpoint_and_no_masquerade():
    from tests.proxy.objects import endpoint

    state = _state({"externalTrafficPolicy": "Local"}, endpoint("10.244.1.5", node="kind-worker"),
                   endpoint("10.244.2.6", node="kind-worker2"), type_="NodePort")
    outside = pod_to("172.18.0.3", 30070, src="192.0.2.50")
    paths = walk(parse_save(saved(state))["nat"], "PREROUTING", outside)
    assert [p.nat for p in paths] == ["DNAT 10.244.1.5:8080"]
    assert paths[0].packet.mark == 0, "the client's address is kept"
    assert any(h.rule.chain.startswith("KUBE-SVL-") for h in paths[0].matched)
    # a pod asking the node port is short-circuited to the Cluster policy: both endpoints
    from_pod = walk(parse_save(saved(state))["nat"], "PREROUTING", pod_to("172.18.0.3", 30070))
    assert sorted(p.nat for p in from_pod) == ["DNAT 10.244.1.5:8080", "DNAT 10.244.2.6:8080"]
