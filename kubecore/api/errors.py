"""Kubernetes `Status` errors.

Every failure the API server reports is one of these, rendered as a
`Status` object with reason, code, message and details, the way
kube-apiserver does, so that kubectl and client libraries print them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Cause:
    field: str
    message: str
    reason: str = "FieldValueInvalid"


@dataclass
class ApiError(Exception):
    code: int
    reason: str
    message: str
    details: dict[str, Any] | None = None  # None: no details at all; {}: `"details":{}`
    causes: list[Cause] = field(default_factory=list)
    # the Status's ListMeta: a 410 for an expired continue token offers a fresh token there
    metadata: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message

    def to_status(self) -> dict[str, Any]:
        """metav1.Status with its keys in the order Go's encoder writes the struct's fields
        (kind, apiVersion, metadata, status, message, reason, details, code), empty ones
        left out as `omitempty` leaves them out, so the bytes match kube-apiserver's."""
        status: dict[str, Any] = {"kind": "Status", "apiVersion": "v1",
                                  "metadata": dict(self.metadata), "status": "Failure"}
        if self.message:
            status["message"] = self.message
        if self.reason:
            status["reason"] = self.reason
        if self.details is not None or self.causes:  # a Go pointer: {} is written, None is not
            status["details"] = status_details(self.details or {}, self.causes)
        if self.code:
            status["code"] = self.code
        return status


# metav1.StatusDetails and StatusCause: their fields in Go's declaration order.
_DETAIL_KEYS = ("name", "group", "kind", "uid", "causes", "retryAfterSeconds")
_CAUSE_KEYS = ("reason", "message", "field")


def status_details(details: dict[str, Any], causes: list[Cause]) -> dict[str, Any]:
    """A Status's details in Go's field order, empty fields left out; `causes` (when given)
    replace any in `details`."""
    merged = dict(details)
    if causes:
        merged["causes"] = [{"reason": c.reason, "message": c.message, "field": c.field}
                            for c in causes]
    out = {k: merged[k] for k in _DETAIL_KEYS if merged.get(k)}
    if "causes" in out:
        out["causes"] = [{k: c[k] for k in _CAUSE_KEYS if c.get(k)} for c in out["causes"]]
    return out


def _details(resource: str, name: str, group: str = "") -> dict[str, Any]:
    d: dict[str, Any] = {"kind": resource}
    if name:
        d["name"] = name
    if group:
        d["group"] = group
    return d


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, name: str, group: str = "") -> ApiError:
    return ApiError(404, "NotFound", f'{_qualified(resource, group)} "{name}" not found',
                    _details(resource, name, group))


def already_exists(resource: str, name: str, group: str = "") -> ApiError:
    return ApiError(409, "AlreadyExists", f'{_qualified(resource, group)} "{name}" already exists',
                    _details(resource, name, group))


def conflict(resource: str, name: str, why: str, group: str = "") -> ApiError:
    return ApiError(
        409, "Conflict",
        f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {why}',
        _details(resource, name, group))


def invalid(kind: str, name: str, causes: list[Cause], group: str = "") -> ApiError:
    """422 Invalid worded as kube-apiserver's: `Deployment.apps "x" is invalid: ...`, several
    causes in brackets as Go's aggregate error prints them."""
    summary = ", ".join(f"{c.field}: {c.message}" if c.field else c.message for c in causes)
    if len(causes) > 1:
        summary = f"[{summary}]"
    return ApiError(422, "Invalid", f'{_qualified(kind, group)} "{name}" is invalid: {summary}',
                    {**({"name": name} if name else {}), **({"group": group} if group else {}),
                     "kind": kind}, causes=causes)


def no_such_path() -> ApiError:
    """kube-apiserver's 404 for a path under one of its API roots that names nothing
    (go-restful's, through apierrors.NewGenericServerResponse: empty details)."""
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def method_not_allowed(message: str = "the server does not allow this method on the requested resource") -> ApiError:
    return ApiError(405, "MethodNotAllowed", message, {})


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(415, "UnsupportedMediaType",
                    f'the body of the request was in an unknown format - accepted media types include: '
                    f'application/json, application/yaml, application/vnd.kubernetes.protobuf '
                    f'(not supported here); got "{content_type}"')


def request_entity_too_large(limit: int) -> ApiError:
    return ApiError(413, "RequestEntityTooLarge",
                    f"the request body is larger than the limit of {limit} bytes")


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def internal(message: str) -> ApiError:
    """apimachinery's NewInternalError: the error as the one cause, and in the message."""
    return ApiError(500, "InternalError", f"Internal error occurred: {message}",
                    {"causes": [{"message": message}]})


def unavailable(message: str) -> ApiError:
    return ApiError(503, "ServiceUnavailable", message)


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
               "\v": "\\v", '"': '\\"', "\\": "\\\\"}


def go_quote(text: str) -> str:
    """`text` in double quotes as Go's strconv.Quote (`%q`) writes it, which is how
    kube-apiserver names a client's field paths in messages (`unknown field "x\\ny"`): what
    is not printable is escaped, so a message never carries a control character into a
    header or a log line."""
    out = ['"']
    for ch in text:
        escaped = _GO_ESCAPES.get(ch)
        if escaped is not None:
            out.append(escaped)
        elif ch.isprintable():  # Go's unicode.IsPrint: no Other, no Separator but U+0020
            out.append(ch)
        elif ord(ch) < 0x20 or ch == "\x7f":
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)
