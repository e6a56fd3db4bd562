"""Cluster DNS throughput against dnsmasq, measured with dnsperf over loopback.

    .venv/bin/python -m bench.dns_qps [--services 1000] [--duration 10]

Fills a RecordIndex with N ClusterIP services, serves it with DnsServer in this process, and
starts dnsmasq on another loopback port answering the same names from a hosts file. dnsperf
then runs against each in turn for a bounded time: first flat out (QPS), then at a fixed
offered load with per-query output to get p50/p99 latency. Prints figures; asserts nothing.
Only loopback traffic; dnsmasq is stopped by its PID at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from dnslib import DNSRecord

from cluster.procs import free_port
from services.dns import DnsServer, RecordIndex

LOOPBACK = "127.0.0.1"


@dataclass
class Run:
    qps: float = 0.0
    avg_ms: float = 0.0
    lost: int = 0
    completed: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None


def service_names(count: int) -> list[tuple[str, str, str]]:
    """(namespace, name, cluster IP) for ``count`` services over ten namespaces."""
    return [
        (f"ns-{i % 10}", f"svc-{i:05d}", f"10.96.{i // 250}.{i % 250 + 1}") for i in range(count)
    ]


def fill_index(services: list[tuple[str, str, str]]) -> RecordIndex:
    index = RecordIndex()
    for namespace, name, ip in services:
        index.upsert_service(
            {
                "metadata": {"namespace": namespace, "name": name},
                "spec": {
                    "clusterIP": ip,
                    "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
                },
            }
        )
    index.mark_synced()
    return index


async def ask(port: int, name: str) -> str | None:
    def exchange() -> str | None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(1.0)
            sock.sendto(DNSRecord.question(name).pack(), (LOOPBACK, port))
            try:
                reply = DNSRecord.parse(sock.recv(4096))
            except TimeoutError:
                return None
            return str(reply.rr[0].rdata) if reply.rr else None

    return await asyncio.to_thread(exchange)


async def dnsperf(port: int, queries: Path, args: argparse.Namespace, *, rate: int = 0) -> Run:
    command = [
        "dnsperf", "-s", LOOPBACK, "-p", str(port), "-d", str(queries),
        "-c", str(args.clients), "-q", str(args.outstanding),
    ]
    if rate:
        command += ["-l", str(args.latency_duration), "-Q", str(rate), "-v"]
    else:
        command += ["-l", str(max(1, args.duration // args.rounds))]
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    text = out.decode(errors="replace")

    def number(pattern: str) -> float:
        match = re.search(pattern, text)
        return float(match.group(1)) if match else 0.0

    run = Run(
        qps=number(r"Queries per second:\s+([\d.]+)"),
        avg_ms=number(r"Average Latency \(s\):\s+([\d.]+)") * 1000,
        lost=int(number(r"Queries lost:\s+(\d+)")),
        completed=int(number(r"Queries completed:\s+(\d+)")),
    )
    if rate:
        latencies = sorted(
            float(line.rsplit(None, 1)[1]) * 1000
            for line in text.splitlines()
            if line.startswith("> ")
        )
        if len(latencies) >= 100:
            cuts = statistics.quantiles(latencies, n=100)
            run.p50_ms, run.p99_ms = cuts[49], cuts[98]
    return run


async def start_dnsmasq(hosts: Path, workdir: Path) -> tuple[asyncio.subprocess.Process, int]:
    port = free_port(LOOPBACK, udp_too=True)
    proc = await asyncio.create_subprocess_exec(
        shutil.which("dnsmasq") or "/usr/sbin/dnsmasq",
        "--keep-in-foreground", "--conf-file=/dev/null", f"--port={port}",
        f"--listen-address={LOOPBACK}", "--bind-interfaces", "--no-resolv", "--no-hosts",
        f"--addn-hosts={hosts}", "--pid-file=", "--user=root", "--cache-size=10000",
        f"--log-facility={workdir / 'dnsmasq.log'}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return proc, port


async def wait_answering(port: int, name: str) -> str | None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        answer = await ask(port, name)
        if answer:
            return answer
        await asyncio.sleep(0.1)
    return None


async def churn_services(
    index: RecordIndex, services: list[tuple[str, str, str]], per_second: float
) -> None:
    """Re-upsert services at a steady rate; each drops that name's cached answers."""
    if per_second <= 0:
        return
    i = 0
    while True:
        namespace, name, ip = services[i % len(services)]
        index.upsert_service(
            {"metadata": {"namespace": namespace, "name": name}, "spec": {"clusterIP": ip}}
        )
        i += 1
        await asyncio.sleep(1 / per_second)


def merge(runs: list[Run]) -> Run:
    completed = sum(r.completed for r in runs)
    return Run(
        qps=statistics.fmean(r.qps for r in runs),
        avg_ms=sum(r.avg_ms * r.completed for r in runs) / completed if completed else 0.0,
        lost=sum(r.lost for r in runs),
        completed=completed,
    )


def fmt(value: float | None) -> str:
    return f"{value:8.3f}" if value is not None else "     n/a"


async def main(args: argparse.Namespace) -> None:
    for tool in ("dnsperf", "dnsmasq"):
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
            sys.exit(f"{tool} is not installed (make setup installs it)")
    services = service_names(args.services)
    names = [f"{name}.{ns}.svc.cluster.local" for ns, name, _ in services]
    index = fill_index(services)
    server = DnsServer(index)
    await server.start(LOOPBACK, 0)
    dnsmasq = None
    with tempfile.TemporaryDirectory(prefix="dns-bench-") as tmp:
        workdir = Path(tmp)
        queries = workdir / "queries.txt"
        queries.write_text("".join(f"{name} A\n" for name in names))
        hosts = workdir / "hosts"
        hosts.write_text("".join(f"{ip} {name}\n" for (_, _, ip), name in zip(services, names, strict=False)))
        try:
            dnsmasq, dnsmasq_port = await start_dnsmasq(hosts, workdir)
            ours_answer = await wait_answering(server.port, names[-1])
            theirs_answer = await wait_answering(dnsmasq_port, names[-1])
            print(f"services: {len(services)}; sample {names[-1]}: "
                  f"ours={ours_answer} dnsmasq={theirs_answer}")
            if ours_answer != theirs_answer or ours_answer is None:
                print("WARNING: the two servers do not give the same answer")
            if args.churn:
                print(f"churn: {args.churn:g} service updates/s during the QPS runs")
            print(f"dnsperf: {args.duration}s flat out per server in {args.rounds} interleaved "
                  f"rounds, {args.clients} client(s), {args.outstanding} outstanding; then "
                  f"{args.latency_duration}s at a fixed rate for latency percentiles")

            # Interleaved rounds, order flipped each round, so load from elsewhere on the
            # machine hits both servers alike.
            targets = {"minicluster": server.port, "dnsmasq": dnsmasq_port}
            rounds: dict[str, list[Run]] = {label: [] for label in targets}
            churn = asyncio.create_task(churn_services(index, services, args.churn))
            try:
                for round_no in range(args.rounds):
                    order = list(targets) if round_no % 2 == 0 else list(reversed(targets))
                    for label in order:
                        rounds[label].append(await dnsperf(targets[label], queries, args))
            finally:
                churn.cancel()
            results = {label: merge(runs) for label, runs in rounds.items()}
            rate = args.latency_rate or int(min(r.qps for r in results.values()) * 0.25)
            for label, port in targets.items():
                timed = await dnsperf(port, queries, args, rate=rate)
                results[label].p50_ms, results[label].p99_ms = timed.p50_ms, timed.p99_ms
        finally:
            if dnsmasq is not None and dnsmasq.returncode is None:
                dnsmasq.terminate()  # by PID: the process we started
                await dnsmasq.wait()
            await server.stop()

    print()
    for label, runs in rounds.items():
        print(f"{label:<12} QPS per round: " + ", ".join(f"{r.qps:.0f}" for r in runs))
    print(f"{'server':<12} {'QPS':>10} {'avg ms':>8} {'lost':>6}   at {rate} qps: "
          f"{'p50 ms':>8} {'p99 ms':>8}")
    for label, run in results.items():
        print(f"{label:<12} {run.qps:10.0f} {fmt(run.avg_ms)} {run.lost:6d}   "
              f"{'':>{len(str(rate)) + 9}}{fmt(run.p50_ms)} {fmt(run.p99_ms)}")
    ours, theirs = results["minicluster"].qps, results["dnsmasq"].qps
    ratio = ours / theirs if theirs else float("nan")
    print(f"\nratio minicluster/dnsmasq QPS: {ratio:.2f} (goal >= 0.50)")
    stats = server.stats
    total = stats.cache_hits + stats.cache_misses
    if total:
        share = stats.cache_hits / total
        print(f"minicluster response cache: {share:.4%} hits of {total} queries")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--duration", type=int, default=10, help="flat-out seconds per server")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--latency-duration", type=int, default=3)
    parser.add_argument(
        "--latency-rate", type=int, default=0, help="qps; 0: a quarter of the lower QPS"
    )
    parser.add_argument(
        "--churn", type=float, default=0, help="service updates per second during QPS runs"
    )
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--outstanding", type=int, default=100)
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
