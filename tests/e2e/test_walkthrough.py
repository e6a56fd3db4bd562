"""The seed article's walkthrough in a real local cluster: a Deployment of three HTTP
servers and a Service, reached by name from a client pod on another node, through the
cluster DNS and the proxies' iptables rules. Everything is real: etcd, the API server,
controllers, node agents making pods through CNI, proxies programming iptables."""
from __future__ import annotations

import ipaddress
import json
import os
import stat
import subprocess
import time

from tests.e2e.harness import MANIFESTS, NAME, SERVICE_CIDR, run, running_ready, wait_until


def test_status_reports_nodes_and_healthy_components(cluster):
    st = cluster.status
    assert st["apiserver"].endswith(str(cluster.api_port))
    assert [n["name"] for n in st["nodes"]] == [f"{NAME}-node-1", f"{NAME}-node-2"]
    assert all(c["healthy"] for c in st["components"].values()), st["components"]


def test_seed_walkthrough(cluster):
    applied = cluster.mkctl("apply", "-f", str(MANIFESTS)).stdout
    assert "deployment.apps/test created" in applied and "service/mysvc created" in applied

    pods = wait_until(lambda: (lambda ps: ps if len(ps) == 3 and all(map(running_ready, ps)) else None)(
        cluster.pods("app=test")), timeout=120, what="3 ready test pods")
    nodes = {p["spec"]["nodeName"] for p in pods}
    assert nodes == {f"{NAME}-node-1", f"{NAME}-node-2"}, nodes
    wide = cluster.mkctl("get", "po", "-l", "app=test", "-o", "wide").stdout
    assert wide.count("Running") == 3 and all(p["status"]["podIP"] in wide for p in pods)

    svc = json.loads(cluster.mkctl("get", "svc", "mysvc", "-o", "json").stdout)
    cluster_ip = svc["spec"]["clusterIP"]
    dns_ip, dns_port = cluster.status["dns"].rsplit(":", 1)
    answer = run("dig", f"@{dns_ip}", "-p", dns_port, "+short", "mysvc.default.svc").stdout.split()
    assert answer == [cluster_ip]

    wait_until(lambda: running_ready(json.loads(cluster.mkctl("get", "pod", "client", "-o", "json").stdout)),
               timeout=60, what="client pod")
    names = {p["metadata"]["name"] for p in pods}

    # what happened to the client pod, as `kubectl describe` tells it
    def client_events() -> dict[str, list[str]]:
        section = cluster.mkctl("describe", "pod", "client").stdout.split("\nEvents:\n")[1]
        found = {line.split()[1]: line.split() for line in section.splitlines()[2:]}
        assert {"Scheduled", "Pulled", "Created", "Started"} <= set(found), section
        return found
    events = wait_until(client_events, timeout=20, what="the client pod's events")
    assert events["Scheduled"][3] == "default-scheduler" and events["Started"][3] == "kubelet"
    listed = cluster.mkctl("get", "events").stdout
    assert "ScalingReplicaSet" in listed and "deployment/test" in listed and "SuccessfulCreate" in listed

    def hostname_via_service() -> str:
        out = cluster.mkctl("exec", "client", "--", "curl", "-sS", "-m", "2",
                            "mysvc.default.svc.cluster.local:8080/hostname").stdout
        return out.strip()

    first = wait_until(hostname_via_service, timeout=30, what="curl through the service")
    assert first in names
    seen = {hostname_via_service() for _ in range(60)}
    assert seen == names

    # pod to pod across nodes without NAT: the server sees the client pod's own IP
    client = json.loads(cluster.mkctl("get", "pod", "client", "-o", "json").stdout)
    other = next(p for p in pods if p["spec"]["nodeName"] != client["spec"]["nodeName"])
    seen_ip = cluster.mkctl("exec", "client", "--", "curl", "-sS", "-m", "2",
                            f"{other['status']['podIP']}:8080/clientip").stdout.strip()
    assert seen_ip.rsplit(":", 1)[0] == client["status"]["podIP"]

    # the node's nat table reads as in the seed
    node_ns = client["spec"]["nodeName"]
    listing = run("ip", "netns", "exec", node_ns, "iptables", "-t", "nat", "-L", "KUBE-SERVICES", "-n").stdout
    assert "/* default/mysvc cluster IP */" in listing and cluster_ip in listing

    # a deleted backend leaves the rules within 2 s and is replaced
    victim = pods[0]
    ip = victim["status"]["podIP"]
    cluster.mkctl("delete", "pod", victim["metadata"]["name"])
    t0 = time.monotonic()
    wait_until(lambda: f"{ip}:8080" not in run("ip", "netns", "exec", node_ns, "iptables-save", "-t", "nat").stdout,
               timeout=10, interval=0.1, what="endpoint removed from rules")
    assert time.monotonic() - t0 < 2.5
    wait_until(lambda: (lambda ps: len(ps) == 3 and all(map(running_ready, ps)) and
                        victim["metadata"]["name"] not in {p["metadata"]["name"] for p in ps})(
        cluster.pods("app=test")), timeout=90, what="replacement pod")


def test_kubectl_against_the_same_cluster(cluster, tmp_path):
    kc = ["kubectl", "--kubeconfig", cluster.status["kubeconfig"], "--cache-dir", str(tmp_path / "kc")]
    out = run(*kc, "get", "svc,pods", "-o", "wide").stdout
    assert "CLUSTER-IP" in out and "kubernetes" in out
    extra = tmp_path / "svc.yaml"
    extra.write_text("apiVersion: v1\nkind: Service\nmetadata: {name: extra}\n"
                     "spec: {selector: {app: test}, ports: [{port: 9090, targetPort: 8080}]}\n")
    assert "service/extra created" in run(*kc, "apply", "-f", str(extra)).stdout


def test_secrets_are_encrypted_in_the_cluster_s_etcd(cluster, tmp_path):
    key_file = cluster.state / "encryption" / "encryption-config.yaml"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    kc = ["kubectl", "--kubeconfig", cluster.status["kubeconfig"], "--cache-dir", str(tmp_path / "kc")]
    run(*kc, "create", "secret", "generic", "e2e-secret", "--from-literal=password=hunter2-e2e")
    raw = subprocess.run(["etcdctl", "--endpoints", f"127.0.0.1:{cluster.etcd_port}", "get",
                          "/registry/secrets/default/e2e-secret", "--print-value-only"],
                         capture_output=True, check=True, env={**os.environ, "ETCDCTL_API": "3"}).stdout
    assert raw.startswith(b"k8s:enc:aesgcm:v1:key1:") and b"hunter2-e2e" not in raw
    out = run(*kc, "get", "secret", "e2e-secret", "-o", "jsonpath={.data.password}").stdout
    assert out == "aHVudGVyMi1lMmU="  # base64 of the plaintext: the API hands it back decrypted


def test_a_component_that_dies_is_restarted(cluster):
    st = json.loads(cluster.cluster("status", "-o", "json").stdout)
    dns = st["components"]["dns"]
    os.kill(dns["pid"], 9)

    def restarted():
        now = json.loads(cluster.cluster("status", "-o", "json").stdout)["components"]["dns"]
        return now if now["restarts"] >= dns["restarts"] + 1 and now["healthy"] else None

    now = wait_until(restarted, timeout=30, what="dns restarted by the supervisor")
    assert now["pid"] != dns["pid"]
    dns_ip, dns_port = cluster.status["dns"].rsplit(":", 1)
    answer = wait_until(run("dig", f"@{dns_ip}", "-p", dns_port, "+short",
                                    "kubernetes.default.svc.cluster.local").stdout.split, timeout=20,
                        what="dns answering again")
    assert answer == [str(ipaddress.IPv4Network(SERVICE_CIDR).network_address + 1)]
    log = (cluster.state / "logs" / "dns.log").read_text()
    assert log.count("starting:") >= 2
