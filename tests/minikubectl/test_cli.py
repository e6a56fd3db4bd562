"""minikubectl as users run it: a subprocess against a real API server process."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from cluster.procs import free_port, stop_process
from tests.conftest import SessionPki

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"

SVC = """apiVersion: v1
kind: Service
metadata:
  name: mysvc
  labels: {app: web}
spec:
  selector: {app: web}
  ports:
  - name: http
    port: 80
    targetPort: 8080
"""
NS_AND_POD = """apiVersion: v1
kind: Namespace
metadata: {name: team}
---
apiVersion: v1
kind: Pod
metadata: {name: p1, namespace: team, labels: {app: db}}
spec:
  containers: [{name: c, image: nginx}]
"""


class Cli:
    """minikubectl with a kubeconfig for the server (`--kubeconfig`), or (`server=False`) with
    only what the environment gives."""

    def __init__(self, kubeconfig: Path, home: Path) -> None:
        self.kubeconfig = kubeconfig
        self.home = home
        self.env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        self.env.update(HOME=str(home), PYTHONPATH=str(ROOT))

    def argv(self, args: tuple[str, ...], server: bool) -> list[str]:
        return [sys.executable, "-m", "minikubectl",
                *(["--kubeconfig", str(self.kubeconfig)] if server else []), *args]

    def __call__(self, *args: str, stdin: str | None = None, server: bool = True,
                 ok: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run(self.argv(args, server), input=stdin, capture_output=True, text=True,
                              cwd=self.home, env={**self.env, **(env or {})}, timeout=60)
        if ok:
            assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
        else:
            assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
            assert "Traceback" not in proc.stderr
            assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        return proc

    def json(self, *args: str) -> dict:
        return json.loads(self(*args, "-o", "json").stdout)


@pytest.fixture
def cli(apiserver_process, tmp_path) -> Cli:
    return Cli(apiserver_process.kubeconfig(tmp_path / "admin.kubeconfig"), tmp_path)


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_apply_created_configured_unchanged(cli, tmp_path):
    f = write(tmp_path / "svc.yaml", SVC)
    assert cli("apply", "-f", f).stdout == "service/mysvc created\n"
    assert cli("apply", "-f", f).stdout == "service/mysvc unchanged\n"
    write(tmp_path / "svc.yaml", SVC.replace("port: 80", "port: 81").replace("  labels: {app: web}\n", ""))
    assert cli("apply", "-f", f).stdout == "service/mysvc configured\n"
    svc = cli.json("get", "svc", "mysvc")
    assert [(p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == [(81, 8080)]
    assert "labels" not in svc["metadata"]
    assert svc["spec"]["clusterIP"].startswith("10.96.")
    applied = json.loads(svc["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert applied["spec"]["ports"][0]["port"] == 81


def test_apply_multi_doc_directory_and_stdin(cli, tmp_path):
    d = tmp_path / "manifests"
    d.mkdir()
    write(d / "a.yaml", NS_AND_POD)
    write(d / "b.json", json.dumps({"apiVersion": "v1", "kind": "Service",
                                    "metadata": {"name": "fromjson", "namespace": "team"},
                                    "spec": {"ports": [{"port": 53, "protocol": "UDP"}]}}))
    out = cli("apply", "-f", str(d)).stdout
    assert out == "namespace/team created\npod/p1 created\nservice/fromjson created\n"
    out = cli("apply", "-f", "-", stdin=SVC + "---\n" + NS_AND_POD).stdout
    assert out == "service/mysvc created\nnamespace/team unchanged\npod/p1 unchanged\n"


def test_get_formats_selector_and_all_namespaces(cli, tmp_path):
    cli("apply", "-f", write(tmp_path / "all.yaml", SVC + "---\n" + NS_AND_POD))
    table = cli("get", "svc").stdout.splitlines()
    assert table[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert set(rows) == {"kubernetes", "mysvc"}
    assert rows["mysvc"][1:5] == ["ClusterIP", cli.json("get", "svc", "mysvc")["spec"]["clusterIP"],
                                  "<none>", "80/TCP"]
    assert rows["mysvc"][5].endswith("s")
    assert cli("get", "services", "-l", "app=web", "-o", "name").stdout == "service/mysvc\n"
    assert cli("get", "svc", "mysvc", "-o", "yaml").stdout.startswith("apiVersion: v1\nkind: Service\n")
    lst = cli.json("get", "svc")
    assert lst["kind"] == "List" and {i["metadata"]["name"] for i in lst["items"]} == {"kubernetes", "mysvc"}
    wide = cli("get", "po", "-n", "team", "-o", "wide").stdout.splitlines()
    assert wide[0].split()[:7] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    assert wide[1].split()[:4] == ["p1", "0/1", "Pending", "0"]
    everywhere = cli("get", "po,svc", "-A").stdout
    assert "NAMESPACE   NAME" in everywhere
    assert any(line.split()[:2] == ["team", "pod/p1"] for line in everywhere.splitlines())
    assert any(line.split()[:2] == ["default", "service/mysvc"] for line in everywhere.splitlines())
    empty = cli("get", "po", "-l", "app=none")
    assert empty.stdout == "" and empty.stderr == "No resources found in default namespace.\n"
    ns = cli("get", "ns").stdout.splitlines()
    assert ns[0].split() == ["NAME", "STATUS", "AGE"]
    assert ["team", "Active"] == next(line.split()[:2] for line in ns if line.startswith("team "))


def test_kubeconfig_server_and_namespace(cli, tmp_path):
    admin = yaml.safe_load(cli.kubeconfig.read_text())
    cluster, user = admin["clusters"][0]["cluster"], admin["users"][0]["user"]
    (tmp_path / ".kube").mkdir()
    write(tmp_path / ".kube" / "config", yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "local",
        "clusters": [{"name": "c", "cluster": cluster}], "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "local", "context": {"cluster": "c", "user": "u", "namespace": "team"}}]}))
    cli("apply", "-f", write(tmp_path / "p.yaml", NS_AND_POD), server=False)
    assert cli("get", "pods", "-o", "name", server=False).stdout == "pod/p1\n"
    other = write(tmp_path / "other-config", yaml.safe_dump({
        "current-context": "x", "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": user}], "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}]}))
    out = cli("get", "svc", "-o", "name", server=False, env={"KUBECONFIG": other}).stdout
    assert out == "service/kubernetes\n"


def test_describe_service_with_endpoint_slice(cli, tmp_path):
    cli("apply", "-f", write(tmp_path / "svc.yaml", SVC))
    slice_ = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
              "metadata": {"name": "mysvc-abc", "labels": {"kubernetes.io/service-name": "mysvc"}},
              "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
              "endpoints": [{"addresses": ["10.244.1.5"], "conditions": {"ready": True}},
                            {"addresses": ["10.244.2.7"], "conditions": {"ready": True}}]}
    assert cli("create", "-f", "-", stdin=json.dumps(slice_)).stdout == \
        "endpointslice.discovery.k8s.io/mysvc-abc created\n"
    text = cli("describe", "svc", "mysvc").stdout
    lines = {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in text.splitlines()
             if ":" in line and not line.startswith(" ")}
    ip = cli.json("get", "svc", "mysvc")["spec"]["clusterIP"]
    assert lines["Name"] == "mysvc" and lines["Selector"] == "app=web" and lines["Type"] == "ClusterIP"
    assert lines["IP"] == ip
    assert lines["Port"] == "http  80/TCP" and lines["TargetPort"] == "8080/TCP"
    assert lines["Endpoints"] == "10.244.1.5:8080,10.244.2.7:8080"
    eps = cli("get", "endpointslices").stdout.splitlines()
    assert eps[1].split()[:4] == ["mysvc-abc", "IPv4", "8080", "10.244.1.5,10.244.2.7"]


def test_describe_pod(cli, tmp_path):
    cli("apply", "-f", write(tmp_path / "p.yaml", NS_AND_POD))
    text = cli("describe", "po", "p1", "-n", "team").stdout
    assert "Node:" in text and "<none>" in text.split("Node:")[1].splitlines()[0]
    assert "Status:" in text and "Pending" in text
    assert "Containers:\n  c:\n" in text and "Image:" in text and "nginx" in text


def cli_event(name: str, ns: str, about: dict, reason: str, message: str, component: str,
              host: str = "") -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return json.dumps({"apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": ns},
                       "involvedObject": about, "reason": reason, "message": message,
                       "type": "Normal", "count": 1, "firstTimestamp": stamp, "lastTimestamp": stamp,
                       "source": {"component": component, **({"host": host} if host else {})}})


def test_describe_shows_the_events_about_the_object_and_get_lists_them(cli, tmp_path):
    cli("apply", "-f", write(tmp_path / "p.yaml", NS_AND_POD))
    pod = cli.json("get", "po", "p1", "-n", "team")
    about = {"kind": "Pod", "namespace": "team", "name": "p1", "uid": pod["metadata"]["uid"],
             "apiVersion": "v1"}
    cli("create", "-f", "-", stdin=cli_event("p1.1", "team", about, "Scheduled",
                                             "Successfully assigned team/p1 to n1",
                                             "default-scheduler"))
    earlier_pod = {**about, "uid": "an-earlier-p1"}  # same name, another pod: not shown
    cli("create", "-f", "-", stdin=cli_event("p1.2", "team", earlier_pod, "Killing",
                                             "Stopping container c", "kubelet", "n1"))
    text = cli("describe", "po", "p1", "-n", "team").stdout
    events = text.split("Events:\n")[1].splitlines()
    assert events[0].split() == ["Type", "Reason", "Age", "From", "Message"]
    assert events[2].split()[:2] == ["Normal", "Scheduled"]
    assert events[2].split()[3:] == ["default-scheduler", "Successfully", "assigned", "team/p1",
                                     "to", "n1"]
    assert len(events) == 3
    assert "Events" not in cli("describe", "po", "p1", "-n", "team", "--show-events=false").stdout

    table = cli("get", "events", "-n", "team").stdout.splitlines()
    assert table[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert sorted(line.split()[1:4] for line in table[1:]) == [
        ["Normal", "Killing", "pod/p1"], ["Normal", "Scheduled", "pod/p1"]]
    wide = cli("get", "ev", "-n", "team", "-o", "wide").stdout.splitlines()
    assert wide[0].split()[-4:] == ["FIRST", "SEEN", "COUNT", "NAME"]
    assert any("kubelet, n1" in line and line.endswith(" p1.2") for line in wide[1:])

    # A node's events: kubelets refer to it by name as uid, in the default namespace.
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}
    cli("create", "-f", "-", stdin=json.dumps(node))
    cli("create", "-f", "-", stdin=cli_event("n1.1", "default", {"kind": "Node", "name": "n1",
                                                                 "uid": "n1"},
                                             "Starting", "Starting kubelet.", "kubelet", "n1"))
    text = cli("describe", "node", "n1").stdout
    assert text.split("Events:\n")[1].splitlines()[2].split()[:2] == ["Normal", "Starting"]
    assert cli("describe", "svc", "kubernetes").stdout.splitlines()[-1].split() == \
        ["Events:", "<none>"]


def test_delete_by_name_and_file(cli, tmp_path):
    f = write(tmp_path / "svc.yaml", SVC)
    cli("apply", "-f", f)
    assert cli("delete", "svc", "mysvc").stdout == 'service "mysvc" deleted\n'
    err = cli("get", "svc", "mysvc", ok=False).stderr
    assert err == 'Error from server (NotFound): services "mysvc" not found\n'
    cli("apply", "-f", f)
    assert cli("delete", "-f", f).stdout == 'service "mysvc" deleted\n'
    err = cli("delete", "-f", f, ok=False).stderr
    assert err == f'Error from server (NotFound): error when deleting "{f}": services "mysvc" not found\n'


def test_errors_are_one_line(cli, tmp_path):
    f = write(tmp_path / "svc.yaml", SVC)
    cli("create", "-f", f)
    assert cli("create", "-f", f, ok=False).stderr == \
        f'Error from server (AlreadyExists): error when creating "{f}": services "mysvc" already exists\n'
    assert cli("get", "svc", "x", ok=False).stderr == 'Error from server (NotFound): services "x" not found\n'
    assert cli("get", "foo", ok=False).stderr == 'error: the server doesn\'t have a resource type "foo"\n'
    bad = write(tmp_path / "bad.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n   x: [\n")
    err = cli("apply", "-f", bad, ok=False).stderr
    assert err.startswith(f"error: error parsing {bad}: line 5: ")
    invalid = write(tmp_path / "inv.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: inv}\nspec: {}\n")
    assert cli("apply", "-f", invalid, ok=False).stderr == \
        'The Service "inv" is invalid: spec.ports: Required value\n'
    assert cli("logs", "nope", ok=False).stderr == 'Error from server (NotFound): pods "nope" not found\n'


def test_unreachable_server(tmp_path):
    url = f"https://127.0.0.1:{free_port()}"
    c = Cli(SessionPki.get().kubeconfig(tmp_path / "kubeconfig", url), tmp_path)
    assert c("get", "svc", ok=False).stderr == \
        f"error: cannot reach the API server at {url}: connection refused\n"
    assert c("get", "svc", server=False, ok=False).stderr.startswith("error: no API server configured")


def test_logs_and_exec_report_the_servers_status(cli, tmp_path):
    cli("apply", "-f", write(tmp_path / "p.yaml", NS_AND_POD))
    logs = cli("logs", "p1", "-n", "team", ok=False).stderr
    assert logs.startswith("Error from server (ServiceUnavailable): pods/log ")
    exec_ = cli("exec", "-n", "team", "p1", "--", "ls", "-l", ok=False).stderr
    assert exec_.startswith("Error from server (ServiceUnavailable): pods/exec ")
    assert cli("logs", "p1", "-n", "team", "-c", "zzz", ok=False).stderr == \
        "error: container zzz is not valid for pod p1\n"


def test_version_and_api_resources(cli):
    out = cli("version").stdout.splitlines()
    assert out[0].startswith("Client Version: v") and out[1] == "Server Version: v1.31.0-minicluster"
    lines = cli("api-resources").stdout.splitlines()
    assert lines[0].split() == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["services"] == ["services", "svc", "v1", "true", "Service"]
    assert rows["deployments"] == ["deployments", "deploy", "apps/v1", "true", "Deployment"]
    assert rows["endpointslices"] == ["endpointslices", "discovery.k8s.io/v1", "true", "EndpointSlice"]
    assert rows["namespaces"] == ["namespaces", "ns", "v1", "false", "Namespace"]
    assert not any("/" in name for name in rows)


def test_get_watch_sees_create_and_delete(cli, tmp_path):
    f = write(tmp_path / "svc.yaml", SVC)
    proc = subprocess.Popen(cli.argv(("get", "svc", "-w", "-o", "name"), True), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=cli.env, cwd=tmp_path)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "service/kubernetes\n"  # the initial list
        cli("apply", "-f", f)
        assert proc.stdout.readline() == "service/mysvc\n"
        cli("delete", "svc", "mysvc")
        assert proc.stdout.readline() == "service/mysvc\n"
    finally:
        stop_process(proc, sig=signal.SIGINT)
    assert proc.returncode == 130


def test_get_watch_table(cli, tmp_path):
    proc = subprocess.Popen(cli.argv(("get", "ns", "-w"), True), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=cli.env, cwd=tmp_path)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().split() == ["NAME", "STATUS", "AGE"]
        seen = [proc.stdout.readline().split()[0] for _ in range(4)]
        assert sorted(seen) == ["default", "kube-node-lease", "kube-public", "kube-system"]
        cli("apply", "-f", "-", stdin="apiVersion: v1\nkind: Namespace\nmetadata: {name: late}\n")
        assert proc.stdout.readline().split()[:2] == ["late", "Active"]
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.compat
@pytest.mark.skipif(not os.path.exists(KUBECTL), reason="kubectl is not installed")
def test_kubectl_then_minikubectl_apply(cli, tmp_path):
    def kubectl(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([KUBECTL, "--kubeconfig", str(cli.kubeconfig), *args], capture_output=True, text=True,
                              env=cli.env, timeout=60)

    f = write(tmp_path / "svc.yaml", SVC.replace("    targetPort: 8080\n",
                                                 "    targetPort: 8080\n  - name: https\n    port: 443\n"))
    first = kubectl("apply", "-f", f)
    if first.returncode != 0 and "openapi" in first.stderr:
        first = kubectl("apply", "--validate=false", "-f", f)  # the server without /openapi/v2
    assert first.returncode == 0, first.stderr
    assert first.stdout == "service/mysvc created\n"
    assert cli("apply", "-f", f).stdout == "service/mysvc unchanged\n"
    write(tmp_path / "svc.yaml", SVC.replace("app: web}\nspec", "app: web, tier: front}\nspec"))
    assert cli("apply", "-f", f).stdout == "service/mysvc configured\n"
    svc = cli.json("get", "svc", "mysvc")
    assert [p["port"] for p in svc["spec"]["ports"]] == [80]
    assert svc["metadata"]["labels"] == {"app": "web", "tier": "front"}
    # and back: kubectl reads minikubectl's annotation
    back = kubectl("apply", "--validate=false", "-f", f)
    assert back.returncode == 0 and back.stdout == "service/mysvc unchanged\n", back.stderr
