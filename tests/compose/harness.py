"""Running a compose project for the tests: the compose client that is installed, the project
brought up with its files and taken down again leaving nothing (also when a test failed)."""
from __future__ import annotations

import contextlib
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

NODES = {"mc-node-1", "mc-node-2"}


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


@contextlib.contextmanager
def project_up(project: str, docker_env: dict[str, str], home: Path, files: tuple[str, ...] = ()
               ) -> Iterator[Compose]:
    """`compose up -d` of compose.yaml (with `files` over it) as project `project`, the user's
    HOME at `home`; yields once the kubeconfig is merged and both nodes are Ready; down -v
    after, and the node containers' pod cgroups removed."""
    env = {**docker_env, "COMPOSE_PROJECT_NAME": project, "HOME": str(home)}
    env.pop("KUBECONFIG", None)
    if files:  # compose's own variable: the files, in order, for every command
        env["COMPOSE_FILE"] = os.pathsep.join(("compose.yaml", *files))
    c = Compose(compose_argv(docker_env), env)
    c("down", "-v", "--remove-orphans", check=False)
    c.forwarding_before = forwarding()
    c("up", "-d")
    c.bridges = engine_bridges(c.env, project)
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


def assert_down_left_nothing(compose: Compose, project: str) -> None:
    """`down -v`, then nothing of `project` is left: containers, volumes, networks, bridges,
    routes, rules; forwarding in the root namespace as it was."""
    assert compose.bridges, "the compose networks are bridges on the host"
    compose("down", "-v", "--remove-orphans")
    label = f"label=com.docker.compose.project={project}"
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
