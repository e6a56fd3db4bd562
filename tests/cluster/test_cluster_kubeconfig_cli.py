"""`minikubectl cluster kubeconfig [--print]` (and `python -m cluster kubeconfig`): the running
cluster's kubeconfig merged into the user's again, or printed, as `kind export kubeconfig` and
`kind get kubeconfig` do; run against a state directory as `cluster up` leaves it."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from cluster.cli import main as cluster_main
from cluster.config import ClusterConfig
from kubecore.client.config import write_kubeconfig
from minikubectl.main import main as minikubectl_main


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """A state directory of a cluster `dev` on port 16443 (its processes are not needed)."""
    cfg = ClusterConfig(name="dev", state_dir=tmp_path / "state", apiserver_port=16443)
    cfg.state_dir.mkdir()
    (tmp_path / "ca.crt").write_text("CA")
    write_kubeconfig(cfg.kubeconfig, name="dev", server="https://10.250.0.1:16443",
                     ca_file=tmp_path / "ca.crt", embed=True)
    cfg.state_file.write_text(json.dumps({"name": "dev", "status": "ready", "config": cfg.to_json()}))
    return cfg.state_dir


@pytest.fixture
def cli(monkeypatch, capsys):
    """Run `minikubectl cluster ...` (or `python -m cluster ...`) in this process with HOME set."""
    def run(*argv: str, home: Path, entry: str = "minikubectl") -> Result:
        monkeypatch.delenv("KUBECONFIG", raising=False)
        monkeypatch.setenv("HOME", str(home))
        code = minikubectl_main(["cluster", *argv]) if entry == "minikubectl" else cluster_main(list(argv))
        out, err = capsys.readouterr()
        return Result(code, out, err)
    return run


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.mark.parametrize("entry", ["minikubectl", "cluster"])
def test_print_shows_the_kubeconfig_as_the_host_uses_it(cli, state, tmp_path, entry):
    res = cli("kubeconfig", "--print", "--state-dir", str(state), home=tmp_path, entry=entry)
    assert res.returncode == 0, res.stderr
    doc = yaml.safe_load(res.stdout)
    assert doc["current-context"] == "minicluster-dev"
    assert doc["clusters"] == [{"name": "minicluster-dev", "cluster": {
        "server": "https://127.0.0.1:16443", "certificate-authority-data": "Q0E="}}]
    assert not (tmp_path / ".kube").exists(), "--print writes nothing"


def test_kubeconfig_merges_into_home_or_the_given_file(cli, state, tmp_path):
    res = cli("kubeconfig", "--state-dir", str(state), home=tmp_path)
    assert res.returncode == 0, res.stderr
    config = tmp_path / ".kube" / "config"
    assert res.stdout == f'Set kubectl context to "minicluster-dev" in {config}\n'
    assert yaml.safe_load(config.read_text())["current-context"] == "minicluster-dev"
    other = tmp_path / "elsewhere.yaml"
    res = cli("kubeconfig", "--state-dir", str(state), "--kubeconfig", str(other), home=tmp_path)
    assert res.returncode == 0, res.stderr
    assert [c["name"] for c in yaml.safe_load(other.read_text())["contexts"]] == ["minicluster-dev"]


@pytest.mark.parametrize(("setup", "message"), [
    ("no-state", "no cluster in"),
    ("corrupt-user-kubeconfig", "is not valid YAML"),
])
def test_kubeconfig_errors_are_one_line(cli, state, tmp_path, setup, message):
    if setup == "no-state":
        (state / "cluster.json").unlink()
    else:
        (tmp_path / ".kube").mkdir()
        (tmp_path / ".kube" / "config").write_text("{{{")
    res = cli("kubeconfig", "--state-dir", str(state), home=tmp_path)
    assert res.returncode == 1
    assert res.stderr.startswith("error: ") and res.stderr.count("\n") == 1 and message in res.stderr
    if setup != "no-state":
        assert (tmp_path / ".kube" / "config").read_text() == "{{{"
