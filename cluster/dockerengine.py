"""A Docker engine to run compose.yaml against: the one that answers already, else a private one.

A private engine is Debian's `dockerd` started with everything of its own under one temporary
directory (socket, data root, exec root, pid file, its containerd's state) and with the host
left alone: `--iptables=false --ip-forward=false --bridge=none`, so it writes no packet-filter
rule, never switches forwarding on and makes no default bridge. Compose's own networks are
Linux bridges in the root namespace that only carry traffic between the containers and the
host (forwarding stays off); published ports are served by the engine's userland proxy on
loopback.

`PrivateEngine.stop` ends only the dockerd it started (by PID), unmounts what is left under its
directory, removes the bridges of the networks it made and the directory. A run that died
before stopping leaves a record (`<cache>/private-engine.json`); the next `start` finishes that
teardown first, so a crash leaves nothing behind for long.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cluster import hoststate
from cluster.supervisor import _alive

log = logging.getLogger(__name__)

DEFAULT_CACHE = Path("/var/cache/minicluster")
# compose.yaml's service and pod ranges. Its node network is the compose network's bridge.
COMPOSE_RANGES = ("10.96.0.0/12", "10.244.0.0/16")


class EngineError(RuntimeError):
    pass


def answers(env: dict[str, str] | None = None, timeout: float = 10.0) -> bool:
    """Whether `docker version` reaches an engine with this environment (DOCKER_HOST...)."""
    if shutil.which("docker") is None:
        return False
    try:
        res = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], check=False, capture_output=True,
                             text=True, timeout=timeout, env={**os.environ, **(env or {})})
    except (OSError, subprocess.TimeoutExpired):
        return False
    return res.returncode == 0 and bool(res.stdout.strip())


@dataclass
class PrivateEngine:
    """A dockerd of our own. `env` is what a docker or compose client needs to reach it."""

    root: Path
    pid: int = 0

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def env(self) -> dict[str, str]:
        return {"DOCKER_HOST": f"unix://{self.socket}"}

    def argv(self) -> list[str]:
        return ["dockerd", "--host", f"unix://{self.socket}", "--data-root", str(self.root / "data"),
                "--exec-root", str(self.root / "exec"), "--pidfile", str(self.root / "dockerd.pid"),
                "--iptables=false", "--ip-forward=false", "--ip-masq=false", "--bridge=none",
                "--containerd-namespace", "minicluster", "--containerd-plugins-namespace", "minicluster-plugins",
                "--storage-driver", "overlay2", "--log-level", "warn"]

    # --- start -------------------------------------------------------------------------------

    @classmethod
    def start(cls, cache: Path = DEFAULT_CACHE, timeout: float = 60.0) -> PrivateEngine:
        if shutil.which("dockerd") is None:
            raise EngineError("no Docker engine answers and dockerd is not installed (Debian: docker.io)")
        cache.mkdir(parents=True, exist_ok=True)
        cleanup_after_crash(cache)
        engine = cls(root=Path(tempfile.mkdtemp(prefix="mc-dockerd-")))
        log_file = open(engine.root / "dockerd.log", "wb")
        proc = subprocess.Popen(engine.argv(), stdout=log_file, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        log_file.close()
        engine.pid = proc.pid
        engine._record(cache)
        deadline = time.monotonic() + timeout
        while not answers(engine.env, timeout=5):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = (engine.root / "dockerd.log").read_text(errors="replace").strip().splitlines()[-5:]
                engine.stop(cache)
                raise EngineError("the private dockerd did not start: " + " | ".join(tail))
            time.sleep(0.3)
        return engine

    def _record(self, cache: Path) -> None:
        (cache / "private-engine.json").write_text(json.dumps({"root": str(self.root), "pid": self.pid}))

    # --- stop --------------------------------------------------------------------------------

    def stop(self, cache: Path = DEFAULT_CACHE, timeout: float = 30.0) -> None:
        """End the dockerd we started and remove everything it leaves, its networks' bridges
        too (a dockerd that stops keeps them). Idempotent."""
        teardown(self.root, self.pid, timeout)
        record = cache / "private-engine.json"
        if record.exists() and json.loads(record.read_text() or "{}").get("root") == str(self.root):
            record.unlink()


def _is_our_dockerd(pid: int, root: Path) -> bool:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(cmd) and cmd[0].endswith(b"dockerd") and f"unix://{root}/docker.sock".encode() in cmd


def engine_bridges(env: dict[str, str], project: str | None = None) -> set[str]:
    """The Linux bridges (`br-` and 12 digits of the id) of an engine's bridge networks, or of
    one compose project's."""
    filters = ["--filter", "driver=bridge"]
    if project is not None:
        filters += ["--filter", f"label=com.docker.compose.project={project}"]
    try:
        res = subprocess.run(["docker", "network", "ls", "-q", "--no-trunc", *filters],
                             check=False, capture_output=True, text=True, timeout=20, env={**os.environ, **env})
    except (OSError, subprocess.TimeoutExpired):
        return set()
    return {f"br-{nid[:12]}" for nid in res.stdout.split()} if res.returncode == 0 else set()


def teardown(root: Path, pid: int, timeout: float = 30.0) -> None:
    """End our dockerd (asking it first which bridges its networks have: a dockerd that stops
    keeps them), unmount what is left under `root`, delete the bridges and `root`."""
    bridges: set[str] = set()
    if pid and _is_our_dockerd(pid, root):
        bridges = engine_bridges({"DOCKER_HOST": f"unix://{root}/docker.sock"})
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    hoststate.unmount_under(root)
    for bridge in sorted(bridges):
        if Path(f"/sys/class/net/{bridge}").exists():
            subprocess.run(["ip", "link", "del", bridge], check=False, capture_output=True)
    shutil.rmtree(root, ignore_errors=True)


def cleanup_after_crash(cache: Path = DEFAULT_CACHE) -> bool:
    """Finish the teardown of a private engine whose run died before stopping it."""
    record = cache / "private-engine.json"
    if not record.exists():
        return False
    try:
        data = json.loads(record.read_text())
        root = Path(data["root"])
    except (ValueError, KeyError, TypeError):
        record.unlink()
        return False
    if root.name.startswith("mc-dockerd-"):
        teardown(root, int(data.get("pid") or 0))
    record.unlink()
    return True


@contextlib.contextmanager
def ranges_blackholed(cidrs: tuple[str, ...] = COMPOSE_RANGES) -> Iterator[list[str]]:
    """While compose's containers run, the host blackholes the cluster's ranges (each one no
    route of the host has already), so nothing the host sends there leaves through its real
    interface; removes exactly the routes it added. Needs root."""
    added = []
    for cidr in cidrs:
        if subprocess.run(["ip", "route", "add", "blackhole", cidr], check=False, capture_output=True).returncode == 0:
            added.append(cidr)
    try:
        yield added
    finally:
        for cidr in added:
            subprocess.run(["ip", "route", "del", "blackhole", cidr], check=False, capture_output=True)
