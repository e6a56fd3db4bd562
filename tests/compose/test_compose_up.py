"""`docker compose up`, then the seed walkthrough in it as a user runs it from the host, then
`docker compose down -v` leaving nothing: the three lines the README promises, verbatim.

Runs with Compose v2 (`docker compose`) where that plugin is installed, else with Debian's
docker-compose 1.29. The tests share one compose project and run in file order; the last one
takes it down (the fixture takes it down too if a test before failed)."""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.compose.harness import NODES, Compose, assert_down_left_nothing, project_up
from tests.e2e.harness import run, wait_until

ROOT = Path(__file__).resolve().parent.parent.parent
MANIFESTS = ROOT / "tests" / "e2e" / "manifests.yaml"  # the seed walkthrough's
PROJECT = "mc-compose-test"
DNS_ADDRESS = "10.250.0.5"


@pytest.fixture(scope="module")
def compose(docker_env, project_image, ranges_blackholed, tmp_path_factory) -> Iterator[Compose]:
    with project_up(PROJECT, docker_env, tmp_path_factory.mktemp("home")) as c:
        yield c


def test_the_kubeconfig_is_merged_so_kubectl_and_minikubectl_need_no_flags(compose: Compose) -> None:
    config = Path(compose.env["HOME"]) / ".kube" / "config"
    assert oct(config.stat().st_mode & 0o777) == "0o600"
    assert compose.kubectl("config", "current-context").stdout.strip() == "minicluster"
    assert "https://127.0.0.1:6443" in compose.kubectl("config", "view", "--minify").stdout
    names = compose.minikubectl("get", "nodes", "--no-headers").stdout.split()
    assert NODES <= set(names)


def test_the_seed_walkthrough_runs_in_compose(compose: Compose) -> None:
    compose.minikubectl("apply", "-f", str(MANIFESTS))

    def running() -> list[dict] | None:
        pods = json.loads(compose.kubectl("get", "pods", "-o", "json").stdout)["items"]
        ok = [p for p in pods if p["status"].get("phase") == "Running"
              and all(c.get("ready") for c in p["status"].get("containerStatuses") or [{}])]
        return pods if len(pods) == 4 and len(ok) == 4 else None
    pods = wait_until(running, 180, interval=1.0, what="the 3 test pods and the client Running and ready")
    assert {p["spec"]["nodeName"] for p in pods} == NODES, "pods on both node containers"
    test_pods = {p["metadata"]["name"] for p in pods if p["metadata"]["name"].startswith("test-")}

    cluster_ip = json.loads(compose.kubectl("get", "svc", "mysvc", "-o", "json").stdout)["spec"]["clusterIP"]
    # the README's line, verbatim, from a container on the compose network
    dig = compose("run", "--rm", "tools", "dig", "@dns", "mysvc.default.svc", "+short", timeout=120)
    assert dig.stdout.split()[-1] == cluster_ip
    # and from the host, at the DNS container's address on the compose network
    host_dig = run("dig", f"@{DNS_ADDRESS}", "mysvc.default.svc", "+short", "+time=3", "+tries=2")
    assert host_dig.stdout.split() == [cluster_ip]

    seen: set[str] = set()

    def all_answered() -> bool:
        res = compose.kubectl("exec", "client", "--", "curl", "-s", "--max-time", "5",
                              "mysvc.default.svc.cluster.local:8080/hostname", check=False)
        seen.add(res.stdout.strip())
        return test_pods <= seen
    wait_until(all_answered, 90, interval=0.2, what="every test pod answering through mysvc")

    listing = compose("exec", "-T", "node1", "iptables", "-t", "nat", "-L", "KUBE-SERVICES", "-n").stdout
    lines = listing.splitlines()
    assert lines[0] == "Chain KUBE-SERVICES (2 references)"
    assert lines[1].split() == ["target", "prot", "opt", "source", "destination"]
    svc_line = next(line for line in lines if "default/mysvc cluster IP" in line)
    assert svc_line.split()[0].startswith("KUBE-SVC-") and f" {cluster_ip} " in svc_line
    assert svc_line.endswith("tcp dpt:8080")
    assert "KUBE-NODEPORTS" in lines[-1]


def test_down_leaves_nothing(compose: Compose) -> None:
    assert_down_left_nothing(compose, PROJECT)
