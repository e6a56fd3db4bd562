"""What the end-to-end tests share: a real local cluster (`minikubectl cluster up`, two nodes
in network namespaces) driven from the host, the helpers that wait on it, and the check that
`cluster down` left nothing behind. One cluster serves every module of tests/e2e (the
package-scoped fixture in conftest.py); each test uses names of its own."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from cluster.procs import restartable_ports_in_a_row

ROOT = Path(__file__).resolve().parent.parent.parent
MANIFESTS = Path(__file__).resolve().parent / "manifests.yaml"  # the seed walkthrough's
NAME = "mce"
NODE_CIDR, CLUSTER_CIDR, SERVICE_CIDR = "10.251.0.0/24", "10.245.0.0/16", "10.112.0.0/12"


def run(*argv: str, check: bool = True, timeout: float = 60, env: dict | None = None) -> subprocess.CompletedProcess:
    res = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                         env={**os.environ, **(env or {})})
    if check and res.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} -> {res.returncode}\n{res.stdout}\n{res.stderr}")
    return res


def wait_until(fn, timeout: float = 60, interval: float = 0.5, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except AssertionError as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last: {last}")


# The kubeconfig `cluster up` sets the context in, with another user's entries in it first:
# `cluster down` must leave exactly these.
SEEDED_KUBECONFIG = {
    "apiVersion": "v1", "kind": "Config", "preferences": {},
    "clusters": [{"name": "other", "cluster": {"server": "https://192.0.2.1:6443"}}],
    "users": [{"name": "other", "user": {"token": "t"}}],
    "contexts": [{"name": "other", "context": {"cluster": "other", "user": "other"}}],
    "current-context": "other",
}


class Cluster:
    """The cluster's commands run with a HOME of their own, so that `cluster up` sets its
    kubectl context there and never in the real user's ~/.kube/config."""

    def __init__(self, state: Path, home: Path, *, name: str = NAME,
                 ranges: tuple[str, str, str] = (NODE_CIDR, CLUSTER_CIDR, SERVICE_CIDR),
                 health_base_port: int = 21300, extra_up_args: tuple[str, ...] = ()) -> None:
        self.state = state
        self.home = home
        self.name = name
        self.ranges = ranges
        self.health_base_port = health_base_port
        self.extra_up_args = extra_up_args
        # below the ephemeral range: the tests restart the API server and etcd members on them
        self.api_port = restartable_ports_in_a_row(7)
        self.etcd_port = self.api_port + 1  # client and peer ports of up to 3 members
        self.mk = [sys.executable, "-m", "minikubectl"]
        self.status: dict = {}
        self.up_output = ""

    @property
    def user_env(self) -> dict[str, str]:
        """HOME of our own; an empty KUBECONFIG is unset for kubectl and the launcher."""
        return {"HOME": str(self.home), "KUBECONFIG": ""}

    @property
    def user_kubeconfig(self) -> Path:
        return self.home / ".kube" / "config"

    def cluster(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return run(*self.mk, "cluster", *args, "--name", self.name, "--state-dir", str(self.state),
                   timeout=timeout, env=self.user_env)

    def up(self) -> None:
        self.user_kubeconfig.parent.mkdir(mode=0o700)
        self.user_kubeconfig.write_text(yaml.safe_dump(SEEDED_KUBECONFIG, sort_keys=False))
        self.user_kubeconfig.chmod(0o640)
        node_cidr, cluster_cidr, service_cidr = self.ranges
        self.up_output = self.cluster(
            "up", "--detach", "--nodes", "2", "--node-cidr", node_cidr, "--cluster-cidr", cluster_cidr,
            "--service-cidr", service_cidr, "--apiserver-port", str(self.api_port),
            "--etcd-port", str(self.etcd_port), "--etcd-peer-port", str(self.etcd_port + 1),
            "--health-base-port", str(self.health_base_port), "--dns-port", "53", *self.extra_up_args).stdout
        self.status = json.loads(self.cluster("status", "-o", "json").stdout)

    def mkctl(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        return run(*self.mk, "--kubeconfig", self.status["kubeconfig"], *args, check=check, timeout=timeout)

    def pods(self, selector: str) -> list[dict]:
        out = self.mkctl("get", "pods", "-l", selector, "-o", "json").stdout
        return json.loads(out)["items"]


def leftovers(name: str = NAME) -> list[str]:
    """What a cluster called `name` left behind (routes: any cluster's, so only when no
    other cluster runs)."""
    found = [f"netns {n}" for n in run("ip", "netns", "list").stdout.split() if name in n]
    found += [f"link {line.strip()}" for line in run("ip", "-o", "link").stdout.splitlines()
              if f"{name}-br0" in line or f" {name}v" in line]
    if name == NAME:
        found += [f"route {line}" for line in run("ip", "route", "show", "proto", "252").stdout.splitlines()]
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if f"MINICLUSTER_NAME={name}".encode() in env:
                found.append(f"process {pid}")
    return found


def running_ready(pod: dict) -> bool:
    st = pod.get("status") or {}
    return st.get("phase") == "Running" and bool(st.get("podIP")) and any(
        c["type"] == "Ready" and c["status"] == "True" for c in st.get("conditions") or [])


SERVING_APP = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: NAME, namespace: default}
spec:
  replicas: 3
  selector: {matchLabels: {app: NAME}}
  template:
    metadata: {labels: {app: NAME}}
    spec:
      containers:
        - name: web
          image: registry.k8s.io/e2e-test-images/agnhost:2.39
          args: ["netexec", "--http-port=8080"]
          readinessProbe: {httpGet: {path: /hostname, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: NAMEsvc, namespace: default}
spec: {selector: {app: NAME}, ports: [{port: 8080, targetPort: 8080}]}
---
apiVersion: v1
kind: Pod
metadata: {name: NAMEclient, namespace: default}
spec:
  containers: [{name: c, image: busybox, command: ["sleep", "3600"]}]
"""


def deploy_serving_app(cluster, directory: Path, name: str) -> tuple[Path, list[dict]]:
    """The seed's scenario under names of its own: Deployment `name` of three agnhost HTTP servers
    on 8080, Service `<name>svc`, a busybox pod `<name>client`; applied and waited for until all
    are ready. -> (the manifest, to delete it with; the three server pods)."""
    manifest = directory / f"{name}.yaml"
    manifest.write_text(SERVING_APP.replace("NAME", name))
    cluster.mkctl("apply", "-f", str(manifest))
    pods = wait_until(lambda: (lambda ps: ps if len(ps) == 3 and all(map(running_ready, ps)) else None)(
        cluster.pods(f"app={name}")), timeout=120, what=f"3 ready {name} pods")
    wait_until(lambda: running_ready(json.loads(cluster.mkctl("get", "pod", f"{name}client", "-o", "json").stdout)),
               timeout=60, what=f"{name}client")
    return manifest, pods
