"""Chaos: a churn of Services, Deployments and their pods while a component of an HA cluster
is killed every few seconds, then the cluster's invariants. Prints figures; the suite's chaos
test (tests/e2e/test_second_cluster.py) runs the same code against its HA cluster and asserts.

    .venv/bin/python -m bench.chaos [--seconds 60] [--kill-every 4] [--clients 6]
        [--proxy-mode nftables] [--etcd-seconds 10]

Needs root. Starts its own cluster (`cluster up --ha --container-runtime process`, with
ranges and ports of its own) and takes it down after. Bounded: one minute of load by default,
at most a few dozen pods, loopback and the cluster's own namespaces only.

- Load: `--clients` writers, each creating a Service (every third a NodePort) and a one-pod
  Deployment behind it, relabelling and scaling them, and deleting them; every acknowledged
  write goes into a ledger. A probe reads from the API every 0.1 s.
- Chaos: every `--kill-every` seconds kill -9 one of: an etcd member, the leader of a
  controller, an API server, a node agent, a proxy, a DNS server; every fifth round instead
  SIGSTOP a controller's leader until its Lease has passed to another copy, then SIGCONT it:
  it must stop leading within the renew deadline. One fault at a time per kind: a kind is hit
  only once all its copies are healthy again (the HA control plane takes one loss of each).
- Then: no acknowledged write lost, no duplicate ClusterIP, NodePort or podCIDR; and, within
  a bound measured here, every Service's EndpointSlices equal its ready pods, every node's
  rules equal the Services and slices, both DNS servers answer every Service (and no deleted
  one), and no node keeps a pod network namespace or IP lease of a pod that is gone.
- Also: creates/s at 64 clients against an API server over 3 etcd members and over 1.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from cluster.components import Component, all_components
from cluster.config import ClusterConfig, load_state
from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.client.rest import ApiClient, ApiUnavailable, from_kubeconfig

ROOT = Path(__file__).resolve().parent.parent
NS = "chaos"
KILLED = ("etcd", "leader", "apiserver", "nodeagent", "proxy", "dns")


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] if values else float("nan")


# --- the cluster, as the chaos sees it ------------------------------------------------------

@dataclass
class Target:
    cfg: ClusterConfig
    components: dict[str, Component]

    @classmethod
    def from_state(cls, state_dir: Path) -> Target:
        state = load_state(state_dir)
        if not state or not state.get("config"):
            raise SystemExit(f"error: no cluster in {state_dir}")
        cfg = ClusterConfig.from_json(state["config"])
        return cls(cfg, {c.name: c for c in all_components(cfg)})

    def pid(self, name: str) -> int | None:
        state = load_state(self.cfg.state_dir) or {}
        return (state.get("components", {}).get(name) or {}).get("pid")

    def named(self, prefix: str) -> list[str]:
        return [n for n in self.components if n == prefix or n.startswith(prefix + "-")]

    def leases(self) -> dict[str, list[str]]:
        """Lease name -> the controller copies electing through it."""
        out: dict[str, list[str]] = {}
        for name, c in self.components.items():
            if "--leader-elect-resource-name" in c.argv:
                out.setdefault(c.argv[c.argv.index("--leader-elect-resource-name") + 1], []).append(name)
        return out

    def leading(self, name: str, lease: str) -> float | None:
        """leader_election_master_status of a controller copy (None: not answering)."""
        health = self.components[name].health or ""
        try:
            with urllib.request.urlopen(health.replace("/healthz", "/metrics"), timeout=1) as resp:
                text = resp.read().decode()
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith(f'leader_election_master_status{{name="{lease}"}}'):
                return float(line.rsplit(" ", 1)[1])
        return None

    def leader(self, lease: str) -> str | None:
        return next((n for n in self.leases()[lease] if self.leading(n, lease) == 1.0), None)

    def nodes(self) -> list[tuple[str, str]]:
        """(node name, its network namespace)."""
        return [(self.cfg.node_name(i), self.cfg.node_netns(i)) for i in range(1, self.cfg.nodes + 1)]


# --- load and its ledger --------------------------------------------------------------------

@dataclass
class Ledger:
    """What each acknowledged write promised: kind/name -> its last acknowledged state (a
    label value, or None for deleted). A write whose answer was lost makes the name unknown."""
    promised: dict[tuple[str, str], str | None] = field(default_factory=dict)
    unknown: set[tuple[str, str]] = field(default_factory=set)
    acked: int = 0
    refused: int = 0

    def ack(self, key: tuple[str, str], state: str | None) -> None:
        self.promised[key] = state
        self.unknown.discard(key)
        self.acked += 1

    def lost_answer(self, key: tuple[str, str]) -> None:
        self.unknown.add(key)
        self.refused += 1


def service(name: str, rev: str, node_port: bool) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": {"rev": rev}},
            "spec": {"type": "NodePort" if node_port else "ClusterIP", "selector": {"app": name},
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}}


def deployment(name: str, rev: str, replicas: int) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": {"rev": rev}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"terminationGracePeriodSeconds": 1,
                                           "containers": [{"name": "c", "image": "busybox",
                                                           "command": ["sleep", "3600"]}]}}}}


class Load:
    def __init__(self, api: ApiClient, clients: int, rng: random.Random) -> None:
        self.api, self.clients, self.rng = api, clients, rng
        self.ledger = Ledger()
        self.errors: list[str] = []
        self.stop = asyncio.Event()

    async def _write(self, key: tuple[str, str], state: str | None, call: Awaitable[object]) -> bool:
        """One write; its acknowledgement goes into the ledger. Never raises: an answer the
        churn cannot explain is recorded (`errors`) and reported as a problem."""
        try:
            await call
        except ApiUnavailable:
            self.ledger.lost_answer(key)  # sent, maybe applied: the outcome is unknown
            return False
        except ApiError as exc:
            if exc.code >= 500 or exc.code == 429:
                self.ledger.lost_answer(key)
                return False
            if exc.code == 404 and state is None:
                self.ledger.ack(key, None)  # gone already (an earlier unknown delete took)
                return True
            acked_present = self.ledger.promised.get(key) is not None and key not in self.ledger.unknown
            if exc.code == 404 and not acked_present:
                return False  # its create was refused or unanswered: there is nothing to change
            if exc.code == 409 and key in self.ledger.unknown:
                return False  # an earlier unanswered create took: still unknown
            self.errors.append(f"{key[0]} {key[1]}: {exc.code} {exc.message}")
            return False
        self.ledger.ack(key, state)
        return True

    async def worker(self, w: int) -> None:
        live: list[str] = []
        n = 0
        while not self.stop.is_set():
            roll = self.rng.random()
            if len(live) < 2 or (roll < 0.35 and len(live) < 4):
                name, n = f"w{w}-{n}", n + 1
                ok = await self._write(("Service", name), "0", self.api.create(
                    R.SERVICES, service(name, "0", node_port=n % 3 == 0), NS))
                await self._write(("Deployment", name), "0", self.api.create(
                    R.DEPLOYMENTS, deployment(name, "0", 1), NS))
                if ok:
                    live.append(name)
            elif roll < 0.7:
                name, rev = self.rng.choice(live), str(n)
                n += 1
                await self._write(("Service", name), rev, self.api.patch(
                    R.SERVICES, name, {"metadata": {"labels": {"rev": rev}}}, NS))
                await self._write(("Deployment", name), rev, self.api.patch(
                    R.DEPLOYMENTS, name, {"metadata": {"labels": {"rev": rev}},
                                          "spec": {"replicas": self.rng.choice((1, 2))}}, NS))
            else:
                name = live.pop(self.rng.randrange(len(live)))
                await self._write(("Deployment", name), None, self.api.delete(
                    R.DEPLOYMENTS, name, NS, propagation_policy="Background"))
                await self._write(("Service", name), None, self.api.delete(R.SERVICES, name, NS))
            await asyncio.sleep(self.rng.uniform(0.05, 0.3))

    async def run(self) -> None:
        await asyncio.gather(*(self.worker(w) for w in range(self.clients)))


class Probe:
    """A request to the API every 0.1 s (a read, or with `write` a ConfigMap patched), each
    given 2 s: when it failed and when it answered."""

    def __init__(self, api: ApiClient, *, write: bool = False) -> None:
        self.api, self.write = api, write
        self.samples: list[tuple[float, bool]] = []
        self.stop = asyncio.Event()

    async def _once(self, n: int) -> None:
        if not self.write:
            await self.api.get(R.NAMESPACES, "default")
            return
        body = {"metadata": {"name": "chaos-probe"}, "data": {"n": str(n)}}
        try:
            await self.api.patch(R.CONFIGMAPS, "chaos-probe", {"data": {"n": str(n)}}, NS)
        except ApiError as exc:
            if exc.code != 404:
                raise
            await self.api.create(R.CONFIGMAPS, body, NS)

    async def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            began = time.monotonic()
            n += 1
            try:
                await asyncio.wait_for(self._once(n), 2)
                ok = True
            except (ApiError, ApiUnavailable, TimeoutError):
                ok = False
            self.samples.append((began, ok))
            await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - began)))

    def outage_after(self, at: float, within: float = 10.0) -> float:
        """How long reads failed after `at`: from the first failure (within `within` s) to the
        next success; 0 if none failed."""
        failed = next((t for t, ok in self.samples if at <= t <= at + within and not ok), None)
        if failed is None:
            return 0.0
        back = next((t for t, ok in self.samples if t > failed and ok), None)
        return (back if back is not None else self.samples[-1][0]) - failed


# --- chaos --------------------------------------------------------------------------------

@dataclass
class Chaos:
    target: Target
    api: ApiClient
    rng: random.Random
    kills: list[tuple[float, str, str]] = field(default_factory=list)  # (time, category, component)
    failovers: list[float] = field(default_factory=list)  # seconds from a leader's loss to a new holder
    events: list[str] = field(default_factory=list)  # what happened when, for the report
    fencing: list[tuple[str, float | None]] = field(default_factory=list)  # paused leader, stepped down after
    problems: list[str] = field(default_factory=list)
    _pending: list[asyncio.Task] = field(default_factory=list)

    def _kill(self, name: str, sig: int = signal.SIGKILL) -> bool:
        pid = self.target.pid(name)
        if not pid:
            return False
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return False
        return True

    async def _holder(self, lease: str) -> str:
        obj = await self.api.get(R.LEASES, lease, "kube-system")
        return str((obj.get("spec") or {}).get("holderIdentity") or "")

    async def _new_holder(self, lease: str, old: str, since: float, timeout: float = 40.0) -> float | None:
        while time.monotonic() - since < timeout:
            with contextlib.suppress(ApiError, ApiUnavailable):
                holder = await self._holder(lease)
                if holder and holder != old:
                    return time.monotonic() - since
            await asyncio.sleep(0.2)
        return None

    async def _some_leader(self) -> tuple[str, str, str] | None:
        """(a Lease picked at random, the copy leading it, its holder identity)."""
        lease = self.rng.choice(sorted(self.target.leases()))
        leader = await asyncio.to_thread(self.target.leader, lease)
        if leader is None:
            return None
        return lease, leader, await self._holder(lease)

    async def kill_leader(self) -> None:
        picked = await self._some_leader()
        if picked is None:
            return
        lease, leader, old = picked
        at = time.monotonic()
        if self._kill(leader):
            self.kills.append((at, "leader", leader))
            took = await self._new_holder(lease, old, at)
            if took is None:
                self.problems.append(f"no new holder of Lease {lease} within 40s of killing {leader}")
            else:
                self.failovers.append(took)
                self.events.append(f"kill -9 of {leader}, leading {lease}: a new holder {took:.1f}s later")

    async def pause_leader(self) -> None:
        """SIGSTOP a leader until its Lease has passed to another copy, SIGCONT it: it must stop
        leading within the renew deadline."""
        picked = await self._some_leader()
        if picked is None:
            return
        lease, leader, old = picked
        at = time.monotonic()
        if not self._kill(leader, signal.SIGSTOP):
            return
        self.kills.append((at, "paused leader", leader))
        try:
            took = await self._new_holder(lease, old, at)
        finally:
            self._kill(leader, signal.SIGCONT)
        if took is None:
            self.problems.append(f"no new holder of Lease {lease} while {leader} was paused")
            return
        self.failovers.append(took)
        self.events.append(f"SIGSTOP of {leader}, leading {lease}: a new holder {took:.1f}s later")
        resumed = time.monotonic()
        while time.monotonic() - resumed < 12:
            if await asyncio.to_thread(self.target.leading, leader, lease) != 1.0:
                self.fencing.append((leader, time.monotonic() - resumed))
                return
            await asyncio.sleep(0.2)
        self.fencing.append((leader, None))
        self.problems.append(f"{leader} still leading {lease} 12s after it was resumed")

    def members(self, category: str) -> list[str]:
        t = self.target
        return {"etcd": t.named("etcd"), "apiserver": t.named("apiserver"), "dns": t.named("dns"),
                "nodeagent": [f"nodeagent-{n}" for n, _ in t.nodes()],
                "proxy": [f"proxy-{n}" for n, _ in t.nodes()]}[category]

    def healthy(self, names: list[str]) -> bool:
        """Every one of `names` answers its health check (those that have one)."""
        from cluster.supervisor import http_ok

        urls = [self.target.components[n].health for n in names]
        return all(http_ok(u, 1.0, str(self.target.cfg.ca_file)) for u in urls if u)

    def may_hit(self, category: str) -> bool:
        """One fault at a time per kind, as the control plane is built to take: a kind is hit
        only while all its copies are back (a second API server killed while the first still
        restarts would be two faults). Leaders: both copies of every controller up."""
        if category == "leader":
            return self.healthy([n for copies in self.target.leases().values() for n in copies])
        return self.healthy(self.members(category))

    def kill_one(self, category: str) -> None:
        name = self.rng.choice(self.members(category))
        at = time.monotonic()
        if self._kill(name):
            self.kills.append((at, category, name))

    async def run(self, stop: asyncio.Event, every: float) -> None:
        order: list[str] = []
        rounds = 0
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
            if stop.is_set():
                break
            rounds += 1
            if not order:
                order = list(KILLED)
                self.rng.shuffle(order)
            if rounds % 5 == 0:
                if await asyncio.to_thread(self.may_hit, "leader"):
                    self._pending.append(asyncio.create_task(self.pause_leader()))
                continue
            ready = [c for c in order if await asyncio.to_thread(self.may_hit, c)]
            if not ready:
                continue  # everything still recovering: skip a round
            category = ready[-1]
            order.remove(category)
            if category == "leader":
                self._pending.append(asyncio.create_task(self.kill_leader()))
            else:
                self.kill_one(category)
        await asyncio.gather(*self._pending, return_exceptions=True)


# --- invariants ---------------------------------------------------------------------------

def _sh(*argv: str) -> str:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=30).stdout


async def lost_writes(api: ApiClient, ledger: Ledger) -> list[str]:
    """Acknowledged writes the API does not show: a promised object missing or older, or a
    deleted one still there (not merely being deleted)."""
    found: dict[tuple[str, str], dict] = {}
    for kind, rt in (("Service", R.SERVICES), ("Deployment", R.DEPLOYMENTS)):
        for item in (await api.list(rt, NS))[0]:
            found[(kind, item["metadata"]["name"])] = item
    lost = []
    for key, state in ledger.promised.items():
        if key in ledger.unknown:
            continue
        obj = found.get(key)
        if state is None:
            if obj is not None and not obj["metadata"].get("deletionTimestamp"):
                lost.append(f"{key[0]} {key[1]}: deleted, yet still there")
        elif obj is None:
            lost.append(f"{key[0]} {key[1]}: acknowledged, yet missing")
        elif (obj["metadata"].get("labels") or {}).get("rev") != state:
            lost.append(f"{key[0]} {key[1]}: rev {obj['metadata'].get('labels')} after acknowledging {state}")
    return lost


async def duplicates(api: ApiClient) -> list[str]:
    services, _ = await api.list(R.SERVICES)
    nodes, _ = await api.list(R.NODES)
    out = []
    cluster_ips = [s["spec"].get("clusterIP") for s in services]
    for what, values in (
            ("ClusterIP", [ip for ip in cluster_ips if ip not in (None, "None")]),
            ("NodePort", [p["nodePort"] for s in services for p in s["spec"].get("ports") or () if p.get("nodePort")]),
            ("podCIDR", [n["spec"].get("podCIDR") for n in nodes if n["spec"].get("podCIDR")])):
        seen: set = set()
        for v in values:
            if v in seen:
                out.append(f"duplicate {what} {v}")
            seen.add(v)
    return out


def _ready(pod: dict) -> bool:
    return (not pod["metadata"].get("deletionTimestamp") and bool((pod.get("status") or {}).get("podIP"))
            and any(c.get("type") == "Ready" and c.get("status") == "True"
                    for c in (pod.get("status") or {}).get("conditions") or ()))


@dataclass
class Snapshot:
    services: list[dict]
    slices: list[dict]
    pods: list[dict]

    @classmethod
    async def take(cls, api: ApiClient) -> Snapshot:
        return cls((await api.list(R.SERVICES))[0], (await api.list(R.ENDPOINTSLICES))[0], (await api.list(R.PODS))[0])

    def slice_endpoints(self, namespace: str | None = None) -> dict[str, set[tuple[str, int]]]:
        """Service key -> the (ip, port) of its slices' ready endpoints."""
        out: dict[str, set[tuple[str, int]]] = {}
        for s in self.slices:
            owner = (s["metadata"].get("labels") or {}).get("kubernetes.io/service-name")
            if not owner or (namespace and s["metadata"]["namespace"] != namespace):
                continue
            key = f"{s['metadata']['namespace']}/{owner}"
            ports = [p.get("port") for p in s.get("ports") or ()]
            for e in s.get("endpoints") or ():
                if (e.get("conditions") or {}).get("ready"):
                    out.setdefault(key, set()).update((a, p) for a in e["addresses"] for p in ports if p)
        return out


def endpoints_match_ready_pods(snap: Snapshot) -> list[str]:
    slices = snap.slice_endpoints(NS)
    out = []
    for svc in snap.services:
        meta = svc["metadata"]
        if meta["namespace"] != NS or meta.get("deletionTimestamp"):
            continue
        sel = svc["spec"].get("selector") or {}
        want = {(p["status"]["podIP"], 8080) for p in snap.pods if p["metadata"]["namespace"] == NS and _ready(p)
                and all((p["metadata"].get("labels") or {}).get(k) == v for k, v in sel.items())}
        got = slices.get(f"{NS}/{meta['name']}", set())
        if got != want:
            out.append(f"{NS}/{meta['name']}: slices {sorted(got)}, ready pods {sorted(want)}")
    return out


_DNAT = re.compile(r"(?:dnat to|--to-destination) (\d+\.\d+\.\d+\.\d+):(\d+)")
_NFT_SVC = re.compile(r"(\d+\.\d+\.\d+\.\d+) \. tcp \. (\d+) : goto")
_IPT_SVC = re.compile(r"-A KUBE-SERVICES -d (\d+\.\d+\.\d+\.\d+)/32 -p tcp .*--dport (\d+) ")


def node_rules(netns: str, mode: str) -> tuple[set[tuple[str, int]], set[tuple[str, int]]]:
    """(Service addresses with rules, endpoint addresses DNATed to) in a node's packet filter."""
    if mode == "nftables":
        text = _sh("ip", "netns", "exec", netns, "nft", "list", "table", "ip", "kube-proxy")
        services = {(ip, int(p)) for ip, p in _NFT_SVC.findall(text)}
    else:
        text = _sh("ip", "netns", "exec", netns, "iptables-save", "-t", "nat")
        services = {(ip, int(p)) for ip, p in _IPT_SVC.findall(text)}
    return services, {(ip, int(p)) for ip, p in _DNAT.findall(text)}


def rules_match(target: Target, snap: Snapshot) -> list[str]:
    """Every node: the Services with ready endpoints have their rules, and the DNAT targets are
    exactly the ready endpoints of all slices."""
    endpoints = snap.slice_endpoints()
    want_services = {(s["spec"]["clusterIP"], p["port"]) for s in snap.services
                     if s["spec"].get("clusterIP") not in (None, "None")
                     and endpoints.get(f"{s['metadata']['namespace']}/{s['metadata']['name']}")
                     for p in s["spec"].get("ports") or () if p.get("protocol", "TCP") == "TCP"}
    want_dnat = set().union(*endpoints.values()) if endpoints else set()
    out = []
    for node, netns in target.nodes():
        services, dnat = node_rules(netns, target.cfg.proxy_mode)
        if services != want_services:
            out.append(f"{node}: rules for {len(services)} Service ports, {len(want_services)} expected; "
                       f"missing {sorted(want_services - services)[:3]}, extra {sorted(services - want_services)[:3]}")
        if dnat != want_dnat:
            out.append(f"{node}: DNAT to {len(dnat)} endpoints, {len(want_dnat)} expected; "
                       f"missing {sorted(want_dnat - dnat)[:3]}, extra {sorted(dnat - want_dnat)[:3]}")
    return out


def dns_answers(target: Target, snap: Snapshot, deleted: list[str]) -> list[str]:
    from dnslib import QTYPE, RCODE, DNSRecord

    out = []
    def ask(server: str, name: str) -> tuple[int, list[str]]:
        reply = DNSRecord.parse(DNSRecord.question(name, "A").send(server, target.cfg.dns_port, timeout=2))
        return reply.header.rcode, [str(r.rdata) for r in reply.rr if r.rtype == QTYPE.A]

    for server in target.cfg.dns_ips:
        for svc in snap.services:
            meta = svc["metadata"]
            if meta["namespace"] != NS:
                continue
            try:
                rcode, ips = ask(server, f"{meta['name']}.{NS}.svc.cluster.local")
            except OSError as exc:
                out.append(f"DNS {server}: {meta['name']}: {exc}")
                continue
            if ips != [svc["spec"]["clusterIP"]]:
                out.append(f"DNS {server}: {meta['name']} -> {ips} (rcode {rcode}), want {svc['spec']['clusterIP']}")
        for name in deleted:
            try:
                rcode, ips = ask(server, f"{name}.{NS}.svc.cluster.local")
            except OSError as exc:
                out.append(f"DNS {server}: {name}: {exc}")
                continue
            if rcode != RCODE.NXDOMAIN:
                out.append(f"DNS {server}: deleted {name} answers {ips} (rcode {rcode})")
    return out


def leaks(target: Target, snap: Snapshot) -> list[str]:
    """Per node: pod network namespaces and IP leases beyond the pods it runs."""
    from services.nodeagent.runtime import is_sandbox_netns_name

    names = _sh("ip", "netns", "list").split()
    out = []
    for node, _ in target.nodes():
        pods = [p for p in snap.pods if p["spec"].get("nodeName") == node and not p["spec"].get("hostNetwork")
                and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
        sandboxes = [n for n in names if is_sandbox_netns_name(node, n)]
        if len(sandboxes) > len(pods):
            out.append(f"{node}: {len(sandboxes)} pod network namespaces for {len(pods)} pods")
        pod_ips = {(p.get("status") or {}).get("podIP") for p in pods}
        ipam = target.cfg.node_dir(int(node.rsplit("-", 1)[1])) / "ipam"
        leased = set()
        for path in ipam.glob("*/*"):
            with contextlib.suppress(ValueError):
                leased.add(str(ipaddress.ip_address(path.name)))
        if leased - pod_ips:
            out.append(f"{node}: IP leases without a pod: {sorted(leased - pod_ips)}")
    return out


async def converge(check: Callable[[], Awaitable[list[str]]], timeout: float) -> tuple[float | None, list[str]]:
    """Seconds until `check` finds nothing (None and the last findings if it never does)."""
    began = time.monotonic()
    problems: list[str] = []
    while time.monotonic() - began < timeout:
        try:
            problems = await check()
        except (ApiError, ApiUnavailable) as exc:
            problems = [f"API: {exc}"]
        if not problems:
            return time.monotonic() - began, []
        await asyncio.sleep(1)
    return None, problems


# --- one run --------------------------------------------------------------------------------

@dataclass
class Report:
    seconds: float
    acknowledged: int
    refused: int
    lost: list[str]
    duplicates: list[str]
    kills: list[tuple[float, str, str]]
    failovers: list[float]
    fencing: list[tuple[str, float | None]]
    outages: dict[str, list[float]]
    converged_after: float | None
    unconverged: list[str]
    problems: list[str]
    events: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        by_kind: dict[str, int] = {}
        for _, kind, _ in self.kills:
            by_kind[kind] = by_kind.get(kind, 0) + 1
        lines = [
            f"chaos: {self.seconds:.0f}s of load, {len(self.kills)} components killed or paused "
            f"({', '.join(f'{k} {n}' for k, n in sorted(by_kind.items()))})",
            f"  operations acknowledged {self.acknowledged}, refused or unanswered {self.refused}, "
            f"lost {len(self.lost)}, duplicates {len(self.duplicates)}",
            f"  leader failovers observed {len(self.failovers)}: p50 {pct(self.failovers, 0.5):.1f}s "
            f"p99 {pct(self.failovers, 0.99):.1f}s (goal: under 15 + 2 s)",
        ]
        for leader, after in self.fencing:
            lines.append(f"  paused leader {leader}: " + (f"stopped leading {after:.1f}s after it was resumed"
                                                          if after is not None else "kept leading"))
        for key, values in sorted(self.outages.items()):
            what, kind = key.split(", ")
            lines.append(f"  API {what} failing after an {kind} was killed: max {max(values):.2f}s, "
                         f"p50 {pct(values, 0.5):.2f}s over {len(values)} kills (goal: under 2 s)")
        lines += [f"  {e}" for e in self.events]
        lines.append("  converged after the load: " + (f"{self.converged_after:.1f}s" if self.converged_after
                                                        is not None else "NOT within the bound"))
        lines += [f"  - {p}" for p in (self.lost + self.duplicates + self.unconverged + self.problems)[:20]]
        return lines


async def run(target: Target, *, seconds: float = 60, kill_every: float = 4, clients: int = 6,
              settle: float = 120, seed: int | None = None) -> Report:
    rng = random.Random(seed)
    async with from_kubeconfig(target.cfg.kubeconfig, timeout=10) as api, \
            from_kubeconfig(target.cfg.kubeconfig, timeout=5) as probe_api:
        with contextlib.suppress(ApiError):
            await api.create(R.NAMESPACES, {"metadata": {"name": NS}})
        load, probe, write_probe = Load(api, clients, rng), Probe(probe_api), Probe(probe_api, write=True)
        chaos = Chaos(target, api, rng)
        stop = asyncio.Event()
        tasks = [asyncio.create_task(load.run()), asyncio.create_task(probe.run()),
                 asyncio.create_task(chaos.run(stop, kill_every)), asyncio.create_task(write_probe.run())]
        began = time.monotonic()
        await asyncio.sleep(seconds)
        stop.set()
        load.stop.set()
        await asyncio.gather(tasks[0], tasks[2])
        probe.stop.set()
        write_probe.stop.set()
        await asyncio.gather(tasks[1], tasks[3])
        elapsed = time.monotonic() - began
        lost = await lost_writes(api, load.ledger)
        dups = await duplicates(api)
        deleted = [name for (kind, name), state in load.ledger.promised.items()
                   if kind == "Service" and state is None and (kind, name) not in load.ledger.unknown]

        async def settled() -> list[str]:
            snap = await Snapshot.take(api)
            found = endpoints_match_ready_pods(snap)
            found += await asyncio.to_thread(rules_match, target, snap)
            found += await asyncio.to_thread(dns_answers, target, snap, deleted[-20:])
            found += await asyncio.to_thread(leaks, target, snap)
            return found
        converged, unconverged = await converge(settled, settle)
        outages: dict[str, list[float]] = {}
        for at, kind, _ in chaos.kills:
            if kind in ("apiserver", "etcd"):
                outages.setdefault(f"reads, {kind}", []).append(probe.outage_after(at))
                outages.setdefault(f"writes, {kind}", []).append(write_probe.outage_after(at))
        return Report(elapsed, load.ledger.acked, load.ledger.refused, lost, dups, chaos.kills, chaos.failovers,
                      chaos.fencing, outages, converged, unconverged, chaos.problems + load.errors, chaos.events)


# --- creates/s with 3 etcd members against 1 ------------------------------------------------

async def creates_per_second(server_config, clients: int, seconds: float) -> float:
    count = 0
    deadline = time.monotonic() + seconds
    async with ApiClient(server_config, timeout=30) as api:
        async def one(w: int) -> None:
            nonlocal count
            i = 0
            while time.monotonic() < deadline:
                await api.create(R.CONFIGMAPS, {"metadata": {"name": f"c{w}-{i}"}, "data": {"x": "y"}}, "default")
                count += 1
                i += 1
        began = time.monotonic()
        await asyncio.gather(*(one(w) for w in range(clients)))
        return count / (time.monotonic() - began)


def etcd_members_figure(seconds: float, log_dir: Path) -> list[str]:
    from cluster.etcd import EtcdCluster, EtcdProcess
    from tests.conftest import ApiServerProcess

    lines = []
    for members in (1, 3):
        etcd: EtcdCluster | EtcdProcess = EtcdCluster(3) if members == 3 else EtcdProcess()
        for m in (etcd.members if isinstance(etcd, EtcdCluster) else [etcd]):
            m.extra_args = ["--unsafe-no-fsync=false"]  # a member's fsync is what a cluster costs
        etcd.start()
        endpoints = etcd.endpoints if isinstance(etcd, EtcdCluster) else [etcd.endpoint]
        server = ApiServerProcess(endpoints, log_path=log_dir / f"apiserver-{members}.log").start()
        try:
            rate = asyncio.run(creates_per_second(server.config, 64, seconds))
        finally:
            server.stop()
            etcd.stop()
        lines.append(f"creates/s at 64 clients, {members} etcd member{'s' if members > 1 else ''}: {rate:.0f}")
    return lines


# --- the command ------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.chaos")
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--kill-every", type=float, default=4)
    p.add_argument("--clients", type=int, default=6)
    p.add_argument("--proxy-mode", choices=("iptables", "nftables"), default="nftables")
    p.add_argument("--etcd-seconds", type=float, default=10, help="length of each creates/s run (0: skip)")
    p.add_argument("--seed", type=int)
    a = p.parse_args(argv)
    if os.geteuid() != 0:
        print("error: bench.chaos needs root (network namespaces)", file=sys.stderr)
        return 1
    from cluster.procs import free_ports_in_a_row

    tmp = Path(tempfile.mkdtemp(prefix="bench-chaos-"))
    state = tmp / "state"
    mk = [sys.executable, "-m", "minikubectl", "cluster"]
    where = ["--name", "mcch", "--state-dir", str(state)]
    etcd = free_ports_in_a_row(6)
    up = subprocess.run([*mk, "up", "--detach", *where, "--ha", "--container-runtime", "process",
                         "--proxy-mode", a.proxy_mode, "--node-cidr", "10.253.0.0/24",
                         "--cluster-cidr", "10.247.0.0/16", "--service-cidr", "10.144.0.0/12",
                         "--apiserver-port", str(free_ports_in_a_row(1)), "--etcd-port", str(etcd),
                         "--etcd-peer-port", str(etcd + 1), "--health-base-port", "23300", "--dns-port", "53",
                         "--kubeconfig", str(tmp / "user-kubeconfig")],
                        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    try:
        if up.returncode != 0:
            print(f"error: cluster up failed:\n{up.stdout}{up.stderr}", file=sys.stderr)
            return 1
        report = asyncio.run(run(Target.from_state(state), seconds=a.seconds, kill_every=a.kill_every,
                                 clients=a.clients, seed=a.seed))
        print("\n".join(report.lines()))
    finally:
        subprocess.run([*mk, "down", *where, "--kubeconfig", str(tmp / "user-kubeconfig")], cwd=ROOT,
                       capture_output=True, timeout=300, check=False)
    if a.etcd_seconds > 0:
        print("\n".join(etcd_members_figure(a.etcd_seconds, tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
