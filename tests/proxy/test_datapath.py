"""Packets through the rules: a client, a routing node running the proxy, two backends.

    client (10.0.0.2) --- (10.0.0.1) node (10.244.1.1) --- be1 (10.244.1.2)
                                          (10.244.2.1) --- be2 (10.244.2.2)
                                          (10.10.0.1)  --- outside (10.10.0.2)

The client is outside the cluster CIDR, so its traffic to a cluster IP is
DNATed in the node's PREROUTING and masqueraded in its POSTROUTING; the
backends therefore see the node's address.  The node also has a default
route, as a real node has, so traffic to a cluster IP without endpoints
reaches the filter FORWARD chain and is REJECTed there.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from services.proxy.debug import rules_for
from services.proxy.model import ServiceIndex, build_snapshot
from services.proxy.nftsync import NftablesApplier
from services.proxy.proxier import Proxier
from services.proxy.rules import NodeSettings, render
from services.proxy.runner import SyncTrigger
from tests.proxy.netns import NetnsLab
from tests.proxy.objects import endpoint, endpoint_slice, port, service, slice_port

BACKEND = r"""
import http.server, socket, sys, threading
name = sys.argv[1]

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"{name} {self.client_address[0]}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("0.0.0.0", 8080), Handler)
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(("0.0.0.0", 5353))

def answer_udp():
    while True:
        data, peer = udp.recvfrom(2048)
        udp.sendto(f"{name} {peer[0]}".encode(), peer)

threading.Thread(target=answer_udp, daemon=True).start()
print("ready", flush=True)
server.serve_forever()
"""

# Reads commands on stdin so one UDP socket (one source port, one conntrack
# flow) lives across re-syncs; prints one JSON line per command.
CLIENT = r"""
import json, socket, sys, time
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.settimeout(2)
print("ready", flush=True)
for line in sys.stdin:
    cmd, ip, port, count = line.split()
    results = []
    for _ in range(int(count)):
        started = time.monotonic()
        try:
            if cmd == "http":
                with socket.create_connection((ip, int(port)), timeout=3) as conn:
                    conn.sendall(b"GET / HTTP/1.0\r\nHost: svc\r\n\r\n")
                    data = b""
                    while chunk := conn.recv(4096):
                        data += chunk
                results.append(data.split(b"\r\n\r\n", 1)[1].decode())
            else:
                udp.sendto(b"q", (ip, int(port)))
                results.append(udp.recvfrom(2048)[0].decode())
        except ConnectionRefusedError:
            results.append("refused")
        except socket.timeout:
            results.append("timeout")
        except OSError as exc:
            results.append(type(exc).__name__ + ":" + str(exc.errno))
        results[-1] = [results[-1], round(time.monotonic() - started, 3)]
    print(json.dumps(results), flush=True)
"""

CLUSTER_CIDR = "10.244.0.0/16"
WEB_IP, DNS_IP = "10.96.0.10", "10.96.0.53"


@dataclass
class Topology:
    lab: NetnsLab
    node: str
    client: subprocess.Popen[str]
    mode: str  # the proxy mode every test here runs in: each runs in both

    def ask(self, cmd: str, ip: str, port_: int, count: int) -> list[tuple[str, float]]:
        assert self.client.stdin is not None and self.client.stdout is not None
        self.client.stdin.write(f"{cmd} {ip} {port_} {count}\n")
        self.client.stdin.flush()
        return [(answer, seconds) for answer, seconds in json.loads(self.client.stdout.readline())]


@pytest.fixture(params=["iptables", "nftables"])
def topology(lab: NetnsLab, request: pytest.FixtureRequest) -> Iterator[Topology]:
    if request.param == "nftables" and shutil.which("nft") is None:
        pytest.skip("nft (Debian's nftables) is not installed")
    node = lab.add_netns("node")
    client = lab.add_netns("client")
    lab.link(client, "eth0", "10.0.0.2/24", node, "eth-c", "10.0.0.1/24")
    lab.exec(client, ["ip", "route", "add", "default", "via", "10.0.0.1"])
    for index in (1, 2):
        backend = lab.add_netns(f"be{index}")
        lab.link(backend, "eth0", f"10.244.{index}.2/24", node, f"eth-b{index}", f"10.244.{index}.1/24")
        lab.exec(backend, ["ip", "route", "add", "default", "via", f"10.244.{index}.1"])
        lab.spawn(backend, BACKEND, f"be{index}")
    # The node's default route leads to an "outside" namespace that routes nowhere.
    outside = lab.add_netns("outside")
    lab.link(outside, "eth0", "10.10.0.2/24", node, "uplink0", "10.10.0.1/24")
    lab.exec(node, ["ip", "route", "add", "default", "via", "10.10.0.2"])
    # Forwarding is enabled in the node namespace only.
    lab.exec(node, ["sysctl", "-qw", "net.ipv4.ip_forward=1"])
    yield Topology(lab, node, lab.spawn(client, CLIENT), request.param)


def _web_slice(*ips: str) -> dict[str, Any]:
    return endpoint_slice("web", [endpoint(ip) for ip in ips], [slice_port(8080, name="http")])


def _dns_slice(*ips: str) -> dict[str, Any]:
    return endpoint_slice("dns", [endpoint(ip) for ip in ips], [slice_port(5353, name="dns", protocol="UDP")])


def _proxier(topology: Topology, **kwargs: Any) -> Proxier:
    return Proxier(NodeSettings(node_name="node-a", cluster_cidr=CLUSTER_CIDR),
                   registry=CollectorRegistry(), netns=topology.node, mode=topology.mode, **kwargs)


def _proxier_with_services(topology: Topology) -> Proxier:
    proxier = _proxier(topology)
    proxier.on_service(service("web", WEB_IP, [port(80, name="http", target_port=8080)]))
    proxier.on_service(service("dns", DNS_IP, [port(53, name="dns", protocol="UDP", target_port=5353)]))
    proxier.mark_services_synced()
    return proxier


async def test_cluster_ip_spreads_then_follows_endpoint_changes(topology: Topology) -> None:
    proxier = _proxier_with_services(topology)
    proxier.on_endpoint_slice(_web_slice("10.244.1.2", "10.244.2.2"))
    proxier.mark_endpoint_slices_synced()
    await proxier.sync(SyncTrigger.CHANGED)
    assert proxier.ready
    # the mode's own rules, and none of the other's
    nat = topology.lab.exec(topology.node, ["iptables-save", "-t", "nat"]).stdout
    tables = topology.lab.exec(topology.node, ["nft", "list", "tables"], check=False).stdout
    assert ("KUBE-SERVICES" in nat) == (topology.mode == "iptables"), nat
    assert ("table ip kube-proxy" in tables) == (topology.mode == "nftables"), tables
    # one Service's rules (the proxy's /debug/rules): its cluster IP and endpoints, nobody else's
    shown = rules_for(proxier, "default", "web") or ""
    assert WEB_IP in shown and "10.244.1.2:8080" in shown and "10.244.2.2:8080" in shown, shown
    assert DNS_IP not in shown and "default/dns" not in shown, shown
    assert rules_for(proxier, "default", "nope") is None

    answers = Counter(answer for answer, _ in topology.ask("http", WEB_IP, 80, 60))
    # Both backends answer, and each saw the node's address: the client was masqueraded.
    assert set(answers) == {"be1 10.244.1.1", "be2 10.244.2.1"}, answers
    assert sum(answers.values()) == 60

    proxier.on_endpoint_slice(_web_slice("10.244.2.2"))
    await proxier.sync(SyncTrigger.CHANGED)
    answers = Counter(answer for answer, _ in topology.ask("http", WEB_IP, 80, 30))
    assert answers == {"be2 10.244.2.1": 30}

    proxier.on_endpoint_slice(_web_slice())
    await proxier.sync(SyncTrigger.CHANGED)
    [(answer, seconds)] = topology.ask("http", WEB_IP, 80, 1)
    assert answer == "refused"
    assert seconds < 0.5, "REJECT answers at once; a DROP would time out"

    # Endpoints come back: traffic flows again.
    proxier.on_endpoint_slice(_web_slice("10.244.1.2"))
    await proxier.sync(SyncTrigger.CHANGED)
    assert Counter(a for a, _ in topology.ask("http", WEB_IP, 80, 5)) == {"be1 10.244.1.1": 5}


async def test_udp_flow_moves_when_its_endpoint_is_removed(topology: Topology) -> None:
    proxier = _proxier_with_services(topology)
    proxier.on_endpoint_slice(_dns_slice("10.244.1.2", "10.244.2.2"))
    proxier.mark_endpoint_slices_synced()
    await proxier.sync(SyncTrigger.CHANGED)

    first = topology.ask("udp", DNS_IP, 53, 5)
    pinned = {answer for answer, _ in first}
    assert len(pinned) == 1, "one UDP flow sticks to one endpoint via conntrack"
    pinned_backend = pinned.pop().split()[0]
    pinned_ip, other = ("10.244.1.2", "be2") if pinned_backend == "be1" else ("10.244.2.2", "be1")
    remaining_ip = "10.244.2.2" if pinned_ip == "10.244.1.2" else "10.244.1.2"

    # Control: new rules alone do not move an existing UDP flow...
    proxier.on_endpoint_slice(_dns_slice(remaining_ip))
    dns = service("dns", DNS_IP, [port(53, name="dns", protocol="UDP", target_port=5353)])
    if topology.mode == "nftables":
        index = ServiceIndex("node-a")
        index.set_service(dns)
        index.set_slice(_dns_slice(remaining_ip))
        await NftablesApplier(proxier.nft_applier.settings, netns=topology.node).apply(
            index.ports(), index.take_changed(), full=True)
    else:
        snapshot = build_snapshot([dns], [_dns_slice(remaining_ip)], node_name="node-a")
        await proxier.applier.apply(render(snapshot, proxier.settings))
    assert {a.split()[0] for a, _ in topology.ask("udp", DNS_IP, 53, 3)} == {pinned_backend}

    # ...the proxier's sync deletes the stale conntrack entries, and it does.
    await proxier.sync(SyncTrigger.CHANGED)
    moved = topology.ask("udp", DNS_IP, 53, 3)
    assert {a.split()[0] for a, _ in moved} == {other}, moved


async def test_external_and_load_balancer_ips_reach_the_endpoints(topology: Topology) -> None:
    """An external IP routed to the node, and a load-balancer IP on the client's own link that
    the node answers ARP for (it is the only, so the elected, Ready node): both DNATed to the
    endpoints through KUBE-EXT-; no endpoints: both refused at once."""
    from services.proxy.announce import IpAddresses
    from tests.proxy.objects import external

    lb_ip, external_ip = "10.0.0.100", "192.0.2.10"
    proxier = _proxier(topology, addresses=IpAddresses("eth-c", netns=topology.node))
    web = external(service("web", WEB_IP, [port(80, name="http", target_port=8080)], type_="LoadBalancer"),
                   external_ips=[external_ip], lb_ips=[lb_ip])
    proxier.on_service(web)
    proxier.on_node({"metadata": {"name": "node-a"},
                     "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    proxier.on_endpoint_slice(_web_slice("10.244.1.2", "10.244.2.2"))
    proxier.mark_services_synced()
    proxier.mark_endpoint_slices_synced()
    await proxier.sync(SyncTrigger.CHANGED)

    for ip in (lb_ip, external_ip):
        answers = Counter(answer for answer, _ in topology.ask("http", ip, 80, 20))
        assert set(answers) == {"be1 10.244.1.1", "be2 10.244.2.1"}, (ip, answers)
    shown = topology.lab.exec(topology.node, ["ip", "-4", "-o", "addr", "show", "dev", "eth-c"]).stdout
    assert f"{lb_ip}/32" in shown and "eth-c:lb" in shown

    proxier.on_endpoint_slice(_web_slice())
    await proxier.sync(SyncTrigger.CHANGED)
    for ip in (lb_ip, external_ip):
        [(answer, seconds)] = topology.ask("http", ip, 80, 1)
        assert answer == "refused" and seconds < 0.5, (ip, answer)

    # no longer a LoadBalancer: the address is given up
    web = service("web", WEB_IP, [port(80, name="http", target_port=8080)])
    proxier.on_service(web)
    await proxier.sync(SyncTrigger.CHANGED)
    assert lb_ip not in topology.lab.exec(topology.node, ["ip", "-4", "-o", "addr", "show", "dev", "eth-c"]).stdout


async def test_node_port_reaches_the_endpoints_and_is_refused_without_them(topology: Topology) -> None:
    """The node's own address and the node port: DNAT to either backend with the client
    masqueraded (it may have been sent to another node); no endpoints: refused at once."""
    proxier = _proxier(topology)
    proxier.on_service(service("web", WEB_IP, [port(80, name="http", target_port=8080, node_port=30080)],
                               type_="NodePort"))
    proxier.on_endpoint_slice(_web_slice("10.244.1.2", "10.244.2.2"))
    proxier.mark_services_synced()
    proxier.mark_endpoint_slices_synced()
    await proxier.sync(SyncTrigger.CHANGED)
    answers = Counter(answer for answer, _ in topology.ask("http", "10.0.0.1", 30080, 30))
    assert set(answers) == {"be1 10.244.1.1", "be2 10.244.2.1"}, answers

    proxier.on_endpoint_slice(_web_slice())
    await proxier.sync(SyncTrigger.CHANGED)
    [(answer, seconds)] = topology.ask("http", "10.0.0.1", 30080, 1)
    assert answer == "refused" and seconds < 0.5, answer


async def test_a_pod_reaching_itself_through_its_service_is_masqueraded(topology: Topology) -> None:
    """Hairpin: be1 asks the Service and the DNAT picks be1 itself; without SNAT it would see
    its own address as the source and drop its own reply. It sees the node's instead."""
    proxier = _proxier_with_services(topology)
    proxier.on_endpoint_slice(_web_slice("10.244.1.2"))
    proxier.mark_endpoint_slices_synced()
    await proxier.sync(SyncTrigger.CHANGED)
    itself = topology.lab.spawn(f"{topology.lab.prefix}-be1", CLIENT)
    assert itself.stdin is not None and itself.stdout is not None
    itself.stdin.write(f"http {WEB_IP} 80 3\n")
    itself.stdin.flush()
    answers = [answer for answer, _ in json.loads(itself.stdout.readline())]
    assert answers == ["be1 10.244.1.1"] * 3, answers
