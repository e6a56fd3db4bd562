"""Cluster start-up: `docker compose up -d` to both nodes Ready with a warm image, next to
`minikubectl cluster up` (nodes as network namespaces) in the same run.

    .venv/bin/python -m bench.compose_up [--repeat 2]

Needs root. Uses the Docker engine that answers, else starts a private dockerd (its own socket
and data root, no iptables, no forwarding, no default bridge) and stops it afterwards. The
image is built first (its base made offline if it cannot be pulled; cached), so the compose
figure is a warm start: containers created and started, etcd, the PKI one-shot, the API
server, controllers and node agents up, both Nodes Ready, the kubeconfig merged. `cluster up`
runs with ranges and ports of its own, so it cannot meet a cluster the user has running.
Both are taken down after each round (`compose down -v`, `cluster down`), timed too.
Prints figures; asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cluster import dockerengine, hoststate, image
from cluster.launcher import ready_nodes
from cluster.procs import free_port

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "mc-compose-bench"
NODES = {"mc-node-1", "mc-node-2"}


def _run(argv: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False,
                          env={**os.environ, **env})


def _ready(kubectl: list[str], env: dict[str, str]) -> set[str]:
    res = _run([*kubectl, "get", "nodes", "-o", "json"], env, timeout=20)
    if res.returncode != 0:
        return set()
    return set(ready_nodes(json.loads(res.stdout)["items"]))


def _wait(fn: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not fn():
        if time.monotonic() > deadline:
            raise SystemExit(f"error: {what} not reached in {timeout:.0f}s")
        time.sleep(0.25)


def compose_round(compose: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(up -> both nodes Ready, down -v) in seconds."""
    home = Path(env["HOME"])
    start = time.monotonic()
    res = _run([*compose, "up", "-d"], env)
    if res.returncode != 0:
        raise SystemExit(f"error: compose up: {res.stderr.strip().splitlines()[-1:]}")
    _wait((home / ".kube" / "config").exists, 300, "the kubeconfig")
    _wait(lambda: NODES <= _ready(["kubectl"], env), 300, "both nodes Ready")
    up = time.monotonic() - start
    start = time.monotonic()
    _run([*compose, "down", "-v", "--remove-orphans"], env)
    return up, time.monotonic() - start


def cluster_round(state: Path, env: dict[str, str]) -> tuple[float, float]:
    mk = [sys.executable, "-m", "minikubectl", "cluster"]
    common = ["--name", "mcb", "--state-dir", str(state)]
    start = time.monotonic()
    res = _run([*mk, "up", "--detach", *common, "--nodes", "2", "--node-cidr", "10.252.0.0/24",
                "--cluster-cidr", "10.246.0.0/16", "--service-cidr", "10.128.0.0/12",
                "--apiserver-port", str(free_port()), "--etcd-port", str(free_port()),
                "--etcd-peer-port", str(free_port()), "--health-base-port", "22300", "--dns-port", "53"], env)
    if res.returncode != 0:
        raise SystemExit(f"error: cluster up: {(res.stderr or res.stdout).strip().splitlines()[-1:]}")
    up = time.monotonic() - start  # `up --detach` returns once every node is Ready
    start = time.monotonic()
    _run([*mk, "down", *common], env)
    return up, time.monotonic() - start


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.compose_up")
    p.add_argument("--repeat", type=int, default=2)
    a = p.parse_args(argv)
    if os.geteuid() != 0:
        print("error: needs root (a private dockerd, network namespaces)", file=sys.stderr)
        return 1
    engine = None if dockerengine.answers() else dockerengine.PrivateEngine.start()
    env = dict(engine.env) if engine else {}
    home = Path(tempfile.mkdtemp(prefix="mc-bench-home-"))
    try:
        base = image.ensure_base(env=env)
        build = image.build(env=env)
        print(f"image: base {base}; minicluster:dev built in {build:.1f}s (cached layers reused)")
        v2 = _run(["docker", "compose", "version"], env).returncode == 0
        compose = ["docker", "compose"] if v2 else ["docker-compose"]
        cenv = {**env, "COMPOSE_PROJECT_NAME": PROJECT, "HOME": str(home / "compose")}
        kenv = {"HOME": str(home / "local")}
        ups: dict[str, list[float]] = {"compose": [], "cluster": []}
        downs: dict[str, list[float]] = {"compose": [], "cluster": []}
        with dockerengine.ranges_blackholed():
            try:
                for i in range(a.repeat):
                    up, down = compose_round(compose, cenv)
                    ups["compose"].append(up)
                    downs["compose"].append(down)
                    up, down = cluster_round(home / f"state{i}", kenv)
                    ups["cluster"].append(up)
                    downs["cluster"].append(down)
            finally:  # what a failed round left up, and the node containers' pod cgroups
                _run([*compose, "down", "-v", "--remove-orphans"], cenv)
                hoststate.remove_cgroups(sorted(NODES))
                for i in range(a.repeat):
                    _run([sys.executable, "-m", "minikubectl", "cluster", "down", "--name", "mcb",
                          "--state-dir", str(home / f"state{i}")], kenv)
        print(f"{'':<34}{'up -> 2 nodes Ready (s)':>26}{'down (s)':>12}")
        labels = {"compose": f"{' '.join(compose)} up -d (warm image)", "cluster": "minikubectl cluster up"}
        for key, label in labels.items():
            runs = ", ".join(f"{x:.1f}" for x in ups[key])
            print(f"{label:<34}{statistics.median(ups[key]):>10.1f}  ({runs}){statistics.median(downs[key]):>12.1f}")
    finally:
        if engine:
            engine.stop()
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
