"""`trace` over the seed's cluster: the account names the real chains, follows the endpoint the
probe hit, and says where and why a broken path breaks."""
from __future__ import annotations

import pytest

from kubecore.nettrace.trace import Destination, TraceError, parse_destination, trace
from tests.nettrace.world import pod, saved, seed_state, seed_world
from tests.proxy.objects import endpoint, endpoint_slice, port, service, slice_port

MYSVC = Destination("service", "mysvc", "default", "8080")


def text(t) -> str:
    return "\n".join([s.title for s in t.steps] + [ln for s in t.steps for ln in s.lines + s.rules])


def probe_to(endpoint_ip: str, world, *, moved: bool = True) -> dict:
    before = world.node_views["kind-worker"]["iptables"]
    after = saved(seed_state(), counters="[4:240]") if moved else before
    return {"before": before, "after": after, "connect": {
        "connected": True, "ms": 1.2, "answer": "HTTP/1.1 200 OK", "server": "nginx/1.22.1", "localPort": 40000,
        "conntrack": {"protocol": "tcp", "state": "ESTABLISHED", "assured": True,
                      "original": {"src": "10.244.1.7", "dst": "10.96.62.22", "sport": "40000", "dport": "8080"},
                      "reply": {"src": endpoint_ip, "dst": "10.244.1.7", "sport": "8080", "dport": "40000"}}}}


def test_the_seed_service_lists_its_three_endpoints_and_follows_the_likeliest():
    world = seed_world()
    t = trace(world, pod("client"), MYSVC)
    assert t.ok, t.summary
    assert [(e.address, e.pod, e.node, e.probability) for e in t.endpoints] == [
        ("10.244.1.2:8080", "default/test-lgqcq", "kind-worker", 0.3333),
        ("10.244.2.2:8080", "default/test-jcdzz", "kind-worker2", 0.3333),
        ("10.244.2.3:8080", "default/test-pjrjp", "kind-worker2", 0.3333)]
    assert [e.chain for e in t.endpoints] == ["KUBE-SEP-CMSFOBEB7HHZOTBZ", "KUBE-SEP-VVWLMARALSB3FCZF",
                                              "KUBE-SEP-XGAC3VXZG7B73WCD"]  # the seed's own chain names
    account = text(t)
    assert ('-t nat -A KUBE-SERVICES -m comment --comment "default/mysvc cluster IP" -m tcp -p tcp '
            "-d 10.96.62.22/32 --dport 8080 -j KUBE-SVC-BM6F4AVTDKG47F3K") in account
    assert "DNAT: the destination becomes 10.244.1.2:8080 (was 10.96.62.22:8080)" in account
    assert "10.244.1.2 is pod default/test-lgqcq on this node: out through its veth vethlgqcq" in account
    assert "no source NAT: the packet keeps the pod's address 10.244.1.7" in account
    assert t.summary == "reaches pod default/test-lgqcq at 10.244.1.2:8080"


def test_with_a_probe_the_account_follows_the_endpoint_conntrack_recorded_across_nodes():
    world = seed_world()
    world.probe = probe_to("10.244.2.3", world)
    t = trace(world, pod("client"), MYSVC)
    assert t.ok, t.summary
    assert [e.probed for e in t.endpoints] == [False, False, True]
    titles = [s.title for s in t.steps]
    assert "Over the node network to node kind-worker2" in titles and "Routing decision on node kind-worker2" in titles
    account = text(t)
    assert "10.244.2.3 is in node kind-worker2's pod range: to 172.18.0.4" in account
    assert "-j KUBE-SEP-XGAC3VXZG7B73WCD   <- +1 packet during the probe" in account
    assert ("conntrack: tcp ESTABLISHED src=10.244.1.7 dst=10.96.62.22 sport=40000 dport=8080 src=10.244.2.3 "
            "dst=10.244.1.7 sport=8080 dport=40000 [ASSURED]") in account
    assert 'probe: connected in 1.2 ms, answered "HTTP/1.1 200 OK" (Server: nginx/1.22.1)' in account
    assert t.summary == "reaches pod default/test-pjrjp at 10.244.2.3:8080"


def test_scaled_to_zero_the_filter_table_rejects_and_the_account_says_why():
    state = seed_state()
    state.slices[0]["endpoints"] = []
    world = seed_world(state)
    t = trace(world, pod("client"), MYSVC)
    assert not t.ok and t.endpoints == []
    broken = [s for s in t.steps if not s.ok]
    assert len(broken) == 1 and broken[0].title == "filter FORWARD on node kind-worker"
    assert t.summary == ('filter FORWARD on node kind-worker ends in REJECT ("default/mysvc has no endpoints"): '
                         "the Service has no ready endpoints, so kube-proxy rejects its traffic")


def test_a_missing_route_to_the_other_node_is_where_the_path_breaks():
    world = seed_world(drop_routes=("10.244.2.0/24", "default"))
    world.probe = probe_to("10.244.2.2", world, moved=False)
    t = trace(world, pod("client"), MYSVC)
    assert not t.ok and t.summary == "node kind-worker has no route to 10.244.2.2"
    assert next(s for s in t.steps if not s.ok).title == "Routing decision on node kind-worker"


def test_a_name_resolved_by_the_pod_through_its_search_path():
    world = seed_world()
    world.dns = {"resolvConf": {"nameservers": ["10.96.0.10"], "search": ["default.svc.cluster.local"], "ndots": 5},
                 "queries": [{"name": "mysvc.default.svc.cluster.local.", "rcode": "NOERROR", "answers": [
                     {"name": "mysvc.default.svc.cluster.local.", "type": "A", "ttl": 5, "data": "10.96.62.22"}]}]}
    t = trace(world, pod("client"), Destination("dns", "mysvc", "default", "8080"))
    assert t.ok, t.summary
    account = text(t)
    assert "mysvc.default.svc.cluster.local. A -> NOERROR: mysvc.default.svc.cluster.local. 5 IN A 10.96.62.22" \
        in account
    assert "10.96.0.10 is Service kube-system/kube-dns" in account
    assert "the answer 10.96.62.22 is the cluster IP of Service default/mysvc" in account


def test_a_name_nobody_serves_is_nxdomain_on_every_search_domain():
    world = seed_world()
    world.dns = {"resolvConf": {"nameservers": ["10.96.0.10"], "search": ["default.svc.cluster.local"], "ndots": 5},
                 "queries": [{"name": "nope.default.svc.cluster.local.", "rcode": "NXDOMAIN", "answers": []},
                             {"name": "nope.", "rcode": "NXDOMAIN", "answers": []}]}
    t = trace(world, pod("client"), Destination("dns", "nope", "default", "80"))
    assert not t.ok
    assert t.summary == "nope does not resolve: every name the search path tried was NXDOMAIN"


@pytest.mark.parametrize("dest, problem", [
    (Destination("service", "nosuch", "default", "80"), 'service "nosuch" not found in namespace default'),
    (Destination("service", "mysvc", "default", "9090"),
     "Service default/mysvc has no TCP port 9090 (it has 8080/TCP)"),
    (Destination("pod", "nosuch", "default", ""), 'pod "nosuch" not found in namespace default'),
], ids=["no-service", "no-port", "no-pod"])
def test_destinations_that_do_not_exist(dest, problem):
    t = trace(seed_world(), pod("client"), dest)
    assert not t.ok and t.summary == problem


def test_to_a_pod_directly_by_its_named_port():
    t = trace(seed_world(), pod("client"), Destination("pod", "test-jcdzz", "default", "http"))
    assert t.ok and t.endpoints == [] and t.summary == "reaches pod default/test-jcdzz at 10.244.2.2:8080"


def test_a_source_without_an_ip_cannot_be_traced():
    pending = pod("client")
    pending["status"] = {"phase": "Pending"}
    t = trace(seed_world(), pending, MYSVC)
    assert not t.ok and t.summary == "the source pod has no IP yet (not running?)"


@pytest.mark.parametrize("text, expected", [
    ("svc/mysvc:8080", Destination("service", "mysvc", "default", "8080")),
    ("service/mysvc:http", Destination("service", "mysvc", "default", "http")),
    ("pod/test-jcdzz", Destination("pod", "test-jcdzz", "default", "")),
    ("10.96.62.22:8080", Destination("ip", "10.96.62.22", "default", "8080")),
    ("mysvc.default.svc.cluster.local:8080", Destination("dns", "mysvc.default.svc.cluster.local", "default", "8080")),
    ("MySvc:8080", Destination("dns", "mysvc", "default", "8080")),
], ids=["svc", "svc-named-port", "pod", "ip", "fqdn", "short-name"])
def test_destinations_parse(text, expected):
    assert parse_destination(text, "default") == expected


@pytest.mark.parametrize("text", ["svc/mysvc", "deploy/x:80", "mysvc", "bad_name:80", "svc/:80"],
                         ids=["svc-no-port", "other-kind", "no-port", "bad-name", "svc-no-name"])
def test_bad_destinations_say_what_is_expected(text):
    with pytest.raises(TraceError):
        parse_destination(text, "default")


def test_udp_to_the_cluster_dns_which_runs_beside_the_nodes():
    t = trace(seed_world(), pod("client"), parse_destination("svc/kube-dns:53", "kube-system", "UDP"))
    assert t.ok, t.summary
    assert [(e.address, e.pod, e.probability) for e in t.endpoints] == [("172.18.0.1:53", "", 1.0)]
    assert "DNAT: the destination becomes 172.18.0.1:53 (was 10.96.0.10:53)" in text(t)
    assert t.summary == "reaches 172.18.0.1:53 (an address on the node network, outside the pod network)"


def test_mixed_answers_are_counted_by_rcode():
    world = seed_world()
    world.dns = {"resolvConf": {"nameservers": ["10.96.0.10"], "search": ["default.svc.cluster.local"], "ndots": 5},
                 "queries": [{"name": "nope.default.svc.cluster.local.", "rcode": "NXDOMAIN", "answers": []},
                             {"name": "nope.", "rcode": "REFUSED", "answers": []}]}
    t = trace(world, pod("client"), Destination("dns", "nope", "default", "80"))
    assert t.summary == "nope does not resolve: the names the search path tried got NXDOMAIN (1), REFUSED (1)"


def test_a_probe_into_a_broken_path_shows_what_the_kernel_did():
    state = seed_state()
    state.slices[0]["endpoints"] = []
    world = seed_world(state)
    world.probe = {"connect": {"connected": False, "error": "[Errno 111] Connect call failed ('10.96.62.22', 8080)",
                               "ms": 0.4, "localPort": 40000, "conntrack": None}}
    t = trace(world, pod("client"), MYSVC)
    assert not t.ok and t.steps[-1].title == "What the probe's connection met"
    assert t.steps[-1].problem == "the probe's connection failed: [Errno 111] Connect call failed ('10.96.62.22', 8080)"
    assert t.summary.startswith("filter FORWARD on node kind-worker ends in REJECT")


def test_the_account_names_the_service_the_address_belongs_to():
    t = trace(seed_world(), pod("client"), MYSVC)
    assert (t.address, t.service) == ("10.96.62.22:8080", "default/mysvc")
    direct = trace(seed_world(), pod("client"), Destination("pod", "test-jcdzz", "default", "8080"))
    assert (direct.address, direct.service) == ("10.244.2.2:8080", "")


def test_a_host_network_source_leaves_through_the_nodes_output_hooks():
    """A hostNetwork pod's packet is the node's own: nat OUTPUT does the Service's DNAT, filter
    OUTPUT lets it out, and its source (the node's address, outside the pod range) is
    masqueraded on the way to the endpoint on the other node."""
    world = seed_world()
    host = pod("client")
    host["spec"]["hostNetwork"] = True
    host["status"]["podIP"] = "172.18.0.3"  # a hostNetwork pod's IP is its node's
    world.pods = [*world.pods, host]
    world.probe = probe_to("10.244.2.3", world)
    t = trace(world, host, MYSVC)
    assert t.ok, t.summary
    titles = [s.title for s in t.steps]
    assert titles[:2] == ["The packet starts in pod default/client", "Destination Service default/mysvc"]
    assert "Out of the pod through its veth" not in titles
    assert titles[2:5] == ["nat OUTPUT on node kind-worker", "Routing decision on node kind-worker",
                           "filter OUTPUT on node kind-worker"]
    assert "nat PREROUTING on node kind-worker" not in titles and "nat PREROUTING on node kind-worker2" in titles
    account = text(t)
    assert "the packet is made by the node's own network stack" in account
    assert '-t nat -A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES' in account
    assert "the source 172.18.0.3 is outside the cluster's pod range" in account
    assert "MASQUERADE: the source becomes node kind-worker's address" in account
    assert t.summary == "reaches pod default/test-pjrjp at 10.244.2.3:8080"


def test_a_host_network_pod_the_node_gave_a_sandbox_of_its_own_is_traced_as_a_pod():
    """What decides is the node: a pod asking for hostNetwork whose address is a sandbox's
    (a veth on the node) sends from that sandbox."""
    world = seed_world()
    client = pod("client")
    client["spec"]["hostNetwork"] = True
    t = trace(world, client, MYSVC)
    assert t.ok, t.summary
    titles = [s.title for s in t.steps]
    assert "Out of the pod through its veth" in titles and "nat PREROUTING on node kind-worker" in titles


def test_a_node_port_of_the_other_node_is_followed_there_and_back():
    """client (kind-worker) -> kind-worker2's address : node port. kind-worker routes it onto
    the node network unchanged; kind-worker2's KUBE-NODEPORTS takes it, masquerades it and
    DNATs it to the endpoint, which is back on kind-worker."""
    state = seed_state("test-lgqcq")
    state.services.append(service("np", "10.96.7.7", [port(8080, node_port=30080)], type_="NodePort"))
    state.slices.append(endpoint_slice("np", [endpoint("10.244.1.2", node="kind-worker")], [slice_port(8080)]))
    world = seed_world(state)
    t = trace(world, pod("client"), Destination("ip", "172.18.0.4", "default", "30080"))
    assert t.ok, t.summary
    titles = [s.title for s in t.steps]
    there, back = titles.index("Over the node network to node kind-worker2"), titles.index(
        "Over the node network to node kind-worker")
    assert there < titles.index("nat PREROUTING on node kind-worker2") < back
    assert titles[-2:] == ["Into pod default/test-lgqcq", "The reply"]
    account = text(t)
    assert "172.18.0.4 is node kind-worker2's own address" in account
    assert "-j KUBE-NODEPORTS" in account and "KUBE-EXT-" in account
    assert "traffic to a node port or an external address" in account
    assert "172.18.0.4 is node kind-worker2's address (a node port there reaches its Service)" in account
    assert "MASQUERADE: the source becomes node kind-worker2's address 172.18.0.4 on eth0" in account
    assert "the packet keeps its addresses (172.18.0.4 -> 10.244.1.2)" in account
    assert ("the answer leaves 10.244.1.2:8080 for 172.18.0.4, the node that masqueraded the packet; that "
            "node's conntrack entry rewrites it back: from 172.18.0.4:30080 to 10.244.1.7") in account
    assert [(e.address, e.pod) for e in t.endpoints] == [("10.244.1.2:8080", "default/test-lgqcq")]
    assert t.summary == "reaches pod default/test-lgqcq at 10.244.1.2:8080"
