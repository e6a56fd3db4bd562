"""SPDY/3.1 framing and the portforward.k8s.io stream rules, as tables."""
from __future__ import annotations

import struct
import zlib

import pytest

from kubecore.api import portforward as pf
from kubecore.api import spdy


def test_the_dictionary_is_spdy3s():
    # what the SPDY/3 draft lists (1423 bytes); its adler32 is the DICTID every peer checks
    assert len(spdy.DICTIONARY) == 1423
    assert zlib.adler32(spdy.DICTIONARY) == 0xE3C6A7C2
    assert spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert spdy.DICTIONARY.endswith(b"charset=iso-8859-1,utf-,*,enq=0.")


def _roundtrip(*frames: bytes, chunk: int | None = None) -> list[spdy.Frame]:
    data = b"".join(frames)
    reader = spdy.FrameReader()
    if chunk is None:
        return reader.feed(data)
    out = []
    for i in range(0, len(data), chunk):
        out += reader.feed(data[i:i + chunk])
    return out


W = spdy.FrameWriter


@pytest.mark.parametrize("chunk", [None, 1, 7], ids=["whole", "byte-by-byte", "odd-pieces"])
def test_frames_round_trip(chunk):
    w = W()
    frames = _roundtrip(
        w.syn_stream(1, {"streamtype": "error", "port": "8080", "requestid": "0"}),
        w.syn_stream(3, {"streamtype": "data", "port": "8080", "requestid": "0"}, priority=2),  # same zlib context
        w.data(3, b"GET / HTTP/1.1\r\n"),
        w.data(3, fin=True),
        w.syn_reply(3),
        w.rst_stream(5, spdy.REFUSED_STREAM),
        w.ping(7),
        w.goaway(3, 0),
        chunk=chunk)
    assert [(f.type, f.stream_id) for f in frames] == [
        (spdy.SYN_STREAM, 1), (spdy.SYN_STREAM, 3), (spdy.DATA, 3), (spdy.DATA, 3), (spdy.SYN_REPLY, 3),
        (spdy.RST_STREAM, 5), (spdy.PING, 0), (spdy.GOAWAY, 0)]
    assert frames[0].headers == {"streamtype": "error", "port": "8080", "requestid": "0"}
    assert frames[1].headers["streamtype"] == "data" and frames[1].priority == 2
    assert frames[2].data == b"GET / HTTP/1.1\r\n" and not frames[2].fin
    assert frames[3].data == b"" and frames[3].fin
    assert frames[4].headers == {}
    assert frames[5].status == spdy.REFUSED_STREAM
    assert frames[6].ping_id == 7
    assert frames[7].last_stream_id == 3


def test_wire_layout_of_data_and_control_frames():
    w = W()
    assert w.data(5, b"ab", fin=True) == b"\x00\x00\x00\x05\x01\x00\x00\x02ab"
    assert w.ping(1) == b"\x80\x03\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01"
    assert w.rst_stream(3, spdy.CANCEL) == b"\x80\x03\x00\x03\x00\x00\x00\x08\x00\x00\x00\x03\x00\x00\x00\x05"


def test_header_values_keep_the_first_of_several_and_names_are_lowercased():
    block = spdy.encode_header_block([("Port", "80\x0081")])
    assert spdy.decode_header_block(block) == {"port": "80"}


def _control(ftype: int, payload: bytes, version: int = 3) -> bytes:
    return struct.pack(">HHI", 0x8000 | version, ftype, len(payload)) + payload


def _compressed(block: bytes) -> bytes:
    c = zlib.compressobj(zdict=spdy.DICTIONARY)
    return c.compress(block) + c.flush(zlib.Z_SYNC_FLUSH)


@pytest.mark.parametrize("data,message", [
    (_control(spdy.PING, b"\x00\x00\x00\x01", version=2), "SPDY version 2 is not supported"),
    (_control(spdy.SYN_STREAM, b"\x00\x00\x00\x01"), "too short"),
    (_control(spdy.SYN_REPLY, b"\x00\x00\x00\x01" + b"not zlib at all"), "bad header compression"),
    (_control(spdy.SYN_REPLY, b"\x00\x00\x00\x01" + _compressed(b"\x00\x00\x00\x05")), "truncated header block"),
    (_control(spdy.SYN_REPLY, b"\x00\x00\x00\x01" + _compressed(spdy.encode_header_block([]).replace(
        b"\x00\x00\x00\x00", b"\x00\x00\x00\x01") + b"\x00\x00\x00\x01P\x00\x00\x00\x00")), "not lowercase"),
    (_control(spdy.SYN_REPLY, b"\x00\x00\x00\x01" + _compressed(b"\x00" * (spdy.MAX_HEADER_BYTES + 10))),
     "larger than"),
], ids=["old-version", "short-syn-stream", "not-zlib", "truncated-block", "uppercase-name", "inflation-bomb"])
def test_bad_frames_are_protocol_errors(data, message):
    with pytest.raises(spdy.ProtocolError, match=message):
        spdy.FrameReader().feed(data)


def test_unknown_and_flow_control_frames_are_let_be():
    frames = spdy.FrameReader().feed(_control(99, b"xyz") + _control(spdy.WINDOW_UPDATE, b"\x00" * 8))
    assert [f.type for f in frames] == [spdy.WINDOW_UPDATE]


# --------------------------------------------------------------------------- portforward.k8s.io


@pytest.mark.parametrize("headers,problem", [
    ({"streamtype": "data", "port": "8080"}, None),
    ({"streamtype": "error", "port": "1"}, None),
    ({"streamtype": "data"}, '"port" header is required'),
    ({"streamtype": "data", "port": "http"},
     'unable to parse "http" as a port: strconv.ParseUint: parsing "http": invalid syntax'),
    ({"streamtype": "data", "port": "70000"},
     'unable to parse "70000" as a port: strconv.ParseUint: parsing "70000": invalid syntax'),
    ({"streamtype": "data", "port": "0"}, 'port "0" must be > 0'),
    ({"port": "80"}, '"streamtype" header is required'),
    ({"streamtype": "resize", "port": "80"}, 'invalid stream type "resize"'),
], ids=["data", "error", "no-port", "port-not-a-number", "port-too-big", "port-zero", "no-type", "bad-type"])
def test_stream_problem(headers, problem):
    assert pf.stream_problem(headers) == problem


@pytest.mark.parametrize("headers,stream_id,rid", [
    ({"streamtype": "data", "requestid": "4"}, 9, "4"),
    ({"streamtype": "error"}, 5, "5"),  # clients without request ids: the error stream's id...
    ({"streamtype": "data"}, 7, "5"),  # ...and its data stream two after it
], ids=["given", "guessed-error", "guessed-data"])
def test_request_id(headers, stream_id, rid):
    assert pf.request_id(headers, stream_id) == rid


def test_pairs_complete_by_request_id_and_refuse_a_second_of_a_kind():
    pairs: pf.Pairs[str] = pf.Pairs()
    pair, problem = pairs.add("0", "error", "e0")
    assert problem is None and not pair.complete and "0" in pairs.pending
    pairs.add("1", "data", "d1")
    pair, problem = pairs.add("0", "data", "d0")
    assert problem is None and pair.complete and (pair.error, pair.data) == ("e0", "d0")
    assert "0" not in pairs.pending
    _, problem = pairs.add("1", "data", "again")
    assert problem == "data stream already assigned"
    assert pf.forward_error(80, "abc", "", "boom") == "error forwarding port 80 to pod abc, uid : boom"
