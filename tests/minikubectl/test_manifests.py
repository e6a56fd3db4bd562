import io

import pytest

from minikubectl.errors import CliError
from minikubectl.manifests import load, parse_documents

SVC = "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n"


def test_multi_document_yaml_and_lists():
    text = SVC + "---\n---\n" + ("apiVersion: v1\nkind: List\nitems:\n"
                                 "- {apiVersion: v1, kind: Namespace, metadata: {name: n}}\n")
    docs = parse_documents(text, "f.yaml")
    assert [(d.source, d.obj["kind"]) for d in docs] == [("f.yaml", "Service"), ("f.yaml", "Namespace")]


def test_json_and_timestamps_stay_strings():
    docs = parse_documents('{"apiVersion": "v1", "kind": "Namespace", "metadata": '
                           '{"name": "n", "annotations": {"when": "2026-01-01"}}}', "n.json")
    assert docs[0].obj["metadata"]["annotations"]["when"] == "2026-01-01"


def test_yaml_error_names_file_and_line():
    with pytest.raises(CliError) as info:
        parse_documents("apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n   bad: [\n", "bad.yaml")
    assert str(info.value).startswith("error parsing bad.yaml: line 5: ")


def test_missing_kind():
    with pytest.raises(CliError, match=r"Object 'Kind' is missing in document 1"):
        parse_documents("apiVersion: v1\nmetadata: {name: a}\n", "x.yaml")


def test_directory_and_stdin(tmp_path):
    (tmp_path / "b.yaml").write_text(SVC.replace("name: a", "name: b"))
    (tmp_path / "a.json").write_text('{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"}}')
    (tmp_path / "notes.txt").write_text("not a manifest")
    objs = load([str(tmp_path), "-"], verb="apply", stdin=io.StringIO(SVC.replace("name: a", "name: c")))
    assert [(m.obj["metadata"]["name"], m.source) for m in objs] == [
        ("a", str(tmp_path / "a.json")), ("b", str(tmp_path / "b.yaml")), ("c", "STDIN")]


def test_nothing_to_apply(tmp_path):
    with pytest.raises(CliError, match="no objects passed to apply"):
        load([str(tmp_path)], verb="apply")
    with pytest.raises(CliError, match='the path "nope.yaml" does not exist'):
        load(["nope.yaml"], verb="apply")
