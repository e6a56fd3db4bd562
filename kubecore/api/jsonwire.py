"""JSON as the cluster sends and stores it.

Encoding and decoding objects is the API server's hottest work (every create is
decoded once and encoded three times: for etcd, for the answer, for each watch
event), so it goes through orjson, several times faster than the standard
library. What orjson refuses but the standard library accepts falls back to the
standard library, so no input that worked before stops working: non-string keys
and integers beyond 64 bits (YAML can produce both), and values stored in etcd
by older versions of this server.

A request body's nesting is bounded (`loads_request`, `check_depth`): everything that handles
an object after it is decoded (copies, patches, validation, the standard library's encoder
that orjson falls back to beyond its own 255 levels) recurses once or more per level, and
Python's stack holds about a thousand frames. kube-apiserver's JSON decoder stops at 10,000
levels (`exceeded max depth`); 100 is far beyond any Kubernetes object (a Pod with
managedFields nests about 20 deep) and keeps every one of those paths, and the list and
watch envelopes around an object, within both limits.
"""
from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(obj: Any) -> bytes:
    """Compact JSON bytes. TypeError (as json.dumps) for what JSON cannot hold."""
    try:
        return orjson.dumps(obj)
    except TypeError:
        return json.dumps(obj, separators=(",", ":")).encode()


# What Go's encoder escapes that orjson writes as is: HTML's three (json.Encoder's
# SetEscapeHTML is on by default) and the two JavaScript line terminators. In JSON text each
# can only stand inside a string, so replacing the bytes is safe.
_GO_ESCAPES = ((b"<", b"\\u003c"), (b">", b"\\u003e"), (b"&", b"\\u0026"),
               ("\u2028".encode(), b"\\u2028"), ("\u2029".encode(), b"\\u2029"))


def dumps_go(obj: Any) -> bytes:
    """JSON bytes as kube-apiserver's serializer writes them (Go's `json.NewEncoder(w).Encode`):
    compact, in the dict's key order, with Go's escapes, and a closing newline."""
    data = dumps(obj)
    for raw, escaped in _GO_ESCAPES:
        if raw in data:
            data = data.replace(raw, escaped)
    return data + b"\n"


MAX_DEPTH = 100


class TooDeep(ValueError):
    """A value nests deeper than allowed; the message is Go's scanner's."""

    def __init__(self, opener: str) -> None:
        super().__init__(f"invalid character '{opener}' exceeded max depth")


def check_depth(value: Any, limit: int = MAX_DEPTH) -> None:
    """TooDeep when objects and arrays nest more than `limit` levels (the outermost is
    level 1). Iterative, so the check itself is safe at any depth."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        children = current.values() if isinstance(current, dict) else current
        if depth > limit:
            raise TooDeep("{" if isinstance(current, dict) else "[")
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))


def nesting_depth(value: Any) -> int:
    """How many levels objects and arrays nest in `value` (0 for a scalar); iterative."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, (dict, list)):
            deepest = max(deepest, depth)
            stack.extend((c, depth + 1) for c in (current.values() if isinstance(current, dict)
                                                   else current))
    return deepest


def loads_request(data: bytes) -> Any:
    """A client's JSON: as `loads`, and TooDeep beyond MAX_DEPTH levels."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit exceeded"):  # orjson's own, at 1024 levels
            opened = data.rfind(b"[", 0, exc.pos + 1) > data.rfind(b"{", 0, exc.pos + 1)
            raise TooDeep("[" if opened else "{") from None
        raise
    if isinstance(value, (dict, list)) and data.count(b"{") + data.count(b"[") > MAX_DEPTH:
        check_depth(value)  # (fewer brackets than that in the text cannot nest deeper)
    return value


def loads(data: bytes | str) -> Any:
    """Strict JSON (RFC 8259: no NaN, no lone surrogates, as Go's decoder); ValueError
    for anything else."""
    return orjson.loads(data)


def loads_stored(data: bytes) -> Any:
    """A value read back from etcd: also what the standard library wrote in the past."""
    try:
        return orjson.loads(data)
    except ValueError:
        return json.loads(data)
