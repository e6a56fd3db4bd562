"""apps/v1 ControllerRevision: kube's ValidateControllerRevision(Update) and kubectl's columns."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kubecore.api import resources as R
from kubecore.api.validation.apps import validate_controllerrevision
from kubecore.printers.tables import render_text


def _rev(revision: object = 1, data: object = None) -> dict[str, object]:
    out: dict[str, object] = {"metadata": {"name": "web-5d8f"}, "revision": revision}
    if data is not None:
        out["data"] = data
    return out


@pytest.mark.parametrize(("obj", "old", "wanted"), [
    (_rev(1, {"spec": {}}), None, []),
    (_rev(0, {"spec": {}}), None, []),
    (_rev(1), None, [("data", "Required value")]),
    (_rev(-1, {"spec": {}}), None, [("revision", "Invalid value: -1: must be greater than or equal to 0")]),
    (_rev(2, {"spec": {}}), _rev(1, {"spec": {}}), []),
    (_rev(1, {"spec": {"x": 1}}), _rev(1, {"spec": {}}), [("data", "Invalid value: field is immutable")]),
], ids=["ok", "revision-zero", "no-data", "negative", "revision-may-change", "data-immutable"])
def test_validation(obj: dict[str, object], old: dict[str, object] | None, wanted: list[tuple[str, str]]) -> None:
    got = [(c.field, c.message) for c in validate_controllerrevision(obj, old)]
    assert got == wanted


def test_served_under_apps() -> None:
    rt = R.lookup("controllerrevisions")
    assert rt is R.CONTROLLERREVISIONS and rt.api_version == "apps/v1" and rt.namespaced
    assert R.by_path("apps", "v1", "controllerrevisions") is rt


def test_printed_columns() -> None:
    now = datetime(2026, 1, 1, 0, 10, tzinfo=UTC)
    obj = {"metadata": {"name": "web-5d8f", "creationTimestamp": "2026-01-01T00:00:00Z",
                        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web",
                                             "uid": "u", "controller": True}]},
           "revision": 3, "data": {}}
    assert render_text("ControllerRevision", [obj], now=now).splitlines() == [
        "NAME       CONTROLLER             REVISION   AGE",
        "web-5d8f   statefulset.apps/web   3          10m",
    ]
