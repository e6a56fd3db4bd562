"""etcd's transaction messages (etcdserverpb.TxnRequest and what it holds), encoded by
hand.

Every write the API server makes is a transaction of a few single-key compares and
operations, and grouped writes nest whole transactions in another (see
`etcd.TxnBatcher`). Building those as protobuf objects and copying them into each other
cost more CPU than anything else on the write path; the wire form is simple enough to
write directly: each message is a run of (tag, length, bytes) fields, and a repeated
field is the same field written again. tests/apiserver/test_etcdwire.py checks every
encoding byte for byte against the protobuf library. Answers are still decoded by the
library.
"""
from __future__ import annotations

from collections.abc import Iterable

# field tags: (field number << 3) | wire type (0 varint, 2 length-delimited)
_BYTES_1, _BYTES_2, _BYTES_3, _BYTES_4 = b"\x0a", b"\x12", b"\x1a", b"\x22"
_COMPARE_TARGET_MOD = b"\x10\x02"  # field 2 (target) = MOD; VERSION (0) is the default
_COMPARE_VERSION = b"\x20"  # field 4, varint
_COMPARE_MOD_REVISION = b"\x30"  # field 6, varint
_PUT_LEASE = b"\x18"  # PutRequest field 3 (lease), varint


def varint(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, data: bytes) -> bytes:
    return tag + varint(len(data)) + data


class Compare:
    """A single-key compare (etcdserverpb.Compare) in wire form."""
    __slots__ = ("key", "wire")

    def __init__(self, key: bytes, wire: bytes) -> None:
        self.key, self.wire = key, wire


class Op:
    """A single-key operation (etcdserverpb.RequestOp) in wire form."""
    __slots__ = ("key", "wire")

    def __init__(self, key: bytes, wire: bytes) -> None:
        self.key, self.wire = key, wire


def absent(key: bytes) -> Compare:
    """version(key) == 0: the key does not exist."""
    return version_is(key, 0)


def version_is(key: bytes, version: int) -> Compare:
    """version(key) == `version` (how many times the key was written since it was created)."""
    return Compare(key, _field(_BYTES_3, key) + _COMPARE_VERSION + varint(version))


def mod_revision_is(key: bytes, revision: int) -> Compare:
    return Compare(key, _COMPARE_TARGET_MOD + _field(_BYTES_3, key)
                   + _COMPARE_MOD_REVISION + varint(revision))


def put(key: bytes, value: bytes, lease: int = 0) -> Op:
    """A put; with `lease`, the key goes when that etcd lease expires."""
    return Op(key, put_wire(key, value, lease))


def put_wire(key: bytes, value: bytes, lease: int = 0) -> bytes:
    body = _field(_BYTES_1, key) + (_field(_BYTES_2, value) if value else b"")
    if lease:
        body += _PUT_LEASE + varint(lease)
    return _field(_BYTES_2, body)  # RequestOp.request_put


def delete(key: bytes) -> Op:
    return Op(key, _field(_BYTES_3, _field(_BYTES_1, key)))  # RequestOp.request_delete_range


def get(key: bytes) -> Op:
    return Op(key, _field(_BYTES_1, _field(_BYTES_1, key)))  # RequestOp.request_range


def txn(compare: Iterable[Compare], success: Iterable[Op], failure: Iterable[Op] = ()) -> bytes:
    """A TxnRequest."""
    return b"".join([*(_field(_BYTES_1, c.wire) for c in compare),
                     *(_field(_BYTES_2, o.wire) for o in success),
                     *(_field(_BYTES_3, o.wire) for o in failure)])


def success_ops(wires: Iterable[bytes]) -> bytes:
    """More operations for a TxnRequest's success branch, to append to its encoding."""
    return b"".join(_field(_BYTES_2, w) for w in wires)


def nested(request: bytes) -> bytes:
    """A RequestOp carrying a whole TxnRequest (RequestOp.request_txn)."""
    return _field(_BYTES_4, request)
