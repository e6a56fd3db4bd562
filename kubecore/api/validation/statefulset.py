"""apps/v1 StatefulSet validation, as kube's ValidateStatefulSet(Update) and
ValidateStatefulSetStatus(Update) in pkg/apis/apps/validation, in their order and words.

Unlike a Deployment's, a StatefulSet's pod template spec is not validated here: kube leaves
it to the pods the controller creates (its ValidatePodTemplateSpecForStatefulSet checks
only the template's labels and annotations), and so does this server. `serviceName` is not
checked either (kube does not): it only has to stay what it was.
"""
from __future__ import annotations

from typing import Any

from kubecore.api import formats as f
from kubecore.api.errors import Cause
from kubecore.api.selectors import labels_match, selector_from_label_selector
from kubecore.api.types import Obj, nested
from kubecore.api.validation.meta import label_map_causes

POD_MANAGEMENT_POLICIES = ("OrderedReady", "Parallel")
RETENTION_POLICIES = ("Retain", "Delete")
# what an update may change in the spec (ValidateStatefulSetUpdate); the rest is fixed
MUTABLE_SPEC_FIELDS = ("replicas", "ordinals", "template", "updateStrategy",
                       "persistentVolumeClaimRetentionPolicy", "minReadySeconds")
FORBIDDEN_UPDATE = ("Forbidden: updates to statefulset spec for fields other than 'replicas', "
                    "'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' "
                    "and 'minReadySeconds' are forbidden")
_GE_ZERO = "must be greater than or equal to 0"


def go_map_text(labels: Any) -> str:
    """A map[string]string as Go's %#v prints it in an Invalid value message (keys sorted)."""
    if not isinstance(labels, dict) or not labels:
        return "map[string]string(nil)"
    body = ", ".join(f"{f.go_quote(str(k))}:{f.go_quote(str(v))}" for k, v in sorted(labels.items()))
    return f"map[string]string{{{body}}}"


def _not_negative(path: str, value: Any) -> list[Cause]:
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        return [Cause(path, f"Invalid value: {value}: {_GE_ZERO}")]
    return []


def validate_statefulset(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes = statefulset_spec_causes(spec)
    if old is not None and _fixed_fields(spec) != _fixed_fields(old.get("spec") or {}):
        causes.append(Cause("spec", FORBIDDEN_UPDATE, "FieldValueForbidden"))
    return causes


def _fixed_fields(spec: Obj) -> Any:
    """The spec without what an update may change; unset, null and empty compare equal (kube
    compares with Semantic.DeepEqual, where a nil and an empty list are the same)."""
    return _semantic({k: v for k, v in spec.items() if k not in MUTABLE_SPEC_FIELDS})


def _semantic(value: Any) -> Any:
    if isinstance(value, dict):
        kept = {k: _semantic(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in (None, [], {}, "")}
    if isinstance(value, list):
        return [_semantic(v) for v in value]
    return value


def statefulset_spec_causes(spec: Obj) -> list[Cause]:
    causes = _policy_causes(spec)
    causes += _update_strategy_causes(spec.get("updateStrategy") or {})
    causes += _retention_causes(spec.get("persistentVolumeClaimRetentionPolicy"))
    causes += _not_negative("spec.replicas", spec.get("replicas"))
    causes += _not_negative("spec.minReadySeconds", spec.get("minReadySeconds"))
    causes += _not_negative("spec.ordinals.start", nested(spec, "ordinals", "start"))
    causes += _selector_and_template_causes(spec.get("selector") or {}, spec.get("template") or {})
    template_spec = nested(spec, "template", "spec") or {}
    restart = template_spec.get("restartPolicy")
    if restart != "Always":
        causes.append(Cause("spec.template.spec.restartPolicy", f"Unsupported value: "
                            f"{f.go_quote(str(restart or ''))}: supported values: \"Always\"",
                            "FieldValueNotSupported"))
    if template_spec.get("activeDeadlineSeconds") is not None:
        causes.append(Cause("spec.template.spec.activeDeadlineSeconds", "Forbidden: "
                            "activeDeadlineSeconds in StatefulSet is not Supported",
                            "FieldValueForbidden"))
    return causes


def _policy_causes(spec: Obj) -> list[Cause]:
    policy = spec.get("podManagementPolicy")
    if not policy:
        return [Cause("spec.podManagementPolicy", "Required value", "FieldValueRequired")]
    if policy not in POD_MANAGEMENT_POLICIES:
        return [Cause("spec.podManagementPolicy", f"Invalid value: {f.go_quote(str(policy))}: "
                      "must be 'OrderedReady' or 'Parallel'")]
    return []


def _update_strategy_causes(strategy: Obj) -> list[Cause]:
    kind, rolling = strategy.get("type"), strategy.get("rollingUpdate")
    path = "spec.updateStrategy"
    if not kind:
        return [Cause(path, "Required value", "FieldValueRequired")]
    if kind == "OnDelete":
        if rolling is not None:
            return [Cause(f"{path}.rollingUpdate", f"Invalid value: {_rolling_text(rolling)}: "
                          "only allowed for updateStrategy 'RollingUpdate'")]
        return []
    if kind == "RollingUpdate":
        if not isinstance(rolling, dict):
            return []
        # maxUnavailable is kube's alpha MaxUnavailableStatefulSet: stored, not acted on
        return _not_negative(f"{path}.rollingUpdate.partition", rolling.get("partition"))
    rolling_text = "nil" if rolling is None else _rolling_text(rolling)
    return [Cause(path, f"Invalid value: apps.StatefulSetUpdateStrategy{{Type:{f.go_quote(str(kind))}, "
                  f"RollingUpdate:{rolling_text}}}: must be 'RollingUpdate' or 'OnDelete'")]


def _rolling_text(rolling: Any) -> str:
    partition = rolling.get("partition", 0) if isinstance(rolling, dict) else 0
    return f"apps.RollingUpdateStatefulSetStrategy{{Partition:{partition}}}"


def _retention_causes(policy: Any) -> list[Cause]:
    if not isinstance(policy, dict):
        return []
    causes = []
    for name in ("whenDeleted", "whenScaled"):
        value = policy.get(name)
        if value not in RETENTION_POLICIES:
            causes.append(Cause(f"spec.persistentVolumeClaimRetentionPolicy.{name}",
                                f"Unsupported value: {f.go_quote(str(value or ''))}: supported "
                                'values: "Retain", "Delete"', "FieldValueNotSupported"))
    return causes


def _selector_and_template_causes(selector: Obj, template: Obj) -> list[Cause]:
    """The selector is required and not empty, and selects the template's labels."""
    if not (selector.get("matchLabels") or selector.get("matchExpressions")):
        return [Cause("spec.selector", "Invalid value: v1.LabelSelector{MatchLabels:map[string]"
                      "string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty "
                      "selector is invalid for statefulset")]
    causes = label_map_causes("spec.selector.matchLabels", selector.get("matchLabels"))
    labels = nested(template, "metadata", "labels") or {}
    try:
        matches = labels_match(selector_from_label_selector(selector), labels)
    except KeyError:
        return causes + [Cause("spec.selector", "Invalid value: unknown operator")]
    if not matches:
        causes.append(Cause("spec.template.metadata.labels", f"Invalid value: {go_map_text(labels)}: "
                            "`selector` does not match template `labels`"))
    # kube's path for the template's labels is spec.template.labels (not .metadata.labels)
    causes += label_map_causes("spec.template.labels", labels)
    return causes


# --- status ------------------------------------------------------------------------------

STATUS_COUNTS = ("replicas", "readyReplicas", "currentReplicas", "updatedReplicas",
                 "availableReplicas", "observedGeneration", "collisionCount")


def validate_statefulset_status(obj: Obj, old: Obj | None) -> list[Cause]:
    """ValidateStatefulSetStatus(Update): counts not negative, none above status.replicas,
    available not above ready, and collisionCount never decremented."""
    status = obj.get("status") or {}
    causes: list[Cause] = []
    for name in STATUS_COUNTS:
        causes += _not_negative(f"status.{name}", status.get(name))
    replicas = _count(status, "replicas")
    for name in ("readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas"):
        value = _count(status, name)
        if value > replicas:
            causes.append(Cause(f"status.{name}", f"Invalid value: {value}: cannot be greater than "
                                "status.replicas"))
    if _count(status, "availableReplicas") > _count(status, "readyReplicas"):
        causes.append(Cause("status.availableReplicas", f"Invalid value: "
                            f"{_count(status, 'availableReplicas')}: cannot be greater than "
                            "status.readyReplicas"))
    if old is not None:
        before = nested(old, "status", "collisionCount")
        after = status.get("collisionCount")
        if isinstance(before, int) and (not isinstance(after, int) or after < before):
            causes.append(Cause("status.collisionCount", f"Invalid value: "
                                f"{after if isinstance(after, int) else 0}: cannot be decremented"))
    return causes


def _count(status: Obj, name: str) -> int:
    value = status.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
