"""Protobuf request bodies (kubectl's typed clients): the kinds listed decode to their JSON form,
field numbers as the types' generated.proto; other kinds are left to a 415; bad bytes are an
error, never a crash."""
from __future__ import annotations

import pytest

from kubecore.api import protowire


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, value: bytes | str) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(data)) + data


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = field(1, api_version) + field(2, kind)
    return protowire.MAGIC + field(1, type_meta) + field(2, raw) + field(4, "application/vnd.kubernetes.protobuf")


def test_a_role_binding() -> None:
    meta = field(1, "jane-edit") + field(3, "default") + field(11, field(1, "team") + field(2, "a"))
    subject = field(1, "User") + field(2, "rbac.authorization.k8s.io") + field(3, "jane")
    sa = field(1, "ServiceAccount") + field(3, "builder") + field(4, "ci")
    ref = field(1, "rbac.authorization.k8s.io") + field(2, "ClusterRole") + field(3, "edit")
    raw = field(1, meta) + field(2, subject) + field(2, sa) + field(3, ref)
    assert protowire.decode(envelope("rbac.authorization.k8s.io/v1", "RoleBinding", raw)) == {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "jane-edit", "namespace": "default", "labels": {"team": "a"}},
        "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "jane"},
                     {"kind": "ServiceAccount", "name": "builder", "namespace": "ci"}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"}}


def test_a_cluster_role_with_rules() -> None:
    rule = field(1, "get") + field(1, "list") + field(2, "") + field(3, "pods")
    url_rule = field(1, "get") + field(5, "/healthz")
    raw = field(1, field(1, "reader")) + field(2, rule) + field(2, url_rule)
    assert protowire.decode(envelope("rbac.authorization.k8s.io/v1", "ClusterRole", raw))["rules"] == [
        {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]},
        {"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]


def test_a_subject_access_review_with_extra() -> None:
    attrs = field(1, "team") + field(2, "list") + field(5, "pods")
    extra = field(1, "scopes") + field(2, field(1, "a") + field(1, "b"))
    spec = field(1, attrs) + field(3, "jane") + field(4, "devs") + field(5, extra) + field(6, "u-1")
    assert protowire.decode(envelope("authorization.k8s.io/v1", "SubjectAccessReview", field(2, spec))) == {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"resourceAttributes": {"namespace": "team", "verb": "list", "resource": "pods"},
                 "user": "jane", "groups": ["devs"], "extra": {"scopes": ["a", "b"]}, "uid": "u-1"}}


def test_metadata_keeps_owner_references_and_versions() -> None:
    owner = field(1, "Deployment") + field(3, "web") + field(4, "u-1") + field(5, "apps/v1") + \
        varint(6 << 3) + varint(1)
    meta = field(1, "r") + field(6, "42") + varint(7 << 3) + varint(3) + field(13, owner) + field(14, "f")
    role = protowire.decode(envelope("rbac.authorization.k8s.io/v1", "Role", field(1, meta)))
    assert role == {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {
        "name": "r", "resourceVersion": "42", "generation": 3, "finalizers": ["f"],
        "ownerReferences": [{"kind": "Deployment", "name": "web", "uid": "u-1", "apiVersion": "apps/v1",
                             "controller": True}]}}


def test_other_kinds_are_not_read() -> None:
    assert protowire.decode(envelope("v1", "Pod", field(1, field(1, "p")))) is None


@pytest.mark.parametrize("raw", [b"", b"k8s", b"{}", protowire.MAGIC + b"\x0a\x05ab",
                                 protowire.MAGIC + b"\x0b"], ids=["empty", "short magic", "json",
                                                                  "truncated", "group wire type"])
def test_bad_bytes_are_an_error(raw: bytes) -> None:
    with pytest.raises(protowire.ProtobufError):
        protowire.decode(raw)
