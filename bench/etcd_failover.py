"""How long writes stop when the etcd leader dies under load.

Three etcd members on loopback, one API server process (HTTPS, the test PKI) dialling a
follower first, `--clients` writers creating ConfigMaps as fast as they are answered, each
giving a write up after `--timeout` seconds and sending the next (a client that retries,
as the chaos benchmark's probe does). Each round kills the current etcd leader with
SIGKILL, measures, and brings the member back (the same data dir) before the next round.
Printed per round and as p50/max:

- write gap: the longest time without an acknowledged write, from a second before the
  kill on (the baseline gap under this load is printed too);
- first new write: from the kill to the first acknowledged write that was *sent* after it,
  by the writers and by an open-loop probe (a write every 0.1 s, whatever became of the
  last one): when the API server takes writes again;
- caught: how long the writes in flight at the kill took to be answered by the API server
  (the server's own wait, whatever the client gave up after): etcd answers a proposal its
  dead leader had taken only when its request timeout (7 s here) runs out;
- failed: writes answered with an error (5xx) or given up, around the kill.

    .venv/bin/python -m bench.etcd_failover --rounds 5 --clients 16
"""
from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from cluster.etcd import EtcdCluster
from cluster.etcdops import statuses
from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.client.rest import ApiClient, ApiUnavailable


@dataclass
class Writes:
    timeout: float
    done: list[tuple[float, float, bool]] = field(default_factory=list)  # (sent, answered, acked)
    caught: list[float] = field(default_factory=list)  # how long writes the client gave up on took
    probes: list[tuple[float, float, bool]] = field(default_factory=list)  # (sent, answered, acked)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    _late: set[asyncio.Task] = field(default_factory=set)

    async def writer(self, api: ApiClient, w: int) -> None:
        i = 0
        while not self.stop.is_set():
            i += 1
            sent = time.monotonic()
            write = asyncio.create_task(api.create(
                R.CONFIGMAPS, {"metadata": {"name": f"w{w}-{i}"}, "data": {"n": str(i)}}, "default"))
            done, _ = await asyncio.wait([write], timeout=self.timeout)
            ok = bool(done) and write.exception() is None
            if not done:  # given up; still timed, for how long the server held it
                self._late.add(write)
                write.add_done_callback(lambda t, sent=sent: self._answered_late(t, sent))
                write.add_done_callback(self._late.discard)
            elif not ok and not isinstance(write.exception(), (ApiError, ApiUnavailable)):
                raise write.exception()  # type: ignore[misc]
            self.done.append((sent, time.monotonic(), ok))
            if not ok:
                await asyncio.sleep(0.05)

    def _answered_late(self, write: asyncio.Task, sent: float) -> None:
        self.caught.append(time.monotonic() - sent)
        if not write.cancelled():
            write.exception()  # seen: an error answer is the expected end of a caught write

    async def probe(self, api: ApiClient) -> None:
        """A write sent every 0.1 s whatever became of the last one (open loop): when new
        writes are answered again, however long the old ones wait."""
        n = 0

        async def once(n: int) -> None:
            sent = time.monotonic()
            try:
                await api.create(R.CONFIGMAPS, {"metadata": {"name": f"probe-{n}"}}, "default")
                self.probes.append((sent, time.monotonic(), True))
            except (ApiError, ApiUnavailable):
                self.probes.append((sent, time.monotonic(), False))

        while not self.stop.is_set():
            n += 1
            task = asyncio.create_task(once(n))
            self._late.add(task)
            task.add_done_callback(self._late.discard)
            await asyncio.sleep(0.1)

    def first_probe(self, at: float) -> float | None:
        """From `at` to the first acknowledged probe sent after it."""
        answered = [t for s, t, ok in self.probes if ok and s >= at]
        return min(answered) - at if answered else None

    async def settle(self) -> None:
        if self._late:
            await asyncio.wait(self._late, timeout=15)

    def longest_gap(self, since: float, until: float) -> float:
        acks = sorted(t for _, t, ok in self.done if ok and since <= t <= until)
        if not acks:
            return until - since
        edges = [since, *acks, until]
        return max(b - a for a, b in zip(edges, edges[1:], strict=False))

    def first_new(self, at: float) -> float | None:
        answered = [t for s, t, ok in self.done if ok and s >= at]
        return min(answered) - at if answered else None

    def failed(self, since: float, until: float) -> int:
        return sum(1 for s, _, ok in self.done if not ok and since <= s <= until)


async def leader(cluster: EtcdCluster) -> int | None:
    for i, st in enumerate(await statuses(cluster.endpoints)):
        if st.leader and not st.error:
            return i
    return None


async def wait_for_leader(cluster: EtcdCluster, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await leader(cluster)
        if found is not None:
            return found
        await asyncio.sleep(0.2)
    raise RuntimeError("no etcd leader")


@dataclass
class Round:
    gap: float
    first_new: float | None
    first_probe: float | None
    failed: int
    caught: list[float]
    killed_dialled: bool  # the member killed was the one the API server dialled


async def one_round(cluster: EtcdCluster, writes: Writes, dialled: int) -> Round:
    victim = await wait_for_leader(cluster)
    await asyncio.sleep(3)  # steady load before the kill
    at = time.monotonic()
    pid = cluster.members[victim].pid
    assert pid is not None
    caught_before = len(writes.caught)
    os.kill(pid, signal.SIGKILL)
    await asyncio.sleep(12)
    r = Round(writes.longest_gap(at - 1, at + 12), writes.first_new(at), writes.first_probe(at),
              writes.failed(at - 1, at + 12), writes.caught[caught_before:], victim == dialled)
    await asyncio.to_thread(cluster.members[victim].restart)
    return r


async def run(rounds: int, clients: int, timeout: float, log_dir: Path) -> tuple[float, list[Round]]:
    from tests.conftest import ApiServerProcess

    with EtcdCluster(3) as cluster:
        first = await wait_for_leader(cluster)
        dialled = (first + 1) % 3  # a follower, so writes travel to the leader that dies
        order = [cluster.endpoints[dialled]] + [e for i, e in enumerate(cluster.endpoints) if i != dialled]
        server = await asyncio.to_thread(ApiServerProcess(order, log_path=log_dir / "apiserver.log").start)
        try:
            async with ApiClient(server.config, timeout=15) as api:
                writes = Writes(timeout)
                tasks = [asyncio.create_task(writes.writer(api, w)) for w in range(clients)]
                tasks.append(asyncio.create_task(writes.probe(api)))
                await asyncio.sleep(3)
                began = time.monotonic()
                await asyncio.sleep(3)
                baseline = writes.longest_gap(began, time.monotonic())
                results = [await one_round(cluster, writes, dialled) for _ in range(rounds)]
                writes.stop.set()
                await asyncio.gather(*tasks)
                await writes.settle()
        finally:
            server.stop()
    return baseline, results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.etcd_failover")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--timeout", type=float, default=2.0, help="seconds a writer waits for an answer")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-etcd-failover-") as d:
        baseline, results = asyncio.run(run(a.rounds, a.clients, a.timeout, Path(d)))
    print(f"etcd leader killed under {a.clients} writers giving up after {a.timeout:g} s, "
          f"{a.rounds} rounds (3 members)")
    print(f"  baseline longest gap between acks: {baseline * 1000:.0f} ms")
    for n, r in enumerate(results, 1):
        first = f"{r.first_new:.2f} s" if r.first_new is not None else "never"
        where = "the dialled member" if r.killed_dialled else "a follower's leader"
        caught = f"{len(r.caught)} caught, answered after {max(r.caught):.1f} s" if r.caught else "none caught"
        probe = f"{r.first_probe:.2f} s" if r.first_probe is not None else "never"
        print(f"  round {n} ({where}): write gap {r.gap:.2f} s, first new write {first} "
              f"(open-loop probe {probe}), "
              f"failed {r.failed}, {caught}")
    gaps = [r.gap for r in results]
    print(f"  write gap p50 {statistics.median(gaps):.2f} s, max {max(gaps):.2f} s")
    probes = [r.first_probe for r in results if r.first_probe is not None]
    if probes:
        print(f"  new writes answered again (probe) p50 {statistics.median(probes):.2f} s, "
              f"max {max(probes):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
