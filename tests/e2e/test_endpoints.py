"""Endpoints in a whole cluster: the real kubectl lists a Service's Endpoints as on a real
cluster, and a headless Service's pods (hostname + subdomain, as a StatefulSet makes them) are
found by their own names from inside a pod through the cluster DNS, the name of the Service
listing them all; a selectorless Service's Endpoints are mirrored into an EndpointSlice."""
from __future__ import annotations

import json
import sys

import yaml

from tests.e2e.harness import Cluster, run, running_ready, wait_until

RESOLVE = ("import socket, sys; "
           "print(' '.join(sorted(socket.gethostbyname_ex(sys.argv[1])[2])))")


def peer(i: int) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"web-{i}", "namespace": "default", "labels": {"app": "peers"}},
            "spec": {"hostname": f"web-{i}", "subdomain": "web",
                     "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"],
                                     "ports": [{"name": "http", "containerPort": 8080}]}]}}


OBJECTS = [
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
     "spec": {"clusterIP": "None", "selector": {"app": "peers"},
              "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}},
    peer(0), peer(1),
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "resolver", "namespace": "default"},
     "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]}},
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext", "namespace": "default"},
     "spec": {"ports": [{"name": "pg", "port": 5432}]}},
    {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "ext", "namespace": "default"},
     "subsets": [{"addresses": [{"ip": "192.0.2.10"}], "ports": [{"name": "pg", "port": 5432}]}]},
]


def test_endpoints_listed_and_a_headless_service_s_pods_resolved_by_name(cluster: Cluster, tmp_path) -> None:
    kc = ["kubectl", "--kubeconfig", cluster.status["kubeconfig"], "--cache-dir", str(tmp_path / "kc")]
    manifest = tmp_path / "objs.yaml"
    manifest.write_text(yaml.safe_dump_all(OBJECTS))
    run(*kc, "apply", "-f", str(manifest))

    def pods_ready() -> dict[str, str] | None:
        pods = [json.loads(cluster.mkctl("get", "pod", name, "-o", "json").stdout)
                for name in ("web-0", "web-1", "resolver")]
        return {p["metadata"]["name"]: p["status"]["podIP"] for p in pods} if all(map(running_ready, pods)) else None
    ips = wait_until(pods_ready, timeout=120, what="the peers and the resolver running")

    def listed() -> str | None:
        out = run(*kc, "get", "endpoints", "web").stdout
        return out if ips["web-0"] in out and ips["web-1"] in out else None
    header, row = wait_until(listed, timeout=30, what="kubectl get endpoints web").splitlines()
    assert header.split() == ["NAME", "ENDPOINTS", "AGE"]
    name, endpoints, _age = row.split()
    assert name == "web"
    assert sorted(endpoints.split(",")) == sorted(f"{ips[p]}:8080" for p in ("web-0", "web-1"))
    assert "endpoints/kubernetes" in run(*kc, "get", "ep", "-o", "name").stdout

    ep = json.loads(run(*kc, "get", "ep", "web", "-o", "json").stdout)
    assert sorted(a["hostname"] for a in ep["subsets"][0]["addresses"]) == ["web-0", "web-1"]

    def resolve(name: str) -> str:
        return cluster.mkctl("exec", "resolver", "--", sys.executable, "-c", RESOLVE, name,
                             check=False).stdout.strip()
    assert wait_until(lambda: resolve("web-0.web.default.svc.cluster.local") == ips["web-0"],
                      timeout=20, what="web-0's own name")
    assert resolve("web-1.web.default.svc.cluster.local") == ips["web-1"]
    assert resolve("web.default.svc.cluster.local") == " ".join(sorted((ips["web-0"], ips["web-1"])))

    def mirrored() -> dict | None:
        items = json.loads(run(*kc, "get", "endpointslices", "-l", "kubernetes.io/service-name=ext",
                               "-o", "json").stdout)["items"]
        return items[0] if items else None
    slice_ = wait_until(mirrored, timeout=30, what="the mirrored slice of ext")
    assert slice_["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == \
        "endpointslicemirroring-controller.k8s.io"
    assert [e["addresses"] for e in slice_["endpoints"]] == [["192.0.2.10"]]
