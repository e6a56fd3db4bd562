"""Runs the cluster's components as processes, restarts the ones that die, and records
their PIDs so that `down` can end them even after the launcher itself was killed.

Every process gets MINICLUSTER_NAME=<cluster> in its environment; `down` ends a
recorded PID only when that marker is still in /proc/<pid>/environ (PIDs are reused).
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from cluster.components import Component
from cluster.config import ClusterConfig
from cluster.procs import tls_context

log = logging.getLogger("cluster.supervisor")


class StartError(RuntimeError):
    """A component did not come up; the message names its log file."""
MARKER = "MINICLUSTER_NAME"


def marked(pid: int, name: str) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f"{MARKER}={name}".encode() in f.read().split(b"\0")
    except OSError:
        return False


def end_processes(pids: list[int], name: str | None, timeout: float = 10.0) -> list[int]:
    """SIGTERM, then SIGKILL after `timeout`; with `name`, only processes carrying our marker."""
    mine = [p for p in pids if p != os.getpid() and (name is None or marked(p, name))]
    for pid in mine:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    alive = list(mine)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if _alive(p)]
        time.sleep(0.05)
    for pid in alive:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return mine


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def http_ok(url: str, timeout: float = 1.0, cafile: str | None = None) -> bool:
    """Whether `url` answers 200 (an https URL verified against `cafile`)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=tls_context(cafile)) as r:
            return r.status == 200
    except Exception:
        return False


# --- an operator's say over restarts (`cluster etcd ...`) --------------------------------------
# `<state>/operator.json`: components the supervisor must not start again while an operator
# works on them ("held"), and flags to add to a component's next starts ("extra_args").

def operator_file(cfg: ClusterConfig) -> Path:
    return cfg.state_dir / "operator.json"


def read_operator(cfg: ClusterConfig) -> dict:
    try:
        doc = json.loads(operator_file(cfg).read_text())
    except (OSError, ValueError):
        return {"held": [], "extra_args": {}}
    return {"held": list(doc.get("held") or []), "extra_args": dict(doc.get("extra_args") or {})}


def write_operator(cfg: ClusterConfig, doc: dict) -> None:
    tmp = operator_file(cfg).with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2))
    tmp.replace(operator_file(cfg))


def hold(cfg: ClusterConfig, names: list[str], *, held: bool = True) -> None:
    doc = read_operator(cfg)
    doc["held"] = sorted(set(doc["held"]) | set(names)) if held else [n for n in doc["held"] if n not in names]
    write_operator(cfg, doc)


def set_extra_args(cfg: ClusterConfig, name: str, args: list[str]) -> None:
    doc = read_operator(cfg)
    doc["extra_args"][name] = list(args)
    write_operator(cfg, doc)


@dataclass
class Running:
    comp: Component
    proc: subprocess.Popen | None = None
    restarts: int = 0
    next_start: float = 0.0
    backoff: float = 1.0
    started_at: float = 0.0


@dataclass
class Supervisor:
    cfg: ClusterConfig
    components: list[Component]
    running: dict[str, Running] = field(default_factory=dict)
    stopping: bool = False
    extra_state: dict = field(default_factory=dict)

    def _argv(self, comp: Component) -> list[str]:
        argv = [*comp.argv, *read_operator(self.cfg)["extra_args"].get(comp.name, [])]
        if comp.netns:
            return ["nsenter", f"--net=/run/netns/{comp.netns}", "--", *argv]
        return argv

    def start(self, r: Running) -> None:
        self.cfg.log_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, MARKER: self.cfg.name, **dict(r.comp.env),
               "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        with open(self.cfg.log_dir / f"{r.comp.name}.log", "ab") as out:
            out.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting: "
                      f"{' '.join(self._argv(r.comp))}\n".encode())
            out.flush()
            r.proc = subprocess.Popen(self._argv(r.comp), stdout=out, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, env=env, start_new_session=True,
                                      cwd=str(Path(__file__).resolve().parent.parent))
        r.started_at = time.monotonic()
        self.save()

    def save(self, status: str = "running") -> None:
        state = {
            "name": self.cfg.name, "status": status, "supervisor_pid": os.getpid(),
            "config": self.cfg.to_json(),
            "components": {n: {"pid": r.proc.pid if r.proc else None, "restarts": r.restarts,
                               "netns": r.comp.netns, "health": r.comp.health,
                               "argv": list(r.comp.argv)}
                           for n, r in self.running.items()},
            **self.extra_state,
        }
        tmp = self.cfg.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.cfg.state_file)

    async def start_all(self, *, timeout: float = 120.0, on_stage=None, on_stage_start=None) -> None:
        """Start the components stage by stage, each stage once the one before is healthy;
        `on_stage_start(stage)` before a stage starts, `await on_stage(stage)` once it is up."""
        stages = sorted({c.stage for c in self.components})
        for stage in stages:
            if on_stage_start is not None:
                on_stage_start(stage)
            batch = [c for c in self.components if c.stage == stage]
            for comp in batch:
                r = self.running[comp.name] = Running(comp)
                self.start(r)
            deadline = time.monotonic() + timeout
            for comp in batch:
                if comp.health is None:
                    continue
                while not await asyncio.to_thread(http_ok, comp.health, 1.0, str(self.cfg.ca_file)):
                    r = self.running[comp.name]
                    if r.proc is not None and r.proc.poll() is not None:
                        raise StartError(f"{comp.name} exited with {r.proc.returncode} during start-up; "
                                           f"see {self.cfg.log_dir / (comp.name + '.log')}")
                    if time.monotonic() > deadline:
                        raise StartError(f"{comp.name} not healthy at {comp.health} after {timeout:.0f}s; "
                                         f"see {self.cfg.log_dir / (comp.name + '.log')}")
                    await asyncio.sleep(0.2)
            if on_stage is not None:
                await on_stage(stage)

    async def watch(self, tick=None) -> None:
        """Restart what dies, with back-off; call `tick()` every second or so."""
        ticking: asyncio.Task | None = None
        try:
            while not self.stopping:
                self._restart_dead(time.monotonic())
                if tick is not None and (ticking is None or ticking.done()):
                    # beside the restarts, never in their way (a tick may wait on the API)
                    ticking = asyncio.create_task(self._tick(tick))
                await asyncio.sleep(1.0)
        finally:
            if ticking is not None:
                ticking.cancel()

    def _restart_dead(self, now: float) -> None:
        held = set(read_operator(self.cfg)["held"])
        for r in self.running.values():
            if r.proc is None or r.proc.poll() is None:
                continue
            if r.comp.name in held:  # an operator works on it: not started until released
                r.next_start = 0.0
                continue
            if r.next_start == 0.0:
                if now - r.started_at > 60:
                    r.backoff = 1.0
                log.warning("%s exited with %s; restarting in %.0fs", r.comp.name,
                            r.proc.returncode, r.backoff)
                r.next_start = now + r.backoff
                r.backoff = min(r.backoff * 2, 30.0)
            elif now >= r.next_start:
                r.restarts += 1
                r.next_start = 0.0
                try:
                    self.start(r)
                except Exception as exc:
                    # (its program gone, no memory to fork): try again after the back-off
                    log.error("%s could not be restarted: %s; trying again in %.0fs",
                              r.comp.name, exc, r.backoff)
                    r.next_start = now + r.backoff
                    r.backoff = min(r.backoff * 2, 30.0)

    @staticmethod
    async def _tick(tick) -> None:
        try:
            await tick()
        except Exception as exc:  # keep supervising whatever a tick does
            log.warning("periodic task failed: %s", exc)

    def stop_all(self) -> None:
        self.stopping = True
        for stage in sorted({r.comp.stage for r in self.running.values()}, reverse=True):
            pids = [r.proc.pid for r in self.running.values()
                    if r.comp.stage == stage and r.proc is not None and r.proc.poll() is None]
            end_processes(pids, self.cfg.name)
            for r in self.running.values():
                if r.proc is not None and r.comp.stage == stage:
                    try:
                        r.proc.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        pass
