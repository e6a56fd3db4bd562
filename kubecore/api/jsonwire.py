"""JSON as the cluster sends and stores it.

Encoding and decoding objects is the API server's hottest work (every create is
decoded once and encoded three times: for etcd, for the answer, for each watch
event), so it goes through orjson, several times faster than the standard
library. What orjson refuses but the standard library accepts falls back to the
standard library, so no input that worked before stops working: non-string keys
and integers beyond 64 bits (YAML can produce both), and values stored in etcd
by older versions of this server.
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
