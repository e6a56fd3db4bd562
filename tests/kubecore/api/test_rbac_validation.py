"""rbac.authorization.k8s.io/v1 validation and defaults as tables, in kube's words
(pkg/apis/rbac/validation): rules, subjects, roleRef and its immutability, the names."""
from __future__ import annotations

import pytest

from kubecore.api import formats
from kubecore.api import resources as R
from kubecore.api.types import Obj

G = "rbac.authorization.k8s.io"
REQUIRED, INVALID, UNSUPPORTED = "FieldValueRequired", "FieldValueInvalid", "FieldValueNotSupported"


def causes(rt: R.ResourceType, obj: Obj, old: Obj | None = None) -> list[tuple[str, str, str]]:
    return [(c.field, c.message, c.reason) for c in rt.validate(obj, old)]


def role(*rules: Obj) -> Obj:
    return {"metadata": {"name": "r", "namespace": "team"}, "rules": list(rules)}


def binding(ref: Obj | None = None, *subjects: Obj) -> Obj:
    obj: Obj = {"metadata": {"name": "b"}, "subjects": list(subjects)}
    if ref is not None:
        obj["roleRef"] = ref
    return obj


REF = {"apiGroup": G, "kind": "ClusterRole", "name": "view"}


@pytest.mark.parametrize("rt, obj, expected", [
    (R.ROLES, role({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}), []),
    (R.ROLES, role({"apiGroups": [""], "resources": ["pods"]}),
     [("rules[0].verbs", "Required value: verbs must contain at least one value", REQUIRED)]),
    (R.ROLES, role({"verbs": ["get"]}),
     [("rules[0].apiGroups", "Required value: resource rules must supply at least one api group", REQUIRED),
      ("rules[0].resources", "Required value: resource rules must supply at least one resource", REQUIRED)]),
    (R.ROLES, role({"verbs": ["get"], "nonResourceURLs": ["/healthz"]}),
     [("rules[0].nonResourceURLs", 'Invalid value: []string{"/healthz"}: namespaced rules cannot apply '
       "to non-resource URLs", INVALID)]),
    (R.CLUSTERROLES, role({"verbs": ["get"], "nonResourceURLs": ["/healthz", "/logs/*"]}), []),
    (R.CLUSTERROLES, role({"verbs": ["get"], "nonResourceURLs": ["/x"], "resources": ["pods"]}),
     [("rules[0].nonResourceURLs", 'Invalid value: []string{"/x"}: rules cannot apply to both regular '
       "resources and non-resource URLs", INVALID)]),
    (R.CLUSTERROLES, {"metadata": {"name": "agg"}, "aggregationRule": {}},
     [("aggregationRule.clusterRoleSelectors", "Required value: at least one clusterRoleSelector "
       "required if aggregationRule is non-nil", REQUIRED)]),
    (R.CLUSTERROLES, {"metadata": {"name": "agg"}, "aggregationRule": {"clusterRoleSelectors": [
        {"matchLabels": {"example.com/agg": "true"}}]}}, []),
    (R.ROLEBINDINGS, binding(REF, {"kind": "User", "apiGroup": G, "name": "jane"},
                             {"kind": "ServiceAccount", "name": "default"}), []),
    (R.ROLEBINDINGS, binding(None),
     [("roleRef.apiGroup", f'Unsupported value: "": supported values: "{G}"', UNSUPPORTED),
      ("roleRef.kind", 'Unsupported value: "": supported values: "Role", "ClusterRole"', UNSUPPORTED),
      ("roleRef.name", "Required value", REQUIRED)]),
    (R.ROLEBINDINGS, binding({**REF, "kind": "Thing", "name": "a/b"}),
     [("roleRef.kind", 'Unsupported value: "Thing": supported values: "Role", "ClusterRole"', UNSUPPORTED),
      ("roleRef.name", "Invalid value: \"a/b\": may not contain '/'", INVALID)]),
    (R.CLUSTERROLEBINDINGS, binding({**REF, "kind": "Role"}),
     [("roleRef.kind", 'Unsupported value: "Role": supported values: "ClusterRole"', UNSUPPORTED)]),
    (R.CLUSTERROLEBINDINGS, binding(REF, {"kind": "ServiceAccount", "name": "default"}),
     [("subjects[0].namespace", "Required value", REQUIRED)]),
    (R.ROLEBINDINGS, binding(REF, {"kind": "ServiceAccount", "name": "Bad_Name", "apiGroup": G}),
     [("subjects[0].name", 'Invalid value: "Bad_Name": ' + formats.dns1123_subdomain_errors("Bad_Name")[0], INVALID),
      ("subjects[0].apiGroup", f'Unsupported value: "{G}": supported values: ""', UNSUPPORTED)]),
    (R.ROLEBINDINGS, binding(REF, {"kind": "User", "name": "jane", "apiGroup": "example.com"}),
     [("subjects[0].apiGroup", f'Unsupported value: "example.com": supported values: "{G}"', UNSUPPORTED)]),
    (R.ROLEBINDINGS, binding(REF, {"kind": "Robot", "name": "r2"}, {"kind": "Group"}),
     [("subjects[0].kind", 'Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group"',
       UNSUPPORTED),
      ("subjects[1].name", "Required value", REQUIRED),
      ("subjects[1].apiGroup", f'Unsupported value: "": supported values: "{G}"', UNSUPPORTED)]),
], ids=["role", "no verbs", "no groups or resources", "urls in a Role", "urls in a ClusterRole",
        "urls and resources", "empty aggregation", "aggregation", "binding", "no roleRef",
        "bad roleRef", "cluster binding to a Role", "cluster binding SA without namespace",
        "SA name and group", "user group", "unknown kind, no name"])
def test_validation(rt, obj, expected) -> None:
    assert causes(rt, obj) == expected


def test_role_ref_cannot_change() -> None:
    old = binding(REF)
    assert causes(R.ROLEBINDINGS, binding({**REF, "name": "edit"}), old) == [
        ("roleRef", f'Invalid value: rbac.RoleRef{{APIGroup:"{G}", Kind:"ClusterRole", Name:"edit"}}: '
         "cannot change roleRef", INVALID)]
    assert causes(R.ROLEBINDINGS, binding(REF, {"kind": "User", "apiGroup": G, "name": "x"}), old) == []


def test_defaults_fill_the_rbac_group_of_role_refs_and_users() -> None:
    obj = binding({"kind": "ClusterRole", "name": "view"}, {"kind": "User", "name": "jane"},
                  {"kind": "Group", "name": "devs"}, {"kind": "ServiceAccount", "name": "default"})
    R.ROLEBINDINGS.default(obj)
    assert obj["roleRef"]["apiGroup"] == G
    assert [s.get("apiGroup") for s in obj["subjects"]] == [G, G, None]


@pytest.mark.parametrize("name, errors", [
    ("system:node", []), ("system:controller:gc", []), (".", ["may not be '.'"]),
    ("..", ["may not be '..'"]), ("a/b%c", ["may not contain '/'", "may not contain '%'"]),
], ids=["colon", "colons", "dot", "dotdot", "slash and percent"])
def test_rbac_names_are_path_segments(name, errors) -> None:
    assert R.CLUSTERROLES.name_rule(name) == errors
