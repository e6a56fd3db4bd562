"""ConfigMap validation (kube's ValidateConfigMap/ValidateConfigMapUpdate) and the columns kubectl
prints for ConfigMaps and ServiceAccounts."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kubecore.api import resources as R
from kubecore.api.validation.core import validate_configmap
from kubecore.printers.tables import table

KEY_MSG = ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  "
           "or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")

CASES = [
    ("valid", {"data": {"a.b_c-D": "x"}, "binaryData": {"bin": "AAE="}}, None, []),
    ("bad-key", {"data": {"a/b": "x"}}, None, [("data[a/b]", f'Invalid value: "a/b": {KEY_MSG}')]),
    ("dot-dot-prefix", {"data": {"..data": "x"}}, None,
     [("data[..data]", "Invalid value: \"..data\": must not start with '..'")]),
    ("dot", {"binaryData": {".": "AA=="}}, None, [("binaryData[.]", "Invalid value: \".\": must not be '.'")]),
    ("in-both", {"data": {"k": "x"}, "binaryData": {"k": "AA=="}}, None,
     [("data[k]", 'Invalid value: "k": duplicate of key present in binaryData')]),
    ("bad-base64", {"binaryData": {"k": "!!"}}, None, [("binaryData[k]", "Invalid value: illegal base64 data")]),
    ("too-big", {"data": {"k": "x" * (1024 * 1024 + 1)}}, None, [("", "Too long: must have at most 1048576 bytes")]),
    ("immutable-changed", {"immutable": True, "data": {"k": "new"}}, {"immutable": True, "data": {"k": "old"}},
     [("data", "Forbidden: field is immutable when `immutable` is set")]),
    ("immutable-unset", {"data": {"k": "old"}}, {"immutable": True, "data": {"k": "old"}},
     [("immutable", "Forbidden: field is immutable when `immutable` is set")]),
    ("mutable-changed", {"data": {"k": "new"}}, {"data": {"k": "old"}}, []),
]


@pytest.mark.parametrize(("new", "old", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_configmap_validation(new, old, expected) -> None:
    assert [(c.field, c.message) for c in validate_configmap(new, old)] == expected


def test_kubectl_columns() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    meta = {"name": "x", "creationTimestamp": "2025-12-31T23:59:00Z"}
    sa = table("ServiceAccount", [{"metadata": meta, "secrets": [{"name": "s"}]}], now=now)
    assert [c["name"] for c in sa["columnDefinitions"]] == ["Name", "Secrets", "Age"]
    assert sa["rows"][0]["cells"] == ["x", 1, "60s"]
    cm = table("ConfigMap", [{"metadata": meta, "data": {"a": "1"}, "binaryData": {"b": "AA=="}}], now=now)
    assert [c["name"] for c in cm["columnDefinitions"]] == ["Name", "Data", "Age"]
    assert cm["rows"][0]["cells"] == ["x", 2, "60s"]


def test_kinds_are_served_with_kubes_names() -> None:
    assert R.lookup("sa") is R.SERVICEACCOUNTS and R.lookup("cm") is R.CONFIGMAPS
    assert R.SERVICEACCOUNTS.subresources == ("token",)
