"""minikubectl get's output flags as tables: --no-headers, -o custom-columns, --show-labels,
-L, --sort-by, -o jsonpath over what a (stand-in) API server lists, and `version -o`."""
from __future__ import annotations

import asyncio
import io
import json
from datetime import UTC, datetime
from fractions import Fraction

import pytest

from kubecore.client.config import ClientConfig
from minikubectl import commands, output, sorting
from minikubectl.errors import CliError
from minikubectl.kubeconfig import Target

NOW = datetime(2026, 1, 1, 1, 0, 0, tzinfo=UTC)


def svc(name, ns="team", labels=None, port=80, type_="ClusterIP"):
    meta = {"name": name, "namespace": ns, "creationTimestamp": "2026-01-01T00:59:50Z"}
    if labels:
        meta["labels"] = labels
    return {"metadata": meta, "spec": {"type": type_, "clusterIP": "10.96.0.9",
                                       "ports": [{"port": port, "protocol": "TCP"}]}}


def cm(name, ns="team", **data):
    return {"metadata": {"name": name, "namespace": ns, "creationTimestamp": "2026-01-01T00:59:50Z"},
            "data": data}


SERVICES = [svc("web", labels={"app": "web", "example.com/tier": "front"}, port=80),
            svc("db", labels={"app": "db"}, port=5432), svc("api-10", port=8443), svc("api-9", port=53)]
CONFIGMAPS = [cm("small", n="100m"), cm("large", n="2Ki"), cm("none")]
OTHER_NS = [svc("dns", ns="kube-system", port=53)]


class FakeApi:
    """Lists and gets from fixed objects, by REST path."""

    def __init__(self) -> None:
        self.lists = {"/api/v1/namespaces/team/services": SERVICES,
                      "/api/v1/services": SERVICES + OTHER_NS,
                      "/api/v1/namespaces/team/configmaps": CONFIGMAPS}

    async def get(self, path, params=None):
        if path in self.lists:
            return {"items": self.lists[path], "metadata": {"resourceVersion": "7"}}
        parent, _, name = path.rpartition("/")
        return next(o for o in self.lists[parent] if o["metadata"]["name"] == name)


def get(*args: str, **opts) -> str:
    out, err = io.StringIO(), io.StringIO()
    target = Target("http://x", "team", False, ClientConfig(server="http://x"))
    ctx = commands.Context(api=FakeApi(), target=target, out=out, err=err, clock=lambda: NOW)  # type: ignore[arg-type]
    code = asyncio.run(commands.get(ctx, list(args), commands.GetOptions(**opts)))
    assert code == 0, err.getvalue()
    return out.getvalue()


def test_no_headers_in_every_table_form():
    assert get("svc", no_headers=True) == (
        "web      ClusterIP   10.96.0.9   <none>   80/TCP     10s\n"
        "db       ClusterIP   10.96.0.9   <none>   5432/TCP   10s\n"
        "api-10   ClusterIP   10.96.0.9   <none>   8443/TCP   10s\n"
        "api-9    ClusterIP   10.96.0.9   <none>   53/TCP     10s\n")
    wide = get("svc", output="wide", no_headers=True, all_namespaces=True).splitlines()
    assert [line.split()[:2] for line in wide] == [["team", "web"], ["team", "db"], ["team", "api-10"],
                                                   ["team", "api-9"], ["kube-system", "dns"]]
    assert not any("NAME" in line for line in wide)
    # several kinds: no headers and no blank line between the tables, each aligned on its own
    assert get("svc,cm", no_headers=True).splitlines()[3:] == [
        "service/api-9    ClusterIP   10.96.0.9   <none>   53/TCP     10s",
        "configmap/small   1     10s", "configmap/large   1     10s", "configmap/none    0     10s"]
    assert get("svc", output="custom-columns=N:.metadata.name", no_headers=True) == "web\ndb\napi-10\napi-9\n"


def test_show_labels_and_label_columns():
    lines = get("svc", show_labels=True, label_columns=("app", "example.com/tier")).splitlines()
    assert lines[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "APP", "TIER",
                                "LABELS"]
    assert lines[1].split()[-3:] == ["web", "front", "app=web,example.com/tier=front"]
    assert lines[3].split()[-1] == "<none>" and lines[3].split()[-2] == "10s"  # an -L label missing: empty
    wide = get("svc", output="wide", show_labels=True, label_columns=("app",)).splitlines()
    assert wide[0].split()[-3:] == ["SELECTOR", "APP", "LABELS"]


def test_show_labels_only_with_tables():
    with pytest.raises(CliError, match="^--show-labels option cannot be used with json printer$"):
        get("svc", output="json", show_labels=True)


def test_sort_by_rows_and_lists():
    assert [line.split()[0] for line in get("svc", sort_by=".metadata.name").splitlines()] == \
        ["NAME", "api-10", "api-9", "db", "web"]
    assert get("svc", sort_by="{.spec.ports[0].port}", output="name") == \
        "service/api-9\nservice/web\nservice/db\nservice/api-10\n"
    # quantities compare by value; a configmap without the key comes first
    assert get("cm", sort_by=".data.n", output="custom-columns=NAME:.metadata.name,N:.data.n") == \
        "NAME    N\nnone    <none>\nsmall   100m\nlarge   2Ki\n"


def test_sort_by_a_field_no_object_has():
    with pytest.raises(CliError, match=r'^couldn\'t find any field with path "\{\.nope\}" in the list of objects$'):
        get("svc", sort_by=".nope", output="name")
    assert get("svc", sort_by=".nope") == ""  # kubectl's table printer drops the table and the error


def test_jsonpath_over_a_list_and_one_object():
    assert get("svc", output='jsonpath={range .items[*]}{.metadata.name}{"\\n"}{end}') == "web\ndb\napi-10\napi-9\n"
    assert get("svc", "web", output="jsonpath={.kind} {.metadata.labels}") == \
        'Service {"app":"web","example.com/tier":"front"}'
    assert get("svc", output="jsonpath={.kind} {.metadata}") == 'List {"resourceVersion":""}'
    with pytest.raises(CliError) as exc:
        get("svc", output="jsonpath={.items[9]}")
    assert str(exc.value) == ('error executing jsonpath "{.items[9]}": Error executing template: '
                              "array index out of bounds: index 9, length 4.")


@pytest.mark.parametrize("value, message", [
    ("jsonpath", "template format specified but no template given"),
    ("jsonpath=", "template format specified but no template given"),
    ("jsonpath={.a[}", "error parsing jsonpath {.a[}, unterminated array"),
    ("jsonpath-file=/nonexistent", "error reading --template /nonexistent, open /nonexistent: "
                                   "no such file or directory"),
    ("custom-columns", "custom-columns format specified but no custom columns given"),
    ("custom-columns=NAME", "unexpected custom-columns spec: NAME, expected <header>:<json-path-expr>"),
    ("custom-columns=A:{.a}{.b}", "unexpected path string, expected a 'name1.name2' or '.name1.name2' or "
                                  "'{name1.name2}' or '{.name1.name2}'"),
    ("custom-columns=A:.a[", "unterminated array"),
    ("xml", 'unable to match a printer suitable for the output format "xml", allowed formats are: '
            "custom-columns,custom-columns-file,json,jsonpath,jsonpath-as-json,jsonpath-file,name,wide,yaml"),
])
def test_output_errors(value, message):
    with pytest.raises(CliError) as exc:
        output.parse(value)
    assert str(exc.value) == message


def test_custom_columns_cells():
    out = output.parse("custom-columns=NAME:metadata.name,PORTS:.spec.ports[*].port,SPEC:{.spec.selector},"
                       "NONE:.nope,ESC:.metadata.annotations.x")
    obj = {"metadata": {"name": "web", "annotations": {"x": "\x1b[31mred\r"}},
           "spec": {"ports": [{"port": 80}, {"port": 443}], "selector": {"b": "2", "a": 1.5}}}
    assert [c.header for c in out.columns] == ["NAME", "PORTS", "SPEC", "NONE", "ESC"]
    assert output.column_cells(out.columns, obj) == ["web", "80,443", "map[a:1.5 b:2]", "<none>", "^[[31mred\\r"]


def test_custom_columns_file(tmp_path):
    spec = tmp_path / "columns"
    spec.write_text("NAME   PORT\n.metadata.name  {.spec.ports[0].port}\n")
    out = output.parse(f"custom-columns-file={spec}")
    assert [c.header for c in out.columns] == ["NAME", "PORT"]
    assert not output.no_headers_for(out, True)  # kubectl prints this form's headers regardless
    spec.write_text("NAME   PORT\n.metadata.name\n")
    with pytest.raises(CliError, match=r"^number of headers \(2\) and field specifications \(1\) don't match$"):
        output.parse(f"custom-columns-file={spec}")


@pytest.mark.parametrize("values, expected", [
    (["b", "a", "c"], ["a", "b", "c"]),
    (["pod-9", "pod-10"], ["pod-10", "pod-9"]),  # kubectl 1.33 compares names byte by byte
    (["2", "10", "1"], ["1", "2", "10"]),  # ... but quantities by value
    (["1Gi", "500Mi", "100m", "2"], ["100m", "2", "500Mi", "1Gi"]),
    ([3, 1.5], "unsortable"),
    ([2, 10, 1], [1, 2, 10]),
    ([2.5, 1.5], [1.5, 2.5]),
    (["2026-01-02T00:00:00Z", "2025-12-31T23:59:59Z"], ["2025-12-31T23:59:59Z", "2026-01-02T00:00:00Z"]),
    ([True, False], "unsortable"),
])
def test_sort_order(values, expected):
    objs = [{"v": v} for v in values]
    if expected == "unsortable":
        with pytest.raises(sorting.SortError, match="unsortable"):
            sorting.sort_objects(objs, ".v")
    else:
        assert [o["v"] for o in sorting.sort_objects(objs, ".v")] == expected


def test_missing_keys_sort_first_in_go_sorts_order():
    objs = [{"n": "cm-10"}, {"n": "cm-9"}, {"n": "cm-9b"}, {"n": "large", "s": "10"}, {"n": "none"},
            {"n": "small", "s": "2"}]
    # what kubectl 1.33 printed for these ConfigMaps with --sort-by=.metadata.labels.size
    assert [o["n"] for o in sorting.sort_objects(objs, "s")] == ["none", "cm-9b", "cm-9", "cm-10", "small", "large"]


def test_go_sort_sorts_long_lists():
    values = [(i * 7919) % 1000 for i in range(1000)]
    objs = [{"v": v} for v in values]
    assert [o["v"] for o in sorting.sort_objects(objs, "{.v}")] == sorted(values)


def test_quantities():
    assert sorting.parse_quantity("100m") == Fraction(1, 10)
    assert sorting.parse_quantity("2Ki") == 2048
    assert sorting.parse_quantity("1e3") == 1000
    assert sorting.parse_quantity("web") is None


def test_version_documents():
    server = commands.version_info({"gitVersion": "v1.31.0", "major": "1", "minor": "31", "extra": "x"})
    info = json.loads(commands.render_version("json", server))
    assert list(info) == ["clientVersion", "serverVersion"]
    assert list(info["serverVersion"]) == ["major", "minor", "gitVersion", "gitCommit", "gitTreeState",
                                           "buildDate", "goVersion", "compiler", "platform"]
    assert info["clientVersion"]["gitVersion"] == commands.CLIENT_VERSION
    text = commands.render_version("yaml", None)
    assert text.startswith("clientVersion:\n  buildDate: \"\"\n") and text.endswith("\n\n")
    assert commands.render_version(None, {"gitVersion": "v1.31.0"}) == \
        f"Client Version: {commands.CLIENT_VERSION}\nServer Version: v1.31.0\n"
