"""Endpoints in a whole cluster: the real kubectl lists a Service's Endpoints as on a real
cluster, and a headless Service's pods (hostname + subdomain, as a StatefulSet makes them) are
found by their own names from inside a pod through the cluster DNS, the name of the Service
listing them all; a selectorless Service's Endpoints are mirrored into an EndpointSlice."""
from __future__ import annotations

import json

import yaml

from tests.e2e.harness import Cluster, run, running_ready, wait_until

RESOLVE = ("import socket, sys; "
           "print(' '.join(sorted(socket.gethostbyname_ex(sys.argv[1])[2])))")


def peer(i: int) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"peer-{i}", "namespace": "default", "labels": {"app": "peers"}},
            "spec": {"hostname": f"peer-{i}", "subdomain": "peers",
                     "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"],
                                     "ports": [{"name": "http", "containerPort": 8080}]}]}}


OBJECTS = [
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "peers", "namespace": "default"},
     "spec": {"clusterIP": "None", "selector": {"app": "peers"},
              "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}},
    peer(0), peer(1),
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "resolver", "namespace": "default"},
     "spec": {"containers": [{"name": "c", "image": "python:3.11", "command": ["sleep", "3600"]}]}},
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
                for name in ("peer-0", "peer-1", "resolver")]
        return {p["metadata"]["name"]: p["status"]["podIP"] for p in pods} if all(map(running_ready, pods)) else None
    ips = wait_until(pods_ready, timeout=120, what="the peers and the resolver running")

    def listed() -> str | None:
        out = run(*kc, "get", "endpoints", "peers").stdout
        return out if ips["peer-0"] in out and ips["peer-1"] in out else None
    header, row = wait_until(listed, timeout=30, what="kubectl get endpoints peers").splitlines()
    assert header.split() == ["NAME", "ENDPOINTS", "AGE"]
    name, endpoints, _age = row.split()
    assert name == "peers"
    assert sorted(endpoints.split(",")) == sorted(f"{ips[p]}:8080" for p in ("peer-0", "peer-1"))
    assert "endpoints/kubernetes" in run(*kc, "get", "ep", "-o", "name").stdout

    ep = json.loads(run(*kc, "get", "ep", "peers", "-o", "json").stdout)
    assert sorted(a["hostname"] for a in ep["subsets"][0]["addresses"]) == ["peer-0", "peer-1"]

    def resolve(name: str) -> str:
        return cluster.mkctl("exec", "resolver", "--", "python3", "-c", RESOLVE, name,
                             check=False).stdout.strip()
    assert wait_until(lambda: resolve("peer-0.peers.default.svc.cluster.local") == ips["peer-0"],
                      timeout=20, what="peer-0's own name")
    assert resolve("peer-1.peers.default.svc.cluster.local") == ips["peer-1"]
    assert resolve("peers.default.svc.cluster.local") == " ".join(sorted((ips["peer-0"], ips["peer-1"])))

    def mirrored() -> dict | None:
        items = json.loads(run(*kc, "get", "endpointslices", "-l", "kubernetes.io/service-name=ext",
                               "-o", "json").stdout)["items"]
        return items[0] if items else None
    slice_ = wait_until(mirrored, timeout=30, what="the mirrored slice of ext")
    assert slice_["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == \
        "endpointslicemirroring-controller.k8s.io"
    assert [e["addresses"] for e in slice_["endpoints"]] == [["192.0.2.10"]]
    # The e2e package shares the cluster. The endpoints controller deletes a Service's Endpoints when the
    # Service goes (kube's does too, selector or not), so "ext"'s Endpoints may be gone before kubectl asks.
    run(*kc, "delete", "-f", str(manifest), "--wait=false", "--ignore-not-found")
