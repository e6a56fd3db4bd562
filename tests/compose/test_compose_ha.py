"""compose.ha.yaml over compose.yaml: three etcd members, two API servers, two DNS servers and
two copies of each controller come up; then the first API server, the first etcd member and
the first DNS server are stopped, and the cluster goes on through the others: clients fail
over, a new pod is scheduled and started, the second DNS server answers. `down -v` leaves
nothing."""
from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from cluster.compose import COMPOSE_APISERVER_IPS, COMPOSE_DNS_IPS
from tests.compose.harness import Compose, assert_down_left_nothing, project_up
from tests.e2e.harness import run, wait_until

PROJECT = "mc-compose-ha-test"
CONTROLLER_LEASES = {"endpointslice", "kube-scheduler", "deployments", "gc", "nodelifecycle", "serviceaccounts",
                     "statefulset", "daemonset", "loadbalancer", "jobs"}
DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: ha}
spec:
  replicas: 1
  selector: {matchLabels: {app: ha}}
  template:
    metadata: {labels: {app: ha}}
    spec:
      containers: [{name: c, image: busybox, command: [sleep, "3600"]}]
"""


@pytest.fixture(scope="module")
def compose(docker_env, project_image, ranges_blackholed, tmp_path_factory) -> Iterator[Compose]:
    with project_up(PROJECT, docker_env, tmp_path_factory.mktemp("home"), ("compose.ha.yaml",)) as c:
        yield c


def get_json(c: Compose, *args: str) -> dict:
    return json.loads(c.minikubectl("get", *args, "-o", "json").stdout)


def addresses(slices: dict) -> set[str]:
    return {a for s in slices["items"] for e in s.get("endpoints") or [] for a in e["addresses"]}


def test_every_piece_runs_twice_or_thrice(compose: Compose) -> None:
    # etcd's gRPC gateway (the image has curl, not etcdctl)
    members = compose("exec", "-T", "etcd", "curl", "-fsS", "-X", "POST", "-d", "{}",
                      "http://127.0.0.1:2379/v3/cluster/member/list").stdout
    peers = sorted(u for m in json.loads(members)["members"] for u in m["peerURLs"])
    assert peers == [f"https://etcd-{k}:2380" for k in (1, 2, 3)]

    def both_listed(name: str, namespace: str, want: set[str]):
        def check() -> bool:
            found = addresses(get_json(compose, "endpointslices", "-n", namespace, "-l",
                                       f"kubernetes.io/service-name={name}"))
            return found == want
        wait_until(check, 60, interval=1.0, what=f"{namespace}/{name} listing {sorted(want)}")
    both_listed("kubernetes", "default", set(COMPOSE_APISERVER_IPS))
    both_listed("kube-dns", "kube-system", set(COMPOSE_DNS_IPS))

    def all_held() -> bool:
        leases = get_json(compose, "leases", "-n", "kube-system")["items"]
        held = {lease["metadata"]["name"] for lease in leases if lease["spec"].get("holderIdentity")}
        return CONTROLLER_LEASES <= held
    wait_until(all_held, 90, interval=1.0, what="a leader for every controller's Lease")


def test_the_cluster_goes_on_without_the_first_api_server_etcd_member_and_dns(compose: Compose, tmp_path) -> None:
    compose("stop", "apiserver", "etcd", "dns")
    # kubectl, which reads one server only, goes through the load balancer the host's
    # kubeconfig names first (127.0.0.1:6445)
    assert "mc-node-1" in compose.kubectl("get", "nodes", "-o", "name").stdout
    # the host's kubeconfig lists both API servers too: minikubectl goes on through 127.0.0.1:6444
    manifest = tmp_path / "ha.yaml"
    manifest.write_text(DEPLOYMENT)
    compose.minikubectl("apply", "-f", str(manifest))

    def running() -> bool:
        pods = get_json(compose, "pods", "-l", "app=ha")["items"]
        return any(p["status"].get("phase") == "Running" for p in pods)
    # the deployment controller, the scheduler and a node agent, all through the second API server
    wait_until(running, 180, interval=1.0, what="the new pod Running")

    def answered() -> bool:
        dig = run("dig", f"@{COMPOSE_DNS_IPS[1]}", "kubernetes.default.svc.cluster.local", "+short",
                  "+time=2", "+tries=1", check=False)
        return dig.stdout.split() == ["10.96.0.1"]
    wait_until(answered, 30, interval=1.0, what="the second DNS server answering")

    def only_second_listed() -> bool:
        return addresses(get_json(compose, "endpointslices", "-n", "default", "-l",
                                  "kubernetes.io/service-name=kubernetes")) == {COMPOSE_APISERVER_IPS[1]}
    # a stopped API server removes its lease at once
    wait_until(only_second_listed, 30, interval=1.0, what="only the second API server listed")


def test_down_leaves_nothing(compose: Compose) -> None:
    assert_down_left_nothing(compose, PROJECT)
