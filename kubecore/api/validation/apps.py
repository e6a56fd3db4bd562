"""apps/v1 validation: Deployment and ReplicaSet share their rules (replicas, the selector that
must match the template's labels, the pod template's spec)."""
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
