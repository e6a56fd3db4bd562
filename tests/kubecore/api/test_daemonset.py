"""apps/v1 DaemonSet: kube's SetDefaults_DaemonSet, ValidateDaemonSet(Update), the status
rules, the template generation the strategy keeps, and kubectl's columns."""
from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from kubecore.api import defaults as d
from kubecore.api import resources as R
from kubecore.api.validation.apps import validate_daemonset, validate_daemonset_status
from kubecore.printers.tables import render_text


def _ds(**spec: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {"name": "agent", "namespace": "default"},
                           "spec": {"selector": {"matchLabels": {"app": "agent"}},
                                    "template": {"metadata": {"labels": {"app": "agent"}},
                                                 "spec": {"containers": [{"name": "c", "image": "busybox"}]}},
                                    **spec}}
    d.default_daemonset(obj)
    return obj


def test_defaults() -> None:
    obj = _ds()
    assert obj["spec"]["updateStrategy"] == {"type": "RollingUpdate",
                                             "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    assert obj["spec"]["revisionHistoryLimit"] == 10
    assert obj["spec"]["template"]["spec"]["restartPolicy"] == "Always"
    assert obj["status"] == {"currentNumberScheduled": 0, "numberMisscheduled": 0,
                             "desiredNumberScheduled": 0, "numberReady": 0}
    on_delete = _ds(updateStrategy={"type": "OnDelete"})
    assert on_delete["spec"]["updateStrategy"] == {"type": "OnDelete"}
    surge = _ds(updateStrategy={"rollingUpdate": {"maxSurge": "10%"}})
    assert surge["spec"]["updateStrategy"] == {"type": "RollingUpdate",
                                               "rollingUpdate": {"maxSurge": "10%", "maxUnavailable": 1}}


def _with(path: str, value: Any, **spec: Any) -> dict[str, Any]:
    obj = _ds(**spec)
    *parents, last = path.split(".")
    node = obj
    for p in parents:
        node = node[p]
    node[last] = value
    return obj


def _ru(**ru: Any) -> dict[str, Any]:
    return {"type": "RollingUpdate", "rollingUpdate": ru}


PCT = ("a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  "
       "or '93%', regex used for validation is '[0-9]+%')")

CASES = [
    (_ds(), []),
    (_ds(updateStrategy={"type": "OnDelete"}), []),
    (_ds(updateStrategy=_ru(maxUnavailable=0, maxSurge="20%")), []),
    (_with("spec.template.spec.restartPolicy", "OnFailure"),
     [("spec.template.spec.restartPolicy", 'Unsupported value: "OnFailure": supported values: "Always"')]),
    (_with("spec.template.spec.activeDeadlineSeconds", 5),
     [("spec.template.spec.activeDeadlineSeconds",
       "Forbidden: activeDeadlineSeconds in DaemonSet is not Supported")]),
    (_with("spec.template.metadata.labels", {"app": "other"}),
     [("spec.template.metadata.labels",
       "Invalid value: {'app': 'other'}: `selector` does not match template `labels`")]),
    (_with("spec.selector", {}),
     [("spec.selector", "Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
       "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for daemonset")]),
    (_ds(updateStrategy=_ru(maxUnavailable=0, maxSurge=0)),
     [("spec.updateStrategy.rollingUpdate.maxUnavailable", "Required value: cannot be 0 when maxSurge is 0")]),
    (_ds(updateStrategy=_ru(maxUnavailable=1, maxSurge=1)),
     [("spec.updateStrategy.rollingUpdate.maxSurge",
       "Invalid value: intstr.IntOrString{Type:0, IntVal:1, StrVal:\"\"}: may not be set when "
       "maxUnavailable is non-zero")]),
    (_ds(updateStrategy=_ru(maxUnavailable="120%", maxSurge=0)),
     [("spec.updateStrategy.rollingUpdate.maxUnavailable",
       "Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"120%\"}: must not be greater than 100%")]),
    (_ds(updateStrategy=_ru(maxUnavailable="x", maxSurge=0)),
     [("spec.updateStrategy.rollingUpdate.maxUnavailable",
       f"Invalid value: intstr.IntOrString{{Type:1, IntVal:0, StrVal:\"x\"}}: {PCT}"),
      ("spec.updateStrategy.rollingUpdate.maxUnavailable", "Required value: cannot be 0 when maxSurge is 0")]),
    (_ds(updateStrategy=_ru(maxUnavailable=-1, maxSurge=0)),
     [("spec.updateStrategy.rollingUpdate.maxUnavailable",
       "Invalid value: -1: must be greater than or equal to 0")]),
    (_ds(updateStrategy={"type": "Sometimes"}),
     [("spec.updateStrategy", 'Unsupported value: apps.DaemonSetUpdateStrategy{Type:"Sometimes", '
       'RollingUpdate:(*apps.RollingUpdateDaemonSet)(nil)}: supported values: "RollingUpdate", "OnDelete"')]),
    (_ds(minReadySeconds=-1, revisionHistoryLimit=-2),
     [("spec.minReadySeconds", "Invalid value: -1: must be greater than or equal to 0"),
      ("spec.revisionHistoryLimit", "Invalid value: -2: must be greater than or equal to 0")]),
]
IDS = ["ok", "on-delete", "surge-only", "restart-policy", "active-deadline", "selector-mismatch",
       "empty-selector", "both-zero", "both-set", "over-100-percent", "bad-percent", "negative",
       "unknown-strategy", "negative-counts"]


@pytest.mark.parametrize(("obj", "wanted"), CASES, ids=IDS)
def test_validation(obj: dict[str, Any], wanted: list[tuple[str, str]]) -> None:
    assert [(c.field, c.message) for c in validate_daemonset(obj, None)] == wanted


def test_selector_is_immutable() -> None:
    old = _ds()
    new = copy.deepcopy(old)
    new["spec"]["selector"] = {"matchLabels": {"app": "agent", "tier": "x"}}
    new["spec"]["template"]["metadata"]["labels"]["tier"] = "x"
    assert [(c.field, c.message) for c in validate_daemonset(new, old)] == [
        ("spec.selector", "Invalid value: field is immutable")]


@pytest.mark.parametrize(("status", "old_status", "wanted"), [
    ({"numberReady": 1, "collisionCount": 1}, {}, []),
    ({"numberReady": -1}, {}, [("status.numberReady", "Invalid value: -1: must be greater than or equal to 0")]),
    ({"collisionCount": 1}, {"collisionCount": 2},
     [("status.collisionCount", "Invalid value: 1: cannot be decremented")]),
], ids=["ok", "negative", "collision-count-decremented"])
def test_status_validation(status: dict[str, Any], old_status: dict[str, Any],
                           wanted: list[tuple[str, str]]) -> None:
    obj, old = _ds(), _ds()
    obj["status"], old["status"] = status, old_status
    assert [(c.field, c.message) for c in validate_daemonset_status(obj, old)] == wanted


def _generation(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["annotations"][d.TEMPLATE_GENERATION])


def test_template_generation() -> None:
    created = _ds()
    d.daemonset_template_generation(created, None)
    assert _generation(created) == "1"
    same = copy.deepcopy(created)
    same["metadata"]["annotations"][d.TEMPLATE_GENERATION] = "7"  # a client cannot set it
    same["spec"]["minReadySeconds"] = 5
    d.daemonset_template_generation(same, created)
    assert _generation(same) == "1"
    changed = copy.deepcopy(same)
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:2"
    del changed["metadata"]["annotations"]
    d.daemonset_template_generation(changed, same)
    assert _generation(changed) == "2"


def test_served_under_apps() -> None:
    rt = R.lookup("ds")
    assert rt is R.DAEMONSETS and rt.api_version == "apps/v1" and rt.has_status
    assert R.by_path("apps", "v1", "daemonsets") is rt and "all" in rt.categories


def test_printed_columns() -> None:
    now = datetime(2026, 1, 1, 0, 10, tzinfo=UTC)
    obj = _with("spec.template.spec.nodeSelector", {"disk": "ssd", "arch": "amd64"})
    obj["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    obj["status"].update(desiredNumberScheduled=2, currentNumberScheduled=2, numberReady=1,
                         updatedNumberScheduled=2, numberAvailable=1)
    assert render_text("DaemonSet", [obj], now=now, wide=True).splitlines() == [
        "NAME    DESIRED   CURRENT   READY   UP-TO-DATE   AVAILABLE   NODE SELECTOR         AGE   "
        "CONTAINERS   IMAGES    SELECTOR",
        "agent   2         2         1       2            1           arch=amd64,disk=ssd   10m   "
        "c            busybox   app=agent",
    ]
