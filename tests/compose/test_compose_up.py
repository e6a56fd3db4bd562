"""`docker compose up`, then the seed walkthrough in it as a user runs it from the host, then
`docker compose down -v` leaving nothing: the three lines the README promises, verbatim.

Runs with Compose v2 (`docker compose`) where that plugin is installed, else with Debian's
docker-compose 1.29. The tests share one compose project and run in file order; the last one
takes it down (the fixture takes it down too if a test before failed)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster import hoststate, launcher
from cluster.dockerengine import engine_bridges
from tests.e2e.harness import run, wait_until

ROOT = Path(__file__).resolve().parent.parent.parent
MANIFESTS = ROOT / "tests" / "e2e" / "manifests.yaml"  # the seed walkthrough's
PROJECT = "mc-compose-test"
NODES = {"mc-node-1", "mc-node-2"}
DNS_ADDRESS = "10.250.0.5"


def compose_argv(env: dict[str, str]) -> list[str]:
    v2 = subprocess.run(["docker", "compose", "version"], capture_output=True, env={**os.environ, **env})
    if v2.returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.skip("neither `docker compose` nor docker-compose is installed")


def forwarding() -> str:
    return Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()


class Compose:
    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.argv, self.env = argv, env
        self.bridges: set[str] = set()
        self.forwarding_before = ""

    def __call__(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        return run(*self.argv, *args, env=self.env, check=check, timeout=timeout)

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return run("kubectl", *args, env=self.env, check=check, timeout=60)

    def minikubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return run(sys.executable, "-m", "minikubectl", *args, env=self.env, check=check, timeout=60)


@pytest.fixture(scope="module")
def compose(docker_env, project_image, ranges_blackholed, tmp_path_factory) -> Iterator[Compose]:
    home = tmp_path_factory.mktemp("home")
    env = {**docker_env, "COMPOSE_PROJECT_NAME": PROJECT, "HOME": str(home)}
    env.pop("KUBECONFIG", None)
    c = Compose(compose_argv(docker_env), env)
    c("down", "-v", "--remove-orphans", check=False)
    c.forwarding_before = forwarding()
    c("up", "-d")
    c.bridges = engine_bridges(c.env, PROJECT)
    try:
        wait_until((home / ".kube" / "config").exists, 240, interval=1.0, what="the kubeconfig one-shot")
        wait_until(lambda: NODES <= ready_nodes(c), 240, interval=1.0, what="both nodes Ready")
        yield c
    finally:
        if c("ps", "-q", check=False).stdout.strip():
            c("down", "-v", "--remove-orphans", check=False)
        # the node containers' pod cgroups (the host's hierarchy; a later node agent of the same
        # name would remove them at its start)
        hoststate.remove_cgroups(sorted(NODES))


def ready_nodes(c: Compose) -> set[str]:
    res = c.kubectl("get", "nodes", "-o", "json", check=False)
    if res.returncode != 0:
        return set()
    return set(launcher.ready_nodes(json.loads(res.stdout)["items"]))


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
    assert compose.bridges, "the compose networks are bridges on the host"
    compose("down", "-v", "--remove-orphans")
    label = f"label=com.docker.compose.project={PROJECT}"
    for what in (["ps", "-aq"], ["volume", "ls", "-q"], ["network", "ls", "-q"]):
        left = run("docker", *what, "--filter", label, env=compose.env).stdout.split()
        assert left == [], f"docker {' '.join(what)} after down: {left}"
    links = run("ip", "-o", "link", "show").stdout
    assert not [b for b in compose.bridges if f" {b}:" in links], "a bridge of the project is left"
    routes = run("ip", "route", "show", "table", "all").stdout
    assert not [r for r in routes.splitlines() if "10.250.0." in r or any(b in r for b in compose.bridges)]
    rules = run("iptables-save").stdout
    assert not [r for r in rules.splitlines() if "10.250.0." in r or any(b in r for b in compose.bridges)]
    assert forwarding() == compose.forwarding_before, "forwarding in the root namespace changed"
