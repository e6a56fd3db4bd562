"""The nftables mode's rules and transactions, against kube-proxy's own expectations.

The golden case is kube-proxy's TestOverallNFTablesRules (pkg/proxy/nftables/proxier_test.go):
the same Services and EndpointSlices must give the same chains, rules and map elements.
The applier's planning runs against an in-memory `Nft` that records transactions; the same
applier runs against the real nft in tests/proxy/test_datapath.py and test_live_proxy.py.
"""
# ruff: noqa: E501  (kube-proxy's expected statements are kept whole, one per line)
from __future__ import annotations

import re
from typing import Any

import pytest

from services.proxy.model import ServiceIndex
from services.proxy.nftables import (
    NftSettings,
    base_statements,
    hash_and_truncate,
    render_service_port,
)
from services.proxy.nftsync import NftablesApplier, merge_rules
from tests.proxy.objects import endpoint, endpoint_slice, external, port, service, slice_port

SETTINGS = NftSettings(node_name="test-node", cluster_cidr="10.0.0.0/8", service_cidrs=("172.30.0.0/16",))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ns1/svc1/tcp/p80", "ULMVA6XW-ns1/svc1/tcp/p80"),
        ("ns2/svc2/tcp/p80", "42NFTM6N-ns2/svc2/tcp/p80"),
        ("ns1/svc1/tcp/p80__10.180.0.1/80", "5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80"),
        ("ns5/svc5/tcp/p80__10.180.0.3/80", "GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80"),
    ],
    ids=["service", "service-2", "endpoint", "endpoint-affinity"],
)
def test_chain_names_match_kube_proxy(name, expected):
    assert hash_and_truncate(name) == expected


def _svc(namespace: str, name: str, cluster_ip: str, *, type_: str = "ClusterIP", node_port: int | None = None,
         **spec: Any) -> dict[str, Any]:
    svc = service(name, cluster_ip, [port(80, name="p80", node_port=node_port)], namespace=namespace, type_=type_)
    svc["spec"].update(spec)
    return svc


def _slice(namespace: str, name: str, *eps: dict[str, Any]) -> dict[str, Any]:
    return endpoint_slice(name, list(eps), [slice_port(80, name="p80")], namespace=namespace)


def kube_overall_case() -> ServiceIndex:
    """TestOverallNFTablesRules' services, in our object builders."""
    index = ServiceIndex("test-node")
    svc2 = external(_svc("ns2", "svc2", "172.30.0.42", type_="LoadBalancer", node_port=3001,
                         externalTrafficPolicy="Local", externalIPs=["192.168.99.22"], healthCheckNodePort=30000),
                    lb_ips=["1.2.3.4"], ip_mode=None)
    svc5 = external(_svc("ns5", "svc5", "172.30.0.45", type_="LoadBalancer", node_port=3002,
                         externalTrafficPolicy="Cluster", healthCheckNodePort=30000,
                         loadBalancerSourceRanges=[" 203.0.113.0/25"], sessionAffinity="ClientIP",
                         sessionAffinityConfig={"clientIP": {"timeoutSeconds": 10800}}),
                    lb_ips=["5.6.7.8"], ip_mode=None)
    for svc in (
        _svc("ns1", "svc1", "172.30.0.41"),
        svc2,
        _svc("ns3", "svc3", "172.30.0.43", type_="NodePort", node_port=3003),
        _svc("ns4", "svc4", "172.30.0.44", type_="NodePort", externalIPs=["192.168.99.33"]),
        svc5,
        _svc("ns6", "svc6", "172.30.0.46"),
    ):
        index.set_service(svc)
    for eps in (
        _slice("ns1", "svc1", endpoint("10.180.0.1", node=None)),
        _slice("ns2", "svc2", endpoint("10.180.0.2", node=None)),
        _slice("ns3", "svc3", endpoint("10.180.0.3", node=None)),
        _slice("ns4", "svc4", endpoint("10.180.0.4", node=None), endpoint("10.180.0.5", node="test-node")),
        _slice("ns5", "svc5", endpoint("10.180.0.3", node=None)),
    ):
        index.set_slice(eps)
    return index


# kube-proxy's expected output for the case above, service part (its test dumps every
# statement in this form; the masquerade rule carries the port as in kube-proxy's code)
KUBE_EXPECTED = """
add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 ip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 }
add rule ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 ip saddr 10.180.0.1 jump mark-for-masquerade
add rule ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 meta l4proto tcp dnat to 10.180.0.1:80
add element ip kube-proxy cluster-ips { 172.30.0.41 }
add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }
add rule ip kube-proxy service-42NFTM6N-ns2/svc2/tcp/p80 ip daddr 172.30.0.42 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy service-42NFTM6N-ns2/svc2/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80 }
add rule ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80 ip saddr 10.0.0.0/8 goto service-42NFTM6N-ns2/svc2/tcp/p80 comment "short-circuit pod traffic"
add rule ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80 fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"
add rule ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80 fib saddr type local goto service-42NFTM6N-ns2/svc2/tcp/p80 comment "short-circuit local traffic"
add rule ip kube-proxy endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80 ip saddr 10.180.0.2 jump mark-for-masquerade
add rule ip kube-proxy endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80 meta l4proto tcp dnat to 10.180.0.2:80
add element ip kube-proxy cluster-ips { 172.30.0.42 }
add element ip kube-proxy service-ips { 172.30.0.42 . tcp . 80 : goto service-42NFTM6N-ns2/svc2/tcp/p80 }
add element ip kube-proxy service-ips { 192.168.99.22 . tcp . 80 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }
add element ip kube-proxy service-ips { 1.2.3.4 . tcp . 80 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }
add element ip kube-proxy service-nodeports { tcp . 3001 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }
add element ip kube-proxy no-endpoint-nodeports { tcp . 3001 comment "ns2/svc2:p80" : drop }
add element ip kube-proxy no-endpoint-services { 1.2.3.4 . tcp . 80 comment "ns2/svc2:p80" : drop }
add element ip kube-proxy no-endpoint-services { 192.168.99.22 . tcp . 80 comment "ns2/svc2:p80" : drop }
add rule ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80 ip daddr 172.30.0.43 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80 }
add rule ip kube-proxy external-4AT6LBPK-ns3/svc3/tcp/p80 jump mark-for-masquerade
add rule ip kube-proxy external-4AT6LBPK-ns3/svc3/tcp/p80 goto service-4AT6LBPK-ns3/svc3/tcp/p80
add rule ip kube-proxy endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80 ip saddr 10.180.0.3 jump mark-for-masquerade
add rule ip kube-proxy endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80 meta l4proto tcp dnat to 10.180.0.3:80
add element ip kube-proxy cluster-ips { 172.30.0.43 }
add element ip kube-proxy service-ips { 172.30.0.43 . tcp . 80 : goto service-4AT6LBPK-ns3/svc3/tcp/p80 }
add element ip kube-proxy service-nodeports { tcp . 3003 : goto external-4AT6LBPK-ns3/svc3/tcp/p80 }
add rule ip kube-proxy service-LAUZTJTB-ns4/svc4/tcp/p80 ip daddr 172.30.0.44 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy service-LAUZTJTB-ns4/svc4/tcp/p80 numgen random mod 2 vmap { 0 : goto endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80 , 1 : goto endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80 }
add rule ip kube-proxy external-LAUZTJTB-ns4/svc4/tcp/p80 jump mark-for-masquerade
add rule ip kube-proxy external-LAUZTJTB-ns4/svc4/tcp/p80 goto service-LAUZTJTB-ns4/svc4/tcp/p80
add rule ip kube-proxy endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80 ip saddr 10.180.0.5 jump mark-for-masquerade
add rule ip kube-proxy endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80 meta l4proto tcp dnat to 10.180.0.5:80
add rule ip kube-proxy endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80 ip saddr 10.180.0.4 jump mark-for-masquerade
add rule ip kube-proxy endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80 meta l4proto tcp dnat to 10.180.0.4:80
add element ip kube-proxy cluster-ips { 172.30.0.44 }
add element ip kube-proxy service-ips { 172.30.0.44 . tcp . 80 : goto service-LAUZTJTB-ns4/svc4/tcp/p80 }
add element ip kube-proxy service-ips { 192.168.99.33 . tcp . 80 : goto external-LAUZTJTB-ns4/svc4/tcp/p80 }
add set ip kube-proxy affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 { type ipv4_addr ; flags dynamic,timeout ; timeout 10800s ; }
add rule ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80 ip daddr 172.30.0.45 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80 ip saddr @affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 goto endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80
add rule ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 }
add rule ip kube-proxy external-HVFWP5L3-ns5/svc5/tcp/p80 jump mark-for-masquerade
add rule ip kube-proxy external-HVFWP5L3-ns5/svc5/tcp/p80 goto service-HVFWP5L3-ns5/svc5/tcp/p80
add rule ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 ip saddr 10.180.0.3 jump mark-for-masquerade
add rule ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 update @affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 { ip saddr }
add rule ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 meta l4proto tcp dnat to 10.180.0.3:80
add rule ip kube-proxy firewall-HVFWP5L3-ns5/svc5/tcp/p80 ip saddr != { 203.0.113.0/25 } drop
add element ip kube-proxy cluster-ips { 172.30.0.45 }
add element ip kube-proxy service-ips { 172.30.0.45 . tcp . 80 : goto service-HVFWP5L3-ns5/svc5/tcp/p80 }
add element ip kube-proxy service-ips { 5.6.7.8 . tcp . 80 : goto external-HVFWP5L3-ns5/svc5/tcp/p80 }
add element ip kube-proxy service-nodeports { tcp . 3002 : goto external-HVFWP5L3-ns5/svc5/tcp/p80 }
add element ip kube-proxy firewall-ips { 5.6.7.8 . tcp . 80 : goto firewall-HVFWP5L3-ns5/svc5/tcp/p80 }
add element ip kube-proxy cluster-ips { 172.30.0.46 }
add element ip kube-proxy no-endpoint-services { 172.30.0.46 . tcp . 80 comment "ns6/svc6:p80" : goto reject-chain }
"""


def as_cascade(text: str) -> str:
    """kube-proxy's `numgen random mod N vmap { 0 : goto e0 , ... }` as the rule cascade this
    proxy writes instead (services/proxy/nftables.py `_dispatch`): the one deliberate difference."""
    out = []
    for line in text.splitlines():
        m = re.match(r"(add rule ip kube-proxy \S+ )numgen random mod (\d+) vmap \{ (.*) \}$", line)
        if not m:
            out.append(line)
            continue
        targets = re.findall(r"goto (\S+)", m[3])
        out += [f"{m[1]}numgen random mod {len(targets) - i} 0 goto {t}" if i < len(targets) - 1
                else f"{m[1]}goto {t}" for i, t in enumerate(targets)]
    return "\n".join(out)


def normalize(text: str) -> dict[str, Any]:
    """Statements as comparable data: each chain's rules in order, every element and set
    once (nft itself does not care in which statement or order elements come)."""
    chains: dict[str, list[str]] = {}
    elements: set[tuple[str, str]] = set()
    sets: set[str] = set()
    for line in text.strip().splitlines():
        if line.startswith("add rule ip kube-proxy "):
            chain, rule = line[len("add rule ip kube-proxy "):].split(" ", 1)
            chains.setdefault(chain, []).append(rule)
        elif m := re.match(r"add chain ip kube-proxy (\S+) \{ (.*) ; \}$", line):
            chains.setdefault(m[1], []).extend(m[2].split(" ; "))
        elif m := re.match(r"add element ip kube-proxy (\S+) \{ (.*) \}$", line) or re.match(
                r"add (?:map|set) ip kube-proxy (\S+) \{ .* elements = \{ (.*) \} ; \}$", line):
            elements.update((m[1], e) for e in re.split(r", (?=\d|tcp|udp|sctp)", m[2]))
        elif line.startswith("add set ip kube-proxy affinity-"):
            sets.add(line)
    return {"chains": chains, "elements": elements, "sets": sets}


def _statements(index: ServiceIndex) -> str:
    from services.proxy.nftables import Transaction

    tx = Transaction()
    for group in index.ports().values():
        rules = merge_rules(render_service_port(sp, SETTINGS) for sp in group)
        for chain, chain_rules in rules.chains.items():
            tx.write_chain(chain, chain_rules)
        for name, timeout in rules.affinity_sets.items():
            tx.add_affinity_set(name, timeout)
        for element in rules.elements:
            tx.add_element(element)
    return tx.text()


def test_overall_rules_match_kube_proxy():
    assert normalize(_statements(kube_overall_case())) == normalize(as_cascade(KUBE_EXPECTED))


def test_base_statements_hook_the_chains_at_kube_proxys_priorities():
    text = "\n".join(base_statements(SETTINGS, recreate_base_chains=False))
    for expected in [
        "add chain ip kube-proxy filter-prerouting { type filter hook prerouting priority -110 ; }",
        "add chain ip kube-proxy filter-output-post-dnat { type filter hook output priority -90 ; }",
        "add chain ip kube-proxy nat-postrouting { type nat hook postrouting priority 100 ; }",
    ]:
        assert expected in text
    chains = normalize(text)["chains"]
    assert "ct state new jump service-endpoints-check" in chains["filter-forward"]
    assert chains["cluster-ips-check"][-1] == 'ip daddr { 172.30.0.0/16 } drop comment "Drop traffic to unallocated ClusterIPs"'
    assert chains["masquerading"][-1] == "masquerade fully-random"
    assert chains["services"] == ["ip daddr . meta l4proto . th dport vmap @service-ips",
                                  "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports"]
    assert "delete chain" not in text
    assert "delete chain ip kube-proxy nat-prerouting" in "\n".join(
        base_statements(SETTINGS, recreate_base_chains=True))


class RecordingNft:
    """An in-memory `Nft`: records each transaction; `chains`/`sets` are what a listing returns."""

    def __init__(self) -> None:
        self.runs: list[str] = []
        self.chains: list[str] = []
        self.sets: list[str] = []
        self.fail = False

    async def run(self, text: str) -> None:
        from services.proxy.iptables import CommandError

        if self.fail:
            raise CommandError(["nft", "-f", "-"], 1, "Error: simulated")
        self.runs.append(text)

    async def list_names(self, what: str) -> list[str]:
        return list(self.chains if what == "chains" else self.sets)

    async def delete_table(self) -> bool:
        return True


def _web(*ips: str) -> dict[str, Any]:
    return endpoint_slice("web", [endpoint(ip, node="test-node") for ip in ips], [slice_port(8080, name="http")])


def _index() -> ServiceIndex:
    index = ServiceIndex("test-node")
    index.set_service(service("web", "172.30.0.10", [port(80, name="http", target_port=8080)]))
    index.set_service(service("other", "172.30.0.11", [port(53, name="dns", protocol="UDP")]))
    index.set_slice(_web("10.0.1.2", "10.0.2.2"))
    return index


async def test_first_sync_is_full_then_only_the_change_is_written():
    nft, clock = RecordingNft(), [100.0]
    nft.chains = ["services", "service-OLD00000-gone/svc/tcp/"]
    nft.sets = ["affinity-OLD00000-gone/svc/tcp/__10.0.9.9/80"]
    applier = NftablesApplier(SETTINGS, nft=nft, clock=lambda: clock[0])
    index = _index()
    plan = await applier.apply(index.ports(), index.take_changed())
    assert plan.full and plan.services == 2
    text = nft.runs[-1]
    assert "add table ip kube-proxy" in text and "delete chain ip kube-proxy nat-prerouting" in text
    # what the kernel had and nothing uses: the chain flushed (deleted later), the set deleted
    assert "flush chain ip kube-proxy service-OLD00000-gone/svc/tcp/" in text
    assert "delete set ip kube-proxy affinity-OLD00000-gone/svc/tcp/__10.0.9.9/80" in text
    assert plan.stale_chains == ["service-OLD00000-gone/svc/tcp/"]

    # nothing changed: nothing to run (the stale chain waits for its grace second)
    plan = await applier.apply(index.ports(), index.take_changed())
    assert not plan.full and plan.text == "" and len(nft.runs) == 1

    # one endpoint goes: its chain is flushed, the service chain rewritten, no element touched
    index.set_slice(_web("10.0.1.2"))
    clock[0] += 2
    plan = await applier.apply(index.ports(), index.take_changed())
    # the stale chain's grace second is over: deleted after the change is in (its own transaction)
    assert nft.runs[-1] == "delete chain ip kube-proxy service-OLD00000-gone/svc/tcp/\n"
    gone = "endpoint-" + hash_and_truncate("default/web/tcp/http__10.0.2.2/8080")
    svc_chain = "service-" + hash_and_truncate("default/web/tcp/http")
    assert nft.runs[-2].splitlines() == [
        f"flush chain ip kube-proxy {svc_chain}",
        f"flush chain ip kube-proxy {gone}",
        f"add chain ip kube-proxy {svc_chain} {{ ip daddr 172.30.0.10 tcp dport 80 ip saddr != 10.0.0.0/8 "
        "jump mark-for-masquerade ; goto endpoint-" + hash_and_truncate("default/web/tcp/http__10.0.1.2/8080") + " ; }",
    ]
    assert plan.chains_written == 1 and plan.elements_changed == 0 and plan.stale_chains == [gone]

    # the last endpoint goes: the map element moves from service-ips to no-endpoint-services
    index.set_slice(_web())
    plan = await applier.apply(index.ports(), index.take_changed())
    lines = nft.runs[-1].splitlines()
    assert "delete element ip kube-proxy service-ips { 172.30.0.10 . tcp . 80 }" in lines
    assert ('add map ip kube-proxy no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; '
            'comment "vmap to drop or reject packets to services with no endpoints" ; elements = '
            '{ 172.30.0.10 . tcp . 80 comment "default/web:http" : goto reject-chain } ; }') in lines


async def test_a_failed_transaction_makes_the_next_sync_full():
    nft = RecordingNft()
    applier = NftablesApplier(SETTINGS, nft=nft)
    index = _index()
    await applier.apply(index.ports(), index.take_changed())
    index.set_slice(_web("10.0.1.2"))
    nft.fail = True
    with pytest.raises(Exception, match="simulated"):
        await applier.apply(index.ports(), index.take_changed())
    nft.fail = False
    plan = await applier.apply(index.ports(), index.take_changed())
    assert plan.full and "add table ip kube-proxy" in nft.runs[-1]


async def test_deleted_service_leaves_no_element_and_a_shared_address_stays_with_its_owner():
    nft = RecordingNft()
    applier = NftablesApplier(SETTINGS, nft=nft)
    index = ServiceIndex("test-node")
    a = external(service("a", "172.30.0.20", [port(80)]), external_ips=["192.0.2.1"])
    b = external(service("b", "172.30.0.21", [port(80)]), external_ips=["192.0.2.1"])
    for svc in (a, b):
        index.set_service(svc)
        index.set_slice(endpoint_slice(svc["metadata"]["name"], [endpoint("10.0.1.9")], [slice_port(80)]))
    await applier.apply(index.ports(), index.take_changed())
    index.delete_service(a)
    await applier.apply(index.ports(), index.take_changed())
    lines = nft.runs[-1].splitlines()
    assert "delete element ip kube-proxy cluster-ips { 172.30.0.20 }" in lines
    # b (rendered last) owns 192.0.2.1:80; a's deletion does not take it away
    assert not any("192.0.2.1" in line for line in lines), lines


async def test_a_full_sync_flushes_only_the_chains_the_kernel_has_and_writes_targets_first():
    """After a restart the kernel still has the chains: each is flushed before its rules are
    written again (or they would double). A chain it lacks is made by its own block, after
    every chain its rules jump to."""
    index = _index()
    svc_chain = "service-" + hash_and_truncate("default/web/tcp/http")
    endpoints = ["endpoint-" + hash_and_truncate(f"default/web/tcp/http__{ip}/8080") for ip in ("10.0.1.2", "10.0.2.2")]
    nft = RecordingNft()
    nft.chains = ["services", svc_chain]
    await NftablesApplier(SETTINGS, nft=nft).apply(index.ports(), index.take_changed())
    lines = nft.runs[-1].splitlines()
    assert f"flush chain ip kube-proxy {svc_chain}" in lines
    assert not any(line.startswith(f"flush chain ip kube-proxy {e}") for e in endpoints for line in lines)
    assert not any(line == f"add chain ip kube-proxy {e}" for e in endpoints for line in lines)
    made = {line.split()[4]: n for n, line in enumerate(lines) if line.startswith("add chain ip kube-proxy ")}
    assert all(made[e] < made[svc_chain] for e in endpoints), "endpoint chains come before the rules naming them"
