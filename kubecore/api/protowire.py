"""Request bodies in Kubernetes' protobuf encoding, for the kinds clients only ever send that
way. kubectl's typed clients (`auth can-i`, `auth whoami`, `create role`, `create
rolebinding`, ...) post `application/vnd.kubernetes.protobuf` and do not fall back to JSON.

The encoding is the magic `k8s\\0` and a `runtime.Unknown` (its TypeMeta, then the object's
own message as bytes); each message is protobuf's wire format with the field numbers of the
types' `generated.proto`. `decode` reads the kinds listed in `SCHEMAS` into the JSON form the
rest of the server works on; anything else is refused (None), and the server answers 415 as
before. Only decoding: the server answers in JSON, which every client reads.
"""
from __future__ import annotations

from typing import Any

MAGIC = b"k8s\x00"

# A field: (JSON name, kind); kind is "string", "int", "bool", "strings" (repeated string),
# "map" (map<string,string>), "extra" (map<string, repeated string>), or a message name,
# "[]" + message name for repeated messages.
Field = tuple[str, str]
SCHEMAS: dict[str, dict[int, Field]] = {
    "Unknown": {1: ("typeMeta", "TypeMeta"), 2: ("raw", "bytes"), 3: ("contentEncoding", "string"),
                4: ("contentType", "string")},
    "TypeMeta": {1: ("apiVersion", "string"), 2: ("kind", "string")},
    "ObjectMeta": {1: ("name", "string"), 2: ("generateName", "string"), 3: ("namespace", "string"),
                   5: ("uid", "string"), 6: ("resourceVersion", "string"), 7: ("generation", "int"),
                   11: ("labels", "map"), 12: ("annotations", "map"),
                   13: ("ownerReferences", "[]OwnerReference"), 14: ("finalizers", "strings")},
    "OwnerReference": {5: ("apiVersion", "string"), 1: ("kind", "string"), 3: ("name", "string"),
                       4: ("uid", "string"), 6: ("controller", "bool"), 7: ("blockOwnerDeletion", "bool")},
    # authorization.k8s.io/v1, authentication.k8s.io/v1
    "ResourceAttributes": {1: ("namespace", "string"), 2: ("verb", "string"), 3: ("group", "string"),
                           4: ("version", "string"), 5: ("resource", "string"),
                           6: ("subresource", "string"), 7: ("name", "string")},
    "NonResourceAttributes": {1: ("path", "string"), 2: ("verb", "string")},
    "SubjectAccessReviewSpec": {1: ("resourceAttributes", "ResourceAttributes"),
                                2: ("nonResourceAttributes", "NonResourceAttributes"),
                                3: ("user", "string"), 4: ("groups", "strings"),
                                5: ("extra", "extra"), 6: ("uid", "string")},
    "SubjectAccessReview": {1: ("metadata", "ObjectMeta"), 2: ("spec", "SubjectAccessReviewSpec")},
    "SelfSubjectAccessReviewSpec": {1: ("resourceAttributes", "ResourceAttributes"),
                                    2: ("nonResourceAttributes", "NonResourceAttributes")},
    "SelfSubjectAccessReview": {1: ("metadata", "ObjectMeta"), 2: ("spec", "SelfSubjectAccessReviewSpec")},
    "SelfSubjectRulesReviewSpec": {1: ("namespace", "string")},
    "SelfSubjectRulesReview": {1: ("metadata", "ObjectMeta"), 2: ("spec", "SelfSubjectRulesReviewSpec")},
    "SelfSubjectReview": {1: ("metadata", "ObjectMeta")},
    # rbac.authorization.k8s.io/v1
    "PolicyRule": {1: ("verbs", "strings"), 2: ("apiGroups", "strings"), 3: ("resources", "strings"),
                   4: ("resourceNames", "strings"), 5: ("nonResourceURLs", "strings")},
    "Subject": {1: ("kind", "string"), 2: ("apiGroup", "string"), 3: ("name", "string"),
                4: ("namespace", "string")},
    "RoleRef": {1: ("apiGroup", "string"), 2: ("kind", "string"), 3: ("name", "string")},
    "LabelSelectorRequirement": {1: ("key", "string"), 2: ("operator", "string"), 3: ("values", "strings")},
    "LabelSelector": {1: ("matchLabels", "map"), 2: ("matchExpressions", "[]LabelSelectorRequirement")},
    "AggregationRule": {1: ("clusterRoleSelectors", "[]LabelSelector")},
    "Role": {1: ("metadata", "ObjectMeta"), 2: ("rules", "[]PolicyRule")},
    "ClusterRole": {1: ("metadata", "ObjectMeta"), 2: ("rules", "[]PolicyRule"),
                    3: ("aggregationRule", "AggregationRule")},
    "RoleBinding": {1: ("metadata", "ObjectMeta"), 2: ("subjects", "[]Subject"), 3: ("roleRef", "RoleRef")},
    "ClusterRoleBinding": {1: ("metadata", "ObjectMeta"), 2: ("subjects", "[]Subject"),
                           3: ("roleRef", "RoleRef")},
}
# The kinds a request body may be, by apiVersion and kind.
TOP_LEVEL: dict[tuple[str, str], str] = {
    ("authorization.k8s.io/v1", "SubjectAccessReview"): "SubjectAccessReview",
    ("authorization.k8s.io/v1", "LocalSubjectAccessReview"): "SubjectAccessReview",
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): "SelfSubjectAccessReview",
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview"): "SelfSubjectRulesReview",
    ("authentication.k8s.io/v1", "SelfSubjectReview"): "SelfSubjectReview",
    **{("rbac.authorization.k8s.io/v1", k): k for k in ("Role", "ClusterRole", "RoleBinding",
                                                         "ClusterRoleBinding")},
}


class ProtobufError(ValueError):
    pass


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def fields(data: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, value) in order: ints for varints, bytes for the rest."""
    out: list[tuple[int, int, Any]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: Any
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise ProtobufError("truncated field")
            value, pos = data[pos:pos + size], pos + size
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            value, pos = data[pos:pos + width], pos + width
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        out.append((number, wire, value))
    return out


def _text(value: Any) -> str:
    if not isinstance(value, bytes):
        raise ProtobufError("expected a string")
    return value.decode("utf-8")


def _map_entry(value: bytes) -> tuple[str, Any]:
    key, vals = "", []
    for number, _, v in fields(value):
        if number == 1:
            key = _text(v)
        elif number == 2:
            vals.append(v)
    return key, vals


def _put(out: dict[str, Any], name: str, kind: str, value: Any) -> None:
    if kind == "string":
        out[name] = _text(value)
    elif kind == "bytes":
        out[name] = value
    elif kind in ("int", "bool"):
        out[name] = bool(value) if kind == "bool" else value
    elif kind == "strings":
        out.setdefault(name, []).append(_text(value))
    elif kind == "map":
        key, vals = _map_entry(value)
        out.setdefault(name, {})[key] = _text(vals[0]) if vals else ""
    elif kind == "extra":
        key, vals = _map_entry(value)
        items = [_text(item) for v in vals for n, _, item in fields(v) if n == 1]
        out.setdefault(name, {})[key] = items
    elif kind.startswith("[]"):
        out.setdefault(name, []).append(message(kind[2:], value))
    else:
        out[name] = message(kind, value)


def message(schema: str, data: bytes) -> dict[str, Any]:
    """One message as JSON; fields the schema does not name are skipped."""
    known = SCHEMAS[schema]
    out: dict[str, Any] = {}
    for number, _, value in fields(data):
        if number in known:
            name, kind = known[number]
            _put(out, name, kind, value)
    return out


def decode(raw: bytes) -> dict[str, Any] | None:
    """The object of a protobuf request body, or None for a kind this module does not read."""
    if not raw.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf magic number")
    unknown = message("Unknown", raw[len(MAGIC):])
    type_meta = unknown.get("typeMeta") or {}
    api_version, kind = type_meta.get("apiVersion", ""), type_meta.get("kind", "")
    schema = TOP_LEVEL.get((api_version, kind))
    if schema is None:
        return None
    obj = message(schema, unknown.get("raw", b""))
    return {"apiVersion": api_version, "kind": kind, **obj}
