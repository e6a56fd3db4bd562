"""`cluster up` sets a kubectl context the way kind does: in the user's kubeconfig (here a HOME
of the test's own, holding another user's entries), so that kubectl and minikubectl reach the
cluster without any `export KUBECONFIG`; `cluster down` removes exactly it (conftest.py checks
that after the teardown). `cluster up` shows its steps as it goes."""
from __future__ import annotations

import json
import shutil
import stat

import pytest
import yaml

from tests.e2e.harness import NAME, Cluster, run

CONTEXT = f"minicluster-{NAME}"
NODES = ["node/mce-node-1", "node/mce-node-2"]


def test_cluster_up_shows_each_step_and_sets_the_context(cluster: Cluster):
    out = cluster.up_output.splitlines()
    for step in ("Creating PKI", "Starting etcd and the image registry", "Starting the API server",
                 "Starting controllers (10), DNS and the live picture",
                 "Starting nodes (2)", "Waiting for nodes to be Ready (2)"):
        assert f" • {step} ..." in out
        assert any(line.startswith(f" ✓ {step} (") and line.endswith("s)") for line in out), step
    assert f'Set kubectl context to "{CONTEXT}"' in out
    assert f"  kubectl cluster-info --context {CONTEXT}" in out
    doc = yaml.safe_load(cluster.user_kubeconfig.read_text())
    assert doc["current-context"] == CONTEXT
    assert [c["name"] for c in doc["contexts"]] == ["other", CONTEXT]
    assert [c["cluster"]["server"] for c in doc["clusters"]] == \
        ["https://192.0.2.1:6443", f"https://127.0.0.1:{cluster.api_port}"]
    assert stat.S_IMODE(cluster.user_kubeconfig.stat().st_mode) == 0o640, "the file keeps its mode"
    status = json.loads(cluster.cluster("status", "-o", "json").stdout)
    assert (status["context"], status["user_kubeconfig"]) == (CONTEXT, str(cluster.user_kubeconfig))


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_and_minikubectl_need_no_export(cluster: Cluster):
    env = cluster.user_env
    by_context = run("kubectl", "--context", CONTEXT, "get", "nodes", "-o", "name", env=env)
    assert sorted(by_context.stdout.split()) == NODES
    current = run("kubectl", "get", "nodes", "-o", "name", env=env)  # the current context is ours
    assert sorted(current.stdout.split()) == NODES
    mini = run(*cluster.mk, "get", "nodes", "-o", "name", env=env)
    assert sorted(mini.stdout.split()) == NODES


def test_cluster_kubeconfig_sets_the_context_elsewhere_or_prints_it(cluster: Cluster, tmp_path):
    other = tmp_path / "kubeconfig"
    res = cluster.cluster("kubeconfig", "--kubeconfig", str(other))
    assert res.stdout == f'Set kubectl context to "{CONTEXT}" in {other}\n'
    assert stat.S_IMODE(other.stat().st_mode) == 0o600
    mini = run(*cluster.mk, "--kubeconfig", str(other), "get", "nodes", "-o", "name", env=cluster.user_env)
    assert sorted(mini.stdout.split()) == NODES
    printed = yaml.safe_load(cluster.cluster("kubeconfig", "--print").stdout)
    assert printed == yaml.safe_load(other.read_text())
