"""API server benchmark: what TLS, authentication and authorization cost on the API path, and
watch fan-out to 100 watchers. Prints figures; asserts nothing.

    .venv/bin/python -m bench.apiserver [--creates 2000] [--repeat 3] [--watchers 100] [--events 2000]
                                        [--client lean|aiohttp] [--variants abc] [--profile FILE]
                                        [--authorization-mode Node,RBAC]

Service creates/s, p50/p99 and the server's CPU time per create at 1, 16 and 64 clients, in one
run, on one etcd, for
  (a) `bench.plain_apiserver`: the server without its trust layers (plain HTTP, every request
      the admin, AlwaysAllow); handlers, registry, storage and etcd are the same code;
  (b) the real server over HTTPS as the admin (system:masters: allowed before any authorizer);
  (c) the real server over HTTPS as an ordinary user bound to the `edit` ClusterRole in the
      namespace by a RoleBinding (`--authorization-mode Node,RBAC`: RBAC decides every create);
next to raw etcd transactions/s of the same shape. One API server runs at a time (an idle one
would still decode every event of its watches): the plain server, then the real one, each over
an emptied etcd, their order swapped from one repeat to the next; each figure is the median of
the repeats. The clients' connections (and TLS handshakes) are made before the clock starts, as
a controller's long-lived connection is. `--profile FILE` runs the real server under cProfile
and writes its profile to FILE when it stops.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp

from bench.control_plane import start_apiserver
from bench.httpload import Connection
from cluster.etcd import EtcdProcess
from cluster.procs import die_with_parent, free_port, stop_process, wait_http_ok
from services.apiserver.storage.etcd import Etcd, absent, put

if TYPE_CHECKING:
    from tests.conftest import ApiServerProcess

ROOT = Path(__file__).resolve().parent.parent
NAMESPACE = "bench"
SVC = f"/api/v1/namespaces/{NAMESPACE}/services"
CLIENTS = (1, 16, 64)
EDITOR = "bench-editor"  # the ordinary user of (c), in no group but system:authenticated
VARIANTS = {
    "a": "(a) plain HTTP, no authn, AlwaysAllow",
    "b": "(b) HTTPS, admin (system:masters)",
    "c": "(c) HTTPS, user with edit (RBAC)",
}


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def cpu_seconds(pid: int, children: bool = False) -> float:
    """User + system CPU time of process `pid` so far (fields 14 and 15 of /proc/<pid>/stat);
    with `children`, also that of the children it has waited for (fields 16 and 17)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Target:
    """Where the load goes and who it is: the URL and, for https, the TLS context that
    verifies the server and presents the client's certificate; `pid` is the server's, whose
    CPU time per create is measured (it varies less with other load on the machine than
    creates/s do)."""
    url: str
    pid: int
    ssl: ssl.SSLContext | None = None


@dataclass(frozen=True)
class Run:
    rate: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float  # the server's CPU time per create


async def raw_etcd(endpoint: str, concurrency: int, total: int) -> float:
    """Transactions/s of the same shape as a create (key absent -> put), through aetcd."""
    etcd = Etcd([endpoint])
    value = json.dumps({"metadata": {"name": "x"}, "spec": {"ports": [{"port": 80}]}}).encode()
    counter = iter(range(total))
    run = time.time_ns()

    async def worker() -> None:
        for i in counter:
            key = f"/bench/raw/{run}/{i}"
            await etcd.txn_alone([absent(key)], [put(key, value)])

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - t0
    await etcd.close()
    return total / elapsed


def service(name: str) -> dict:
    return {"metadata": {"name": name}, "spec": {"ports": [{"port": 80}]}}


async def creates(target: Target, concurrency: int, total: int, tag: str, client: str = "lean") -> Run:
    if client == "aiohttp":
        return await creates_aiohttp(target, concurrency, total, tag)
    latencies: list[float] = []
    counter = iter(range(total))
    conns = [await Connection.open(target.url, ssl=target.ssl) for _ in range(concurrency)]

    async def worker(conn: Connection) -> None:
        for i in counter:
            t = time.perf_counter()
            status, answer = await conn.request("POST", SVC, service(f"b{tag}-{i}"))
            if status != 201:
                raise RuntimeError(f"create failed: {status} {answer[:300]!r}")
            latencies.append(time.perf_counter() - t)

    try:
        t0, cpu0 = time.perf_counter(), cpu_seconds(target.pid)
        await asyncio.gather(*(worker(c) for c in conns))
        elapsed, cpu = time.perf_counter() - t0, cpu_seconds(target.pid) - cpu0
    finally:
        for c in conns:
            await c.close()
    return Run(total / elapsed, pct(latencies, 0.5) * 1000, pct(latencies, 0.99) * 1000, cpu / total * 1000)


def session(target: Target) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=0, ssl=target.ssl if target.ssl is not None else True)
    return aiohttp.ClientSession(target.url, connector=connector)


async def creates_aiohttp(target: Target, concurrency: int, total: int, tag: str) -> Run:
    latencies: list[float] = []
    counter = iter(range(total))
    async with session(target) as s:
        async def worker() -> None:
            for i in counter:
                t = time.perf_counter()
                async with s.post(SVC, json=service(f"b{tag}-{i}")) as r:
                    await r.read()
                    if r.status != 201:
                        raise RuntimeError(f"create failed: {r.status} {await r.text()}")
                latencies.append(time.perf_counter() - t)

        t0, cpu0 = time.perf_counter(), cpu_seconds(target.pid)
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed, cpu = time.perf_counter() - t0, cpu_seconds(target.pid) - cpu0
    return Run(total / elapsed, pct(latencies, 0.5) * 1000, pct(latencies, 0.99) * 1000, cpu / total * 1000)


async def fanout(target: Target, watchers: int, events: int) -> tuple[float, int, int]:
    async with session(target) as s:
        async with s.get(SVC) as r:
            rv = (await r.json())["metadata"]["resourceVersion"]
        counts = [0] * watchers
        done = asyncio.Event()
        finished = 0
        last_event = [0.0]

        async def watch(i: int) -> None:
            nonlocal finished
            async with s.get(f"{SVC}?watch=true&resourceVersion={rv}&labelSelector=bench=fanout") as r:
                async for line in r.content:
                    if line.strip():
                        counts[i] += 1
                        if counts[i] == events:
                            finished += 1
                            last_event[0] = time.perf_counter()
                            if finished == watchers:
                                done.set()
                            return

        tasks = [asyncio.create_task(watch(i)) for i in range(watchers)]
        await asyncio.sleep(1.0)
        counter = iter(range(events))
        t0 = time.perf_counter()

        async def writer() -> None:
            for i in counter:
                body = {"metadata": {"name": f"fan-{i}", "labels": {"bench": "fanout"}},
                        "spec": {"ports": [{"port": 80}]}}
                async with s.post(SVC, json=body) as r:
                    await r.read()

        await asyncio.gather(*(writer() for _ in range(32)))
        try:
            await asyncio.wait_for(done.wait(), timeout=120)
        except TimeoutError:
            pass
        elapsed = (last_event[0] or time.perf_counter()) - t0
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    complete = sum(1 for c in counts if c == events)
    return sum(counts) / elapsed, complete, sum(counts)


# -- the servers -------------------------------------------------------------------------------

class PlainServer:
    """`python -m bench.plain_apiserver` on a free loopback port: variant (a)."""

    def __init__(self, etcd_endpoint: str, log_dir: Path) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        self.args = [sys.executable, "-m", "bench.plain_apiserver", "--etcd-servers", etcd_endpoint,
                     "--port", self.url.rsplit(":", 1)[1]]
        self.log_path = log_dir / "plain-apiserver.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> PlainServer:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(die_with_parent(self.args), cwd=ROOT, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        wait_http_ok(self.url + "/readyz", timeout=30, proc=self.proc, log_path=self.log_path)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)


def real_server(etcd_endpoint: str, log_dir: Path, args: argparse.Namespace) -> ApiServerProcess:
    """The API server as a cluster runs it (HTTPS, client certificates, Node,RBAC): (b), (c)."""
    from tests.conftest import ApiServerProcess

    server = ApiServerProcess([etcd_endpoint], log_path=log_dir / "apiserver.log",
                              extra=["--authorization-mode", args.authorization_mode])
    profile: Path | None = args.profile
    if profile is not None:
        assert server.args[1:3] == ["-m", "services.apiserver"], server.args
        server.args[1:1] = ["-m", "cProfile", "-o", str(profile)]
    return server.start()


async def post(target: Target, path: str, body: dict, expect: int = 201) -> tuple[int, bytes]:
    conn = await Connection.open(target.url, ssl=target.ssl)
    try:
        status, answer = await conn.request("POST", path, body)
    finally:
        await conn.close()
    if status != expect:
        raise RuntimeError(f"POST {path}: {status} {answer[:300]!r}, wanted {expect}")
    return status, answer


async def make_namespace(admin: Target) -> None:
    await post(admin, "/api/v1/namespaces", {"metadata": {"name": NAMESPACE}})


async def bind_editor(admin: Target, editor: Target) -> None:
    """The RoleBinding of (c), and proof that RBAC decides for the editor: a create in a
    namespace where nothing binds them is refused."""
    rbac = "rbac.authorization.k8s.io"
    await post(admin, f"/apis/{rbac}/v1/namespaces/{NAMESPACE}/rolebindings", {
        "metadata": {"name": "bench-editor"},
        "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": "edit"},
        "subjects": [{"apiGroup": rbac, "kind": "User", "name": EDITOR}]})
    await post(editor, "/api/v1/namespaces/default/services", service("refused"), expect=403)


Results = dict[str, dict[int, list[Run]]]


async def plain_phase(etcd: str, tmp: Path, args: argparse.Namespace, r: int, results: Results,
                      raws: dict[int, list[float]]) -> None:
    server = PlainServer(etcd, tmp).start()
    try:
        assert server.proc is not None
        target = Target(server.url, server.proc.pid)
        await make_namespace(target)
        for c in CLIENTS:
            raws[c].append(await raw_etcd(etcd, c, args.creates))
            results["a"][c].append(await creates(target, c, args.creates, f"a{c}r{r}", args.client))
    finally:
        server.stop()


def admin_target(server: ApiServerProcess) -> Target:
    assert server.proc is not None
    return Target(server.url, server.proc.pid, server.config.ssl_context())


def editor_target(server: ApiServerProcess) -> Target:
    assert server.proc is not None
    config = server.pki.config(server.url, server.pki.client(EDITOR))
    return Target(server.url, server.proc.pid, config.ssl_context())


async def real_phase(etcd: str, tmp: Path, args: argparse.Namespace, r: int, results: Results) -> None:
    server = real_server(etcd, tmp, args)
    try:
        admin, editor = admin_target(server), editor_target(server)
        await make_namespace(admin)
        if "c" in args.variants:
            await bind_editor(admin, editor)
        order = [(v, t) for v, t in (("b", admin), ("c", editor)) if v in args.variants]
        order = order if r % 2 == 0 else order[::-1]
        for c in CLIENTS:
            for variant, target in order:
                results[variant][c].append(await creates(target, c, args.creates, f"{variant}{c}r{r}",
                                                         args.client))
    finally:
        server.stop()


def report(results: Results, raws: dict[int, list[float]]) -> None:
    print(f"{'clients':>7}  {'':<40} {'creates/s':>8} {'[runs]':>13} {'vs (a)':>7} {'p50 ms':>7} "
          f"{'p99 ms':>7} {'server CPU ms/create':>21}")
    for c in CLIENTS:
        base = statistics.median(x.rate for x in results["a"][c]) if results["a"][c] else float("nan")
        for variant, label in VARIANTS.items():
            runs = results[variant][c]
            if not runs:
                continue
            rate = statistics.median(x.rate for x in runs)
            spread = f"[{min(x.rate for x in runs):.0f}-{max(x.rate for x in runs):.0f}]"
            print(f"{c:>7}  {label:<40} {rate:>8.0f} {spread:>13} {rate / base:>7.2f} "
                  f"{statistics.median(x.p50_ms for x in runs):>7.1f} "
                  f"{statistics.median(x.p99_ms for x in runs):>7.1f} "
                  f"{statistics.median(x.cpu_ms for x in runs):>21.3f}")
        raw = raws[c]
        if raw:
            print(f"{c:>7}  {'raw etcd txn/s (key absent -> put)':<40} {statistics.median(raw):>8.0f} "
                  f"{f'[{min(raw):.0f}-{max(raw):.0f}]':>13}")
    print("goal: (b) and (c) within 15% of (a), i.e. 'vs (a)' >= 0.85")


async def main(args: argparse.Namespace) -> None:
    from tests.conftest import wipe_etcd

    results: Results = defaultdict(lambda: defaultdict(list))
    raws: dict[int, list[float]] = defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp, EtcdProcess() as etcd:
        print(f"etcd {etcd.endpoint}; each API server a separate process; {args.creates} Service "
              f"creates per step, {args.client} HTTP client; medians of {args.repeat} runs")
        for r in range(args.repeat):
            phases = []
            if "a" in args.variants:
                phases.append(plain_phase(etcd.endpoint, Path(tmp), args, r, results, raws))
            if {"b", "c"} & set(args.variants):
                phases.append(real_phase(etcd.endpoint, Path(tmp), args, r, results))
            for phase in phases if r % 2 == 0 else reversed(phases):
                wipe_etcd(etcd.endpoint)
                await phase
        report(results, raws)
        if args.watchers:
            wipe_etcd(etcd.endpoint)
            server = start_apiserver(etcd.endpoint, Path(tmp))
            try:
                admin = admin_target(server)
                await make_namespace(admin)
                rate, complete, total = await fanout(admin, args.watchers, args.events)
            finally:
                server.stop()
            print(f"watch fan-out (b): {args.watchers} watchers x {args.events} events: "
                  f"{rate:.0f} events/s delivered, {complete}/{args.watchers} watchers got every event "
                  f"({total} deliveries)")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--creates", type=int, default=2000)
    p.add_argument("--repeat", type=int, default=3,
                   help="runs per step; medians are printed (this machine's figures vary by run)")
    p.add_argument("--watchers", type=int, default=100, help="0 skips the fan-out")
    p.add_argument("--events", type=int, default=2000)
    p.add_argument("--client", choices=("lean", "aiohttp"), default="lean",
                   help="load generator for the creates (see bench/httpload.py)")
    p.add_argument("--variants", default="abc", help="which of (a), (b), (c) to measure")
    p.add_argument("--authorization-mode", default="Node,RBAC",
                   help="the real server's (b, c); AlwaysAllow leaves only TLS and authentication")
    p.add_argument("--profile", type=Path, default=None,
                   help="run the real server under cProfile, its profile written here at each stop")
    sys.exit(asyncio.run(main(p.parse_args())))
