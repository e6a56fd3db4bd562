"""NetworkPolicy through real nftables rules: pods in namespaces of their own, routed by a node
namespace that holds the rules (as ptp routes a node's pods), the upstream network-policy e2e
cases, and a policy added under an open connection.

    a-web  10.244.1.2  ns a, app=web, port "http" 8080 (and 9090)
    a-cli  10.244.1.3  ns a, app=client
    b-cli  10.244.1.4  ns b (team=blue), app=client
    outside 10.10.0.2  not a pod: an address beyond the node
"""
from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from services.netpol.model import pod_policies
from services.netpol.rules import render
from tests.proxy.netns import NetnsLab

pytestmark = pytest.mark.skipif(shutil.which("nft") is None, reason="nft (Debian's nftables) is not installed")

SERVER = r"""
import socket, sys, threading
name = sys.argv[1]
def serve(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(64)
    while True:
        c, _ = s.accept()
        threading.Thread(target=talk, args=(c,), daemon=True).start()
def talk(c):
    f = c.makefile("rw")
    for line in f:
        f.write(name + "\n"); f.flush()
for port in (8080, 9090):
    threading.Thread(target=serve, args=(port,), daemon=True).start()
print("ready", flush=True)
sys.stdin.readline()
"""

CLIENT = r"""
import json, socket, sys
held = None
print("ready", flush=True)
for line in sys.stdin:
    cmd, *args = line.split()
    try:
        if cmd == "try":
            with socket.create_connection((args[0], int(args[1])), timeout=1) as c:
                c.settimeout(1); c.sendall(b"hi\n"); answer = c.makefile().readline().strip()
        elif cmd == "open":
            held = socket.create_connection((args[0], int(args[1])), timeout=1)
            held.settimeout(1); held.sendall(b"hi\n"); answer = held.makefile().readline().strip()
        else:  # "again": the held connection
            held.sendall(b"hi\n"); answer = held.makefile().readline().strip()
    except OSError as exc:
        answer = type(exc).__name__
    print(json.dumps(answer), flush=True)
"""

PODS = {"a-web": ("a", {"app": "web"}, "10.244.1.2"), "a-cli": ("a", {"app": "client"}, "10.244.1.3"),
        "b-cli": ("b", {"app": "client"}, "10.244.1.4")}
NAMESPACES = [{"metadata": {"name": "a", "labels": {"kubernetes.io/metadata.name": "a"}}},
              {"metadata": {"name": "b", "labels": {"kubernetes.io/metadata.name": "b", "team": "blue"}}}]


def pod(name: str) -> dict[str, Any]:
    ns, labels, ip = PODS[name]
    return {"metadata": {"namespace": ns, "name": name, "labels": labels},
            "spec": {"nodeName": "node-a", "containers": [{"name": "c", "ports": [
                {"name": "http", "containerPort": 8080}, {"name": "admin", "containerPort": 9090}]}]},
            "status": {"phase": "Running", "podIP": ip}}


def policy(name: str, spec: dict[str, Any], namespace: str = "a") -> dict[str, Any]:
    return {"metadata": {"namespace": namespace, "name": name}, "spec": spec}


WEB = {"matchLabels": {"app": "web"}}


@dataclass
class Lab:
    lab: NetnsLab
    node: str
    clients: dict[str, subprocess.Popen[str]]

    def program(self, *policies: dict[str, Any]) -> None:
        text = render(pod_policies([pod(n) for n in PODS], NAMESPACES, policies, "node-a"))
        self.lab.exec(self.node, ["nft", "-f", "-"], input=text)

    def ask(self, who: str, cmd: str, ip: str = "", port: int = 0) -> str:
        proc = self.clients[who]
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(f"{cmd} {ip} {port}\n")
        proc.stdin.flush()
        return str(json.loads(proc.stdout.readline()))


@pytest.fixture
def net(lab: NetnsLab) -> Iterator[Lab]:
    node = lab.add_netns("node")
    lab.exec(node, ["sysctl", "-qw", "net.ipv4.ip_forward=1"])
    clients = {}
    for i, (name, (_, _, ip)) in enumerate(PODS.items()):
        ns = lab.add_netns(name)
        lab.link(ns, "eth0", f"{ip}/32", node, f"veth{i}", "10.244.1.1/32")
        lab.exec(ns, ["ip", "route", "add", "10.244.1.1", "dev", "eth0"])
        lab.exec(ns, ["ip", "route", "add", "default", "via", "10.244.1.1"])
        lab.exec(node, ["ip", "route", "add", f"{ip}/32", "dev", f"veth{i}"])
        lab.spawn(ns, SERVER, name)
        clients[name] = lab.spawn(ns, CLIENT)
    outside = lab.add_netns("outside")
    lab.link(outside, "eth0", "10.10.0.2/24", node, "uplink", "10.10.0.1/24")
    lab.exec(outside, ["ip", "route", "add", "default", "via", "10.10.0.1"])
    lab.spawn(outside, SERVER, "outside")
    clients["outside"] = lab.spawn(outside, CLIENT)
    yield Lab(lab, node, clients)


def test_without_policies_everything_flows_and_deny_all_ingress_isolates(net: Lab) -> None:
    net.program()
    assert net.ask("a-cli", "try", "10.244.1.2", 8080) == "a-web"
    net.program(policy("deny-all", {"podSelector": {}, "policyTypes": ["Ingress"]}))
    assert net.ask("a-cli", "try", "10.244.1.2", 8080) == "TimeoutError"
    assert net.ask("b-cli", "try", "10.244.1.3", 8080) == "TimeoutError", "every pod of namespace a"
    assert net.ask("a-cli", "try", "10.244.1.4", 8080) == "b-cli", "namespace b is not isolated"


def test_allow_from_the_same_namespace_only(net: Lab) -> None:
    net.program(policy("same-ns", {"podSelector": WEB, "ingress": [{"from": [{"podSelector": {}}]}]}))
    assert net.ask("a-cli", "try", "10.244.1.2", 8080) == "a-web"
    assert net.ask("b-cli", "try", "10.244.1.2", 8080) == "TimeoutError"
    assert net.ask("outside", "try", "10.244.1.2", 8080) == "TimeoutError"


def test_allow_from_a_namespace_selector_and_a_named_port(net: Lab) -> None:
    net.program(policy("blue-http", {"podSelector": WEB, "ingress": [{
        "from": [{"namespaceSelector": {"matchLabels": {"team": "blue"}}}], "ports": [{"port": "http"}]}]}))
    assert net.ask("b-cli", "try", "10.244.1.2", 8080) == "a-web"
    assert net.ask("b-cli", "try", "10.244.1.2", 9090) == "TimeoutError", "only the port named http"
    assert net.ask("a-cli", "try", "10.244.1.2", 8080) == "TimeoutError", "its own namespace is not blue"


def test_egress_to_an_ip_block_with_an_exception_and_a_port_range(net: Lab) -> None:
    net.program(policy("egress", {"podSelector": {"matchLabels": {"app": "client"}}, "policyTypes": ["Egress"],
                                  "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.244.1.4/32"]}}],
                                              "ports": [{"protocol": "TCP", "port": 8000, "endPort": 8100}]}]}))
    assert net.ask("a-cli", "try", "10.10.0.2", 8080) == "outside"
    assert net.ask("a-cli", "try", "10.244.1.2", 8080) == "a-web"
    assert net.ask("a-cli", "try", "10.244.1.4", 8080) == "TimeoutError", "the excepted address"
    assert net.ask("a-cli", "try", "10.244.1.2", 9090) == "TimeoutError", "outside the port range"


def test_a_policy_added_under_an_open_connection_stops_new_ones_only(net: Lab) -> None:
    """As kube-router and Calico behave: conntrack keeps an established connection flowing;
    only new connections meet the policy."""
    net.program()
    assert net.ask("b-cli", "open", "10.244.1.2", 8080) == "a-web"
    net.program(policy("deny-all", {"podSelector": {}, "policyTypes": ["Ingress"]}))
    assert net.ask("b-cli", "again") == "a-web", "the established connection goes on"
    assert net.ask("b-cli", "try", "10.244.1.2", 8080) == "TimeoutError", "a new one does not"
    net.program()
    assert net.ask("b-cli", "try", "10.244.1.2", 8080) == "a-web", "removing the policy restores it"
