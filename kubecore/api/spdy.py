"""SPDY/3.1 framing, as Kubernetes' streaming connections speak it (moby/spdystream).

kubectl's port-forward (and, before 1.30, exec and attach) upgrades an HTTP request to
`SPDY/3.1` and then opens one SPDY stream per purpose: for a forwarded connection a `data`
stream and an `error` stream. kubectl 1.31+ sends the same SPDY bytes inside a WebSocket
(subprotocol `SPDY/3.1+portforward.k8s.io`, each binary message a piece of the byte stream),
which the API server unwraps, so the node agent always reads plain SPDY.

What is used of SPDY/3.1 (as spdystream uses it): no flow control (WINDOW_UPDATE and SETTINGS
are read and ignored), no server push. A frame is

    control: 1 | version(15) = 3 | type(16) | flags(8) | length(24) | payload
    data:    0 | stream id(31)              | flags(8) | length(24) | payload  (flag 1 = FIN)

and the header blocks of SYN_STREAM, SYN_REPLY and HEADERS are zlib streams (one per
direction for the whole connection, a sync flush after each block) primed with the SPDY/3
dictionary; their content is a count and length-prefixed name/value pairs, names lowercase.

This module has no I/O: `FrameReader` turns bytes into `Frame`s, `FrameWriter` frames into
bytes. Bad input raises `ProtocolError`; sizes are bounded so a peer cannot make a reader
hold more than `MAX_FRAME_BYTES` or inflate a header block beyond `MAX_HEADER_BYTES`.
"""
from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

VERSION = 3

DATA = 0  # not a control type: the kind `Frame.type` has for data frames
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, NOOP, PING, GOAWAY, HEADERS, WINDOW_UPDATE = range(1, 10)

FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02

# RST_STREAM status codes
PROTOCOL_ERROR, INVALID_STREAM, REFUSED_STREAM, UNSUPPORTED_VERSION, CANCEL, INTERNAL_ERROR = range(1, 7)

HEADER_LEN = 8
MAX_FRAME_BYTES = 1 << 24  # the 24-bit length field's bound
MAX_HEADER_BYTES = 256 * 1024
STREAM_ID_MASK = 0x7FFFFFFF

_HEADER_NAMES = (
    "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset", "accept-encoding",
    "accept-language", "accept-ranges", "age", "allow", "authorization", "cache-control", "connection",
    "content-base", "content-encoding", "content-language", "content-length", "content-location",
    "content-md5", "content-range", "content-type", "date", "etag", "expect", "expires", "from", "host",
    "if-match", "if-modified-since", "if-none-match", "if-range", "if-unmodified-since", "last-modified",
    "location", "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range", "referer",
    "retry-after", "server", "te", "trailer", "transfer-encoding", "upgrade", "user-agent", "vary", "via",
    "warning", "www-authenticate", "method", "get", "status", "200 OK", "version", "HTTP/1.1", "url",
    "public", "set-cookie", "keep-alive", "origin",
)
_DICTIONARY_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
    "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
    "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
# The SPDY/3 header compression dictionary (draft-mbelshe-httpbis-spdy-00, 2.6.10.1): the
# length-prefixed names above, then the status lines, dates and media types as one string.
DICTIONARY = b"".join(struct.pack(">I", len(n)) + n.encode() for n in _HEADER_NAMES) + _DICTIONARY_TAIL.encode()


class ProtocolError(Exception):
    """The peer broke SPDY: the connection cannot go on."""


@dataclass(frozen=True)
class Frame:
    """One frame. `type` is DATA or a control type; the other fields are what that type carries."""

    type: int
    flags: int = 0
    stream_id: int = 0
    data: bytes = b""  # DATA's payload
    headers: Mapping[str, str] = field(default_factory=dict)  # SYN_STREAM, SYN_REPLY, HEADERS
    status: int = 0  # RST_STREAM's status, GOAWAY's status
    last_stream_id: int = 0  # GOAWAY
    ping_id: int = 0  # PING
    priority: int = 0  # SYN_STREAM

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


def encode_header_block(headers: Iterable[tuple[str, str]]) -> bytes:
    """The uncompressed block: a count, then each lowercased name and its value, length-prefixed."""
    pairs = [(k.lower().encode(), v.encode()) for k, v in headers]
    out = [struct.pack(">I", len(pairs))]
    for name, value in pairs:
        out += [struct.pack(">I", len(name)), name, struct.pack(">I", len(value)), value]
    return b"".join(out)


def decode_header_block(block: bytes) -> dict[str, str]:
    """Names to values; a value of several (NUL-separated) keeps the first, as Header.Get."""
    def take(pos: int) -> tuple[bytes, int]:
        if pos + 4 > len(block):
            raise ProtocolError("truncated header block")
        (n,) = struct.unpack_from(">I", block, pos)
        if pos + 4 + n > len(block):
            raise ProtocolError("truncated header block")
        return block[pos + 4:pos + 4 + n], pos + 4 + n

    if len(block) < 4:
        raise ProtocolError("truncated header block")
    (count,) = struct.unpack_from(">I", block, 0)
    pos, headers = 4, dict[str, str]()
    for _ in range(count):
        name, pos = take(pos)
        value, pos = take(pos)
        if not name or name != name.lower():
            raise ProtocolError(f"header name {name[:50]!r} is empty or not lowercase")
        try:
            text = name.decode("ascii")
            headers.setdefault(text, value.decode("utf-8").split("\x00", 1)[0])
        except UnicodeDecodeError:
            raise ProtocolError("header names and values must be text") from None
    return headers


class FrameReader:
    """Bytes in (`feed`), whole frames out; keeps the connection's inbound zlib context."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames = []
        while len(self._buf) >= HEADER_LEN:
            first, flags_len = struct.unpack_from(">II", self._buf, 0)
            flags, length = flags_len >> 24, flags_len & 0xFFFFFF
            if len(self._buf) < HEADER_LEN + length:
                break
            payload = bytes(self._buf[HEADER_LEN:HEADER_LEN + length])
            del self._buf[:HEADER_LEN + length]
            if first & 0x80000000:
                version, ftype = (first >> 16) & 0x7FFF, first & 0xFFFF
                if version != VERSION:
                    raise ProtocolError(f"SPDY version {version} is not supported (only {VERSION})")
                frame = self._control(ftype, flags, payload)
                if frame is not None:
                    frames.append(frame)
            else:
                frames.append(Frame(DATA, flags, first & STREAM_ID_MASK, data=payload))
        return frames

    def _headers(self, block: bytes) -> dict[str, str]:
        try:
            raw = self._inflate.decompress(block, MAX_HEADER_BYTES)
        except zlib.error as exc:
            raise ProtocolError(f"bad header compression: {exc}") from None
        if self._inflate.unconsumed_tail:
            raise ProtocolError(f"a header block larger than {MAX_HEADER_BYTES} bytes")
        return decode_header_block(raw)

    def _control(self, ftype: int, flags: int, p: bytes) -> Frame | None:
        def need(n: int) -> None:
            if len(p) < n:
                raise ProtocolError(f"control frame of type {ftype} too short ({len(p)} bytes)")

        if ftype == SYN_STREAM:
            need(10)
            sid, _assoc = struct.unpack_from(">II", p, 0)
            return Frame(ftype, flags, sid & STREAM_ID_MASK, priority=p[8] >> 5, headers=self._headers(p[10:]))
        if ftype in (SYN_REPLY, HEADERS):
            need(4)
            (sid,) = struct.unpack_from(">I", p, 0)
            return Frame(ftype, flags, sid & STREAM_ID_MASK, headers=self._headers(p[4:]))
        if ftype == RST_STREAM:
            need(8)
            sid, status = struct.unpack_from(">II", p, 0)
            return Frame(ftype, flags, sid & STREAM_ID_MASK, status=status)
        if ftype == PING:
            need(4)
            return Frame(ftype, flags, ping_id=struct.unpack_from(">I", p, 0)[0])
        if ftype == GOAWAY:
            need(4)
            last = struct.unpack_from(">I", p, 0)[0] & STREAM_ID_MASK
            status = struct.unpack_from(">I", p, 4)[0] if len(p) >= 8 else 0
            return Frame(ftype, flags, last_stream_id=last, status=status)
        if ftype in (SETTINGS, NOOP, WINDOW_UPDATE):
            return Frame(ftype, flags)  # no flow control, as spdystream: read and let be
        return None  # unknown control types are ignored, as the spec asks


class FrameWriter:
    """Frames to bytes; keeps the connection's outbound zlib context (one per direction)."""

    def __init__(self) -> None:
        self._deflate = zlib.compressobj(zlib.Z_BEST_COMPRESSION, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY,
                                         DICTIONARY)

    @staticmethod
    def _control(ftype: int, flags: int, payload: bytes) -> bytes:
        if len(payload) >= MAX_FRAME_BYTES:
            raise ValueError("SPDY frame too large")
        return struct.pack(">HHI", 0x8000 | VERSION, ftype, (flags << 24) | len(payload)) + payload

    def _block(self, headers: Mapping[str, str]) -> bytes:
        return self._deflate.compress(encode_header_block(headers.items())) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    def data(self, stream_id: int, data: bytes = b"", *, fin: bool = False) -> bytes:
        if len(data) >= MAX_FRAME_BYTES:
            raise ValueError("SPDY frame too large")
        flags = FLAG_FIN if fin else 0
        return struct.pack(">II", stream_id & STREAM_ID_MASK, (flags << 24) | len(data)) + data

    def syn_stream(self, stream_id: int, headers: Mapping[str, str], *, fin: bool = False, priority: int = 0) -> bytes:
        head = struct.pack(">IIBB", stream_id & STREAM_ID_MASK, 0, (priority & 7) << 5, 0)
        return self._control(SYN_STREAM, FLAG_FIN if fin else 0, head + self._block(headers))

    def syn_reply(self, stream_id: int, headers: Mapping[str, str] | None = None, *, fin: bool = False) -> bytes:
        body = struct.pack(">I", stream_id & STREAM_ID_MASK) + self._block(headers or {})
        return self._control(SYN_REPLY, FLAG_FIN if fin else 0, body)

    def rst_stream(self, stream_id: int, status: int) -> bytes:
        return self._control(RST_STREAM, 0, struct.pack(">II", stream_id & STREAM_ID_MASK, status))

    def ping(self, ping_id: int) -> bytes:
        return self._control(PING, 0, struct.pack(">I", ping_id))

    def goaway(self, last_stream_id: int, status: int = 0) -> bytes:
        return self._control(GOAWAY, 0, struct.pack(">II", last_stream_id & STREAM_ID_MASK, status))
