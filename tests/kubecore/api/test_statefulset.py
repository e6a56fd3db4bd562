"""apps/v1 StatefulSet as data: kube's SetDefaults_StatefulSet, ValidateStatefulSet(Update),
ValidateStatefulSetStatus(Update), and kubectl's columns."""
from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from kubecore.api import resources as R
from kubecore.api.models import unknown_fields
from kubecore.api.validation.statefulset import (
    FORBIDDEN_UPDATE,
    validate_statefulset,
    validate_statefulset_status,
)
from kubecore.printers.tables import render_text


def sts(**spec: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"serviceName": "nginx", "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}
    obj["spec"].update(spec)
    return obj


def defaulted(obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    R.STATEFULSETS.default(out)
    return out


def test_defaults_are_kubes() -> None:
    spec = defaulted(sts())["spec"]
    assert spec["replicas"] == 1
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    assert spec["revisionHistoryLimit"] == 10
    assert "minReadySeconds" not in spec  # int32 with omitempty
    assert spec["template"]["spec"]["restartPolicy"] == "Always"
    assert defaulted(sts())["status"] == {"replicas": 0, "availableReplicas": 0}


@pytest.mark.parametrize(("strategy", "wanted"), [
    ({"type": "RollingUpdate"}, {"type": "RollingUpdate"}),
    ({"type": "RollingUpdate", "rollingUpdate": {}}, {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
    ({"type": "RollingUpdate", "rollingUpdate": {"partition": 2}},
     {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}),
    ({"type": "OnDelete"}, {"type": "OnDelete"}),
    ({}, {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
], ids=["rolling-without-block-stays", "empty-block-gets-partition", "partition-kept", "ondelete", "empty"])
def test_update_strategy_defaults(strategy: dict[str, Any], wanted: dict[str, Any]) -> None:
    assert defaulted(sts(updateStrategy=strategy))["spec"]["updateStrategy"] == wanted


@pytest.mark.parametrize(("spec", "wanted"), [
    ({}, []),
    ({"podManagementPolicy": "Parallel", "ordinals": {"start": 5}, "minReadySeconds": 3}, []),
    ({"podManagementPolicy": "Random"},
     [("spec.podManagementPolicy", "Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'")]),
    ({"updateStrategy": {"type": "Sometimes"}},
     [("spec.updateStrategy", 'Invalid value: apps.StatefulSetUpdateStrategy{Type:"Sometimes", '
       "RollingUpdate:nil}: must be 'RollingUpdate' or 'OnDelete'")]),
    ({"updateStrategy": {"type": "OnDelete", "rollingUpdate": {"partition": 1}}},
     [("spec.updateStrategy.rollingUpdate", "Invalid value: apps.RollingUpdateStatefulSetStrategy"
       "{Partition:1}: only allowed for updateStrategy 'RollingUpdate'")]),
    ({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": -1}}},
     [("spec.updateStrategy.rollingUpdate.partition", "Invalid value: -1: must be greater than or equal to 0")]),
    ({"persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Keep"}},
     [("spec.persistentVolumeClaimRetentionPolicy.whenScaled",
       'Unsupported value: "Keep": supported values: "Retain", "Delete"')]),
    ({"replicas": -1}, [("spec.replicas", "Invalid value: -1: must be greater than or equal to 0")]),
    ({"minReadySeconds": -2}, [("spec.minReadySeconds", "Invalid value: -2: must be greater than or equal to 0")]),
    ({"ordinals": {"start": -1}}, [("spec.ordinals.start", "Invalid value: -1: must be greater than or equal to 0")]),
    ({"selector": {}}, [("spec.selector", "Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
                         "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid "
                         "for statefulset")]),
    ({"selector": {"matchLabels": {"app": "db"}}},
     [("spec.template.metadata.labels",
       'Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`')]),
], ids=["ok", "ok-parallel-ordinals", "bad-policy", "bad-strategy", "ondelete-with-rolling",
        "negative-partition", "bad-retention", "negative-replicas", "negative-min-ready",
        "negative-start", "empty-selector", "selector-mismatch"])
def test_validation(spec: dict[str, Any], wanted: list[tuple[str, str]]) -> None:
    got = [(c.field, c.message) for c in validate_statefulset(defaulted(sts(**spec)), None)]
    assert got == wanted


@pytest.mark.parametrize(("template_spec", "wanted"), [
    ({"restartPolicy": "Never"}, [("spec.template.spec.restartPolicy",
                                   'Unsupported value: "Never": supported values: "Always"')]),
    ({"activeDeadlineSeconds": 5}, [("spec.template.spec.activeDeadlineSeconds",
                                     "Forbidden: activeDeadlineSeconds in StatefulSet is not Supported")]),
], ids=["restart-never", "active-deadline"])
def test_template_rules(template_spec: dict[str, Any], wanted: list[tuple[str, str]]) -> None:
    obj = sts()
    obj["spec"]["template"]["spec"].update(template_spec)
    got = [(c.field, c.message) for c in validate_statefulset(defaulted(obj), None)]
    assert got == wanted


@pytest.mark.parametrize(("change", "forbidden"), [
    ({"replicas": 5}, False),
    ({"updateStrategy": {"type": "OnDelete"}}, False),
    ({"minReadySeconds": 10}, False),
    ({"ordinals": {"start": 3}}, False),
    ({"persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Delete"}}, False),
    ({"template": {"metadata": {"labels": {"app": "web"}},
                   "spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}}, False),
    ({"serviceName": "other"}, True),
    ({"podManagementPolicy": "Parallel"}, True),
    ({"revisionHistoryLimit": 3}, True),
    ({"volumeClaimTemplates": [{"metadata": {"name": "data"}}]}, True),
    ({"selector": {"matchLabels": {"app": "web"}, "matchExpressions": []}}, False),
], ids=["replicas", "strategy", "min-ready", "ordinals", "retention", "template", "service-name",
        "policy", "history-limit", "claim-templates", "empty-list-is-unset"])
def test_update_changes_only_the_mutable_fields(change: dict[str, Any], forbidden: bool) -> None:
    old = defaulted(sts())
    new = defaulted(sts(**change))
    got = [(c.field, c.message) for c in validate_statefulset(new, old)]
    assert got == ([("spec", FORBIDDEN_UPDATE)] if forbidden else [])


def test_forbidden_update_reads_as_kubes() -> None:
    assert FORBIDDEN_UPDATE == (
        "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', "
        "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and "
        "'minReadySeconds' are forbidden")


@pytest.mark.parametrize(("status", "old_status", "wanted"), [
    ({"replicas": 3, "readyReplicas": 3, "availableReplicas": 2, "collisionCount": 1}, {}, []),
    ({"replicas": -1}, {}, [("status.replicas", "Invalid value: -1: must be greater than or equal to 0")]
     + [(f"status.{n}", "Invalid value: 0: cannot be greater than status.replicas")
        for n in ("readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas")]),
    ({"replicas": 1, "readyReplicas": 2, "availableReplicas": 1},
     {}, [("status.readyReplicas", "Invalid value: 2: cannot be greater than status.replicas")]),
    ({"replicas": 2, "readyReplicas": 1, "availableReplicas": 2},
     {}, [("status.availableReplicas", "Invalid value: 2: cannot be greater than status.readyReplicas")]),
    ({"replicas": 0, "collisionCount": 1}, {"collisionCount": 2},
     [("status.collisionCount", "Invalid value: 1: cannot be decremented")]),
], ids=["ok", "negative", "ready-above-replicas", "available-above-ready", "collisions-decremented"])
def test_status_validation(status: dict[str, Any], old_status: dict[str, Any],
                           wanted: list[tuple[str, str]]) -> None:
    old = {**sts(), "status": old_status}
    got = [(c.field, c.message) for c in validate_statefulset_status({**sts(), "status": status}, old)]
    assert got == wanted


def test_served_as_sts_in_all_with_status_and_scale() -> None:
    rt = R.lookup("sts")
    assert rt is R.STATEFULSETS and rt.api_version == "apps/v1" and rt.namespaced
    assert R.by_path("apps", "v1", "statefulsets") is rt
    assert "all" in rt.categories and {"status", "scale"} <= set(rt.subresources)
    assert rt.name_rule("web.v1")  # a DNS label, as kube's ValidateStatefulSetName


def test_unknown_fields_are_reported_and_real_fields_are_not() -> None:
    obj = sts(volumeClaimTemplates=[{"metadata": {"name": "data"},
                                     "spec": {"accessModes": ["ReadWriteOnce"]}}],
              ordinals={"start": 1}, updateStrategy={"type": "RollingUpdate",
                                                     "rollingUpdate": {"partition": 1, "maxUnavailable": 1}})
    assert unknown_fields(R.STATEFULSETS.model, obj) == []
    obj["spec"]["updateStrategy"]["rollingUpdate"]["partitoin"] = 2
    assert unknown_fields(R.STATEFULSETS.model, obj) == ["spec.updateStrategy.rollingUpdate.partitoin"]


def test_printed_columns() -> None:
    now = datetime(2026, 1, 1, 0, 10, tzinfo=UTC)
    obj = defaulted(sts(replicas=3))
    obj["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    obj["status"] = {"replicas": 3, "readyReplicas": 2}
    assert render_text("StatefulSet", [obj], now=now).splitlines() == [
        "NAME   READY   AGE",
        "web    2/3     10m",
    ]
    assert render_text("StatefulSet", [obj], now=now, wide=True).splitlines() == [
        "NAME   READY   AGE   CONTAINERS   IMAGES",
        "web    2/3     10m   c            nginx",
    ]
