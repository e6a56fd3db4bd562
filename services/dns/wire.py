"""DNS wire format by hand where speed matters, dnslib where it does not.

``guessed_cache_key`` slices the key of a plain query out of the raw bytes without walking the
name; on a cache hit that is all the work a query costs. ``cache_key`` is its strict twin,
used when storing. ``parse_query`` is the strict,
complete reader for the miss path. Responses are built with dnslib and truncated here.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from dnslib import EDNS0, QTYPE, RR, DNSHeader, DNSLabel, DNSQuestion, DNSRecord

HEADER_LEN = 12
MAX_NAME_LEN = 255
NO_EDNS_UDP_SIZE = 512
SERVER_UDP_SIZE = 1232  # what we advertise in our OPT record (DNS flag day 2020)
TCP_SIZE = 65535

# The UDP sizes a response is built for: 512 without EDNS (or an EDNS size below 1232), else
# the 1232 we advertise -- never more, whatever the client offers, so no UDP answer risks IP
# fragmentation or serves as an amplifier. A client's size is rounded down to one of these, so
# the response cache holds one variant per class and a cached answer always fits the client
# it is served to. "TCP" means the 65535 of the length prefix.
SIZE_CLASSES = (NO_EDNS_UDP_SIZE, SERVER_UDP_SIZE)
TCP_CLASS = 3
_BYTE = [bytes((i,)) for i in range(256)]
_ONE_QUESTION = b"\x00\x01\x00\x00\x00\x00\x00"  # qd=1, an=0, ns=0, high byte of ar

RCODE_FORMERR = 1
RCODE_NOTIMP = 4
RCODE_BADVERS = 16  # an extended rcode: low 4 bits in the header, the rest in OPT
OPCODE_QUERY = 0
FLAG_QR = 0x8000
FLAG_AA = 0x0400
FLAG_TC = 0x0200
FLAG_RD = 0x0100
FLAG_RA = 0x0080
FLAG_CD = 0x0010


class DropPacket(Exception):
    """Not worth an answer: too short for a header, or itself a response."""


class QueryError(Exception):
    """A header could be read but the rest is unusable: answer with ``rcode``."""

    def __init__(self, rcode: int, message: str) -> None:
        super().__init__(message)
        self.rcode = rcode


@dataclass(frozen=True, slots=True)
class Query:
    id: int
    flags: int
    labels: tuple[bytes, ...]  # as sent, case preserved
    qtype: int
    qclass: int
    edns: bool
    edns_version: int
    udp_size: int  # the most a response may take: a SIZE_CLASSES size over UDP, TCP_SIZE over TCP

    @property
    def opcode(self) -> int:
        return (self.flags >> 11) & 0xF


def size_class(udp_size: int) -> int:
    """Index in SIZE_CLASSES of the largest size no bigger than the client's `udp_size`."""
    return 1 if udp_size >= SERVER_UDP_SIZE else 0


def effective_udp_size(client_size: int) -> int:
    """What a UDP answer may take for a client offering `client_size` in its OPT record."""
    return SIZE_CLASSES[size_class(client_size)]


def cache_key(data: bytes, tcp: bool) -> tuple[bytes, int] | None:
    """(key, end of question) for a plain single-question query, else None (take the slow path).

    The key is the lower-cased wire qname, qtype+qclass, and one byte holding the response
    variant: EDNS or not, the client's size class, and the RD/CD bits echoed back.
    """
    n = len(data)
    if n < 17 or data[2] & 0xF8 or data[4:10] != b"\x00\x01\x00\x00\x00\x00" or data[10]:
        return None
    qname_end = _plain_qname_end(data)
    if qname_end is None:
        return None
    end = qname_end + 4
    variant = _response_variant(data, end, tcp)
    if variant is None:
        return None
    variant |= (data[2] & 0x01) << 5 | (data[3] & 0x10) << 2
    return data[HEADER_LEN:qname_end].lower() + data[qname_end:end] + _BYTE[variant], qname_end


def _plain_qname_end(data: bytes) -> int | None:
    """Offset after the question's name, if it is uncompressed, fits the packet with its
    qtype and qclass, and is no longer than a name may be."""
    n = len(data)
    i = HEADER_LEN
    while True:
        length = data[i]
        if length == 0:
            break
        if length > 63:
            return None
        i += length + 1
        if i >= n:
            return None
    qname_end = i + 1
    if qname_end - HEADER_LEN > MAX_NAME_LEN or qname_end + 4 > n:
        return None
    return qname_end


def _response_variant(data: bytes, end: int, tcp: bool) -> int | None:
    """The EDNS and size-class bits of the key, from what follows the question at `end`;
    None unless that is nothing, or exactly one plain OPT record."""
    n = len(data)
    additional = data[11]
    if additional == 0:
        if end != n:
            return None
        return TCP_CLASS if tcp else 0
    if additional != 1:
        return None
    # Only an OPT of version 0 with the extended rcode clear; options (cookies) ignored.
    if end + 11 > n or data[end] or data[end + 1:end + 3] != b"\x00\x29" or data[end + 5]:
        return None
    if data[end + 6] or end + 11 + (data[end + 9] << 8 | data[end + 10]) != n:
        return None
    return 0x10 | (TCP_CLASS if tcp else size_class(data[end + 3] << 8 | data[end + 4]))


def guessed_cache_key(data: bytes, tcp: bool) -> tuple[bytes, int] | None:
    """The cache key of a plain query, found without walking the name (lookups only).

    It assumes the question ends where it would in a plain query (right before the end, or
    before an option-less OPT). Stored keys only ever come from ``cache_key``, which checks the
    whole structure, and lower-casing never turns a bad length byte into a good one, so an
    exact match proves the guess right. A miss proves nothing: the slow path parses properly.
    """
    n = len(data)
    if n < 17 or data[2] & 0xF8 or data[4:11] != _ONE_QUESTION:
        return None
    additional = data[11]
    if additional == 0:
        qname_end = n - 4
        variant = TCP_CLASS if tcp else 0
    elif additional == 1:
        # root owner, type OPT, ext-rcode 0, version 0, no options
        if data[n - 11:n - 8] != b"\x00\x00\x29" or data[n - 6] or data[n - 5]:
            return None
        if data[n - 2] or data[n - 1]:
            return None
        qname_end = n - 15
        variant = 0x10 | (TCP_CLASS if tcp else size_class(data[n - 8] << 8 | data[n - 7]))
    else:
        return None
    variant |= (data[2] & 0x01) << 5 | (data[3] & 0x10) << 2
    key = data[HEADER_LEN:qname_end].lower() + data[qname_end:qname_end + 4] + _BYTE[variant]
    return key, qname_end


def _skip_name(data: bytes, pos: int) -> int:
    """Offset after a (possibly compressed) name; raises IndexError/ValueError when malformed."""
    while True:
        length = data[pos]
        if length == 0:
            return pos + 1
        if length & 0xC0 == 0xC0:
            data[pos + 1]
            return pos + 2
        if length & 0xC0:
            raise ValueError("reserved label type")
        pos += length + 1


def parse_query(data: bytes, tcp: bool) -> Query:
    """Strict reader for the miss path. Raises DropPacket or QueryError."""
    if len(data) < HEADER_LEN:
        raise DropPacket("shorter than a header")
    ident, flags, qdcount, ancount, nscount, arcount = struct.unpack_from("!6H", data)
    if flags & FLAG_QR:
        raise DropPacket("a response, not a query")
    if (flags >> 11) & 0xF != OPCODE_QUERY:
        raise QueryError(RCODE_NOTIMP, "opcode not supported")
    if qdcount != 1:
        raise QueryError(RCODE_FORMERR, f"{qdcount} questions")
    try:
        labels: list[bytes] = []
        pos = HEADER_LEN
        while True:
            length = data[pos]
            if length == 0:
                pos += 1
                break
            if length > 63:
                raise QueryError(RCODE_FORMERR, "compressed or bad label in question")
            labels.append(data[pos + 1:pos + 1 + length])
            pos += length + 1
        if pos - HEADER_LEN > MAX_NAME_LEN:
            raise QueryError(RCODE_FORMERR, "name too long")
        qtype, qclass = struct.unpack_from("!HH", data, pos)
        pos += 4
        for _ in range(ancount + nscount):
            pos = _skip_name(data, pos)
            (rdlen,) = struct.unpack_from("!H", data, pos + 8)
            pos += 10 + rdlen
        edns = False
        edns_version = 0
        udp_size = NO_EDNS_UDP_SIZE
        for _ in range(arcount):
            start = pos
            pos = _skip_name(data, pos)
            rtype, rclass, ttl, rdlen = struct.unpack_from("!HHIH", data, pos)
            pos += 10 + rdlen
            if rtype == QTYPE.OPT:
                if edns or pos - start != 11 + rdlen:  # twice, or not owned by the root
                    raise QueryError(RCODE_FORMERR, "bad OPT record")
                edns = True
                edns_version = (ttl >> 16) & 0xFF
                udp_size = effective_udp_size(rclass)
        if pos > len(data):
            raise QueryError(RCODE_FORMERR, "truncated record")
    except (IndexError, struct.error, ValueError) as exc:
        raise QueryError(RCODE_FORMERR, f"malformed: {exc}") from None
    if tcp:
        udp_size = TCP_SIZE
    return Query(ident, flags, tuple(labels), qtype, qclass, edns, edns_version, udp_size)


def error_response(data: bytes, rcode: int) -> bytes:
    """A bare header with ``rcode``, for packets whose question we cannot trust."""
    ident, flags = struct.unpack_from("!HH", data)
    flags = (flags & (0x7800 | FLAG_RD | FLAG_CD)) | FLAG_QR | (rcode & 0xF)
    return struct.pack("!6H", ident, flags, 0, 0, 0, 0)


def build_response(
    query: Query,
    *,
    rcode: int,
    answer: list[RR],
    authority: list[RR],
    additional: list[RR],
    authoritative: bool,
    recursion_available: bool,
) -> bytes:
    """Pack a response that fits the query's size (see ``fit``)."""
    header = DNSHeader(id=query.id, qr=1, aa=int(authoritative), rd=(query.flags >> 8) & 1)
    header.ra = int(recursion_available)
    header.rcode = rcode & 0xF
    record = DNSRecord(
        header,
        q=DNSQuestion(DNSLabel(query.labels), query.qtype, query.qclass),
        rr=answer,
        auth=authority,
        ar=list(additional),
    )
    if query.edns:
        record.add_ar(EDNS0(udp_len=SERVER_UDP_SIZE, ext_rcode=rcode >> 4))
    return _with_cd(fit(record, query.udp_size), query.flags)


def fit(record: DNSRecord, limit: int) -> bytes:
    """``record`` packed in at most ``limit`` bytes, the way CoreDNS truncates (miekg/dns's
    ``Msg.Truncate``): the OPT record always stays; then as many whole records as fit, answer
    section first, then authority, then additional; TC set when any record was left out. A
    partial section ends the filling (the client retries over TCP)."""
    packed = bytes(record.pack())
    if len(packed) <= limit:
        return packed
    opt = [r for r in record.ar if r.rtype == QTYPE.OPT]
    sections = (list(record.rr), list(record.auth), [r for r in record.ar if r.rtype != QTYPE.OPT])
    record.rr, record.auth, record.ar = [], [], list(opt)
    for index, section in enumerate(sections):
        kept = _longest_prefix(record, index, section, opt, limit)
        if kept < len(section):
            break
    record.header.tc = 1
    packed = bytes(record.pack())
    if len(packed) > limit:  # not even the question fits: the header alone says "use TCP"
        return packed[:HEADER_LEN - 8] + b"\x00" * 8
    return packed


def _set_section(record: DNSRecord, index: int, rrs: list[RR], opt: list[RR]) -> None:
    if index == 0:
        record.rr = rrs
    elif index == 1:
        record.auth = rrs
    else:
        record.ar = rrs + opt


def _longest_prefix(record: DNSRecord, index: int, section: list[RR], opt: list[RR], limit: int) -> int:
    """Put the longest prefix of ``section`` that keeps the packed record within ``limit`` into
    section ``index``; returns its length. (Packed length only grows with records: bisection.)"""
    low, high = 0, len(section)
    while low < high:
        middle = (low + high + 1) // 2
        _set_section(record, index, section[:middle], opt)
        if len(record.pack()) <= limit:
            low = middle
        else:
            high = middle - 1
    _set_section(record, index, section[:low], opt)
    return low


def truncate_reply(reply: bytes, limit: int) -> bytes:
    """An upstream's ``reply`` cut to ``limit`` as ``fit`` cuts ours; a reply dnslib cannot read
    keeps its header and question, with TC set."""
    if len(reply) <= limit:
        return reply
    try:
        return fit(DNSRecord.parse(reply), limit)
    except Exception:  # dnslib raises several types on records it cannot read
        return _header_and_question(reply)


def _header_and_question(reply: bytes) -> bytes:
    ident, flags, qdcount = struct.unpack_from("!3H", reply)
    end = HEADER_LEN
    try:
        if qdcount == 1:
            end = _skip_name(reply, HEADER_LEN) + 4
    except (IndexError, ValueError):
        end = HEADER_LEN
    if end > len(reply) or end - HEADER_LEN > MAX_NAME_LEN + 4:
        end = HEADER_LEN
    return struct.pack("!6H", ident, flags | FLAG_TC, 1 if end > HEADER_LEN else 0, 0, 0, 0) + \
        reply[HEADER_LEN:end]


def _with_cd(wire: bytes, query_flags: int) -> bytes:
    if not query_flags & FLAG_CD:
        return wire
    return wire[:3] + bytes((wire[3] | FLAG_CD,)) + wire[4:]
