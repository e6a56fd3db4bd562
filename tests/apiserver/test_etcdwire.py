"""The hand-written encodings of etcd's transaction messages equal the protobuf library's."""
from __future__ import annotations

import pytest
from aetcd import rpc

from services.apiserver.storage import etcdwire as wire

KEYS = [b"/registry/services/default/web", b"k", b"x" * 300]  # 300: a two-byte length


def compare_msg(key: bytes, **kw) -> rpc.Compare:
    return rpc.Compare(key=key, result=rpc.Compare.EQUAL, **kw)


@pytest.mark.parametrize("key", KEYS, ids=["path", "short", "long"])
def test_compares(key):
    assert wire.absent(key).wire == compare_msg(key, target=rpc.Compare.VERSION,
                                                version=0).SerializeToString()
    for rev in (1, 127, 128, 300_000, 2**40):
        assert wire.mod_revision_is(key, rev).wire == compare_msg(
            key, target=rpc.Compare.MOD, mod_revision=rev).SerializeToString()
        assert wire.version_is(key, rev).wire == compare_msg(
            key, target=rpc.Compare.VERSION, version=rev).SerializeToString()


@pytest.mark.parametrize("key", KEYS, ids=["path", "short", "long"])
@pytest.mark.parametrize("value", [b"", b"v", b"{}" * 5000], ids=["empty", "small", "10k"])
def test_operations(key, value):
    assert wire.put(key, value).wire == rpc.RequestOp(
        request_put=rpc.PutRequest(key=key, value=value)).SerializeToString()
    for lease in (1, 0x694D7A1B2C3D4E5F):
        assert wire.put(key, value, lease).wire == rpc.RequestOp(
            request_put=rpc.PutRequest(key=key, value=value, lease=lease)).SerializeToString()
    assert wire.delete(key).wire == rpc.RequestOp(
        request_delete_range=rpc.DeleteRangeRequest(key=key)).SerializeToString()
    assert wire.get(key).wire == rpc.RequestOp(
        request_range=rpc.RangeRequest(key=key)).SerializeToString()


def test_transactions_nested_and_extended():
    compare = [wire.absent(b"/a"), wire.mod_revision_is(b"/b", 7)]
    success = [wire.put(b"/a", b"1"), wire.delete(b"/c")]
    failure = [wire.get(b"/a")]
    encoded = wire.txn(compare, success, failure)
    expected = rpc.TxnRequest(
        compare=[compare_msg(b"/a", target=rpc.Compare.VERSION, version=0),
                 compare_msg(b"/b", target=rpc.Compare.MOD, mod_revision=7)],
        success=[rpc.RequestOp(request_put=rpc.PutRequest(key=b"/a", value=b"1")),
                 rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=b"/c"))],
        failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=b"/a"))])
    assert rpc.TxnRequest.FromString(encoded) == expected
    # a counter put appended to the success branch
    extended = encoded + wire.success_ops([wire.put_wire(b"/n", b"9")])
    expected.success.append(rpc.RequestOp(request_put=rpc.PutRequest(key=b"/n", value=b"9")))
    assert rpc.TxnRequest.FromString(extended) == expected
    # the group of two transactions
    group = wire.success_ops([wire.nested(encoded), wire.nested(wire.txn([], [wire.put(b"/z", b"")]))])
    decoded = rpc.TxnRequest.FromString(group)
    assert [op.WhichOneof("request") for op in decoded.success] == ["request_txn", "request_txn"]
    assert decoded.success[0].request_txn == rpc.TxnRequest.FromString(encoded)
    assert decoded.success[1].request_txn.success[0].request_put.key == b"/z"


def test_varint_matches_protobuf():
    for n in (0, 1, 127, 128, 255, 16383, 16384, 2**31, 2**63 - 1):
        msg = rpc.Compare(mod_revision=n).SerializeToString()
        assert msg == b"\x30" + wire.varint(n)
