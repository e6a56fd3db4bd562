import pytest

from minikubectl.errors import CliError
from minikubectl.kubeconfig import resolve_target

CONFIG = """
apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: c1
  cluster: {server: "http://127.0.0.1:7001"}
- name: c2
  cluster: {server: "http://127.0.0.1:7002"}
contexts:
- name: dev
  context: {cluster: c1, namespace: team}
- name: other
  context: {cluster: c2}
"""


def target(tmp_path, **kw):
    kw.setdefault("server", None)
    kw.setdefault("namespace", None)
    kw.setdefault("kubeconfig", None)
    kw.setdefault("context", None)
    kw.setdefault("env", {})
    return resolve_target(home=tmp_path, **kw)


def test_home_config_current_context(tmp_path):
    (tmp_path / ".kube").mkdir()
    (tmp_path / ".kube" / "config").write_text(CONFIG)
    t = target(tmp_path)
    assert (t.server, t.namespace, t.namespace_explicit) == ("http://127.0.0.1:7001", "team", False)


def test_flags_win(tmp_path):
    cfg = tmp_path / "cfg"
    cfg.write_text(CONFIG)
    t = target(tmp_path, kubeconfig=str(cfg), context="other", namespace="x")
    assert (t.server, t.namespace, t.namespace_explicit) == ("http://127.0.0.1:7002", "x", True)
    t = target(tmp_path, kubeconfig=str(cfg), server="127.0.0.1:9")
    assert (t.server, t.namespace) == ("http://127.0.0.1:9", "team")


def test_kubeconfig_env_merges_first_wins(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("current-context: other\n")
    b.write_text(CONFIG)
    t = target(tmp_path, env={"KUBECONFIG": f"{a}:{b}"})
    assert (t.server, t.namespace) == ("http://127.0.0.1:7002", "default")


def test_no_server_anywhere(tmp_path):
    with pytest.raises(CliError, match="no API server configured"):
        target(tmp_path)
    with pytest.raises(CliError, match="context was not found for specified context: nope"):
        (tmp_path / "cfg").write_text(CONFIG)
        target(tmp_path, kubeconfig=str(tmp_path / "cfg"), context="nope")
