"""The OpenAPI v2 document in protobuf: gnostic's `openapi.v2.Document`, the form client-go
asks for (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`).

kubectl up to 1.28 reads only this form before `apply` and `create` (its field validation
checks the PATCH operation of the kind for a `fieldValidation` parameter, and its
client-side apply looks kinds up in it); given a 406, it tries the long-gone
`/swagger-2.0.0.pb-v1` and fails with NotFound. kube-apiserver makes this form from its
JSON document (kube-openapi's `ToProtoBinary`: gnostic's ParseDocument, then
proto.Marshal); this module does the same for the parts of a document `openapi.py` writes:
operations with their parameters, responses and vendor extensions, no schemas.

Field numbers are those of gnostic's OpenAPIv2.proto; fields are written in number order,
as Go's proto.Marshal writes them. Vendor extension values are YAML text (gnostic's `Any`
keeps them so): here the JSON of the value, which is YAML too.
"""
from __future__ import annotations

import json
from typing import Any

from kubecore.api.types import Obj

VARINT, LEN = 0, 2


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _len(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | LEN) + _varint(len(payload)) + payload


def _str(number: int, text: str) -> bytes:
    return _len(number, text.encode()) if text else b""


def _strs(number: int, texts: list[str]) -> bytes:
    return b"".join(_len(number, t.encode()) for t in texts)


def _bool(number: int, value: bool) -> bytes:
    return _varint(number << 3 | VARINT) + b"\x01" if value else b""


def _yaml(value: Any) -> str:
    """A vendor extension's value as YAML text (its JSON, which YAML reads the same)."""
    return json.dumps(value, separators=(", ", ": "), sort_keys=True) + "\n"


def _vendor_extensions(number: int, obj: Obj) -> bytes:
    """NamedAny{name, Any{yaml}} for each `x-` key, in key order."""
    return b"".join(_len(number, _str(1, key) + _len(2, _str(2, _yaml(obj[key]))))
                    for key in sorted(obj) if key.startswith("x-"))


def _non_body_parameter(p: Obj) -> bytes:
    """A query parameter (QueryParameterSubSchema, NonBodyParameter field 3) or a path
    parameter (PathParameterSubSchema, field 4); their fields differ in number."""
    if p.get("in") == "path":
        sub = (_bool(1, p.get("required", False)) + _str(2, "path") + _str(3, p.get("description", ""))
               + _str(4, p["name"]) + _str(5, p.get("type", "")) + _bool(19, p.get("uniqueItems", False)))
        return _len(4, sub)
    sub = (_bool(1, p.get("required", False)) + _str(2, p.get("in", "query"))
           + _str(3, p.get("description", "")) + _str(4, p["name"]) + _str(6, p.get("type", ""))
           + _bool(20, p.get("uniqueItems", False)))
    return _len(3, sub)


def _parameters(number: int, params: list[Obj]) -> bytes:
    """ParametersItem{Parameter{NonBodyParameter{...}}} for each parameter."""
    return b"".join(_len(number, _len(1, _len(2, _non_body_parameter(p)))) for p in params)


def _responses(responses: Obj) -> bytes:
    """Responses{NamedResponseValue{code, ResponseValue{Response{description}}}}."""
    return b"".join(_len(1, _str(1, code) + _len(2, _len(1, _str(1, r.get("description", "")))))
                    for code, r in sorted(responses.items()))


def _operation(op: Obj) -> bytes:
    return (_strs(1, op.get("tags", [])) + _str(3, op.get("description", ""))
            + _str(5, op.get("operationId", "")) + _strs(6, op.get("produces", []))
            + _strs(7, op.get("consumes", [])) + _parameters(8, op.get("parameters", []))
            + _len(9, _responses(op.get("responses", {}))) + _vendor_extensions(13, op))


# PathItem's operations by field number.
_METHODS = (("get", 2), ("put", 3), ("post", 4), ("delete", 5), ("options", 6), ("head", 7),
            ("patch", 8))


def _path_item(item: Obj) -> bytes:
    out = b"".join(_len(number, _operation(item[method])) for method, number in _METHODS
                   if method in item)
    return out + _parameters(9, item.get("parameters", []))


def document(doc: Obj) -> bytes:
    """The protobuf of a Swagger 2.0 document as `openapi.v2()` builds it."""
    info = doc.get("info", {})
    paths = b"".join(_len(2, _str(1, path) + _len(2, _path_item(item)))
                     for path, item in sorted(doc.get("paths", {}).items()))
    return (_str(1, doc.get("swagger", "2.0"))
            + _len(2, _str(1, info.get("title", "")) + _str(2, info.get("version", "")))
            + _len(8, paths) + _len(9, b""))
