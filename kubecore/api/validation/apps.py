"""apps/v1 validation: Deployment and ReplicaSet share their rules (replicas, the selector that
must match the template's labels, the pod template's spec); DaemonSet adds its update strategy
(exactly one of maxUnavailable and maxSurge) and pods that always restart."""
from __future__ import annotations

from typing import Any

from kubecore.api.errors import Cause
from kubecore.api.selectors import labels_match, selector_from_label_selector
from kubecore.api.types import Obj, nested
from kubecore.api.validation.core import pod_spec_causes, uses_relaxed_env_names
from kubecore.api.validation.meta import label_map_causes

NOT_NEGATIVE = ("minReadySeconds", "revisionHistoryLimit", "progressDeadlineSeconds")


def validate_workload(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = obj.get("spec") or {}
    selector = spec.get("selector") or {}
    causes = _counts_causes(spec)
    causes += _selector_causes(selector, nested(spec, "template", "metadata", "labels") or {})
    old_template = nested(old, "spec", "template", "spec") if old is not None else None
    causes += pod_spec_causes(nested(spec, "template", "spec") or {}, "spec.template.spec",
                              relaxed_env=uses_relaxed_env_names(old_template))
    if old is not None and (old.get("spec") or {}).get("selector") != selector:
        causes.append(Cause("spec.selector", "Invalid value: field is immutable"))
    return causes


validate_deployment = validate_workload
validate_replicaset = validate_workload


def _counts_causes(spec: Obj) -> list[Cause]:
    """replicas and the durations: none negative, the deadline beyond minReadySeconds."""
    causes: list[Cause] = []
    for name, value in [("replicas", spec.get("replicas", 1))] + [(n, spec.get(n)) for n in NOT_NEGATIVE]:
        if isinstance(value, int) and value < 0:
            causes.append(Cause(f"spec.{name}", f"Invalid value: {value}: must be greater than or "
                                "equal to 0"))
    deadline, min_ready = spec.get("progressDeadlineSeconds"), spec.get("minReadySeconds") or 0
    if isinstance(deadline, int) and isinstance(min_ready, int) and 0 <= deadline <= min_ready:
        causes.append(Cause("spec.progressDeadlineSeconds", f"Invalid value: {deadline}: must be "
                            "greater than minReadySeconds"))
    return causes


def _selector_causes(selector: Obj, template_labels: Any) -> list[Cause]:
    """The selector is required, and must select the pods the template makes."""
    if not (selector.get("matchLabels") or selector.get("matchExpressions")):
        return [Cause("spec.selector", "Required value", "FieldValueRequired")]
    causes = label_map_causes("spec.selector.matchLabels", selector.get("matchLabels"))
    try:
        ok = labels_match(selector_from_label_selector(selector), template_labels)
    except KeyError:
        ok = False
        causes.append(Cause("spec.selector.matchExpressions", "Invalid value: unknown operator"))
    if not ok:
        causes.append(Cause("spec.template.metadata.labels", f"Invalid value: {template_labels}: "
                            "`selector` does not match template `labels`"))
    return causes


def validate_controllerrevision(obj: Obj, old: Obj | None) -> list[Cause]:
    """kube's ValidateControllerRevision(Update): data is required and never changes,
    revision is not negative."""
    causes: list[Cause] = []
    if obj.get("data") is None:
        causes.append(Cause("data", "Required value", "FieldValueRequired"))
    revision = obj.get("revision")
    if isinstance(revision, int) and revision < 0:
        causes.append(Cause("revision", f"Invalid value: {revision}: must be greater than or "
                            "equal to 0"))
    if old is not None and obj.get("data") != old.get("data"):
        causes.append(Cause("data", "Invalid value: field is immutable"))
    return causes


# --- DaemonSet ---------------------------------------------------------------------------------

_PERCENT_MESSAGE = ("a valid percent string must be a numeric string followed by an ending '%' "
                    "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')")


def _intstr_repr(value: Any) -> str:
    """How kube prints an IntOrString in a field error: Go's %#v of the struct."""
    if isinstance(value, str):
        return f'intstr.IntOrString{{Type:1, IntVal:0, StrVal:"{value}"}}'
    return f'intstr.IntOrString{{Type:0, IntVal:{value}, StrVal:""}}'


def _percent(value: Any) -> int | None:
    if isinstance(value, str) and len(value) > 1 and value.endswith("%") and value[:-1].isdigit():
        return int(value[:-1])
    return None


def _int_or_percent_value(value: Any) -> int:
    """getIntOrPercentValue: the number of a percent, the int itself; anything else is 0."""
    percent = _percent(value)
    if percent is not None:
        return percent
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _positive_int_or_percent(value: Any, path: str) -> list[Cause]:
    """ValidatePositiveIntOrPercent and IsNotMoreThan100Percent, for one field."""
    if isinstance(value, str):
        if _percent(value) is None:
            return [Cause(path, f"Invalid value: {_intstr_repr(value)}: {_PERCENT_MESSAGE}")]
        if (_percent(value) or 0) > 100:
            return [Cause(path, f"Invalid value: {_intstr_repr(value)}: must not be greater than 100%")]
    elif isinstance(value, int) and value < 0:
        return [Cause(path, f"Invalid value: {value}: must be greater than or equal to 0")]
    return []


def _daemonset_strategy_causes(strategy: Obj) -> list[Cause]:
    """ValidateDaemonSetUpdateStrategy: OnDelete, or RollingUpdate where exactly one of
    maxUnavailable and maxSurge is not zero."""
    path = "spec.updateStrategy"
    stype = strategy.get("type")
    if stype == "OnDelete":
        return []
    if stype != "RollingUpdate":
        return [Cause(path, f'Unsupported value: apps.DaemonSetUpdateStrategy{{Type:"{stype or ""}", '
                      'RollingUpdate:(*apps.RollingUpdateDaemonSet)(nil)}: supported values: '
                      '"RollingUpdate", "OnDelete"', "FieldValueNotSupported")]
    ru = strategy.get("rollingUpdate")
    if not isinstance(ru, dict):
        return [Cause(f"{path}.rollingUpdate", "Required value", "FieldValueRequired")]
    unavailable, surge = ru.get("maxUnavailable"), ru.get("maxSurge")
    causes = _positive_int_or_percent(unavailable, f"{path}.rollingUpdate.maxUnavailable")
    causes += _positive_int_or_percent(surge, f"{path}.rollingUpdate.maxSurge")
    has_unavailable = _int_or_percent_value(unavailable) != 0
    has_surge = _int_or_percent_value(surge) != 0
    if has_unavailable and has_surge:
        shown = _intstr_repr(surge)
        causes.append(Cause(f"{path}.rollingUpdate.maxSurge", f"Invalid value: {shown}: may not be "
                            "set when maxUnavailable is non-zero"))
    elif not has_unavailable and not has_surge:
        causes.append(Cause(f"{path}.rollingUpdate.maxUnavailable", "Required value: cannot be 0 "
                            "when maxSurge is 0", "FieldValueRequired"))
    return causes


def validate_daemonset(obj: Obj, old: Obj | None) -> list[Cause]:
    """ValidateDaemonSet(Update): the selector (required, not empty, immutable) matches the
    template, whose pods always restart and have no deadline; the update strategy's budget."""
    spec = obj.get("spec") or {}
    selector = spec.get("selector") or {}
    template_spec = nested(spec, "template", "spec") or {}
    if selector.get("matchLabels") or selector.get("matchExpressions"):
        causes = _selector_causes(selector, nested(spec, "template", "metadata", "labels") or {})
    else:
        causes = [Cause("spec.selector", "Invalid value: v1.LabelSelector{MatchLabels:map[string]"
                        "string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty "
                        "selector is invalid for daemonset")]
    old_template = nested(old, "spec", "template", "spec") if old is not None else None
    causes += pod_spec_causes(template_spec, "spec.template.spec",
                              relaxed_env=uses_relaxed_env_names(old_template))
    restart = template_spec.get("restartPolicy", "Always")
    if restart != "Always":
        causes.append(Cause("spec.template.spec.restartPolicy", f'Unsupported value: "{restart}": '
                            'supported values: "Always"', "FieldValueNotSupported"))
    if template_spec.get("activeDeadlineSeconds") is not None:
        causes.append(Cause("spec.template.spec.activeDeadlineSeconds", "Forbidden: "
                            "activeDeadlineSeconds in DaemonSet is not Supported",
                            "FieldValueForbidden"))
    for name in ("minReadySeconds", "revisionHistoryLimit"):
        value = spec.get(name)
        if isinstance(value, int) and value < 0:
            causes.append(Cause(f"spec.{name}", f"Invalid value: {value}: must be greater than or "
                                "equal to 0"))
    causes += _daemonset_strategy_causes(spec.get("updateStrategy") or {})
    if old is not None and (old.get("spec") or {}).get("selector") != selector:
        causes.append(Cause("spec.selector", "Invalid value: field is immutable"))
    return causes


_DAEMONSET_COUNTS = ("currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled",
                     "numberReady", "observedGeneration", "updatedNumberScheduled",
                     "numberAvailable", "numberUnavailable", "collisionCount")


def validate_daemonset_status(obj: Obj, old: Obj | None) -> list[Cause]:
    """ValidateDaemonSetStatusUpdate: no count is negative, collisionCount never goes down."""
    status = obj.get("status") or {}
    causes: list[Cause] = []
    for name in _DAEMONSET_COUNTS:
        value = status.get(name)
        if isinstance(value, int) and value < 0:
            causes.append(Cause(f"status.{name}", f"Invalid value: {value}: must be greater than "
                                "or equal to 0"))
    before = nested(old, "status", "collisionCount") if old is not None else None
    after = status.get("collisionCount")
    if isinstance(before, int) and (not isinstance(after, int) or after < before):
        causes.append(Cause("status.collisionCount", f"Invalid value: {after or 0}: cannot be "
                            "decremented"))
    return causes
