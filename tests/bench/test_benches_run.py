"""The benchmarks run against the server as a cluster runs it (HTTPS only, client
certificates, Node,RBAC), each component as its own identity: each is run once with tiny
sizes and must finish and print its figures. They assert nothing themselves, so this is
what notices one that no longer starts (a plain-HTTP URL, a component without the
permissions it needs)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.etcd


@pytest.fixture
def run_bench(tmp_path):
    """Runs `python -m <argv>`; the logs a benchmark keeps go under the test's tmp_path."""
    def run(*argv: str, timeout: float = 240) -> str:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path)}
        proc = subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, capture_output=True,
                              text=True, timeout=timeout, env=env)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return proc.stdout
    return run


def test_apiserver_bench_measures_a_b_and_c_at_each_client_count(run_bench):
    out = run_bench("bench.apiserver", "--creates", "40", "--repeat", "1", "--watchers", "3",
                    "--events", "10")
    rows = [line.split() for line in out.splitlines() if line.split()[:1] in (["1"], ["16"], ["64"])]
    measured = {(row[0], row[1]) for row in rows}
    assert measured == {(c, v) for c in ("1", "16", "64") for v in ("(a)", "(b)", "(c)", "raw")}
    assert "3/3 watchers got every event" in out


@pytest.mark.parametrize(("argv", "expected"), [
    (("bench.dns_programming_latency", "--services", "5"), "services: 5,"),
    (("bench.endpointslice_latency", "--samples", "5", "--churn-pods", "5", "--churn-rate", "10"),
     "5 samples (0 not seen within 10s"),
    (("bench.scheduler_throughput", "--pods", "20", "--nodes", "2", "--workers", "4"), "20/20"),
    (("bench.statefulset_scale", "--replicas", "3", "--repeat", "1"), "StatefulSet OrderedReady"),
    (("bench.job_throughput", "--completions", "6", "--parallelism", "3"), "Deployment replicas=6"),
    (("bench.netview", "--pods", "3"), "new pod -> in the page's event stream (3 pods"),
], ids=["dns-programming", "endpointslice", "scheduler", "statefulset", "jobs", "netview"])
def test_control_plane_benches_finish(run_bench, argv, expected):
    assert expected in run_bench(*argv)


@pytest.mark.netns
@pytest.mark.parametrize(("argv", "expected"), [
    (("bench.proxy_programming_latency", "--intervals", "0.1", "--samples", "2"),
     "nftables mode, --min-sync-period 0.1"),
    (("bench.pod_startup", "--pods", "2", "--full", "0", "--concurrency", "2"), "all 2 in"),
    (("bench.image_pull", "--image", "busybox", "--rounds", "1"), "node puller (oci.registry -> oci.store)"),
    (("bench.trace", "--services", "20", "--repeat", "1"), "parse + trace (both nodes' tables)"),
    (("bench.proxy_modes", "--sizes", "20", "--iptables-max", "20", "--change-at", "20", "--repeat", "1",
      "--packet-sizes", "10", "--seconds", "0.3"), "10 Services  nftables:"),
    (("bench.network_programming_latency", "--samples", "3", "--churn-pods", "5", "--min-sync-periods", "0.1"),
     "nftables mode, --min-sync-period 0.1: pod Ready written -> DNAT on both nodes, 3 samples (0 not"),
], ids=["proxy-programming", "pod-startup", "image-pull", "trace", "proxy-modes", "network-programming"])
def test_node_benches_finish(run_bench, argv, expected):
    assert expected in run_bench(*argv)
