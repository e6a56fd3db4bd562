"""Service types in a whole local cluster: a LoadBalancer Service gets an address from the
load-balancer controller's pool on the node network and answers `curl` from the host (root
namespace -> bridge -> the node elected to answer ARP for it -> DNAT to a pod), and a pod's
`dig` of an ExternalName Service gets the cluster DNS's CNAME."""
from __future__ import annotations

import ipaddress
import json
import subprocess

from tests.e2e.harness import NODE_CIDR, Cluster, run, running_ready, wait_until

# its own servers and client: the e2e package shares one cluster
SERVERS = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "lb-test"},
           "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "lb-test"}},
                    "template": {"metadata": {"labels": {"app": "lb-test"}}, "spec": {"containers": [{
                        "name": "web", "image": "registry.k8s.io/e2e-test-images/agnhost:2.39",
                        "args": ["netexec", "--http-port=8080"], "ports": [{"containerPort": 8080}],
                        "readinessProbe": {"httpGet": {"path": "/hostname", "port": 8080},
                                           "periodSeconds": 1}}]}}}}
CLIENT = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "lb-client"},
          "spec": {"containers": [{"name": "client", "image": "nicolaka/netshoot", "command": ["sleep", "3600"]}]}}
LB = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web-lb"},
      "spec": {"type": "LoadBalancer", "selector": {"app": "lb-test"},
               "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}
EXTERNAL_NAME = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"},
                 "spec": {"type": "ExternalName", "externalName": "db.example.com"}}


def test_load_balancer_reached_from_the_host_and_externalname_cname(cluster: Cluster, tmp_path) -> None:
    path = tmp_path / "svcs.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [SERVERS, CLIENT, LB, EXTERNAL_NAME]}))
    cluster.mkctl("apply", "-f", str(path))

    def ingress_ip() -> str | None:
        svc = json.loads(cluster.mkctl("get", "svc", "web-lb", "-o", "json").stdout)
        ingress = (svc.get("status") or {}).get("loadBalancer", {}).get("ingress") or []
        return ingress[0]["ip"] if ingress else None
    ip = wait_until(ingress_ip, timeout=60, what="the load balancer's address")
    pool = ipaddress.ip_network(NODE_CIDR)
    assert pool[200] <= ipaddress.ip_address(ip) <= pool[250], "from the pool the launcher gives the controller"

    # kubectl's columns: the ingress IP, the node ports; the ExternalName's name, no cluster IP
    kc = ["kubectl", "--kubeconfig", cluster.status["kubeconfig"], "--cache-dir", str(tmp_path / "kc")]
    listing = {line.split()[0]: line.split() for line in run(*kc, "get", "svc").stdout.splitlines()}
    assert listing["web-lb"][1] == "LoadBalancer" and listing["web-lb"][3] == ip
    assert listing["web-lb"][4].startswith("80:") and listing["web-lb"][4].endswith("/TCP")
    assert listing["db"][1:5] == ["ExternalName", "<none>", "db.example.com", "<none>"]

    wait_until(lambda: (lambda ps: len(ps) == 3 and all(map(running_ready, ps)))(cluster.pods("app=lb-test")),
               timeout=120, what="3 ready test pods")

    def curl_from_host() -> str:
        res = subprocess.run(["curl", "-sS", "-m", "2", f"http://{ip}/hostname"],
                             capture_output=True, text=True, timeout=10)
        return res.stdout.strip() if res.returncode == 0 else ""
    names = {p["metadata"]["name"] for p in cluster.pods("app=lb-test")}
    assert wait_until(curl_from_host, timeout=60, what="curl to the load balancer from the host") in names
    assert {curl_from_host() for _ in range(30)} == names, "spread over every endpoint"

    wait_until(lambda: running_ready(json.loads(cluster.mkctl("get", "pod", "lb-client", "-o", "json").stdout)),
               timeout=60, what="client pod")
    out = cluster.mkctl("exec", "lb-client", "--", "dig", "+short", "db.default.svc.cluster.local").stdout
    assert out.split() == ["db.example.com."]
    out = cluster.mkctl("exec", "lb-client", "--", "dig", "db.default.svc.cluster.local", "AAAA").stdout
    assert "CNAME\tdb.example.com." in out and "status: NOERROR" in out

    # trace from the client pod: to the load balancer's address (DNAT on the pod's own node,
    # the endpoint conntrack recorded), and to a node port of the node the client is not on
    # (over the node network unchanged, then that node's KUBE-NODEPORTS, masquerade and DNAT)
    def traced(destination: str) -> dict:
        res = cluster.mkctl("trace", "lb-client", destination, "--probe", "-o", "json", check=False, timeout=60)
        return json.loads(res.stdout)
    to_lb = traced(f"{ip}:80")
    assert to_lb["ok"], to_lb["summary"]
    lines = [ln for step in to_lb["steps"] for ln in step["lines"] + step["rules"]]
    assert f"{ip} is the load-balancer address of Service default/web-lb" in lines
    assert any(f"-d {ip}/32" in ln and "loadbalancer IP" in ln for ln in lines), lines
    assert [e["pod"].split("/")[1] in names for e in to_lb["endpoints"] if e["probed"]] == [True]
    nodes = json.loads(cluster.mkctl("get", "nodes", "-o", "json").stdout)["items"]
    client_node = json.loads(cluster.mkctl("get", "pod", "lb-client", "-o", "json").stdout)["spec"]["nodeName"]
    other = next(n for n in nodes if n["metadata"]["name"] != client_node)
    other_ip = next(a["address"] for a in other["status"]["addresses"] if a["type"] == "InternalIP")
    node_port = json.loads(cluster.mkctl("get", "svc", "web-lb", "-o", "json").stdout)["spec"]["ports"][0]["nodePort"]
    to_node_port = traced(f"{other_ip}:{node_port}")
    assert to_node_port["ok"], to_node_port["summary"]
    titles = [step["title"] for step in to_node_port["steps"]]
    assert f"Over the node network to node {other['metadata']['name']}" in titles
    lines = [ln for step in to_node_port["steps"] for ln in step["lines"] + step["rules"]]
    assert any("-j KUBE-NODEPORTS" in ln for ln in lines) and any("KUBE-EXT-" in ln for ln in lines)
    assert any(ln.startswith(f"MASQUERADE: the source becomes node {other['metadata']['name']}'s address")
               for ln in lines), lines
    assert any(ln.startswith("probe: connected") for ln in lines), lines
    assert to_node_port["summary"].startswith("reaches pod default/lb-test-")

    # no longer a LoadBalancer: the address is released and no node answers for it any more
    cluster.mkctl("apply", "-f", str(path))  # unchanged: nothing moves
    assert ingress_ip() == ip
    run(*kc, "patch", "svc", "web-lb", "-p", '{"spec":{"type":"ClusterIP"}}')
    assert ingress_ip() is None
    wait_until(lambda: all(ip not in run("ip", "netns", "exec", n, "ip", "-4", "addr").stdout
                           for n in ("mce-node-1", "mce-node-2")), timeout=20, what="the address withdrawn")
