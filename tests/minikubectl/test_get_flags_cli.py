"""minikubectl get's kubectl flags against a real API server, side by side with the real kubectl:
the same bytes for jsonpath, custom columns and names, the same cells for tables."""
from __future__ import annotations

import json
import re
import subprocess

import pytest

from tests.compat.conftest import KUBECTL, Kubectl, kubectl_versions
from tests.minikubectl.test_cli import Cli, write

OBJECTS = """apiVersion: v1
kind: Namespace
metadata: {name: team}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: team, labels: {app: web, tier: front, example.com/owner: ann}}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}, {name: https, port: 443}]
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: team, labels: {app: db}}
spec:
  selector: {app: db}
  ports: [{port: 5432}]
---
apiVersion: v1
kind: Service
metadata: {name: api-10, namespace: team}
spec:
  ports: [{port: 8443, protocol: TCP}]
---
apiVersion: v1
kind: Service
metadata: {name: api-9, namespace: team, labels: {tier: back}}
spec:
  ports: [{port: 53, protocol: UDP}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: small, namespace: team, labels: {size: "2"}}
data: {n: "100m", text: "a <b> & c"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: large, namespace: team, labels: {size: "10"}}
data: {n: "2Ki"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: none, namespace: team}
"""


@pytest.fixture
def cli(apiserver_process, tmp_path) -> Cli:
    return Cli(apiserver_process.kubeconfig(tmp_path / "admin.kubeconfig"), tmp_path)


def _kubectl(cli: Cli, tmp_path) -> Kubectl:
    newest = kubectl_versions()
    binary = str(newest[-1]) if newest else KUBECTL
    return Kubectl(cli.kubeconfig, tmp_path / "kube-cache", tmp_path, binary=binary)


def cells(text: str) -> list[list[str]]:
    """A table's cells without the AGE column (each client reads the clock at its own time)."""
    lines = [line for line in text.splitlines() if line.strip()]
    rows = [re.split(r"\s{3,}|(?<=\S)\s{2}(?=\S)", line.rstrip()) for line in lines]
    return rows


def without_age(text: str, age_column: int) -> list[list[str]]:
    return [row[:age_column] + row[age_column + 1:] for row in cells(text)]


@pytest.mark.compat
@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
def test_get_flags_match_kubectl(cli, tmp_path):
    kubectl = _kubectl(cli, tmp_path)
    cli("apply", "-f", write(tmp_path / "objects.yaml", OBJECTS))

    def both(*args: str, ok: bool = True) -> tuple[str, str]:
        mine = cli(*args, ok=ok)
        theirs = kubectl(*args, check=ok)
        if not ok:
            assert theirs.returncode == 1, theirs.stderr
            return mine.stderr, theirs.stderr
        return mine.stdout, theirs.stdout

    # the same bytes: jsonpath, custom columns, names, in kubectl's order for --sort-by
    for args in [
        ("get", "cm", "-n", "team", "--sort-by=.metadata.name", "-o",
         'jsonpath={range .items[*]}{.metadata.name}{"\\t"}{.data}{"\\t"}{.metadata.labels}{"\\n"}{end}'),
        ("get", "svc", "-n", "team", "-o", 'jsonpath={.items[?(@.spec.type=="NodePort")].metadata.name}'),
        ("get", "svc", "web", "-n", "team", "-o=jsonpath={.spec.ports[*].port} {.spec.ports[-1:].name}"),
        ("get", "svc", "web", "-n", "team", "-ojsonpath={.spec.ports[?(@.port>100)]}"),
        ("get", "svc", "-n", "team", "-o", "jsonpath={.kind} {.metadata} {.items[0:2].metadata.name} {.nope}"),
        ("get", "svc", "-n", "team", "-o", "jsonpath-as-json={.items[*].spec.ports[0].port}"),
        ("get", "svc", "-n", "team", "--sort-by=.spec.ports[0].port", "-o", "name"),
        ("get", "cm", "-n", "team", "--sort-by={.data.n}", "-o", "custom-columns=NAME:.metadata.name,N:.data.n"),
        ("get", "svc", "-n", "team", "--sort-by=.metadata.name", "-o",
         "custom-columns=NAME:.metadata.name,PORTS:.spec.ports[*].port,SELECTOR:.spec.selector,"
         "OWNER:{.metadata.labels.example\\.com/owner}"),
        ("get", "svc", "-n", "team", "--no-headers", "--sort-by=metadata.name",
         "-o", "custom-columns=N:metadata.name,P:.spec.ports[0].protocol"),
        ("get", "svc,cm", "-n", "team", "--sort-by=.metadata.name", "-o",
         "jsonpath={range .items[*]}{.kind}/{.metadata.name} {end}"),
    ]:
        mine, theirs = both(*args)
        assert mine == theirs, args

    # the same cells in tables (but AGE): --no-headers with several kinds, -A, -o wide,
    # --show-labels and -L, sorted rows
    mine, theirs = both("get", "svc,cm", "-n", "team", "--no-headers")
    # AGE is the last cell of both kinds' rows (5 cells for a Service, 2 for a ConfigMap before it)
    assert [r[:-1] for r in cells(mine)] == [r[:-1] for r in cells(theirs)]
    assert {len(r) for r in cells(mine)} == {6, 3}
    assert "\n\n" not in mine and "NAME" not in mine
    mine, theirs = both("get", "svc", "-A", "-o", "wide", "--no-headers", "--sort-by=.metadata.name")
    assert without_age(mine, 6) == without_age(theirs, 6)
    mine, theirs = both("get", "svc", "-n", "team", "--show-labels", "-L", "tier,example.com/owner",
                        "--sort-by=.metadata.name")
    assert without_age(mine, 5) == without_age(theirs, 5)
    assert cells(mine)[0][-3:] == ["TIER", "OWNER", "LABELS"]
    mine, theirs = both("get", "cm", "-n", "team", "--sort-by=.metadata.labels.size")
    assert [r[0] for r in cells(mine)] == [r[0] for r in cells(theirs)] == ["NAME", "none", "small", "large"]

    # errors: kubectl's own line
    for args in [
        ("get", "svc", "-n", "team", "--sort-by=.spec.nope", "-o", "name"),
        ("get", "svc,cm", "-n", "team", "--sort-by=.metadata.name"),  # kubectl sorts the tables
        ("get", "svc", "-n", "team", "-o", "jsonpath={.items[}"),
        ("get", "svc", "-n", "team", "-o", "jsonpath={.items[9]}"),
        ("get", "svc", "-n", "team", "-o", "custom-columns=NAME"),
        ("get", "svc", "-n", "team", "-o", "jsonpath="),
        ("get", "svc", "-n", "team", "--show-labels", "-o", "json"),
    ]:
        mine, theirs = both(*args, ok=False)
        assert theirs.startswith(mine.strip()), (args, mine, theirs)

    # a table whose rows lack the field: kubectl's printer drops the table and the error
    mine, theirs = both("get", "svc", "-n", "team", "--sort-by=.spec.nope")
    assert mine == theirs == ""
    assert cli("get", "svc", "-n", "team", "--sort-by=.spec.nope").stderr == \
        "No resources found in team namespace.\n"

    # custom-columns-file
    spec = write(tmp_path / "columns.txt", "NAME   PORT\n.metadata.name   {.spec.ports[0].port}\n")
    mine, theirs = both("get", "svc", "-n", "team", "--sort-by=.metadata.name", "-o", f"custom-columns-file={spec}")
    assert mine == theirs

    # version -o json: kubectl's document; the server part is the API server's /version
    mine_v, theirs_v = (json.loads(out) for out in both("version", "-o", "json"))
    assert mine_v["serverVersion"] == theirs_v["serverVersion"]
    assert list(mine_v["clientVersion"]) == [k for k in theirs_v["clientVersion"]]


def test_watch_without_headers_and_with_custom_columns(cli, tmp_path):
    cli("apply", "-f", write(tmp_path / "objects.yaml", OBJECTS))
    for args, first, later in [
        (("get", "ns", "-w", "--no-headers"), "default", ["late", "Active"]),
        (("get", "ns", "-w", "-o", "custom-columns=NAME:.metadata.name,PHASE:.status.phase"), "NAME",
         ["late", "Active"]),
        (("get", "ns", "-w", "-o", "jsonpath={.metadata.name}{'\\n'}"), "default", ["late"]),
    ]:
        names = sorted(n["metadata"]["name"] for n in cli.json("get", "ns")["items"])
        proc = subprocess.Popen(cli.argv(args, True), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=cli.env, cwd=tmp_path)
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().split()[0] == first, args
            seen = [proc.stdout.readline().split()[0] for _ in range(len(names) - (first == "default"))]
            assert sorted(([first] if first == "default" else []) + seen) == names, args
            name = f"late{len(names)}"
            cli("apply", "-f", "-", stdin=f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}}}\n")
            assert proc.stdout.readline().split()[:2] == [name, *later[1:]], args
        finally:
            proc.kill()
            proc.wait()
