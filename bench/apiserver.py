"""API server benchmark: Service creates/s and latency next to raw etcd transactions/s,
and watch fan-out to 100 watchers. Prints figures; asserts nothing.

    .venv/bin/python -m bench.apiserver [--creates 2000] [--repeat 3] [--watchers 100] [--events 2000]
                                        [--client lean|aiohttp]

Starts its own etcd and API server (as a separate process) on loopback and stops them.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.httpload import Connection
from cluster.etcd import EtcdProcess
from services.apiserver.storage.etcd import Etcd, absent, put

ROOT = Path(__file__).resolve().parent.parent
SVC = "/api/v1/namespaces/default/services"


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


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


async def creates(url: str, concurrency: int, total: int, tag: str,
                  client: str = "lean") -> tuple[float, float, float]:
    if client == "aiohttp":
        return await creates_aiohttp(url, concurrency, total, tag)
    latencies: list[float] = []
    counter = iter(range(total))
    conns = [await Connection.open(url) for _ in range(concurrency)]

    async def worker(conn: Connection) -> None:
        for i in counter:
            body = {"metadata": {"name": f"b{tag}-{i}"}, "spec": {"ports": [{"port": 80}]}}
            t = time.perf_counter()
            status, answer = await conn.request("POST", SVC, body)
            if status != 201:
                raise RuntimeError(f"create failed: {status} {answer[:300]!r}")
            latencies.append(time.perf_counter() - t)

    try:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in conns))
        elapsed = time.perf_counter() - t0
    finally:
        for c in conns:
            await c.close()
    return total / elapsed, pct(latencies, 0.5) * 1000, pct(latencies, 0.99) * 1000


async def creates_aiohttp(url: str, concurrency: int, total: int, tag: str) -> tuple[float, float, float]:
    latencies: list[float] = []
    counter = iter(range(total))
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(url, connector=conn) as s:
        async def worker() -> None:
            for i in counter:
                body = {"metadata": {"name": f"b{tag}-{i}"}, "spec": {"ports": [{"port": 80}]}}
                t = time.perf_counter()
                async with s.post(SVC, json=body) as r:
                    await r.read()
                    if r.status != 201:
                        raise RuntimeError(f"create failed: {r.status} {await r.text()}")
                latencies.append(time.perf_counter() - t)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return total / elapsed, pct(latencies, 0.5) * 1000, pct(latencies, 0.99) * 1000


async def fanout(url: str, watchers: int, events: int) -> tuple[float, int, int]:
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(url, connector=conn) as s:
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


async def main(args: argparse.Namespace) -> None:
    from tests.conftest import ApiServerProcess

    with tempfile.TemporaryDirectory() as tmp, EtcdProcess() as etcd:
        server = ApiServerProcess([etcd.endpoint], log_path=Path(tmp) / "apiserver.log").start()
        try:
            print(f"etcd {etcd.endpoint}, apiserver {server.url} (separate process), "
                  f"{args.creates} creates per step, {args.client} HTTP client")
            print(f"each figure is the median of {args.repeat} runs, raw etcd and API server "
                  f"alternating (the spread of the runs in brackets)")
            print(f"{'clients':>8} {'etcd txn/s':>22} {'creates/s':>22} {'ratio':>6} "
                  f"{'p50 ms':>7} {'p99 ms':>7}")
            for c in (1, 16, 64):
                raws, runs = [], []
                for r in range(args.repeat):
                    raws.append(await raw_etcd(etcd.endpoint, c, args.creates))
                    runs.append(await creates(server.url, c, args.creates, f"c{c}r{r}", args.client))
                raw, rate = statistics.median(raws), statistics.median(x[0] for x in runs)
                p50 = statistics.median(x[1] for x in runs)
                p99 = statistics.median(x[2] for x in runs)
                print(f"{c:>8} {raw:>6.0f} [{min(raws):>5.0f}-{max(raws):>5.0f}] "
                      f"{rate:>6.0f} [{min(x[0] for x in runs):>5.0f}-{max(x[0] for x in runs):>5.0f}] "
                      f"{rate / raw:>6.2f} {p50:>7.1f} {p99:>7.1f}")
            rate, complete, total = await fanout(server.url, args.watchers, args.events)
            print(f"watch fan-out: {args.watchers} watchers x {args.events} events: "
                  f"{rate:.0f} events/s delivered, {complete}/{args.watchers} watchers got every event "
                  f"({total} deliveries)")
        finally:
            server.stop()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--creates", type=int, default=2000)
    p.add_argument("--repeat", type=int, default=3,
                   help="runs per step; medians are printed (this machine's figures vary by run)")
    p.add_argument("--watchers", type=int, default=100)
    p.add_argument("--events", type=int, default=2000)
    p.add_argument("--client", choices=("lean", "aiohttp"), default="lean",
                   help="load generator for the creates (see bench/httpload.py)")
    sys.exit(asyncio.run(main(p.parse_args())))
