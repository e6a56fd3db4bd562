"""rbac.authorization.k8s.io/v1 validation: Role, ClusterRole, RoleBinding, ClusterRoleBinding
(kube's pkg/apis/rbac/validation). A rule names verbs and either resources (with their API
groups) or non-resource URLs, never both, and only a ClusterRole's rules may name URLs; a
binding's roleRef is required and cannot change; each subject is a User, Group or
ServiceAccount, the last with a namespace unless the binding's own."""
from __future__ import annotations

from typing import Any

from kubecore.api import formats as f
from kubecore.api.errors import Cause
from kubecore.api.types import Obj
from kubecore.api.validation.meta import label_map_causes

GROUP = "rbac.authorization.k8s.io"
SUBJECT_KINDS = ("ServiceAccount", "User", "Group")


def go_value(value: Any) -> str:
    """A value as kube's field errors print it (Go's %q for strings, %#v for lists)."""
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[]string{" + ", ".join(f'"{v}"' for v in value) + "}"
    return str(value)


def _unsupported(path: str, value: Any, supported: tuple[str, ...]) -> Cause:
    listed = ", ".join(f'"{s}"' for s in supported)
    return Cause(path, f'Unsupported value: "{value or ""}": supported values: {listed}',
                 "FieldValueNotSupported")


def _required(path: str, detail: str = "") -> Cause:
    return Cause(path, "Required value" + (f": {detail}" if detail else ""), "FieldValueRequired")


def policy_rule_causes(rule: Any, path: str, *, namespaced: bool) -> list[Cause]:
    """kube's ValidatePolicyRule."""
    if not isinstance(rule, dict):
        return [Cause(path, "Invalid value: must be an object")]
    causes: list[Cause] = []
    if not rule.get("verbs"):
        causes.append(_required(f"{path}.verbs", "verbs must contain at least one value"))
    urls = rule.get("nonResourceURLs") or []
    if urls:
        shown = go_value(urls)
        if namespaced:
            causes.append(Cause(f"{path}.nonResourceURLs", f"Invalid value: {shown}: namespaced "
                                "rules cannot apply to non-resource URLs"))
        if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
            causes.append(Cause(f"{path}.nonResourceURLs", f"Invalid value: {shown}: rules cannot "
                                "apply to both regular resources and non-resource URLs"))
        return causes
    if not rule.get("apiGroups"):
        causes.append(_required(f"{path}.apiGroups", "resource rules must supply at least one api group"))
    if not rule.get("resources"):
        causes.append(_required(f"{path}.resources", "resource rules must supply at least one resource"))
    return causes


def _rules_causes(obj: Obj, *, namespaced: bool) -> list[Cause]:
    causes: list[Cause] = []
    for i, rule in enumerate(obj.get("rules") or []):
        causes += policy_rule_causes(rule, f"rules[{i}]", namespaced=namespaced)
    return causes


def validate_role(obj: Obj, old: Obj | None) -> list[Cause]:
    return _rules_causes(obj, namespaced=True)


def validate_clusterrole(obj: Obj, old: Obj | None) -> list[Cause]:
    causes = _rules_causes(obj, namespaced=False)
    aggregation = obj.get("aggregationRule")
    if aggregation is None:
        return causes
    selectors = (aggregation or {}).get("clusterRoleSelectors") or []
    if not selectors:
        causes.append(_required("aggregationRule.clusterRoleSelectors", "at least one "
                                "clusterRoleSelector required if aggregationRule is non-nil"))
    for i, selector in enumerate(selectors):
        path = f"aggregationRule.clusterRoleSelectors[{i}]"
        causes += label_map_causes(f"{path}.matchLabels", (selector or {}).get("matchLabels"))
    return causes


def subject_causes(subject: Any, path: str, *, namespaced: bool) -> list[Cause]:
    """kube's ValidateRoleBindingSubject."""
    if not isinstance(subject, dict):
        return [Cause(path, "Invalid value: must be an object")]
    causes: list[Cause] = []
    name, kind, group = subject.get("name") or "", subject.get("kind"), subject.get("apiGroup") or ""
    if not name:
        causes.append(_required(f"{path}.name"))
    if kind == "ServiceAccount":
        causes += [Cause(f"{path}.name", f'Invalid value: "{name}": {msg}')
                   for msg in (f.dns1123_subdomain_errors(name) if name else [])]
        if group:
            causes.append(_unsupported(f"{path}.apiGroup", group, ("",)))
        if not namespaced and not subject.get("namespace"):
            causes.append(_required(f"{path}.namespace"))
    elif kind in ("User", "Group"):
        if group != GROUP:
            causes.append(_unsupported(f"{path}.apiGroup", group, (GROUP,)))
    else:
        causes.append(_unsupported(f"{path}.kind", kind, SUBJECT_KINDS))
    return causes


def go_role_ref(ref: Obj) -> str:
    return (f'rbac.RoleRef{{APIGroup:"{ref.get("apiGroup") or ""}", Kind:"{ref.get("kind") or ""}", '
            f'Name:"{ref.get("name") or ""}"}}')


def _binding_causes(obj: Obj, old: Obj | None, *, kinds: tuple[str, ...], namespaced: bool) -> list[Cause]:
    ref = obj.get("roleRef") or {}
    causes: list[Cause] = []
    if ref.get("apiGroup") != GROUP:
        causes.append(_unsupported("roleRef.apiGroup", ref.get("apiGroup"), (GROUP,)))
    if ref.get("kind") not in kinds:
        causes.append(_unsupported("roleRef.kind", ref.get("kind"), kinds))
    name = ref.get("name") or ""
    if not name:
        causes.append(_required("roleRef.name"))
    causes += [Cause("roleRef.name", f'Invalid value: "{name}": {msg}')
               for msg in (f.path_segment_name_errors(name) if name else [])]
    for i, subject in enumerate(obj.get("subjects") or []):
        causes += subject_causes(subject, f"subjects[{i}]", namespaced=namespaced)
    if old is not None:
        old_ref = old.get("roleRef") or {}
        if {k: old_ref.get(k) for k in ("apiGroup", "kind", "name")} != \
                {k: ref.get(k) for k in ("apiGroup", "kind", "name")}:
            causes.append(Cause("roleRef", f"Invalid value: {go_role_ref(ref)}: cannot change roleRef"))
    return causes


def validate_rolebinding(obj: Obj, old: Obj | None) -> list[Cause]:
    return _binding_causes(obj, old, kinds=("Role", "ClusterRole"), namespaced=True)


def validate_clusterrolebinding(obj: Obj, old: Obj | None) -> list[Cause]:
    return _binding_causes(obj, old, kinds=("ClusterRole",), namespaced=False)
